//! Consumer configuration: the connection options plus RDY, backoff, discovery and drain.

use std::time::Duration;

use nsq_conn::{ConfigError, ConnConfig, ConnConfigBuilder};

#[cfg(feature = "serde")]
mod de;
mod go_nsq;

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

/// Reads go-nsq's names: `exponential` (or empty, as go-nsq takes it) and `full_jitter`.
///
/// ```
/// use nsq_consumer::BackoffStrategy;
///
/// assert_eq!("full_jitter".parse::<BackoffStrategy>()?, BackoffStrategy::FullJitter);
/// assert_eq!("".parse::<BackoffStrategy>()?, BackoffStrategy::Exponential);
/// let err = "linear".parse::<BackoffStrategy>().unwrap_err();
/// assert_eq!(err.option(), "backoff_strategy");
/// # Ok::<(), nsq_consumer::ConfigError>(())
/// ```
impl std::str::FromStr for BackoffStrategy {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "" | "exponential" => Ok(Self::Exponential),
            "full_jitter" => Ok(Self::FullJitter),
            _ => Err(ConfigError::InvalidValue {
                option: "backoff_strategy",
                value: format!("{text:?}"),
                expected: "exponential or full_jitter",
            }),
        }
    }
}

/// Everything a [`Consumer`](crate::Consumer) can be configured with.
///
/// Start from [`ConsumerConfig::default`] and change fields, or set options by name with
/// [`set`](Self::set) (go-nsq's names; every go-nsq option is accepted, those with no use in a
/// consumer are ignored). With the `serde` feature it also deserializes from a map of the same
/// names and values, so a TOML, JSON or YAML section can configure it. The defaults are
/// go-nsq's, except where noted, and so are the ranges. The whole configuration is validated
/// when the consumer starts, before any connection is made.
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
    /// message's attempts, capped at `max_requeue_delay` (default 90 s, at most 60 min).
    pub default_requeue_delay: Duration,
    /// The longest requeue delay computed from `default_requeue_delay` (default 15 min, at most
    /// 60 min).
    pub max_requeue_delay: Duration,
    /// How the backoff delay grows.
    pub backoff_strategy: BackoffStrategy,
    /// The backoff delay's unit (default 1 s; more than zero, at most 60 min).
    pub backoff_multiplier: Duration,
    /// The longest backoff delay (default 2 min, at most 60 min).
    pub max_backoff_duration: Duration,
    /// How often each nsqlookupd is asked for the topic's nsqd (default 60 s, 10 ms to 5 min).
    pub lookupd_poll_interval: Duration,
    /// The fraction of `lookupd_poll_interval` by which polls are spread at random (default
    /// 0.3, 0 to 1).
    pub lookupd_poll_jitter: f64,
    /// How long one nsqlookupd request may take (default 60 s).
    pub lookupd_poll_timeout: Duration,
    /// How long an nsqd that no nsqlookupd lists any more stays connected before it is dropped
    /// (default 60 s, not in go-nsq, which never drops it).
    pub lookupd_grace_period: Duration,
    /// How often RDY counts are shared out again: new connections get their share, idle ones
    /// are demoted and RDY 1 slots move on (default 5 s, 1 ms to 5 s).
    pub rdy_redistribute_interval: Duration,
    /// How long a connection may go without a message before it is demoted to RDY 1 and its
    /// share goes to the active ones (default 10 s, 1 s to 5 min).
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
    /// go-nsq options given to [`set`](Self::set) that do not apply to a consumer (visible in
    /// the crate so that its code may build a configuration with `..Default::default()`).
    pub(crate) ignored: Vec<&'static str>,
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
            ignored: Vec::new(),
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
        for option in go_nsq::OWN {
            self.check_field(option)?;
        }
        if self.reconnect_backoff_min > self.reconnect_backoff_max {
            return Err(ConfigError::Conflict {
                option: "reconnect_backoff_min",
                reason: "must be at most reconnect_backoff_max",
            });
        }
        Ok(())
    }

    /// The go-nsq options given to [`set`](Self::set) (or found when deserializing) that do
    /// not apply to a consumer and were ignored, in the order first given.
    pub fn ignored_options(&self) -> &[&'static str] {
        &self.ignored
    }

    /// Checks the range of one of this crate's own fields, by its option name; other names
    /// pass. The ranges are go-nsq's where go-nsq has the option.
    fn check_field(&self, option: &'static str) -> Result<(), ConfigError> {
        const MS: Duration = Duration::from_millis(1);
        const S: Duration = Duration::from_secs(1);
        const M: Duration = Duration::from_secs(60);
        const NONZERO: Duration = Duration::from_nanos(1);
        let (value, min, max, expected) = match option {
            "lookupd_poll_interval" => (self.lookupd_poll_interval, MS * 10, M * 5, "10ms to 5m"),
            "lookupd_poll_timeout" => (
                self.lookupd_poll_timeout,
                NONZERO,
                Duration::MAX,
                "more than zero",
            ),
            "default_requeue_delay" => (
                self.default_requeue_delay,
                Duration::ZERO,
                M * 60,
                "0 to 60m",
            ),
            "max_requeue_delay" => (self.max_requeue_delay, Duration::ZERO, M * 60, "0 to 60m"),
            "max_backoff_duration" => (
                self.max_backoff_duration,
                Duration::ZERO,
                M * 60,
                "0 to 60m",
            ),
            "backoff_multiplier" => (
                self.backoff_multiplier,
                NONZERO,
                M * 60,
                "more than zero, up to 60m",
            ),
            "rdy_redistribute_interval" => (self.rdy_redistribute_interval, MS, S * 5, "1ms to 5s"),
            "low_rdy_idle_timeout" => (self.low_rdy_idle_timeout, S, M * 5, "1s to 5m"),
            "reconnect_backoff_min" => (
                self.reconnect_backoff_min,
                NONZERO,
                Duration::MAX,
                "more than zero",
            ),
            "lookupd_poll_jitter" if !(0.0..=1.0).contains(&self.lookupd_poll_jitter) => {
                return Err(ConfigError::InvalidValue {
                    option,
                    value: self.lookupd_poll_jitter.to_string(),
                    expected: "0 to 1",
                });
            }
            _ => return Ok(()),
        };
        if value < min || value > max {
            return Err(ConfigError::InvalidValue {
                option,
                value: format!("{value:?}"),
                expected,
            });
        }
        Ok(())
    }

    /// The connection configuration for the nsqd at `address`.
    pub(crate) fn conn_config(&self, address: &str) -> Result<ConnConfig, ConfigError> {
        self.conn.clone().address(address).build()
    }
}
