//! Configuration by go-nsq option names: [`ConsumerConfig::set`] and the table of names it
//! applies or ignores. The connection options and the syntax of values are `nsq-conn`'s
//! ([`ConnConfigBuilder::set`], [`nsq_conn::by_name`]), shared with the producer.

use nsq_conn::by_name::{Kind, Value, find};
use nsq_conn::{ConfigError, ConnConfigBuilder, SetOutcome};

use super::ConsumerConfig;

/// The consumer's own options: go-nsq's consumer options, then this crate's.
pub(super) const OWN: &[&str] = &[
    "max_in_flight",
    "max_attempts",
    "lookupd_poll_interval",
    "lookupd_poll_jitter",
    "lookupd_poll_timeout",
    "default_requeue_delay",
    "max_requeue_delay",
    "backoff_strategy",
    "backoff_multiplier",
    "max_backoff_duration",
    "low_rdy_idle_timeout",
    "rdy_redistribute_interval",
    "lookupd_grace_period",
    "reconnect_backoff_min",
    "reconnect_backoff_max",
    "drain_timeout",
    "auto_response",
];

/// Options with no use in a consumer: [`ConsumerConfig::set`] checks their syntax and
/// otherwise ignores them, so that one configuration can serve producers and consumers.
const IGNORED: &[(&str, Kind)] = &[
    // go-nsq's, with nothing to do here.
    ("low_rdy_timeout", Kind::Duration),
    ("skip_lookupd_authorization", Kind::Bool),
    ("topology_region", Kind::Text),
    ("topology_zone", Kind::Text),
    // A connection fails when nothing arrives for twice the heartbeat interval instead.
    ("read_timeout", Kind::Duration),
    // The producer's (`ProducerConfig::set`).
    ("max_body_size", Kind::Uint),
    ("max_defer", Kind::Duration),
    ("max_req_timeout", Kind::Duration),
    ("queue_capacity", Kind::Uint),
    ("queue_capacity_bytes", Kind::Uint),
    ("max_pipelined", Kind::Uint),
    ("publish_timeout", Kind::DurationOrNone),
    ("stall_grace", Kind::Duration),
    ("close_timeout", Kind::Duration),
    ("fail_fast", Kind::Bool),
    ("batching", Kind::Bool),
    ("batch_linger", Kind::Duration),
];

impl ConsumerConfig {
    /// Sets an option by name, as go-nsq's `Config.Set` does, for configuration from flags or
    /// files. Names may use `_` or `-`. Durations take Go syntax (`1500ms`, `30s`, `1m30s`) or
    /// a number of milliseconds; booleans `true`/`false`/`1`/`0`.
    ///
    /// The value is checked at once against the option's own range (go-nsq's, where go-nsq
    /// has the option). What involves several options is checked when the consumer starts
    /// ([`validate`](Self::validate)), so options may be set in any order:
    /// `reconnect_backoff_min` against `reconnect_backoff_max`, `tls_cert` with `tls_key`,
    /// snappy against deflate, and the TLS files, which are read then.
    ///
    /// | option | meaning |
    /// |---|---|
    /// | `max_in_flight` | messages delivered and not yet answered, over all connections (0 or more) |
    /// | `max_attempts` | deliveries before a message is given up (0 to 65535; 0: no limit) |
    /// | `default_requeue_delay`, `max_requeue_delay` | requeue delay of a failed message (0 to 60m each) |
    /// | `backoff_strategy` | `exponential` or `full_jitter` |
    /// | `backoff_multiplier` (more than zero, up to 60m), `max_backoff_duration` (0 to 60m) | backoff delays |
    /// | `lookupd_poll_interval` (10ms to 5m), `lookupd_poll_jitter` (0 to 1), `lookupd_poll_timeout`, `lookupd_grace_period` | discovery |
    /// | `rdy_redistribute_interval` (1ms to 5s), `low_rdy_idle_timeout` (1s to 5m) | RDY redistribution |
    /// | `reconnect_backoff_min`, `reconnect_backoff_max` | reconnect delays |
    /// | `drain_timeout` | how long a drain waits for handlers |
    /// | `auto_response` | whether a handler's result answers its message |
    /// | `dial_timeout`, `heartbeat_interval`, `msg_timeout`, `sample_rate`, `user_agent`, `output_buffer_size`, `output_buffer_timeout`, `auth_secret`, `max_msg_size`, `snappy`, `deflate`, `deflate_level`, `tls_v1`, `tls_*`, ... | connection options, read by [`ConnConfigBuilder::set`] (see there) into [`conn`](Self::conn) |
    /// | `low_rdy_timeout`, `skip_lookupd_authorization`, `topology_region`, `topology_zone`, `read_timeout`, and the producer's `max_body_size`, `max_defer`, `max_req_timeout`, `queue_capacity`, `queue_capacity_bytes`, `max_pipelined`, `publish_timeout`, `stall_grace`, `close_timeout`, `fail_fast`, `batching`, `batch_linger` | no use in a consumer: the value's syntax is checked, then the option is ignored and listed in [`ignored_options`](Self::ignored_options) |
    ///
    /// ```
    /// use std::time::Duration;
    /// use nsq_consumer::{BackoffStrategy, ConsumerConfig};
    ///
    /// let mut config = ConsumerConfig::default();
    /// config.set("max_in_flight", "2500").unwrap();
    /// config.set("backoff-strategy", "full_jitter").unwrap();
    /// config.set("lookupd_poll_interval", "15s").unwrap();
    /// config.set("msg_timeout", "2m").unwrap(); // a connection option
    /// config.set("max_pipelined", "64").unwrap(); // a producer's option: ignored
    /// assert_eq!(config.max_in_flight, 2500);
    /// assert_eq!(config.backoff_strategy, BackoffStrategy::FullJitter);
    /// assert_eq!(config.lookupd_poll_interval, Duration::from_secs(15));
    /// assert_eq!(config.ignored_options(), ["max_pipelined"]);
    ///
    /// let err = config.set("rdy_redistribute_interval", "10s").unwrap_err();
    /// assert_eq!(err.to_string(), "invalid rdy_redistribute_interval 10s: expected 1ms to 5s");
    /// assert_eq!(config.rdy_redistribute_interval, Duration::from_secs(5), "unchanged");
    /// assert!(config.validate().is_ok());
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
        next.check_field(name)?;
        *self = next;
        Ok(())
    }

    /// Applies one option, without checking its range, and returns its canonical name.
    fn apply(&mut self, option: &str, text: &str) -> Result<&'static str, ConfigError> {
        let name = canonical_name(option)?;
        let value = Value { option: name, text };
        if ConnConfigBuilder::OPTIONS.contains(&name) {
            if self.conn.set(name, text)? == SetOutcome::Ignored {
                self.ignore(name);
            }
            return Ok(name);
        }
        match name {
            "max_in_flight" => self.max_in_flight = value.small("0 to 4294967295")?,
            "max_attempts" => self.max_attempts = value.small("0 to 65535")?,
            "lookupd_poll_interval" => self.lookupd_poll_interval = value.duration()?,
            "lookupd_poll_jitter" => self.lookupd_poll_jitter = value.float()?,
            "lookupd_poll_timeout" => self.lookupd_poll_timeout = value.duration()?,
            "default_requeue_delay" => self.default_requeue_delay = value.duration()?,
            "max_requeue_delay" => self.max_requeue_delay = value.duration()?,
            "backoff_strategy" => self.backoff_strategy = text.parse()?,
            "backoff_multiplier" => self.backoff_multiplier = value.duration()?,
            "max_backoff_duration" => self.max_backoff_duration = value.duration()?,
            "low_rdy_idle_timeout" => self.low_rdy_idle_timeout = value.duration()?,
            "rdy_redistribute_interval" => self.rdy_redistribute_interval = value.duration()?,
            "lookupd_grace_period" => self.lookupd_grace_period = value.duration()?,
            "reconnect_backoff_min" => self.reconnect_backoff_min = value.duration()?,
            "reconnect_backoff_max" => self.reconnect_backoff_max = value.duration()?,
            "drain_timeout" => self.drain_timeout = value.duration()?,
            "auto_response" => self.auto_response = value.boolean()?,
            _ => {
                if let Some((_, kind)) = IGNORED.iter().find(|(ignored, _)| *ignored == name) {
                    value.check(*kind)?;
                }
                self.ignore(name);
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

/// The name of an option as [`ConsumerConfig::set`] knows it (`_` for `-`).
pub(super) fn canonical_name(option: &str) -> Result<&'static str, ConfigError> {
    let names = ConnConfigBuilder::OPTIONS
        .iter()
        .chain(OWN)
        .chain(IGNORED.iter().map(|(name, _)| name));
    find(names, option)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::BackoffStrategy;

    #[test]
    fn every_own_option_is_set_by_name() {
        let mut config = ConsumerConfig::default();
        for (option, value) in [
            ("max_in_flight", "2500"),
            ("max_attempts", "65535"),
            ("lookupd_poll_interval", "15s"),
            ("lookupd_poll_jitter", "0.5"),
            ("lookupd_poll_timeout", "5s"),
            ("default_requeue_delay", "30s"),
            ("max_requeue_delay", "60m"),
            ("backoff_strategy", "full_jitter"),
            ("backoff_multiplier", "250ms"),
            ("max_backoff_duration", "1m"),
            ("low_rdy_idle_timeout", "5m"),
            ("rdy_redistribute_interval", "1ms"),
            ("lookupd_grace_period", "0"),
            ("reconnect_backoff_min", "100ms"),
            ("reconnect_backoff_max", "10s"),
            ("drain_timeout", "1m30s"),
            ("auto_response", "false"),
        ] {
            config
                .set(option, value)
                .unwrap_or_else(|err| panic!("{option}={value}: {err}"));
        }
        assert_eq!(config.max_in_flight, 2500);
        assert_eq!(config.max_attempts, 65535);
        assert_eq!(config.lookupd_poll_interval, Duration::from_secs(15));
        assert_eq!(config.lookupd_poll_jitter, 0.5);
        assert_eq!(config.lookupd_poll_timeout, Duration::from_secs(5));
        assert_eq!(config.default_requeue_delay, Duration::from_secs(30));
        assert_eq!(config.max_requeue_delay, Duration::from_secs(3600));
        assert_eq!(config.backoff_strategy, BackoffStrategy::FullJitter);
        assert_eq!(config.backoff_multiplier, Duration::from_millis(250));
        assert_eq!(config.max_backoff_duration, Duration::from_secs(60));
        assert_eq!(config.low_rdy_idle_timeout, Duration::from_secs(300));
        assert_eq!(config.rdy_redistribute_interval, Duration::from_millis(1));
        assert_eq!(config.lookupd_grace_period, Duration::ZERO);
        assert_eq!(config.reconnect_backoff_min, Duration::from_millis(100));
        assert_eq!(config.reconnect_backoff_max, Duration::from_secs(10));
        assert_eq!(config.drain_timeout, Duration::from_secs(90));
        assert!(!config.auto_response);
        assert!(config.ignored_options().is_empty());
        config.validate().unwrap();
    }

    #[test]
    fn ranges_follow_go_nsq_and_a_refused_value_changes_nothing() {
        let mut config = ConsumerConfig::default();
        for (option, value, message) in [
            (
                "max_in_flight",
                "-1",
                r#"invalid max_in_flight "-1": expected a whole number"#,
            ),
            (
                "max_attempts",
                "65536",
                r#"invalid max_attempts "65536": expected 0 to 65535"#,
            ),
            (
                "lookupd_poll_interval",
                "9ms",
                "invalid lookupd_poll_interval 9ms: expected 10ms to 5m",
            ),
            (
                "lookupd_poll_interval",
                "301s",
                "invalid lookupd_poll_interval 301s: expected 10ms to 5m",
            ),
            (
                "lookupd_poll_jitter",
                "1.5",
                "invalid lookupd_poll_jitter 1.5: expected 0 to 1",
            ),
            (
                "lookupd_poll_jitter",
                "NaN",
                "invalid lookupd_poll_jitter NaN: expected 0 to 1",
            ),
            (
                "lookupd_poll_timeout",
                "0",
                "invalid lookupd_poll_timeout 0ns: expected more than zero",
            ),
            (
                "default_requeue_delay",
                "61m",
                "invalid default_requeue_delay 3660s: expected 0 to 60m",
            ),
            (
                "max_requeue_delay",
                "2h",
                "invalid max_requeue_delay 7200s: expected 0 to 60m",
            ),
            (
                "max_backoff_duration",
                "1h1s",
                "invalid max_backoff_duration 3601s: expected 0 to 60m",
            ),
            (
                "backoff_multiplier",
                "0s",
                "invalid backoff_multiplier 0ns: expected more than zero, up to 60m",
            ),
            (
                "backoff_strategy",
                "linear",
                r#"invalid backoff_strategy "linear": expected exponential or full_jitter"#,
            ),
            (
                "rdy_redistribute_interval",
                "500us",
                "invalid rdy_redistribute_interval 500µs: expected 1ms to 5s",
            ),
            (
                "rdy_redistribute_interval",
                "6s",
                "invalid rdy_redistribute_interval 6s: expected 1ms to 5s",
            ),
            (
                "low_rdy_idle_timeout",
                "999ms",
                "invalid low_rdy_idle_timeout 999ms: expected 1s to 5m",
            ),
            (
                "low_rdy_idle_timeout",
                "5m1s",
                "invalid low_rdy_idle_timeout 301s: expected 1s to 5m",
            ),
            (
                "reconnect_backoff_min",
                "0",
                "invalid reconnect_backoff_min 0ns: expected more than zero",
            ),
            (
                "drain_timeout",
                "soon",
                r#"invalid drain_timeout "soon": expected a duration such as 500ms or 30s"#,
            ),
            (
                "auto_response",
                "yes",
                r#"invalid auto_response "yes": expected true or false"#,
            ),
            // Connection options, checked by nsq-conn.
            (
                "heartbeat_interval",
                "999ms",
                "invalid heartbeat_interval 999ms: expected at least 1s (or heartbeats disabled)",
            ),
            (
                "sample_rate",
                "100",
                "invalid sample_rate 100: expected 0 to 99",
            ),
            // Ignored options still have their syntax checked.
            (
                "max_pipelined",
                "lots",
                r#"invalid max_pipelined "lots": expected a whole number"#,
            ),
            (
                "publish_timeout",
                "never",
                r#"invalid publish_timeout "never": expected a duration such as 500ms or 30s"#,
            ),
        ] {
            let before = format!("{config:?}");
            let err = config.set(option, value).unwrap_err();
            assert_eq!(err.option(), option);
            assert_eq!(err.to_string(), message);
            assert_eq!(format!("{config:?}"), before, "{option}={value}");
        }
        let err = config.set("max-inflight", "1").unwrap_err();
        assert!(matches!(&err, ConfigError::UnknownOption(name) if name == "max_inflight"));
        assert_eq!(err.to_string(), r#"unknown option "max_inflight""#);
        assert_eq!(
            config.set("tls_config", "x").unwrap_err().option(),
            "tls_config"
        );
        config.validate().unwrap();
    }

    #[test]
    fn the_bounds_themselves_are_accepted() {
        let mut config = ConsumerConfig::default();
        for (option, value) in [
            ("max_in_flight", "0"),
            ("max_in_flight", "4294967295"),
            ("max_attempts", "0"),
            ("lookupd_poll_interval", "10ms"),
            ("lookupd_poll_interval", "5m"),
            ("lookupd_poll_jitter", "0"),
            ("lookupd_poll_jitter", "1"),
            ("default_requeue_delay", "0"),
            ("max_requeue_delay", "0"),
            ("max_backoff_duration", "0"),
            ("backoff_multiplier", "60m"),
            ("rdy_redistribute_interval", "5s"),
            ("low_rdy_idle_timeout", "1s"),
            ("backoff_strategy", ""),
            ("backoff_strategy", "exponential"),
        ] {
            config
                .set(option, value)
                .unwrap_or_else(|err| panic!("{option}={value}: {err}"));
        }
        config.validate().unwrap();
    }

    #[test]
    fn validate_checks_the_same_ranges_and_how_options_combine() {
        let mut config = ConsumerConfig {
            low_rdy_idle_timeout: Duration::from_millis(100),
            ..ConsumerConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().option(),
            "low_rdy_idle_timeout"
        );
        // Another option's bad value does not block setting this one; validate reports it.
        config.set("max_in_flight", "10").unwrap();
        config.set("low_rdy_idle_timeout", "2s").unwrap();
        config.validate().unwrap();

        config.set("reconnect_backoff_min", "2m").unwrap();
        let err = config.validate().unwrap_err();
        assert!(matches!(err, ConfigError::Conflict { .. }), "{err}");
        assert_eq!(err.option(), "reconnect_backoff_min");
        config.set("reconnect_backoff_max", "5m").unwrap();
        config.validate().unwrap();

        config.lookupd_poll_jitter = -0.1;
        assert_eq!(
            config.validate().unwrap_err().option(),
            "lookupd_poll_jitter"
        );
    }

    #[test]
    fn connection_options_go_to_the_connection() {
        let mut config = ConsumerConfig::default();
        for (option, value) in [
            ("dial-timeout", "2s"),
            ("heartbeat_interval", "10s"),
            ("msg_timeout", "2m"),
            ("sample_rate", "25"),
            ("user_agent", "reader/1"),
            ("output_buffer_size", "65536"),
            ("output_buffer_timeout", "100ms"),
            ("max_msg_size", "0"),
            ("auth_secret", "s3cret"),
        ] {
            config
                .set(option, value)
                .unwrap_or_else(|err| panic!("{option}={value}: {err}"));
        }
        let conn = config.conn_config("127.0.0.1:4150").unwrap();
        assert_eq!(conn.dial_timeout(), Duration::from_secs(2));
        assert_eq!(conn.heartbeat_interval(), Some(Duration::from_secs(10)));
        let id = conn.identify();
        assert_eq!(id.msg_timeout, Some(Duration::from_secs(120)));
        assert_eq!(id.sample_rate, Some(25));
        assert_eq!(id.user_agent, "reader/1");
        assert_eq!(id.output_buffer_size, Some(65536));
        assert_eq!(id.output_buffer_timeout_ms, Some(100));
        assert_eq!(conn.max_msg_size(), nsq_conn::DEFAULT_MAX_MSG_SIZE);
        assert!(conn.has_auth_secret());
        assert!(config.ignored_options().is_empty());
    }

    #[cfg(all(feature = "tls", feature = "snappy", feature = "deflate"))]
    #[test]
    fn tls_and_compression_by_name_are_checked_together_by_validate() {
        let mut config = ConsumerConfig::default();
        config.set("tls_v1", "true").unwrap();
        config.set("tls_cert", "/etc/nsq/client.pem").unwrap();
        assert_eq!(config.validate().unwrap_err().option(), "tls_key");
        config.set("tls_key", "/etc/nsq/client.key").unwrap();
        let err = config.validate().unwrap_err();
        assert!(
            matches!(err, ConfigError::TlsFile { .. }),
            "read then: {err}"
        );
        config.set("tls_v1", "false").unwrap();
        config.set("snappy", "true").unwrap();
        config.set("deflate", "true").unwrap();
        assert_eq!(config.validate().unwrap_err().option(), "deflate");
        config.set("deflate", "false").unwrap();
        config.validate().unwrap();
        assert!(config.conn.clone().build().unwrap().identify().snappy);
    }

    /// Every option of go-nsq's `Config`, with a value go-nsq accepts (its default where it has
    /// one), and every option of this project's producer. `tls_config` is left out: it takes a
    /// Go `*tls.Config`, which has no text form.
    const SHARED: &[(&str, &str)] = &[
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
        // The producer's own.
        ("max_body_size", "5242880"),
        ("max_defer", "1h"),
        ("max_req_timeout", "1h"),
        ("queue_capacity", "16384"),
        ("queue_capacity_bytes", "67108864"),
        ("max_pipelined", "4096"),
        ("publish_timeout", "none"),
        ("stall_grace", "1s"),
        ("reconnect_backoff_min", "1s"),
        ("reconnect_backoff_max", "60s"),
        ("close_timeout", "10s"),
        ("fail_fast", "false"),
        ("batching", "true"),
        ("batch_linger", "0"),
    ];

    #[test]
    fn every_go_nsq_and_producer_option_is_accepted() {
        let mut config = ConsumerConfig::default();
        for (option, value) in SHARED {
            config
                .set(option, value)
                .unwrap_or_else(|err| panic!("{option}={value}: {err}"));
            let dashed = option.replace('_', "-");
            config
                .set(&dashed, value)
                .unwrap_or_else(|err| panic!("{dashed}={value}: {err}"));
        }
        let ignored = [
            "read_timeout",
            "low_rdy_timeout",
            "topology_region",
            "topology_zone",
            "skip_lookupd_authorization",
            "max_body_size",
            "max_defer",
            "max_req_timeout",
            "queue_capacity",
            "queue_capacity_bytes",
            "max_pipelined",
            "publish_timeout",
            "stall_grace",
            "close_timeout",
            "fail_fast",
            "batching",
            "batch_linger",
        ];
        #[cfg(feature = "tls")]
        assert_eq!(config.ignored_options(), ignored, "once each, in order");
        #[cfg(not(feature = "tls"))]
        for option in ignored {
            assert!(config.ignored_options().contains(&option), "{option}");
        }
        assert_eq!(
            format!(
                "{:?}",
                ConsumerConfig {
                    conn: config.conn.clone(),
                    ignored: config.ignored.clone(),
                    ..ConsumerConfig::default()
                }
            ),
            format!("{config:?}"),
            "go-nsq's defaults are this crate's defaults"
        );
        assert!(!config.conn.is_tls_enabled(), "tls_v1=false keeps TLS off");
        config.validate().unwrap();
    }

    #[test]
    fn backoff_strategy_reads_go_nsq_names() {
        for (text, strategy) in [
            ("exponential", BackoffStrategy::Exponential),
            (" full_jitter ", BackoffStrategy::FullJitter),
            ("", BackoffStrategy::Exponential),
        ] {
            assert_eq!(
                text.parse::<BackoffStrategy>().unwrap(),
                strategy,
                "{text:?}"
            );
        }
        let err = "Full-Jitter".parse::<BackoffStrategy>().unwrap_err();
        assert_eq!(err.option(), "backoff_strategy");
    }
}
