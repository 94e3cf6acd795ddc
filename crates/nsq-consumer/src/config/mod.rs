//! Consumer configuration: the connection options plus RDY, backoff, discovery and drain.

use std::time::Duration;

use nsq_conn::{ConfigError, ConnConfig, ConnConfigBuilder};

/// nsqd's default TCP address; every connection replaces it with its node's.
const DEFAULT_ADDRESS: &str = "127.0.0.1:4150";

/// How the backoff delay grows with the backoff level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BackoffStrategy {
    /// `backoff_multiplier × 2^level`, capped at `max_backoff_duration` (go-nsq's default).
    #[default]
    Exponential,
    /// A random delay between zero and the exponential one.
    FullJitter,
}

/// Everything a [`Consumer`](crate::Consumer) can be configured with.
///
/// Start from [`ConsumerConfig::default`] and change fields. The defaults are go-nsq's, except
/// where noted. The whole configuration is validated when the consumer starts, before any
/// connection is made.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// Connection options: timeouts, IDENTIFY (`msg_timeout`, `sample_rate`, `user_agent`,
    /// heartbeats), TLS, compression, AUTH. Its address is replaced by each node's.
    pub conn: ConnConfigBuilder,
    /// How many messages may be delivered and not yet answered, over all connections
    /// (default 1). It is shared out as RDY counts; their sum never exceeds it.
    pub max_in_flight: u32,
    /// Deliveries after which a message is given up: handed to the give-up hook (or logged) and
    /// finished instead of handled (default 5; 0 means no limit).
    pub max_attempts: u16,
    /// The requeue delay of a message that failed without a delay of its own: this times the
    /// message's attempts, capped at `max_requeue_delay` (default 90 s).
    pub default_requeue_delay: Duration,
    /// The longest requeue delay computed from `default_requeue_delay` (default 15 min).
    pub max_requeue_delay: Duration,
    /// How the backoff delay grows.
    pub backoff_strategy: BackoffStrategy,
    /// The backoff delay's unit (default 1 s).
    pub backoff_multiplier: Duration,
    /// The longest backoff delay (default 2 min).
    pub max_backoff_duration: Duration,
    /// How often each nsqlookupd is asked for the topic's nsqd (default 60 s).
    pub lookupd_poll_interval: Duration,
    /// The fraction of `lookupd_poll_interval` by which polls are spread at random (default
    /// 0.3).
    pub lookupd_poll_jitter: f64,
    /// How long one nsqlookupd request may take (default 60 s).
    pub lookupd_poll_timeout: Duration,
    /// How long an nsqd that no nsqlookupd lists any more stays connected before it is dropped
    /// (default 60 s, not in go-nsq, which never drops it).
    pub lookupd_grace_period: Duration,
    /// How often RDY counts are shared out again: new connections get their share, idle ones
    /// are demoted and RDY 1 slots move on (default 5 s).
    pub rdy_redistribute_interval: Duration,
    /// How long a connection may go without a message before it is demoted to RDY 1 and its
    /// share goes to the active ones (default 10 s).
    pub low_rdy_idle_timeout: Duration,
    /// The first delay before a lost connection is dialled again; it doubles on every failure
    /// (default 1 s; go-nsq waits a fixed `lookupd_poll_interval`).
    pub reconnect_backoff_min: Duration,
    /// The longest delay between reconnect attempts (default 60 s).
    pub reconnect_backoff_max: Duration,
    /// How long a drain waits for messages being handled before it requeues the rest (default
    /// 30 s).
    pub drain_timeout: Duration,
    /// Whether a handler's result answers its message: `Ok` finishes it, `Err` requeues it with
    /// backoff (default true). When false, the handler answers each message itself; a message
    /// dropped unanswered is still requeued at once.
    pub auto_response: bool,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            conn: ConnConfig::builder(DEFAULT_ADDRESS),
            max_in_flight: 1,
            max_attempts: 5,
            default_requeue_delay: Duration::from_secs(90),
            max_requeue_delay: Duration::from_secs(15 * 60),
            backoff_strategy: BackoffStrategy::Exponential,
            backoff_multiplier: Duration::from_secs(1),
            max_backoff_duration: Duration::from_secs(120),
            lookupd_poll_interval: Duration::from_secs(60),
            lookupd_poll_jitter: 0.3,
            lookupd_poll_timeout: Duration::from_secs(60),
            lookupd_grace_period: Duration::from_secs(60),
            rdy_redistribute_interval: Duration::from_secs(5),
            low_rdy_idle_timeout: Duration::from_secs(10),
            reconnect_backoff_min: Duration::from_secs(1),
            reconnect_backoff_max: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
            auto_response: true,
        }
    }
}

impl ConsumerConfig {
    /// Checks every value and how they combine, reading the TLS files if TLS is on. The
    /// consumer calls this before it connects.
    ///
    /// # Errors
    ///
    /// The first invalid option; [`ConfigError::option`] names it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.conn_config(DEFAULT_ADDRESS)?;
        let invalid = |option, value: String, expected| ConfigError::InvalidValue {
            option,
            value,
            expected,
        };
        if !(0.0..=1.0).contains(&self.lookupd_poll_jitter) {
            return Err(invalid(
                "lookupd_poll_jitter",
                self.lookupd_poll_jitter.to_string(),
                "0 to 1",
            ));
        }
        for (option, value) in [
            ("backoff_multiplier", self.backoff_multiplier),
            ("lookupd_poll_interval", self.lookupd_poll_interval),
            ("lookupd_poll_timeout", self.lookupd_poll_timeout),
            ("rdy_redistribute_interval", self.rdy_redistribute_interval),
            ("low_rdy_idle_timeout", self.low_rdy_idle_timeout),
            ("reconnect_backoff_min", self.reconnect_backoff_min),
        ] {
            if value.is_zero() {
                return Err(invalid(option, "0s".into(), "a positive duration"));
            }
        }
        if self.reconnect_backoff_min > self.reconnect_backoff_max {
            return Err(ConfigError::Conflict {
                option: "reconnect_backoff_min",
                reason: "must be at most reconnect_backoff_max",
            });
        }
        Ok(())
    }

    /// The connection configuration for the nsqd at `address`.
    pub(crate) fn conn_config(&self, address: &str) -> Result<ConnConfig, ConfigError> {
        self.conn.clone().address(address).build()
    }
}
