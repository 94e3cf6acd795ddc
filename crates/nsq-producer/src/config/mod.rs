//! Producer configuration: the connection options plus queueing, timeouts and limits.

use std::time::Duration;

use nsq_conn::{ConfigError, ConnConfig, ConnConfigBuilder};
use nsq_proto::PublishLimits;

#[cfg(feature = "serde")]
pub(crate) mod de;
pub(crate) mod go_nsq;

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
    /// How long a publish may take, from the call to nsqd's answer; `None` waits for ever. By
    /// name ([`set`](Self::set), or deserialized), `0` and `none` both mean `None`: no timeout.
    /// `Some(Duration::ZERO)` is refused by [`validate`](Self::validate). One publish can have
    /// its own instead ([`Publishing::timeout`](crate::Publishing::timeout)).
    /// It is also how long nsqd may take to answer a written request before the connection is
    /// judged stalled (see `stall_grace`).
    pub publish_timeout: Option<Duration>,
    /// How long the router waits for the reply of the oldest written request once it is overdue
    /// (past its deadline, and past `publish_timeout` since it was written) before it drops the
    /// connection as stalled.
    pub stall_grace: Duration,
    /// The shortest delay between reconnect attempts.
    pub reconnect_backoff_min: Duration,
    /// The longest delay between reconnect attempts while nothing waits for the connection.
    /// While publishes are queued, and always for a pool's node, the delay is capped at 0.5 s
    /// (or `reconnect_backoff_min`, if larger).
    pub reconnect_backoff_max: Duration,
    /// How long [`close`](crate::Producer::close) waits for queued and outstanding requests.
    pub close_timeout: Duration,
    /// Fail publishes instead of letting them wait: with
    /// [`NotSentReason::QueueFull`](crate::NotSentReason::QueueFull) when the queue is full, and
    /// with [`NotSentReason::Unavailable`](crate::NotSentReason::Unavailable) (every queued
    /// publish) as soon as a connection attempt fails. Off by default: publishes wait for room
    /// and for a connection until their deadline. In a [`Pool`](crate::Pool), a publish that
    /// finds no node up fails at once with
    /// [`NotSentReason::NoNodeUp`](crate::NotSentReason::NoNodeUp) instead of waiting for one.
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
    /// The values of those that apply to a pool (`max_attempts`, `lookupd_poll_interval`),
    /// which [`PoolConfig::new`](crate::PoolConfig::new) takes.
    for_pool: Vec<(&'static str, String)>,
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
            for_pool: Vec::new(),
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

    /// Takes the values of the ignored go-nsq options that a pool applies (`applies` says which,
    /// in this build), and stops listing them as ignored.
    pub(crate) fn take_for_pool(
        &mut self,
        applies: impl Fn(&str) -> bool,
    ) -> Vec<(&'static str, String)> {
        let (taken, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.for_pool)
            .into_iter()
            .partition(|(option, _)| applies(option));
        self.for_pool = kept;
        self.ignored
            .retain(|name| !taken.iter().any(|(option, _)| option == name));
        taken
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
        // A plaintext connection to nsqd that requires TLS fails its handshake, naming TLS,
        // rather than its first publish.
        self.conn
            .clone()
            .address(address)
            .check_tls_required(true)
            .build()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use nsq_conn::by_name::parse_duration;

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
    fn an_empty_auth_secret_means_none_as_in_go_nsq() {
        let mut config = ProducerConfig::default();
        config.set("auth_secret", "s3cret").unwrap();
        assert!(
            config
                .conn_config("127.0.0.1:4150")
                .unwrap()
                .has_auth_secret()
        );
        config.set("auth_secret", "").unwrap();
        config.validate().unwrap();
        assert!(
            !config
                .conn_config("127.0.0.1:4150")
                .unwrap()
                .has_auth_secret()
        );
    }

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
            (json!({"fail_fast": [true]}), "fail_fast"),
            (json!({"fail_fast": ["true"]}), "fail_fast"),
            (json!({"fail_fast": {"on": true}}), "fail_fast"),
        ] {
            let err = serde_json::from_value::<ProducerConfig>(bad).unwrap_err();
            assert!(err.to_string().contains(option), "{err}");
        }
        assert!(serde_json::from_str::<ProducerConfig>("[1]").is_err());
    }

    /// Records the fields of every WARN event.
    pub(crate) struct WarnRecorder(pub(crate) Arc<Mutex<Vec<String>>>);

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
