//! Configuration by go-nsq option names: [`ProducerConfig::set`] and the table of names it
//! applies or ignores. The connection options and the syntax of values are `nsq-conn`'s
//! ([`ConnConfigBuilder::set`](nsq_conn::ConnConfigBuilder::set), [`nsq_conn::by_name`]).

use nsq_conn::by_name::{Kind, Value, find};
use nsq_conn::{ConfigError, ConnConfigBuilder, DEFAULT_MAX_MSG_SIZE, SetOutcome};

use super::ProducerConfig;

/// The producer's own options, which [`ProducerConfig::set`] applies besides the connection
/// options ([`ConnConfigBuilder::OPTIONS`]).
const APPLIED: &[&str] = &[
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
    (
        "backoff_strategy",
        Kind::OneOf {
            values: &["", "exponential", "full_jitter"],
            expected: "exponential or full_jitter",
        },
    ),
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
    /// The connection options (the rows up to `deflate_level`, and `max_msg_size`, which also
    /// sets the publish limit) are read by
    /// [`ConnConfigBuilder::set`](crate::ConnConfigBuilder::set), as a consumer's configuration
    /// reads them.
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
        // Only this option's own range (a connection option's was checked as it was set): an
        // error about another option is reported by `validate`, once every option is given.
        match next.check_fields() {
            Err(err) if err.option() == name => return Err(err),
            _ => {}
        }
        *self = next;
        Ok(())
    }

    /// Applies one option and returns its canonical name.
    fn apply(&mut self, option: &str, text: &str) -> Result<&'static str, ConfigError> {
        let name = canonical_name(option)?;
        let value = Value { option: name, text };
        if ConnConfigBuilder::OPTIONS.contains(&name) {
            if self.conn.set(name, text)? == SetOutcome::Ignored {
                self.ignore(name);
            }
            if name == "max_msg_size" {
                // What is published is held to the same size as what is received.
                self.limits.max_msg_size = match value.uint()? {
                    0 => u64::from(DEFAULT_MAX_MSG_SIZE),
                    size => size,
                };
            }
            return Ok(name);
        }
        match name {
            "max_body_size" => self.limits.max_body_size = value.uint()?,
            "max_defer" | "max_req_timeout" => self.limits.max_defer = value.duration()?,
            "queue_capacity" => self.queue_capacity = value.small("1 to a machine word")?,
            "queue_capacity_bytes" => {
                self.queue_capacity_bytes = value.small("1 to 4294967295")?;
            }
            "max_pipelined" => self.max_pipelined = value.small("1 to a machine word")?,
            "publish_timeout" => {
                self.publish_timeout = match text.trim() {
                    "none" | "0" => None,
                    _ => Some(value.duration()?),
                };
            }
            "stall_grace" => self.stall_grace = value.duration()?,
            "reconnect_backoff_min" => self.reconnect_backoff_min = value.duration()?,
            "reconnect_backoff_max" => self.reconnect_backoff_max = value.duration()?,
            "close_timeout" => self.close_timeout = value.duration()?,
            "fail_fast" => self.fail_fast = value.boolean()?,
            "batching" => self.batching = value.boolean()?,
            "batch_linger" => self.batch_linger = value.duration()?,
            _ => {
                let (_, kind) = IGNORED
                    .iter()
                    .find(|(ignored, _)| *ignored == name)
                    .expect("a known name is applied or ignored");
                value.check(*kind)?;
                self.ignore(name);
                if FOR_POOL.contains(&name) {
                    self.for_pool.retain(|(option, _)| *option != name);
                    self.for_pool.push((name, text.to_owned()));
                }
            }
        }
        Ok(name)
    }

    /// Lists `name` among the ignored options, once.
    fn ignore(&mut self, name: &'static str) {
        if !self.ignored.contains(&name) {
            self.ignored.push(name);
        }
    }
}

/// The name of an option as [`ProducerConfig::set`] knows it (`_` for `-`).
pub(crate) fn canonical_name(option: &str) -> Result<&'static str, ConfigError> {
    let names = ConnConfigBuilder::OPTIONS
        .iter()
        .chain(APPLIED)
        .chain(IGNORED.iter().map(|(name, _)| name));
    find(names, option)
}
