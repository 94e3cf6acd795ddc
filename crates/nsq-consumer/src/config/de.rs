//! Deserialization of a [`ConsumerConfig`] from a map of option names to values (a TOML, JSON
//! or YAML section), through [`ConsumerConfig::set`]: every error names the option it is
//! about, so that a configuration file's error points at the key.

use nsq_conn::ConfigError;
use nsq_conn::by_name::SetByName;

use super::ConsumerConfig;

/// Deserializes from a map of the names [`ConsumerConfig::set`] takes, set in the order given;
/// numbers and booleans may be given as such or as text. An error names the option at fault.
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> serde::Deserialize<'de> for ConsumerConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        nsq_conn::by_name::deserialize(deserializer, "a map of go-nsq option names to values")
    }
}

impl SetByName for ConsumerConfig {
    fn option_name(option: &str) -> Result<&'static str, ConfigError> {
        super::go_nsq::canonical_name(option)
    }

    fn set_by_name(&mut self, option: &'static str, text: &str) -> Result<(), ConfigError> {
        self.set(option, text)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::BackoffStrategy;

    #[test]
    fn deserializes_from_a_map_of_go_nsq_options() {
        let doc = serde_json::json!({
            "max_in_flight": 2500,
            "max-attempts": "10",
            "lookupd_poll_interval": "15s",
            "lookupd_poll_jitter": 0.5,
            "backoff_strategy": "full_jitter",
            "auto_response": false,
            "heartbeat_interval": 10000,
            "msg_timeout": "2m",
            "max_pipelined": 64,
        });
        let config: ConsumerConfig = serde_json::from_value(doc.clone()).unwrap();

        // The same through `set`, one option at a time.
        let mut expected = ConsumerConfig::default();
        for (name, value) in doc.as_object().unwrap() {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            expected.set(name, &text).unwrap();
        }
        assert_eq!(format!("{config:?}"), format!("{expected:?}"));

        assert_eq!(config.max_in_flight, 2500);
        assert_eq!(config.max_attempts, 10);
        assert_eq!(config.lookupd_poll_interval, Duration::from_secs(15));
        assert_eq!(config.lookupd_poll_jitter, 0.5);
        assert_eq!(config.backoff_strategy, BackoffStrategy::FullJitter);
        assert!(!config.auto_response);
        assert_eq!(config.ignored_options(), ["max_pipelined"]);
        let conn = config.conn_config("127.0.0.1:4150").unwrap();
        assert_eq!(conn.heartbeat_interval(), Some(Duration::from_secs(10)));
        assert_eq!(conn.identify().msg_timeout, Some(Duration::from_secs(120)));
    }

    #[test]
    fn errors_name_the_option() {
        for (bad, option) in [
            (r#"{"max_in_flight": -1}"#, "max_in_flight"),
            (
                r#"{"low_rdy_idle_timeout": "100ms"}"#,
                "low_rdy_idle_timeout",
            ),
            (r#"{"heartbeat_interval": "999ms"}"#, "heartbeat_interval"),
            (r#"{"no_such_option": 1}"#, "no_such_option"),
            (r#"{"auto_response": [true]}"#, "auto_response"),
            (r#"{"auto_response": ["true"]}"#, "auto_response"),
            (r#"{"auto_response": {"on": true}}"#, "auto_response"),
        ] {
            let err = serde_json::from_str::<ConsumerConfig>(bad).unwrap_err();
            assert!(err.to_string().contains(option), "{bad}: {err}");
        }
        let err = serde_json::from_str::<ConsumerConfig>("[1]").unwrap_err();
        assert!(
            err.to_string().contains("a map of go-nsq option names"),
            "{err}"
        );
    }
}
