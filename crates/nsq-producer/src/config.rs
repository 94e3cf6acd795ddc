//! Producer configuration: the connection options plus queueing, timeouts and limits.

use std::time::Duration;

use nsq_conn::{ConnConfig, ConnConfigBuilder};
#[cfg(feature = "tls")]
use nsq_conn::{TlsConfig, TlsVersion};
use nsq_proto::PublishLimits;

/// nsqd's default TCP address, used until [`Producer::new`](crate::Producer::new) sets the real
/// one.
const DEFAULT_ADDRESS: &str = "127.0.0.1:4150";

/// Everything a [`Producer`](crate::Producer) can be configured with.
///
/// Start from [`ProducerConfig::default`] and change fields, or set options by name with
/// [`set`](Self::set) (go-nsq's names). The whole configuration is validated when the producer
/// is created, before any connection is made.
///
/// ```
/// use std::time::Duration;
/// use nsq_producer::ProducerConfig;
///
/// let mut config = ProducerConfig::default();
/// config.publish_timeout = Some(Duration::from_secs(5));
/// config.conn = config.conn.heartbeat_interval(Duration::from_secs(10));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// Connection options: timeouts, IDENTIFY, TLS, compression, AUTH. Its address is replaced
    /// by the one given to [`Producer::new`](crate::Producer::new).
    pub conn: ConnConfigBuilder,
    /// Limits every publish is checked against before it is queued. Set them to nsqd's
    /// `--max-msg-size`, `--max-body-size` and `--max-req-timeout` when those differ from the
    /// defaults (1 MiB, 5 MiB, 1 h).
    pub limits: PublishLimits,
    /// How many requests the queue holds before publishers wait (or fail, with `fail_fast`).
    ///
    /// The two bounds share one budget of `queue_capacity_bytes`: a request counts as its
    /// encoded size, but at least `queue_capacity_bytes / queue_capacity` bytes. So the queue
    /// holds at most `queue_capacity` requests and at most `queue_capacity_bytes` bytes; a mix
    /// of small and large requests fills it somewhat before either bound alone would.
    pub queue_capacity: usize,
    /// How many bytes of encoded requests the queue holds before publishers wait (see
    /// `queue_capacity` for how the two bounds combine).
    pub queue_capacity_bytes: usize,
    /// How many requests may be written and unanswered at once.
    pub max_in_flight: usize,
    /// How long a publish may take, from the call to nsqd's answer; `None` waits for ever.
    pub publish_timeout: Option<Duration>,
    /// How long past the oldest request's deadline the router waits for its reply before it
    /// drops the connection as stalled.
    pub stall_grace: Duration,
    /// The shortest delay between reconnect attempts.
    pub reconnect_backoff_min: Duration,
    /// The longest delay between reconnect attempts.
    pub reconnect_backoff_max: Duration,
    /// How long [`close`](crate::Producer::close) waits for queued and outstanding requests.
    pub close_timeout: Duration,
    /// Fail publishes instead of letting them wait: with
    /// [`NotSentReason::QueueFull`](crate::NotSentReason::QueueFull) when the queue is full, and
    /// with [`NotSentReason::Unavailable`](crate::NotSentReason::Unavailable) (every queued
    /// publish) as soon as a connection attempt fails. Off by default: publishes wait for room
    /// and for a connection until their deadline.
    pub fail_fast: bool,
    /// Send consecutive queued PUBs to the same topic as one MPUB (within
    /// `limits.max_body_size`). Each publish still gets its own result; if nsqd rejects the
    /// MPUB, every publish in it is rejected with nsqd's error and none was stored, except
    /// after `E_MPUB_FAILED`, when every publish in it is
    /// [`MaybeStored`](crate::PublishError::MaybeStored). On by default.
    pub batching: bool,
    /// With batching, how long a batch may wait for more PUBs before it is written. Zero (the
    /// default) sends only what is already queued, adding no latency.
    pub batch_linger: Duration,
    /// TLS settings gathered by [`set`](Self::set) (`tls_v1`, `tls_root_ca_file`, ...),
    /// applied to `conn` when the configuration is built.
    #[cfg(feature = "tls")]
    tls: Option<TlsSettings>,
}

#[cfg(feature = "tls")]
#[derive(Debug, Clone, Default)]
struct TlsSettings {
    root_ca_file: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    insecure_skip_verify: bool,
    min_version: Option<TlsVersion>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            conn: ConnConfig::builder(DEFAULT_ADDRESS),
            limits: PublishLimits::default(),
            queue_capacity: 16 * 1024,
            queue_capacity_bytes: 64 * 1024 * 1024,
            max_in_flight: 4096,
            publish_timeout: Some(Duration::from_secs(30)),
            stall_grace: Duration::from_secs(1),
            reconnect_backoff_min: Duration::from_millis(100),
            reconnect_backoff_max: Duration::from_secs(10),
            close_timeout: Duration::from_secs(10),
            fail_fast: false,
            batching: true,
            batch_linger: Duration::ZERO,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

/// An invalid configuration value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {option}: {reason}")]
pub struct ConfigError {
    option: String,
    reason: String,
}

impl ConfigError {
    /// An error for `option`.
    pub fn new(option: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            option: option.into(),
            reason: reason.into(),
        }
    }

    /// The option's name.
    pub fn option(&self) -> &str {
        &self.option
    }
}

impl ProducerConfig {
    /// Checks every value. [`Producer::new`](crate::Producer::new) calls this.
    ///
    /// # Errors
    ///
    /// The first invalid option.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.conn_config(DEFAULT_ADDRESS)?;
        let wire_max = i32::MAX as u64;
        if self.limits.max_msg_size == 0 || self.limits.max_msg_size > wire_max {
            return Err(ConfigError::new(
                "max_msg_size",
                format!("must be 1 to {wire_max}"),
            ));
        }
        if self.limits.max_body_size < 9 || self.limits.max_body_size > wire_max {
            return Err(ConfigError::new(
                "max_body_size",
                format!("must be 9 to {wire_max}"),
            ));
        }
        if self.queue_capacity == 0 {
            return Err(ConfigError::new("queue_capacity", "must be at least 1"));
        }
        if self.queue_capacity_bytes == 0 || self.queue_capacity_bytes > u32::MAX as usize {
            return Err(ConfigError::new(
                "queue_capacity_bytes",
                "must be 1 to 4294967295",
            ));
        }
        if self.max_in_flight == 0 {
            return Err(ConfigError::new("max_in_flight", "must be at least 1"));
        }
        if self.publish_timeout == Some(Duration::ZERO) {
            return Err(ConfigError::new("publish_timeout", "must be positive"));
        }
        if self.reconnect_backoff_min.is_zero()
            || self.reconnect_backoff_min > self.reconnect_backoff_max
        {
            return Err(ConfigError::new(
                "reconnect_backoff_min",
                "must be positive and at most reconnect_backoff_max",
            ));
        }
        Ok(())
    }

    /// The connection configuration for `address`, validated.
    pub(crate) fn conn_config(&self, address: &str) -> Result<ConnConfig, ConfigError> {
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut conn = self.conn.clone().address(address);
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let mut config = TlsConfig::new();
            if let Some(ca) = &tls.root_ca_file {
                config = config.root_ca_file(ca);
            }
            match (&tls.cert, &tls.key) {
                (Some(cert), Some(key)) => config = config.client_cert(cert, key),
                (None, None) => {}
                _ => {
                    return Err(ConfigError::new(
                        "tls_cert",
                        "tls_cert and tls_key must be set together",
                    ));
                }
            }
            if let Some(version) = tls.min_version {
                config = config.min_version(version);
            }
            if tls.insecure_skip_verify {
                config = config.danger_accept_invalid_certs();
            }
            conn = conn.tls_v1(config);
        }
        conn.build()
            .map_err(|e| ConfigError::new("connection", e.to_string()))
    }

    /// Sets an option by name, as go-nsq's `Config.Set` does, for configuration from flags or
    /// files. Names may use `_` or `-`. Durations take Go syntax (`1500ms`, `30s`, `1m30s`) or
    /// a number of milliseconds; booleans `true`/`false`/`1`/`0`. The option is checked at once.
    ///
    /// | option | meaning |
    /// |---|---|
    /// | `dial_timeout`, `handshake_timeout`, `write_timeout` | connection timeouts |
    /// | `local_addr` | local address to bind |
    /// | `heartbeat_interval` | duration, or `-1` to disable heartbeats |
    /// | `client_id`, `hostname`, `user_agent` | IDENTIFY identity |
    /// | `output_buffer_size`, `output_buffer_timeout`, `msg_timeout`, `sample_rate` | consumer-side IDENTIFY values (sent only when set) |
    /// | `auth_secret` | secret for AUTH |
    /// | `tls_v1`, `tls_root_ca_file`, `tls_cert`, `tls_key`, `tls_insecure_skip_verify`, `tls_min_version` (`tls1.2`, `tls1.3`) | TLS |
    /// | `snappy`, `deflate`, `deflate_level` | compression |
    /// | `max_msg_size`, `max_body_size`, `max_defer` | publish limits (nsqd's `--max-msg-size`, `--max-body-size`, `--max-req-timeout`) |
    /// | `queue_capacity`, `queue_capacity_bytes`, `max_in_flight`, `fail_fast` | queueing |
    /// | `batching`, `batch_linger` | automatic batching of PUBs into MPUBs |
    /// | `publish_timeout` (`none` for no timeout), `stall_grace`, `close_timeout` | deadlines |
    /// | `reconnect_backoff_min`, `reconnect_backoff_max` | reconnect delays |
    ///
    /// ```
    /// use nsq_producer::ProducerConfig;
    ///
    /// let mut config = ProducerConfig::default();
    /// config.set("heartbeat_interval", "10s").unwrap();
    /// config.set("max-in-flight", "100").unwrap();
    /// assert!(config.set("max_in_flight", "lots").is_err());
    /// assert!(config.set("heartbeat_interval", "999ms").is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for an unknown option or a value that does not parse or is out of range;
    /// the configuration is then unchanged.
    pub fn set(&mut self, option: &str, value: &str) -> Result<(), ConfigError> {
        let mut next = self.clone();
        next.apply(option, value)?;
        next.validate()?;
        *self = next;
        Ok(())
    }

    fn apply(&mut self, option: &str, value: &str) -> Result<(), ConfigError> {
        let name = option.trim().replace('-', "_");
        let err = |reason: &str| ConfigError::new(name.clone(), format!("{reason}, got {value:?}"));
        let int = |v: &str| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| err("expected a whole number"))
        };
        let signed = |v: &str| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| err("expected a whole number"))
        };
        let dur = |v: &str| {
            parse_duration(v).ok_or_else(|| err("expected a duration such as 500ms or 30s"))
        };
        let boolean = |v: &str| parse_bool(v).ok_or_else(|| err("expected true or false"));
        let conn = self.conn.clone();
        self.conn =
            match name.as_str() {
                "dial_timeout" => conn.dial_timeout(dur(value)?),
                "handshake_timeout" => conn.handshake_timeout(dur(value)?),
                "write_timeout" => conn.write_timeout(dur(value)?),
                "local_addr" => {
                    conn.local_addr(value.trim().parse().map_err(|_| err("expected IP:PORT"))?)
                }
                "heartbeat_interval" => match value.trim() {
                    "-1" | "-1ms" => conn.disable_heartbeats(),
                    v => conn.heartbeat_interval(dur(v)?),
                },
                "client_id" => conn.client_id(value),
                "hostname" => conn.hostname(value),
                "user_agent" => conn.user_agent(value),
                "output_buffer_size" => conn.output_buffer_size(signed(value)?),
                "output_buffer_timeout" => match value.trim() {
                    "-1" | "-1ms" => conn.disable_output_buffer_timeout(),
                    v => conn.output_buffer_timeout(dur(v)?),
                },
                "msg_timeout" => conn.msg_timeout(dur(value)?),
                "sample_rate" => conn
                    .sample_rate(u8::try_from(int(value)?).map_err(|_| err("expected 0 to 99"))?),
                "auth_secret" => conn.auth_secret(value),
                "max_msg_size" => {
                    let size = int(value)?;
                    self.limits.max_msg_size = size;
                    conn.max_msg_size(u32::try_from(size).map_err(|_| err("too large"))?)
                }
                #[cfg(feature = "snappy")]
                "snappy" => conn.snappy(boolean(value)?),
                #[cfg(feature = "deflate")]
                "deflate" => conn.deflate(boolean(value)?),
                #[cfg(feature = "deflate")]
                "deflate_level" => conn
                    .deflate_level(u8::try_from(int(value)?).map_err(|_| err("expected 1 to 9"))?),
                #[cfg(feature = "tls")]
                "tls_v1"
                | "tls_root_ca_file"
                | "tls_cert"
                | "tls_key"
                | "tls_insecure_skip_verify"
                | "tls_min_version" => {
                    let tls = self.tls.get_or_insert_with(TlsSettings::default);
                    match name.as_str() {
                        "tls_v1" => {
                            if !boolean(value)? {
                                self.tls = None;
                            }
                        }
                        "tls_root_ca_file" => tls.root_ca_file = Some(value.to_owned()),
                        "tls_cert" => tls.cert = Some(value.to_owned()),
                        "tls_key" => tls.key = Some(value.to_owned()),
                        "tls_insecure_skip_verify" => tls.insecure_skip_verify = boolean(value)?,
                        _ => {
                            tls.min_version = Some(match value.trim() {
                                "tls1.2" => TlsVersion::Tls12,
                                "tls1.3" => TlsVersion::Tls13,
                                _ => return Err(err("expected tls1.2 or tls1.3")),
                            })
                        }
                    }
                    conn
                }
                "max_body_size" => {
                    self.limits.max_body_size = int(value)?;
                    conn
                }
                "max_defer" | "max_req_timeout" => {
                    self.limits.max_defer = dur(value)?;
                    conn
                }
                "queue_capacity" => {
                    self.queue_capacity = int(value)? as usize;
                    conn
                }
                "queue_capacity_bytes" => {
                    self.queue_capacity_bytes = int(value)? as usize;
                    conn
                }
                "max_in_flight" => {
                    self.max_in_flight = int(value)? as usize;
                    conn
                }
                "publish_timeout" => {
                    self.publish_timeout = match value.trim() {
                        "none" | "0" => None,
                        v => Some(dur(v)?),
                    };
                    conn
                }
                "stall_grace" => {
                    self.stall_grace = dur(value)?;
                    conn
                }
                "reconnect_backoff_min" => {
                    self.reconnect_backoff_min = dur(value)?;
                    conn
                }
                "reconnect_backoff_max" => {
                    self.reconnect_backoff_max = dur(value)?;
                    conn
                }
                "close_timeout" => {
                    self.close_timeout = dur(value)?;
                    conn
                }
                "fail_fast" => {
                    self.fail_fast = boolean(value)?;
                    conn
                }
                "batching" => {
                    self.batching = boolean(value)?;
                    conn
                }
                "batch_linger" => {
                    self.batch_linger = dur(value)?;
                    conn
                }
                _ => return Err(ConfigError::new(name.clone(), "unknown option")),
            };
        Ok(())
    }
}

/// Parses a Go-style duration (`300ms`, `1.5s`, `1m30s`, `2h`) or a plain number of
/// milliseconds.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<u64>() {
        return Some(Duration::from_millis(ms));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (num, tail) = rest.split_at(num_end);
        let value: f64 = num.parse().ok()?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let nanos_per = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += Duration::from_nanos((value * nanos_per) as u64);
        rest = tail;
    }
    Some(total)
}

pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.trim() {
        "true" | "TRUE" | "True" | "1" | "t" | "T" => Some(true),
        "false" | "FALSE" | "False" | "0" | "f" | "F" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("1500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("5 s"), None);
        assert_eq!(parse_duration("ms"), None);
    }

    #[test]
    fn default_is_valid_and_bad_values_fail() {
        assert_eq!(ProducerConfig::default().validate(), Ok(()));
        let mut config = ProducerConfig::default();
        assert!(config.set("max_in_flight", "0").is_err());
        assert_eq!(
            config.max_in_flight, 4096,
            "a refused value changes nothing"
        );
        assert!(config.set("no_such_option", "1").is_err());
        assert!(config.set("snappy", "true").is_ok());
        assert!(config.set("deflate", "true").is_err(), "both compressions");
        config.set("heartbeat_interval", "-1").unwrap();
        config.set("publish_timeout", "none").unwrap();
        assert_eq!(config.publish_timeout, None);
        config.set("fail-fast", "true").unwrap();
        assert!(config.fail_fast);
    }
}
