//! Producer configuration: the connection options plus queueing, timeouts and limits.

use std::time::Duration;

#[cfg(feature = "tls")]
use nsq_conn::TlsVersion;
use nsq_conn::{ConfigError, ConnConfig, ConnConfigBuilder, DEFAULT_MAX_MSG_SIZE};
use nsq_proto::PublishLimits;

/// nsqd's default TCP address, used until [`Producer::new`](crate::Producer::new) sets the real
/// one.
const DEFAULT_ADDRESS: &str = "127.0.0.1:4150";

/// Everything a [`Producer`](crate::Producer) can be configured with.
///
/// Start from [`ProducerConfig::default`] and change fields, or set options by name with
/// [`set`](Self::set) (go-nsq's names; every go-nsq option is accepted, those that only concern
/// consumers are ignored). With the `serde` feature it also deserializes from a map of the same
/// names and values, so a TOML, JSON or YAML section can configure it. The whole configuration
/// is validated when the producer is created, before any connection is made.
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
    /// How many requests may be written to nsqd and not yet answered at once: the depth of the
    /// pipeline (default 4096). Requests beyond it wait in the queue.
    ///
    /// This is not go-nsq's `max_in_flight`, which is a consumer's RDY count (default 1): that
    /// option is accepted by [`set`](Self::set) and ignored, so a configuration shared with
    /// consumers does not throttle the producer.
    pub max_pipelined: usize,
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
    /// go-nsq options given to [`set`](Self::set) that do not apply to a producer.
    ignored: Vec<&'static str>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            conn: ConnConfig::builder(DEFAULT_ADDRESS),
            limits: PublishLimits::default(),
            queue_capacity: 16 * 1024,
            queue_capacity_bytes: 64 * 1024 * 1024,
            max_pipelined: 4096,
            publish_timeout: Some(Duration::from_secs(30)),
            stall_grace: Duration::from_secs(1),
            reconnect_backoff_min: Duration::from_millis(100),
            reconnect_backoff_max: Duration::from_secs(10),
            close_timeout: Duration::from_secs(10),
            fail_fast: false,
            batching: true,
            batch_linger: Duration::ZERO,
            ignored: Vec::new(),
        }
    }
}

/// The options [`ProducerConfig::set`] applies.
const APPLIED: &[&str] = &[
    "dial_timeout",
    "handshake_timeout",
    "write_timeout",
    "local_addr",
    "heartbeat_interval",
    "client_id",
    "hostname",
    "user_agent",
    "output_buffer_size",
    "output_buffer_timeout",
    "msg_timeout",
    "sample_rate",
    "auth_secret",
    "max_msg_size",
    "snappy",
    "deflate",
    "deflate_level",
    "tls_v1",
    "tls_root_ca_file",
    "tls_cert",
    "tls_key",
    "tls_insecure_skip_verify",
    "tls_min_version",
    "tls_config",
    "max_body_size",
    "max_defer",
    "max_req_timeout",
    "queue_capacity",
    "queue_capacity_bytes",
    "max_pipelined",
    "publish_timeout",
    "stall_grace",
    "reconnect_backoff_min",
    "reconnect_backoff_max",
    "close_timeout",
    "fail_fast",
    "batching",
    "batch_linger",
];

/// The kind of value an ignored option takes, checked so that a typo still fails.
#[derive(Clone, Copy)]
enum Kind {
    Duration,
    Float,
    Uint,
    Bool,
    Text,
    BackoffStrategy,
}

/// go-nsq options that only concern consumers, or that this producer has no use for:
/// [`ProducerConfig::set`] checks their syntax and otherwise ignores them.
const IGNORED: &[(&str, Kind)] = &[
    ("max_in_flight", Kind::Uint),
    ("max_attempts", Kind::Uint),
    ("lookupd_poll_interval", Kind::Duration),
    ("lookupd_poll_jitter", Kind::Float),
    ("lookupd_poll_timeout", Kind::Duration),
    ("skip_lookupd_authorization", Kind::Bool),
    ("max_requeue_delay", Kind::Duration),
    ("default_requeue_delay", Kind::Duration),
    ("backoff_strategy", Kind::BackoffStrategy),
    ("max_backoff_duration", Kind::Duration),
    ("backoff_multiplier", Kind::Duration),
    ("low_rdy_idle_timeout", Kind::Duration),
    ("low_rdy_timeout", Kind::Duration),
    ("rdy_redistribute_interval", Kind::Duration),
    ("topology_region", Kind::Text),
    ("topology_zone", Kind::Text),
    // Connection-level in go-nsq, but a producer connection here fails when nothing arrives
    // for twice the heartbeat interval instead.
    ("read_timeout", Kind::Duration),
];

/// One option's value as given to [`ProducerConfig::set`], with parsers that name the option
/// in their errors.
struct Value<'a> {
    option: &'static str,
    text: &'a str,
}

impl Value<'_> {
    fn invalid(&self, expected: &'static str) -> ConfigError {
        ConfigError::InvalidValue {
            option: self.option,
            value: format!("{:?}", self.text),
            expected,
        }
    }

    fn uint(&self) -> Result<u64, ConfigError> {
        self.text
            .trim()
            .parse()
            .map_err(|_| self.invalid("a whole number"))
    }

    fn int(&self) -> Result<i64, ConfigError> {
        self.text
            .trim()
            .parse()
            .map_err(|_| self.invalid("a whole number"))
    }

    fn float(&self) -> Result<f64, ConfigError> {
        self.text
            .trim()
            .parse()
            .map_err(|_| self.invalid("a number"))
    }

    fn duration(&self) -> Result<Duration, ConfigError> {
        parse_duration(self.text).ok_or_else(|| self.invalid("a duration such as 500ms or 30s"))
    }

    fn boolean(&self) -> Result<bool, ConfigError> {
        parse_bool(self.text).ok_or_else(|| self.invalid("true or false"))
    }

    fn small<T: TryFrom<u64>>(&self, expected: &'static str) -> Result<T, ConfigError> {
        T::try_from(self.uint()?).map_err(|_| self.invalid(expected))
    }

    /// Checks the syntax of an ignored option's value.
    fn check(&self, kind: Kind) -> Result<(), ConfigError> {
        match kind {
            Kind::Duration => self.duration().map(drop),
            Kind::Float => self.float().map(drop),
            Kind::Uint => self.uint().map(drop),
            Kind::Bool => self.boolean().map(drop),
            Kind::Text => Ok(()),
            Kind::BackoffStrategy => match self.text.trim() {
                "" | "exponential" | "full_jitter" => Ok(()),
                _ => Err(self.invalid("exponential or full_jitter")),
            },
        }
    }
}

impl ProducerConfig {
    /// Checks every value and how they combine, reading the TLS files if TLS is on.
    /// [`Producer::new`](crate::Producer::new) calls this.
    ///
    /// # Errors
    ///
    /// The first invalid option; [`ConfigError::option`] names it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.conn_config(DEFAULT_ADDRESS)?;
        self.check_fields()?;
        if self.reconnect_backoff_min > self.reconnect_backoff_max {
            return Err(ConfigError::Conflict {
                option: "reconnect_backoff_min",
                reason: "must be at most reconnect_backoff_max",
            });
        }
        Ok(())
    }

    /// The go-nsq options given to [`set`](Self::set) (or found when deserializing) that do
    /// not apply to a producer and were ignored, in the order first given.
    /// [`Producer::new`](crate::Producer::new) logs them in one warning.
    pub fn ignored_options(&self) -> &[&'static str] {
        &self.ignored
    }

    /// Checks this crate's own fields, each on its own.
    fn check_fields(&self) -> Result<(), ConfigError> {
        let wire_max = i32::MAX as u64;
        let invalid = |option, value: &dyn ToString, expected| ConfigError::InvalidValue {
            option,
            value: value.to_string(),
            expected,
        };
        let limits = &self.limits;
        if limits.max_msg_size == 0 || limits.max_msg_size > wire_max {
            return Err(invalid(
                "max_msg_size",
                &limits.max_msg_size,
                "1 to 2147483647",
            ));
        }
        if limits.max_body_size < 9 || limits.max_body_size > wire_max {
            return Err(invalid(
                "max_body_size",
                &limits.max_body_size,
                "9 to 2147483647",
            ));
        }
        if self.queue_capacity == 0 {
            return Err(invalid("queue_capacity", &0, "at least 1"));
        }
        if self.queue_capacity_bytes == 0 || self.queue_capacity_bytes > u32::MAX as usize {
            return Err(invalid(
                "queue_capacity_bytes",
                &self.queue_capacity_bytes,
                "1 to 4294967295",
            ));
        }
        if self.max_pipelined == 0 {
            return Err(invalid("max_pipelined", &0, "at least 1"));
        }
        if self.publish_timeout == Some(Duration::ZERO) {
            return Err(invalid("publish_timeout", &"0s", "more than zero, or none"));
        }
        if self.reconnect_backoff_min.is_zero() {
            return Err(invalid("reconnect_backoff_min", &"0s", "more than zero"));
        }
        Ok(())
    }

    /// The connection configuration for `address`, validated.
    pub(crate) fn conn_config(&self, address: &str) -> Result<ConnConfig, ConfigError> {
        self.conn.clone().address(address).build()
    }

    /// Sets an option by name, as go-nsq's `Config.Set` does, for configuration from flags or
    /// files. Names may use `_` or `-`. Durations take Go syntax (`1500ms`, `30s`, `1m30s`) or
    /// a number of milliseconds; booleans `true`/`false`/`1`/`0`.
    ///
    /// The value is checked at once, on its own. What involves several options is checked when
    /// the producer is created ([`validate`](Self::validate)), so options may be set in any
    /// order: `tls_cert` with `tls_key`, snappy against deflate, `reconnect_backoff_min` against
    /// `reconnect_backoff_max`, and the TLS files, which are read then.
    ///
    /// | option | meaning |
    /// |---|---|
    /// | `dial_timeout`, `handshake_timeout`, `write_timeout` | connection timeouts |
    /// | `local_addr` | local address to bind |
    /// | `heartbeat_interval` | duration, or `-1` to disable heartbeats |
    /// | `client_id`, `hostname`, `user_agent` | IDENTIFY identity |
    /// | `output_buffer_size`, `output_buffer_timeout`, `msg_timeout`, `sample_rate` | consumer-side IDENTIFY values (sent only when set) |
    /// | `auth_secret` | secret for AUTH |
    /// | `tls_v1` | the TLS switch: off by default, and the only option that turns TLS on or off |
    /// | `tls_root_ca_file`, `tls_cert`, `tls_key`, `tls_insecure_skip_verify`, `tls_min_version` | how TLS is set up, used once `tls_v1` is on; they edit the same settings as [`ConnConfigBuilder::tls_v1`] and [`ConnConfigBuilder::edit_tls`]. `tls_min_version` takes `tls1.2` or `tls1.3`; go-nsq's `ssl3.0`, `tls1.0` and `tls1.1` mean `tls1.2`, the lowest supported |
    /// | `snappy`, `deflate`, `deflate_level` | compression |
    /// | `max_msg_size`, `max_body_size`, `max_defer` (or `max_req_timeout`) | publish limits (nsqd's `--max-msg-size`, `--max-body-size`, `--max-req-timeout`); `max_msg_size` `0` (go-nsq's "no limit") means nsqd's default, 1 MiB |
    /// | `queue_capacity`, `queue_capacity_bytes`, `max_pipelined`, `fail_fast` | queueing |
    /// | `batching`, `batch_linger` | automatic batching of PUBs into MPUBs |
    /// | `publish_timeout` (`none` for no timeout), `stall_grace`, `close_timeout` | deadlines |
    /// | `reconnect_backoff_min`, `reconnect_backoff_max` | reconnect delays |
    /// | `max_in_flight`, `max_attempts`, `lookupd_poll_interval`, `lookupd_poll_jitter`, `lookupd_poll_timeout`, `skip_lookupd_authorization`, `max_requeue_delay`, `default_requeue_delay`, `backoff_strategy`, `max_backoff_duration`, `backoff_multiplier`, `low_rdy_idle_timeout`, `low_rdy_timeout`, `rdy_redistribute_interval`, `topology_region`, `topology_zone`, `read_timeout` | go-nsq options for consumers, or with no use here: the value's syntax is checked, then the option is ignored and listed in [`ignored_options`](Self::ignored_options) |
    ///
    /// go-nsq's `tls_config` takes a Go `*tls.Config`, which has no text form: it is refused;
    /// use the `tls_*` options or [`TlsConfig`](crate::TlsConfig). Without the `tls`, `snappy`
    /// or `deflate` feature, `tls_v1`, `snappy` or `deflate` set to `true` is refused, and the
    /// options that only configure them are ignored.
    ///
    /// ```
    /// use nsq_producer::ProducerConfig;
    ///
    /// let mut config = ProducerConfig::default();
    /// config.set("heartbeat_interval", "10s").unwrap();
    /// config.set("max-pipelined", "100").unwrap();
    /// assert_eq!(config.max_pipelined, 100);
    /// config.set("max_in_flight", "1").unwrap(); // a consumer's option: ignored
    /// assert_eq!(config.ignored_options(), ["max_in_flight"]);
    /// let err = config.set("heartbeat_interval", "999ms").unwrap_err();
    /// assert_eq!(err.option(), "heartbeat_interval");
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for an unknown option or a value that does not parse or is out of range;
    /// the configuration is then unchanged. [`ConfigError::option`] names the option.
    pub fn set(&mut self, option: &str, value: &str) -> Result<(), ConfigError> {
        let mut next = self.clone();
        let name = next.apply(option, value)?;
        // Only this option's own range: an error about another option is reported by
        // `validate`, once every option has been given.
        for result in [next.conn.check_values(), next.check_fields()] {
            match result {
                Err(err) if err.option() == name => return Err(err),
                _ => {}
            }
        }
        *self = next;
        Ok(())
    }

    /// Applies one option and returns its canonical name.
    fn apply(&mut self, option: &str, text: &str) -> Result<&'static str, ConfigError> {
        let normalized = option.trim().replace('-', "_");
        let name = APPLIED
            .iter()
            .copied()
            .chain(IGNORED.iter().map(|(name, _)| *name))
            .find(|name| *name == normalized)
            .ok_or(ConfigError::UnknownOption(normalized))?;
        let value = Value { option: name, text };
        let conn = self.conn.clone();
        self.conn = match name {
            "dial_timeout" => conn.dial_timeout(value.duration()?),
            "handshake_timeout" => conn.handshake_timeout(value.duration()?),
            "write_timeout" => conn.write_timeout(value.duration()?),
            "local_addr" => {
                conn.local_addr(text.trim().parse().map_err(|_| value.invalid("IP:PORT"))?)
            }
            "heartbeat_interval" => match text.trim() {
                "-1" | "-1ms" => conn.disable_heartbeats(),
                _ => conn.heartbeat_interval(value.duration()?),
            },
            "client_id" => conn.client_id(text),
            "hostname" => conn.hostname(text),
            "user_agent" => conn.user_agent(text),
            "output_buffer_size" => conn.output_buffer_size(value.int()?),
            "output_buffer_timeout" => match text.trim() {
                "-1" | "-1ms" => conn.disable_output_buffer_timeout(),
                _ => conn.output_buffer_timeout(value.duration()?),
            },
            "msg_timeout" => conn.msg_timeout(value.duration()?),
            "sample_rate" => conn.sample_rate(value.small("0 to 99")?),
            "auth_secret" => conn.auth_secret(text),
            "max_msg_size" => match value.uint()? {
                0 => {
                    self.limits.max_msg_size = u64::from(DEFAULT_MAX_MSG_SIZE);
                    conn.max_msg_size(DEFAULT_MAX_MSG_SIZE)
                }
                size => {
                    self.limits.max_msg_size = size;
                    conn.max_msg_size(value.small("1 to 2147483647")?)
                }
            },
            #[cfg(feature = "snappy")]
            "snappy" => conn.snappy(value.boolean()?),
            #[cfg(feature = "deflate")]
            "deflate" => conn.deflate(value.boolean()?),
            #[cfg(feature = "deflate")]
            "deflate_level" => conn.deflate_level(value.small("1 to 9")?),
            #[cfg(not(feature = "snappy"))]
            "snappy" => match value.boolean()? {
                true => return Err(value.invalid("false (built without the snappy feature)")),
                false => conn,
            },
            #[cfg(not(feature = "deflate"))]
            "deflate" => match value.boolean()? {
                true => return Err(value.invalid("false (built without the deflate feature)")),
                false => conn,
            },
            #[cfg(feature = "tls")]
            "tls_v1" => conn.enable_tls(value.boolean()?),
            #[cfg(feature = "tls")]
            "tls_root_ca_file" => conn.edit_tls(|tls| tls.root_ca_file(text)),
            #[cfg(feature = "tls")]
            "tls_cert" => conn.edit_tls(|tls| tls.cert_file(text)),
            #[cfg(feature = "tls")]
            "tls_key" => conn.edit_tls(|tls| tls.key_file(text)),
            #[cfg(feature = "tls")]
            "tls_insecure_skip_verify" => {
                let skip = value.boolean()?;
                conn.edit_tls(|tls| tls.insecure_skip_verify(skip))
            }
            #[cfg(feature = "tls")]
            "tls_min_version" => {
                let version = match text.trim() {
                    "ssl3.0" | "tls1.0" | "tls1.1" | "tls1.2" => TlsVersion::Tls12,
                    "tls1.3" => TlsVersion::Tls13,
                    _ => return Err(value.invalid("tls1.2 or tls1.3")),
                };
                conn.edit_tls(|tls| tls.min_version(version))
            }
            #[cfg(not(feature = "tls"))]
            "tls_v1" => match value.boolean()? {
                true => return Err(value.invalid("false (built without the tls feature)")),
                false => conn,
            },
            "tls_config" => {
                return Err(value.invalid(
                    "no text value: use tls_root_ca_file, tls_cert, tls_key, ... or TlsConfig",
                ));
            }
            "max_body_size" => {
                self.limits.max_body_size = value.uint()?;
                conn
            }
            "max_defer" | "max_req_timeout" => {
                self.limits.max_defer = value.duration()?;
                conn
            }
            "queue_capacity" => {
                self.queue_capacity = value.small("1 to a machine word")?;
                conn
            }
            "queue_capacity_bytes" => {
                self.queue_capacity_bytes = value.small("1 to 4294967295")?;
                conn
            }
            "max_pipelined" => {
                self.max_pipelined = value.small("1 to a machine word")?;
                conn
            }
            "publish_timeout" => {
                self.publish_timeout = match text.trim() {
                    "none" | "0" => None,
                    _ => Some(value.duration()?),
                };
                conn
            }
            "stall_grace" => {
                self.stall_grace = value.duration()?;
                conn
            }
            "reconnect_backoff_min" => {
                self.reconnect_backoff_min = value.duration()?;
                conn
            }
            "reconnect_backoff_max" => {
                self.reconnect_backoff_max = value.duration()?;
                conn
            }
            "close_timeout" => {
                self.close_timeout = value.duration()?;
                conn
            }
            "fail_fast" => {
                self.fail_fast = value.boolean()?;
                conn
            }
            "batching" => {
                self.batching = value.boolean()?;
                conn
            }
            "batch_linger" => {
                self.batch_linger = value.duration()?;
                conn
            }
            _ => {
                let kind = IGNORED
                    .iter()
                    .find(|(ignored, _)| *ignored == name)
                    .map_or_else(|| ignored_without_feature(name), |(_, kind)| *kind);
                value.check(kind)?;
                if !self.ignored.contains(&name) {
                    self.ignored.push(name);
                }
                conn
            }
        };
        Ok(name)
    }
}

/// A configuration section of go-nsq option names and values, each applied with
/// [`ProducerConfig::set`] on top of [`ProducerConfig::default`]. Values may be strings in
/// `set`'s syntax (`"5s"`, `"true"`), or native numbers and booleans: a number is a count, or
/// milliseconds for a duration, as in `set`. The result is checked as a whole when the producer
/// is created ([`ProducerConfig::validate`]).
///
/// ```
/// # fn main() -> Result<(), serde_json::Error> {
/// use std::time::Duration;
/// use nsq_producer::ProducerConfig;
///
/// let config: ProducerConfig = serde_json::from_str(
///     r#"{"heartbeat_interval": "10s", "max_pipelined": 256, "snappy": true, "max_in_flight": 1}"#,
/// )?;
/// assert_eq!(config.max_pipelined, 256);
/// assert_eq!(config.conn.clone().build().unwrap().heartbeat_interval(), Some(Duration::from_secs(10)));
/// assert_eq!(config.ignored_options(), ["max_in_flight"]);
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> serde::Deserialize<'de> for ProducerConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(de::ConfigVisitor)
    }
}

#[cfg(feature = "serde")]
mod de {
    use std::fmt;

    use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

    use super::ProducerConfig;

    pub(super) struct ConfigVisitor;

    impl<'de> Visitor<'de> for ConfigVisitor {
        type Value = ProducerConfig;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of go-nsq option names to values")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ProducerConfig, A::Error> {
            let mut config = ProducerConfig::default();
            while let Some((name, OptionValue(value))) = map.next_entry::<String, OptionValue>()? {
                config.set(&name, &value).map_err(de::Error::custom)?;
            }
            Ok(config)
        }
    }

    /// One option's value, as the text [`ProducerConfig::set`] takes.
    struct OptionValue(String);

    impl<'de> Deserialize<'de> for OptionValue {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_any(ValueVisitor)
        }
    }

    struct ValueVisitor;

    impl Visitor<'_> for ValueVisitor {
        type Value = OptionValue;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string, a number or a boolean")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<OptionValue, E> {
            Ok(OptionValue(v.to_owned()))
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<OptionValue, E> {
            Ok(OptionValue(v))
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<OptionValue, E> {
            Ok(OptionValue(v.to_string()))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<OptionValue, E> {
            Ok(OptionValue(v.to_string()))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<OptionValue, E> {
            Ok(OptionValue(v.to_string()))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<OptionValue, E> {
            Ok(OptionValue(v.to_string()))
        }
    }
}

/// The kind of value of an option that configures a feature this build leaves out (such as
/// `tls_cert` without the `tls` feature); such options are ignored.
fn ignored_without_feature(name: &str) -> Kind {
    match name {
        "tls_insecure_skip_verify" => Kind::Bool,
        "deflate_level" => Kind::Uint,
        _ => Kind::Text,
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
    use std::sync::{Arc, Mutex};

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
        assert!(ProducerConfig::default().validate().is_ok());
        let mut config = ProducerConfig::default();
        let err = config.set("max_pipelined", "0").unwrap_err();
        assert_eq!(err.option(), "max_pipelined");
        assert_eq!(
            config.max_pipelined, 4096,
            "a refused value changes nothing"
        );
        let err = config.set("no_such_option", "1").unwrap_err();
        assert!(matches!(err, ConfigError::UnknownOption(_)), "{err}");
        assert_eq!(err.option(), "no_such_option");
        config.set("heartbeat_interval", "-1").unwrap();
        config.set("publish_timeout", "none").unwrap();
        assert_eq!(config.publish_timeout, None);
        config.set("fail-fast", "true").unwrap();
        assert!(config.fail_fast);
        assert!(config.ignored_options().is_empty());
    }

    #[cfg(all(feature = "snappy", feature = "deflate"))]
    #[test]
    fn combinations_are_checked_at_validate_not_per_set() {
        let mut config = ProducerConfig::default();
        config.set("snappy", "true").unwrap();
        config.set("deflate", "true").unwrap();
        assert_eq!(config.validate().unwrap_err().option(), "deflate");
        config.set("snappy", "false").unwrap();
        assert!(config.validate().is_ok());

        let mut config = ProducerConfig::default();
        config.set("reconnect_backoff_min", "20s").unwrap();
        assert_eq!(
            config.validate().unwrap_err().option(),
            "reconnect_backoff_min"
        );
        config.set("reconnect_backoff_max", "60s").unwrap();
        assert!(config.validate().is_ok());
    }

    #[test]
    fn errors_name_the_real_option() {
        let mut config = ProducerConfig::default();
        for (option, value) in [
            ("heartbeat_interval", "10ms"),
            ("heartbeat_interval", "soon"),
            ("write_timeout", "10m"),
            ("sample_rate", "100"),
            ("max_body_size", "8"),
            ("queue_capacity_bytes", "0"),
            ("max_attempts", "many"),
            ("backoff_strategy", "linear"),
            ("tls_config", "x"),
        ] {
            let err = config.set(option, value).unwrap_err();
            assert_eq!(err.option(), option, "{err}");
            assert!(err.to_string().contains(option), "{err}");
        }
        let mut config = ProducerConfig::default();
        config.conn = config.conn.heartbeat_interval(Duration::from_millis(10));
        assert_eq!(
            config.validate().unwrap_err().option(),
            "heartbeat_interval"
        );
        // Another option's bad value does not block setting this one; validate reports it.
        config.set("dial_timeout", "2s").unwrap();
        // The single error type: what ConnConfigBuilder::build returns is a ConfigError too.
        let err: ConfigError = config.conn.clone().build().unwrap_err();
        assert_eq!(err.option(), "heartbeat_interval");
    }

    /// Every option of go-nsq's `Config`, with a value go-nsq accepts (its default where it has
    /// one). `tls_config` is left out: it takes a Go `*tls.Config`, which has no text form.
    const GO_NSQ_OPTIONS: &[(&str, &str)] = &[
        ("dial_timeout", "1s"),
        ("read_timeout", "60s"),
        ("write_timeout", "1s"),
        ("local_addr", "127.0.0.1:0"),
        ("lookupd_poll_interval", "60s"),
        ("lookupd_poll_jitter", "0.3"),
        ("lookupd_poll_timeout", "1m"),
        ("max_requeue_delay", "15m"),
        ("default_requeue_delay", "90s"),
        ("backoff_strategy", "exponential"),
        ("max_backoff_duration", "2m"),
        ("backoff_multiplier", "1s"),
        ("max_attempts", "5"),
        ("low_rdy_idle_timeout", "10s"),
        ("low_rdy_timeout", "30s"),
        ("rdy_redistribute_interval", "5s"),
        ("client_id", "app01"),
        ("hostname", "app01.example.com"),
        ("user_agent", "go-nsq/1.1.0"),
        ("topology_region", "eu"),
        ("topology_zone", "eu-1a"),
        ("heartbeat_interval", "30s"),
        ("sample_rate", "0"),
        ("tls_v1", "false"),
        ("tls_root_ca_file", "/etc/nsq/ca.pem"),
        ("tls_insecure_skip_verify", "false"),
        ("tls_cert", "/etc/nsq/client.pem"),
        ("tls_key", "/etc/nsq/client.key"),
        ("tls_min_version", "tls1.2"),
        ("deflate", "false"),
        ("deflate_level", "6"),
        ("snappy", "false"),
        ("output_buffer_size", "16384"),
        ("output_buffer_timeout", "250ms"),
        ("max_in_flight", "1"),
        ("msg_timeout", "0"),
        ("max_msg_size", "0"),
        ("auth_secret", "s3cret"),
        ("skip_lookupd_authorization", "true"),
    ];

    #[test]
    fn every_go_nsq_option_is_accepted() {
        let mut config = ProducerConfig::default();
        for (option, value) in GO_NSQ_OPTIONS {
            config
                .set(option, value)
                .unwrap_or_else(|err| panic!("{option}={value}: {err}"));
            let dashed = option.replace('_', "-");
            config
                .set(&dashed, value)
                .unwrap_or_else(|err| panic!("{dashed}={value}: {err}"));
        }
        let consumer_only = [
            "read_timeout",
            "lookupd_poll_interval",
            "lookupd_poll_jitter",
            "lookupd_poll_timeout",
            "max_requeue_delay",
            "default_requeue_delay",
            "backoff_strategy",
            "max_backoff_duration",
            "backoff_multiplier",
            "max_attempts",
            "low_rdy_idle_timeout",
            "low_rdy_timeout",
            "rdy_redistribute_interval",
            "topology_region",
            "topology_zone",
            "max_in_flight",
            "skip_lookupd_authorization",
        ];
        #[cfg(feature = "tls")]
        assert_eq!(
            config.ignored_options(),
            consumer_only,
            "once each, in order"
        );
        #[cfg(not(feature = "tls"))]
        for option in consumer_only {
            assert!(config.ignored_options().contains(&option), "{option}");
        }
        assert_eq!(
            config.max_pipelined, 4096,
            "max_in_flight is not the pipeline"
        );
        assert_eq!(
            config.limits.max_msg_size,
            1024 * 1024,
            "0 keeps nsqd's default"
        );
        assert!(!config.conn.is_tls_enabled(), "tls_v1=false keeps TLS off");
        // The whole shared configuration passes validation and builds a producer.
        assert!(config.validate().is_ok(), "{:?}", config.validate());
    }

    #[test]
    fn max_in_flight_is_ignored_and_max_pipelined_applies() {
        let mut config = ProducerConfig::default();
        config.set("max_in_flight", "1").unwrap();
        config.set("max_in_flight", "2").unwrap();
        assert_eq!(config.max_pipelined, 4096);
        assert_eq!(config.ignored_options(), ["max_in_flight"]);
        assert!(
            config.set("max_in_flight", "lots").is_err(),
            "syntax still checked"
        );
        config.set("max_pipelined", "64").unwrap();
        assert_eq!(config.max_pipelined, 64);
    }

    #[test]
    fn ignored_options_are_warned_once_when_the_producer_is_built() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let mut config = ProducerConfig::default();
        for option in ["max_in_flight", "max_attempts", "max_in_flight"] {
            config.set(option, "3").unwrap();
        }
        assert_eq!(config.ignored_options(), ["max_in_flight", "max_attempts"]);
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let subscriber = WarnRecorder(warnings.clone());
        tracing::subscriber::with_default(subscriber, || {
            assert!(crate::Producer::new("127.0.0.1:4150", config).is_ok());
        });
        let warnings = warnings.lock().unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("max_in_flight, max_attempts"),
            "{warnings:?}"
        );
    }

    #[cfg(feature = "tls")]
    mod tls {
        use nsq_conn::{TlsConfig, TlsVersion};

        use super::*;

        #[test]
        fn a_lone_cert_or_key_fails_at_build_naming_the_missing_option() {
            for (given, missing) in [("tls_cert", "tls_key"), ("tls_key", "tls_cert")] {
                let mut config = ProducerConfig::default();
                config.set("tls_v1", "true").unwrap();
                config.set(given, "/etc/nsq/client.pem").unwrap();
                let err = config.validate().unwrap_err();
                assert_eq!(err.option(), missing, "{err}");
                assert!(err.to_string().contains(missing), "{err}");
                assert!(err.to_string().contains(given), "{err}");
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let _guard = runtime.enter();
                let err = crate::Producer::new("127.0.0.1:4150", config).unwrap_err();
                assert_eq!(err.option(), missing, "{err}");
            }
        }

        #[test]
        fn set_by_name_keeps_what_the_builder_set() {
            let builder_tls = TlsConfig::new()
                .root_ca_file("/etc/nsq/ca.pem")
                .client_cert("/etc/nsq/client.pem", "/etc/nsq/client.key");
            let mut config = ProducerConfig::default();
            config.conn = config.conn.tls_v1(builder_tls.clone());
            config.set("tls_min_version", "tls1.3").unwrap();
            assert!(config.conn.is_tls_enabled());
            assert_eq!(
                format!("{:?}", config.conn.tls_config()),
                format!("{:?}", builder_tls.min_version(TlsVersion::Tls13)),
                "the CA and the client certificate stay"
            );
        }

        #[test]
        fn tls_v1_false_turns_builder_tls_off() {
            let mut config = ProducerConfig::default();
            config.conn = config
                .conn
                .tls_v1(TlsConfig::new().root_ca_file("/nonexistent/ca.pem"));
            assert!(config.validate().is_err(), "TLS on: the CA file is read");
            config.set("tls_v1", "false").unwrap();
            assert!(!config.conn.is_tls_enabled());
            let conn = config.conn_config("127.0.0.1:4150").unwrap();
            assert!(!conn.identify().tls_v1);
            // Back on, with the builder's settings.
            config.set("tls_v1", "true").unwrap();
            assert!(format!("{:?}", config.conn.tls_config()).contains("/nonexistent/ca.pem"));
        }

        #[test]
        fn tls_options_alone_leave_tls_off() {
            let mut config = ProducerConfig::default();
            config.set("tls_root_ca_file", "/etc/nsq/ca.pem").unwrap();
            config.set("tls_insecure_skip_verify", "true").unwrap();
            config.set("tls_min_version", "tls1.2").unwrap();
            assert!(!config.conn.is_tls_enabled());
            let conn = config.conn_config("127.0.0.1:4150").unwrap();
            assert!(!conn.identify().tls_v1, "TLS stays off until tls_v1=true");
            config.set("tls_v1", "true").unwrap();
            assert!(config.conn.is_tls_enabled());
            assert_eq!(
                format!("{:?}", config.conn.tls_config()),
                format!(
                    "{:?}",
                    TlsConfig::new()
                        .root_ca_file("/etc/nsq/ca.pem")
                        .danger_accept_invalid_certs()
                )
            );
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn deserializes_from_a_map_of_go_nsq_options() {
        use serde_json::json;

        let doc = json!({
            "heartbeat_interval": "10s",
            "dial_timeout": 2500,
            "write-timeout": "1m30s",
            "max_pipelined": 256,
            "queue_capacity": "1024",
            "publish_timeout": "none",
            "fail_fast": true,
            "batching": "false",
            "client_id": "app01",
            "max_in_flight": 1,
            "lookupd_poll_jitter": 0.3,
            "backoff_strategy": "full_jitter",
        });
        let config: ProducerConfig = serde_json::from_value(doc.clone()).unwrap();

        // The same through `set`, one option at a time.
        let mut expected = ProducerConfig::default();
        for (name, value) in doc.as_object().unwrap() {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            expected.set(name, &text).unwrap();
        }
        assert_eq!(format!("{config:?}"), format!("{expected:?}"));

        assert_eq!(config.max_pipelined, 256);
        assert_eq!(config.queue_capacity, 1024);
        assert_eq!(config.publish_timeout, None);
        assert!(config.fail_fast && !config.batching);
        // serde_json's map is sorted by name, so that is the order given.
        assert_eq!(
            config.ignored_options(),
            ["backoff_strategy", "lookupd_poll_jitter", "max_in_flight"]
        );
        let conn = config.conn_config("127.0.0.1:4150").unwrap();
        assert_eq!(conn.heartbeat_interval(), Some(Duration::from_secs(10)));
        assert_eq!(conn.dial_timeout(), Duration::from_millis(2500));
        assert_eq!(conn.write_timeout(), Duration::from_secs(90));
        assert_eq!(conn.identify().client_id, "app01");

        for (bad, option) in [
            (json!({"heartbeat_interval": "999ms"}), "heartbeat_interval"),
            (json!({"no_such_option": 1}), "no_such_option"),
            (
                json!({"fail_fast": [true]}),
                "a string, a number or a boolean",
            ),
        ] {
            let err = serde_json::from_value::<ProducerConfig>(bad).unwrap_err();
            assert!(err.to_string().contains(option), "{err}");
        }
        assert!(serde_json::from_str::<ProducerConfig>("[1]").is_err());
    }

    /// Records the fields of every WARN event.
    struct WarnRecorder(Arc<Mutex<Vec<String>>>);

    impl tracing::Subscriber for WarnRecorder {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            struct Fields(String);
            impl tracing::field::Visit for Fields {
                fn record_debug(
                    &mut self,
                    field: &tracing::field::Field,
                    value: &dyn std::fmt::Debug,
                ) {
                    self.0 += &format!("{}={:?} ", field.name(), value);
                }
            }
            if *event.metadata().level() == tracing::Level::WARN {
                let mut fields = Fields(String::new());
                event.record(&mut fields);
                self.0.lock().unwrap().push(fields.0);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }
}
