//! [`ConnConfigBuilder::set`]: the connection options by go-nsq's names.

#[cfg(feature = "tls")]
use crate::TlsVersion;
use crate::by_name::{Kind, Value, find};
use crate::config_error::ConfigError;

use super::{ConnConfigBuilder, DEFAULT_MAX_MSG_SIZE};

/// What [`ConnConfigBuilder::set`] did with an option it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetOutcome {
    /// The option was set.
    Applied,
    /// The option only configures a feature this build leaves out (`tls_cert` without the
    /// `tls` feature, `deflate_level` without `deflate`): its value's syntax was checked and
    /// nothing changed.
    Ignored,
}

impl ConnConfigBuilder {
    /// The options [`set`](Self::set) takes, by their canonical names.
    pub const OPTIONS: &'static [&'static str] = &[
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
    ];

    /// Sets a connection option by go-nsq's name, from text, for configuration from flags or
    /// files; the producer's and the consumer's `set` use it for these options. Names may use
    /// `_` or `-`; values take the syntax of [`by_name`](crate::by_name) (durations such as
    /// `1500ms` or `1m30s`, booleans `true`/`false`).
    ///
    /// The value is checked at once against the option's own range. What involves several
    /// options is checked by [`build`](Self::build), so options may be set in any order:
    /// `tls_cert` with `tls_key`, snappy against deflate, and the TLS files, which are read
    /// then.
    ///
    /// | option | meaning |
    /// |---|---|
    /// | `dial_timeout`, `handshake_timeout`, `write_timeout` | timeouts |
    /// | `local_addr` | local address to bind, `IP:PORT` |
    /// | `heartbeat_interval` | duration, or `-1` to disable heartbeats |
    /// | `client_id`, `hostname`, `user_agent` | IDENTIFY identity |
    /// | `output_buffer_size` (`-1` for none), `output_buffer_timeout` (`-1` for none), `msg_timeout`, `sample_rate` | consumer-side IDENTIFY values, sent only when set |
    /// | `auth_secret` | secret for AUTH; empty (go-nsq's default) for none |
    /// | `max_msg_size` | the largest message body accepted from nsqd; `0` (go-nsq's "no limit") means nsqd's default, 1 MiB |
    /// | `snappy`, `deflate`, `deflate_level` | compression |
    /// | `tls_v1` | the TLS switch: off by default, and the only option that turns TLS on or off |
    /// | `tls_root_ca_file`, `tls_cert`, `tls_key`, `tls_insecure_skip_verify`, `tls_min_version` | how TLS is set up, used once `tls_v1` is on; they edit the same settings as `edit_tls`. `tls_min_version` takes `tls1.2` or `tls1.3`; go-nsq's `ssl3.0`, `tls1.0` and `tls1.1` mean `tls1.2`, the lowest supported |
    ///
    /// go-nsq's `tls_config` takes a Go `*tls.Config`, which has no text form: it is refused;
    /// use the `tls_*` options or `TlsConfig`. Without the `tls`, `snappy` or `deflate`
    /// feature, `tls_v1`, `snappy` or `deflate` set to `true` is refused, and the options that
    /// only configure them are [`SetOutcome::Ignored`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use nsq_conn::{ConnConfig, SetOutcome};
    ///
    /// let mut builder = ConnConfig::builder("127.0.0.1:4150");
    /// assert_eq!(builder.set("heartbeat-interval", "10s")?, SetOutcome::Applied);
    /// builder.set("msg_timeout", "1m")?;
    /// let err = builder.set("sample_rate", "100").unwrap_err();
    /// assert_eq!(err.to_string(), "invalid sample_rate 100: expected 0 to 99");
    /// assert!(builder.set("max_in_flight", "1").is_err(), "not a connection option");
    ///
    /// let config = builder.build()?;
    /// assert_eq!(config.heartbeat_interval(), Some(Duration::from_secs(10)));
    /// assert_eq!(config.identify().msg_timeout, Some(Duration::from_secs(60)));
    /// # Ok::<(), nsq_conn::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a name not in [`OPTIONS`](Self::OPTIONS)
    /// ([`ConfigError::UnknownOption`]), or a value that does not parse or is out of range;
    /// the builder is then unchanged. [`ConfigError::option`] names the option.
    pub fn set(&mut self, option: &str, value: &str) -> Result<SetOutcome, ConfigError> {
        let name = find(Self::OPTIONS, option)?;
        let value = Value {
            option: name,
            text: value,
        };
        let Some(next) = self.clone().apply(&value)? else {
            value.check(ignored_kind(name))?;
            return Ok(SetOutcome::Ignored);
        };
        next.check_value(name)?;
        *self = next;
        Ok(SetOutcome::Applied)
    }

    /// Applies one option; `None` if this build ignores it.
    fn apply(self, value: &Value<'_>) -> Result<Option<Self>, ConfigError> {
        let text = value.text;
        Ok(Some(match value.option {
            "dial_timeout" => self.dial_timeout(value.duration()?),
            "handshake_timeout" => self.handshake_timeout(value.duration()?),
            "write_timeout" => self.write_timeout(value.duration()?),
            "local_addr" => {
                self.local_addr(text.trim().parse().map_err(|_| value.invalid("IP:PORT"))?)
            }
            "heartbeat_interval" => match text.trim() {
                "-1" | "-1ms" => self.disable_heartbeats(),
                _ => self.heartbeat_interval(value.duration()?),
            },
            "client_id" => self.client_id(text),
            "hostname" => self.hostname(text),
            "user_agent" => self.user_agent(text),
            "output_buffer_size" => self.output_buffer_size(value.int()?),
            "output_buffer_timeout" => match text.trim() {
                "-1" | "-1ms" => self.disable_output_buffer_timeout(),
                _ => self.output_buffer_timeout(value.duration()?),
            },
            "msg_timeout" => self.msg_timeout(value.duration()?),
            "sample_rate" => self.sample_rate(value.small("0 to 99")?),
            // go-nsq's default is the empty string, meaning no secret.
            "auth_secret" if text.is_empty() => self.clear_auth_secret(),
            "auth_secret" => self.auth_secret(text),
            "max_msg_size" => match value.uint()? {
                0 => self.max_msg_size(DEFAULT_MAX_MSG_SIZE),
                _ => self.max_msg_size(value.small("1 to 2147483647")?),
            },
            #[cfg(feature = "snappy")]
            "snappy" => self.snappy(value.boolean()?),
            #[cfg(not(feature = "snappy"))]
            "snappy" => match value.boolean()? {
                true => return Err(value.invalid("false (built without the snappy feature)")),
                false => self,
            },
            #[cfg(feature = "deflate")]
            "deflate" => self.deflate(value.boolean()?),
            #[cfg(not(feature = "deflate"))]
            "deflate" => match value.boolean()? {
                true => return Err(value.invalid("false (built without the deflate feature)")),
                false => self,
            },
            #[cfg(feature = "deflate")]
            "deflate_level" => self.deflate_level(value.small("1 to 9")?),
            #[cfg(feature = "tls")]
            "tls_v1" => self.enable_tls(value.boolean()?),
            #[cfg(not(feature = "tls"))]
            "tls_v1" => match value.boolean()? {
                true => return Err(value.invalid("false (built without the tls feature)")),
                false => self,
            },
            #[cfg(feature = "tls")]
            "tls_root_ca_file" => self.edit_tls(|tls| tls.root_ca_file(text)),
            #[cfg(feature = "tls")]
            "tls_cert" => self.edit_tls(|tls| tls.cert_file(text)),
            #[cfg(feature = "tls")]
            "tls_key" => self.edit_tls(|tls| tls.key_file(text)),
            #[cfg(feature = "tls")]
            "tls_insecure_skip_verify" => {
                let skip = value.boolean()?;
                self.edit_tls(|tls| tls.insecure_skip_verify(skip))
            }
            #[cfg(feature = "tls")]
            "tls_min_version" => {
                let version = match text.trim() {
                    "ssl3.0" | "tls1.0" | "tls1.1" | "tls1.2" => TlsVersion::Tls12,
                    "tls1.3" => TlsVersion::Tls13,
                    _ => return Err(value.invalid("tls1.2 or tls1.3")),
                };
                self.edit_tls(|tls| tls.min_version(version))
            }
            "tls_config" => {
                return Err(value.invalid(
                    "no text value: use tls_root_ca_file, tls_cert, tls_key, ... or TlsConfig",
                ));
            }
            _ => return Ok(None),
        }))
    }
}

/// The kind of value of an option that configures a feature this build leaves out.
fn ignored_kind(name: &str) -> Kind {
    match name {
        "tls_insecure_skip_verify" => Kind::Bool,
        "deflate_level" => Kind::Uint,
        _ => Kind::Text,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ConnConfig;

    fn builder() -> ConnConfigBuilder {
        ConnConfig::builder("127.0.0.1:4150")
    }

    #[test]
    fn every_option_is_set_by_name() {
        let mut b = builder();
        for (option, value) in [
            ("dial_timeout", "2s"),
            ("handshake_timeout", "3s"),
            ("write-timeout", "1m30s"),
            ("local_addr", "127.0.0.1:0"),
            ("heartbeat_interval", "5s"),
            ("client_id", "app01"),
            ("hostname", "app01.example.com"),
            ("user_agent", "me/1"),
            ("output_buffer_size", "16384"),
            ("output_buffer_timeout", "250ms"),
            ("msg_timeout", "90s"),
            ("sample_rate", "10"),
            ("auth_secret", "s3cret"),
            ("max_msg_size", "2048"),
        ] {
            assert_eq!(
                b.set(option, value).unwrap(),
                SetOutcome::Applied,
                "{option}"
            );
        }
        let config = b.build().unwrap();
        assert_eq!(config.dial_timeout(), Duration::from_secs(2));
        assert_eq!(config.handshake_timeout(), Duration::from_secs(3));
        assert_eq!(config.write_timeout(), Duration::from_secs(90));
        assert_eq!(config.local_addr(), Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(config.heartbeat_interval(), Some(Duration::from_secs(5)));
        let id = config.identify();
        assert_eq!(
            (
                id.client_id.as_str(),
                id.hostname.as_str(),
                id.user_agent.as_str()
            ),
            ("app01", "app01.example.com", "me/1")
        );
        assert_eq!(id.output_buffer_size, Some(16384));
        assert_eq!(id.output_buffer_timeout_ms, Some(250));
        assert_eq!(id.msg_timeout, Some(Duration::from_secs(90)));
        assert_eq!(id.sample_rate, Some(10));
        assert!(config.has_auth_secret());
        assert_eq!(config.max_msg_size(), 2048);
    }

    #[test]
    fn go_nsq_special_values() {
        let mut b = builder();
        b.set("heartbeat_interval", "-1").unwrap();
        b.set("output_buffer_timeout", "-1").unwrap();
        b.set("max_msg_size", "0").unwrap();
        b.set("auth_secret", "s3cret").unwrap();
        b.set("auth_secret", "").unwrap();
        let config = b.build().unwrap();
        assert_eq!(config.heartbeat_interval(), None);
        assert_eq!(config.identify().output_buffer_timeout_ms, Some(-1));
        assert_eq!(config.max_msg_size(), DEFAULT_MAX_MSG_SIZE);
        assert!(!config.has_auth_secret(), "empty means none, as in go-nsq");
    }

    #[test]
    fn a_refused_value_names_the_option_and_changes_nothing() {
        let mut b = builder();
        b.set("heartbeat_interval", "10s").unwrap();
        for (option, value, message) in [
            (
                "heartbeat_interval",
                "999ms",
                "invalid heartbeat_interval 999ms: expected at least 1s (or heartbeats disabled)",
            ),
            (
                "heartbeat_interval",
                "soon",
                r#"invalid heartbeat_interval "soon": expected a duration such as 500ms or 30s"#,
            ),
            (
                "write_timeout",
                "10m",
                "invalid write_timeout 600s: expected 100ms to 5m",
            ),
            (
                "sample_rate",
                "300",
                r#"invalid sample_rate "300": expected 0 to 99"#,
            ),
            (
                "max_msg_size",
                "2147483647",
                "invalid max_msg_size 2147483647: expected 1 byte to 2 GiB",
            ),
            (
                "local_addr",
                "localhost",
                r#"invalid local_addr "localhost": expected IP:PORT"#,
            ),
            (
                "output_buffer_size",
                "10",
                "invalid output_buffer_size 10: expected -1, 0 or at least 64",
            ),
        ] {
            let before = format!("{b:?}");
            let err = b.set(option, value).unwrap_err();
            assert_eq!(err.option(), option);
            assert_eq!(err.to_string(), message);
            assert_eq!(format!("{b:?}"), before, "{option}={value} changed nothing");
        }
        assert!(matches!(
            b.set("max-in-flight", "1"),
            Err(ConfigError::UnknownOption(name)) if name == "max_in_flight"
        ));
        let err = b.set("tls_config", "x").unwrap_err();
        assert_eq!(err.option(), "tls_config");
    }

    #[test]
    fn another_options_bad_value_does_not_hide_this_ones() {
        // A bad heartbeat set through the builder comes first in `check_values`; setting a bad
        // sample rate by name is still refused, and a good value still taken.
        let mut b = builder().heartbeat_interval(Duration::from_millis(10));
        assert_eq!(
            b.set("sample_rate", "100").unwrap_err().option(),
            "sample_rate"
        );
        b.set("dial_timeout", "2s").unwrap();
        assert_eq!(b.check_values().unwrap_err().option(), "heartbeat_interval");
    }

    #[cfg(all(feature = "snappy", feature = "deflate"))]
    #[test]
    fn compression_by_name() {
        let mut b = builder();
        b.set("deflate", "true").unwrap();
        b.set("deflate_level", "9").unwrap();
        assert_eq!(
            b.set("deflate_level", "10").unwrap_err().option(),
            "deflate_level"
        );
        b.set("snappy", "true").unwrap();
        assert!(matches!(
            b.clone().build(),
            Err(ConfigError::BothCompressions)
        ));
        b.set("deflate", "false").unwrap();
        assert!(b.build().unwrap().identify().snappy);
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_by_name() {
        use crate::TlsConfig;

        let mut b = builder();
        b.set("tls_root_ca_file", "/etc/nsq/ca.pem").unwrap();
        b.set("tls_insecure_skip_verify", "true").unwrap();
        b.set("tls_min_version", "tls1.0").unwrap();
        assert!(!b.is_tls_enabled(), "settings alone leave TLS off");
        b.set("tls_v1", "true").unwrap();
        assert!(b.is_tls_enabled());
        assert_eq!(
            format!("{:?}", b.tls_config()),
            format!(
                "{:?}",
                TlsConfig::new()
                    .root_ca_file("/etc/nsq/ca.pem")
                    .danger_accept_invalid_certs()
                    .min_version(TlsVersion::Tls12)
            )
        );
        let err = b.set("tls_min_version", "tls9").unwrap_err();
        assert_eq!(err.option(), "tls_min_version");
        b.set("tls_cert", "/c.pem").unwrap();
        assert_eq!(b.clone().build().unwrap_err().option(), "tls_key");
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_options_without_the_feature() {
        let mut b = builder();
        assert_eq!(b.set("tls_cert", "/c.pem").unwrap(), SetOutcome::Ignored);
        assert_eq!(b.set("tls_v1", "false").unwrap(), SetOutcome::Applied);
        assert!(b.set("tls_v1", "true").is_err());
        assert!(b.set("tls_insecure_skip_verify", "maybe").is_err());
    }
}
