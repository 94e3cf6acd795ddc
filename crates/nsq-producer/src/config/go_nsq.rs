//! Configuration by go-nsq option names: [`ProducerConfig::set`], the table of names it
//! applies or ignores, value parsing in go-nsq's syntax, and deserialization through it.

use std::time::Duration;

#[cfg(feature = "tls")]
use nsq_conn::TlsVersion;
use nsq_conn::{ConfigError, DEFAULT_MAX_MSG_SIZE};

use super::ProducerConfig;

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

/// Ignored options that a [`PoolConfig`](crate::PoolConfig) applies: their values are kept for
/// [`PoolConfig::new`](crate::PoolConfig::new).
pub(crate) const FOR_POOL: &[&str] = &["max_attempts", "lookupd_poll_interval"];

/// One option's value as given to [`ProducerConfig::set`], with parsers that name the option
/// in their errors.
pub(crate) struct Value<'a> {
    pub(crate) option: &'static str,
    pub(crate) text: &'a str,
}

impl Value<'_> {
    pub(crate) fn invalid(&self, expected: &'static str) -> ConfigError {
        ConfigError::InvalidValue {
            option: self.option,
            value: format!("{:?}", self.text),
            expected,
        }
    }

    pub(crate) fn uint(&self) -> Result<u64, ConfigError> {
        self.text
            .trim()
            .parse()
            .map_err(|_| self.invalid("a whole number"))
    }

    pub(crate) fn int(&self) -> Result<i64, ConfigError> {
        self.text
            .trim()
            .parse()
            .map_err(|_| self.invalid("a whole number"))
    }

    pub(crate) fn float(&self) -> Result<f64, ConfigError> {
        self.text
            .trim()
            .parse()
            .map_err(|_| self.invalid("a number"))
    }

    pub(crate) fn duration(&self) -> Result<Duration, ConfigError> {
        parse_duration(self.text).ok_or_else(|| self.invalid("a duration such as 500ms or 30s"))
    }

    pub(crate) fn boolean(&self) -> Result<bool, ConfigError> {
        parse_bool(self.text).ok_or_else(|| self.invalid("true or false"))
    }

    pub(crate) fn small<T: TryFrom<u64>>(&self, expected: &'static str) -> Result<T, ConfigError> {
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
    /// | `auth_secret` | secret for AUTH; empty (go-nsq's default) for none |
    /// | `tls_v1` | the TLS switch: off by default, and the only option that turns TLS on or off |
    /// | `tls_root_ca_file`, `tls_cert`, `tls_key`, `tls_insecure_skip_verify`, `tls_min_version` | how TLS is set up, used once `tls_v1` is on; they edit the same settings as [`ConnConfigBuilder::tls_v1`](crate::ConnConfigBuilder::tls_v1) and [`ConnConfigBuilder::edit_tls`](crate::ConnConfigBuilder::edit_tls). `tls_min_version` takes `tls1.2` or `tls1.3`; go-nsq's `ssl3.0`, `tls1.0` and `tls1.1` mean `tls1.2`, the lowest supported |
    /// | `snappy`, `deflate`, `deflate_level` | compression |
    /// | `max_msg_size`, `max_body_size`, `max_defer` (or `max_req_timeout`) | publish limits (nsqd's `--max-msg-size`, `--max-body-size`, `--max-req-timeout`); `max_msg_size` `0` (go-nsq's "no limit") means nsqd's default, 1 MiB |
    /// | `queue_capacity`, `queue_capacity_bytes`, `max_pipelined`, `fail_fast` | queueing |
    /// | `batching`, `batch_linger` | automatic batching of PUBs into MPUBs |
    /// | `publish_timeout` (`0` or `none`: no timeout, publishes wait for ever), `stall_grace`, `close_timeout` | deadlines |
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
        let name = canonical_name(option)?;
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
            // go-nsq's default is the empty string, meaning no secret.
            "auth_secret" if text.is_empty() => conn.clear_auth_secret(),
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
                if FOR_POOL.contains(&name) {
                    self.for_pool.retain(|(option, _)| *option != name);
                    self.for_pool.push((name, text.to_owned()));
                }
                conn
            }
        };
        Ok(name)
    }
}

/// The name of an option as [`ProducerConfig::set`] knows it (`_` for `-`).
pub(crate) fn canonical_name(option: &str) -> Result<&'static str, ConfigError> {
    let normalized = option.trim().replace('-', "_");
    APPLIED
        .iter()
        .copied()
        .chain(IGNORED.iter().map(|(name, _)| *name))
        .find(|name| *name == normalized)
        .ok_or(ConfigError::UnknownOption(normalized))
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
