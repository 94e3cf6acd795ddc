//! Pool configuration by name: the table of the pool's own options, [`PoolConfig::set`],
//! [`PoolConfig::new`] (which applies the pool's options set by name on its
//! `ProducerConfig`), the checks of the pool's fields, and deserialization through `set`.

use nsq_conn::ConfigError;
use nsq_conn::by_name::Value;

use super::config::{PoolConfig, Strategy};
use crate::config::ProducerConfig;

/// One option of the pool's own, by name.
struct PoolOption {
    /// Its canonical name (with `_`).
    name: &'static str,
    /// Other names it is known by.
    aliases: &'static [&'static str],
    /// Whether it takes a list (comma-separated in text).
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    list: bool,
    /// Parses the value and sets it; the field's range is checked after, by `check_fields`.
    apply: fn(&mut PoolConfig, &Value<'_>) -> Result<(), ConfigError>,
}

/// The pool's own options. Adding a knob is one entry here (its range check goes in
/// `PoolConfig::check_fields`, its line in the table of [`PoolConfig::set`]'s docs).
const OPTIONS: &[PoolOption] = &[
    PoolOption {
        name: "strategy",
        aliases: &[],
        list: false,
        apply: |config, value| {
            let strategy: Strategy = value.text.parse()?;
            config.strategy = config.by_name.apply(strategy);
            Ok(())
        },
    },
    PoolOption {
        name: "copies",
        aliases: &[],
        list: false,
        apply: |config, value| {
            let copies = value.small("1 to a machine word")?;
            config.by_name.copies = Some(copies);
            config.strategy = config.by_name.apply(config.strategy);
            Ok(())
        },
    },
    PoolOption {
        name: "fail_back_after",
        aliases: &[],
        list: false,
        apply: |config, value| {
            config.by_name.fail_back_after = Some(value.duration()?);
            config.strategy = config.by_name.apply(config.strategy);
            Ok(())
        },
    },
    PoolOption {
        name: "max_attempts",
        aliases: &[],
        list: false,
        apply: |config, value| {
            // go-nsq's 0: no limit (the publish's deadline still is one).
            config.max_attempts = match value.uint()? {
                0 => u32::MAX,
                n => u32::try_from(n).unwrap_or(u32::MAX),
            };
            Ok(())
        },
    },
    PoolOption {
        name: "retry_unknown",
        aliases: &[],
        list: false,
        apply: |config, value| {
            config.retry_unknown = value.boolean()?;
            Ok(())
        },
    },
    PoolOption {
        name: "retry_budget_ratio",
        aliases: &[],
        list: false,
        apply: |config, value| {
            config.retry_budget.ratio = value.float()?;
            Ok(())
        },
    },
    PoolOption {
        name: "retry_budget_per_second",
        aliases: &[],
        list: false,
        apply: |config, value| {
            config.retry_budget.per_second = value.float()?;
            Ok(())
        },
    },
    PoolOption {
        name: "retry_budget_max",
        aliases: &[],
        list: false,
        apply: |config, value| {
            config.retry_budget.max = value.float()?;
            Ok(())
        },
    },
    PoolOption {
        name: "slow_after",
        aliases: &[],
        list: false,
        apply: |config, value| {
            config.slow_after = match value.text.trim() {
                "none" => None,
                _ => Some(value.duration()?),
            };
            Ok(())
        },
    },
    PoolOption {
        name: "slow_factor",
        aliases: &[],
        list: false,
        apply: |config, value| {
            config.slow_factor = value.small("1 to 4294967295")?;
            Ok(())
        },
    },
    #[cfg(feature = "lookupd")]
    PoolOption {
        name: "lookupd",
        aliases: &["lookupd_http_address", "nsqlookupd"],
        list: true,
        apply: |config, value| {
            config.lookupd = split_list(value.text);
            Ok(())
        },
    },
    #[cfg(not(feature = "lookupd"))]
    PoolOption {
        name: "lookupd",
        aliases: &["lookupd_http_address", "nsqlookupd"],
        list: true,
        apply: |_, value| match split_list(value.text).is_empty() {
            true => Ok(()),
            false => Err(value.invalid("none (built without the lookupd feature)")),
        },
    },
    #[cfg(feature = "lookupd")]
    PoolOption {
        name: "lookupd_poll_interval",
        aliases: &[],
        list: false,
        apply: |config, value| {
            config.lookupd_poll_interval = value.duration()?;
            Ok(())
        },
    },
    #[cfg(feature = "lookupd")]
    PoolOption {
        name: "lookupd_grace_period",
        aliases: &[],
        list: false,
        apply: |config, value| {
            config.lookupd_grace_period = value.duration()?;
            Ok(())
        },
    },
];

/// The pool's option called `option` (`-` or `_`, any alias).
fn find(option: &str) -> Option<&'static PoolOption> {
    let normalized = option.trim().replace('-', "_");
    OPTIONS
        .iter()
        .find(|o| o.name == normalized || o.aliases.contains(&normalized.as_str()))
}

/// Whether `option` is one of the pool's own in this build.
pub(crate) fn applies(option: &str) -> bool {
    find(option).is_some()
}

/// The items of a comma-separated list, trimmed, empty ones left out.
fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

impl PoolConfig {
    /// A pool configuration with `producer` for every node and the other settings at their
    /// defaults, except the go-nsq options `max_attempts` and `lookupd_poll_interval` if they
    /// were set on `producer` by name ([`ProducerConfig::set`], or deserialized): a producer
    /// ignores them, a pool applies them as [`set`](Self::set) does.
    pub fn new(mut producer: ProducerConfig) -> Self {
        let given = producer.take_for_pool(applies);
        let mut config = Self {
            producer,
            ..Self::default()
        };
        for (option, value) in given {
            // The syntax was checked when the option was set on the producer; a value out of
            // the pool's range is reported by `validate`, when the pool is built.
            let _ = config.apply(option, &value);
        }
        config
    }

    /// Sets an option by name: one of the pool's own, below, or else any option of
    /// [`ProducerConfig::set`](crate::ProducerConfig::set), for every node's producer. Names
    /// may use `_` or `-`; values take the syntax of [`ProducerConfig::set`](crate::ProducerConfig::set) (durations such
    /// as `500ms` or `30s`, booleans `true`/`false`).
    ///
    /// | option | meaning |
    /// |---|---|
    /// | `strategy` | `round-robin`, `failover`, `least-outstanding` or `fan-out` ([`Strategy`]'s names) |
    /// | `copies` | with `fan-out`: how many nodes get each message (default 2) |
    /// | `fail_back_after` | with `failover`: how long a node that came back stays up before it is preferred again (default 30s) |
    /// | `max_attempts` | [`max_attempts`](Self::max_attempts); `0`, as in go-nsq, means no limit but the publish's deadline |
    /// | `retry_unknown` | [`retry_unknown`](Self::retry_unknown) |
    /// | `retry_budget_ratio`, `retry_budget_per_second`, `retry_budget_max` | the fields of [`RetryBudget`](crate::RetryBudget) |
    /// | `slow_after` | [`slow_after`](Self::slow_after): a duration, or `none` (default 20ms) |
    /// | `slow_factor` | [`slow_factor`](Self::slow_factor) (default 10) |
    /// | `lookupd` (or `lookupd_http_address`, `nsqlookupd`) | nsqlookupd HTTP addresses, comma-separated (a list when deserialized); needs the `lookupd` feature unless empty |
    /// | `lookupd_poll_interval` | how often nsqlookupd is polled (with the `lookupd` feature; ignored without it) |
    /// | `lookupd_grace_period` | how long a node no nsqlookupd lists any more stays while it is up (with the `lookupd` feature) |
    ///
    /// `copies` and `fail_back_after` may be given before or after `strategy`; given with
    /// another strategy they fail [`validate`](Self::validate). go-nsq's `max_attempts` and
    /// `lookupd_poll_interval`, which a lone producer ignores, mean the same here: the most
    /// attempts for one message, and the nsqlookupd poll interval.
    ///
    /// ```
    /// use nsq_producer::{PoolConfig, Strategy};
    ///
    /// let mut config = PoolConfig::default();
    /// config.set("copies", "3").unwrap();
    /// config.set("strategy", "fan-out").unwrap();
    /// config.set("max-attempts", "5").unwrap();
    /// config.set("heartbeat_interval", "10s").unwrap(); // a producer option
    /// assert_eq!(config.strategy, Strategy::FanOut { copies: 3 });
    /// assert_eq!(config.max_attempts, 5);
    /// let err = config.set("strategy", "least-loaded").unwrap_err();
    /// assert_eq!(err.option(), "strategy");
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for an unknown option or a value that does not parse or is out of range;
    /// the configuration is then unchanged. [`ConfigError::option`] names the option.
    pub fn set(&mut self, option: &str, value: &str) -> Result<(), ConfigError> {
        let Some(entry) = find(option) else {
            return self.producer.set(option, value);
        };
        let mut next = self.clone();
        next.apply(entry.name, value)?;
        match next.check_fields() {
            Err(err) if err.option() == entry.name => return Err(err),
            _ => {}
        }
        *self = next;
        Ok(())
    }

    /// Applies one of the pool's own options, without checking the field's range.
    pub(super) fn apply(&mut self, option: &str, text: &str) -> Result<(), ConfigError> {
        let entry = find(option).ok_or_else(|| ConfigError::UnknownOption(option.to_owned()))?;
        let value = Value {
            option: entry.name,
            text,
        };
        (entry.apply)(self, &value)
    }

    /// The go-nsq options given by name (to [`set`](Self::set), to
    /// [`ProducerConfig::set`](crate::ProducerConfig::set), or deserialized) that apply
    /// neither to the pool nor to its nodes and were ignored. [`Pool::new`](crate::Pool::new)
    /// names them in one warning.
    pub fn ignored_options(&self) -> &[&'static str] {
        self.producer.ignored_options()
    }

    /// Checks every value and how they combine, the producer configuration's included.
    /// [`Pool::new`](crate::Pool::new) calls this.
    ///
    /// # Errors
    ///
    /// The first invalid option; [`ConfigError::option`] names it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.producer.validate()?;
        self.check_fields()?;
        if self.by_name.copies.is_some() && !matches!(self.strategy, Strategy::FanOut { .. }) {
            return Err(ConfigError::Conflict {
                option: "copies",
                reason: "applies only to the fan-out strategy",
            });
        }
        if self.by_name.fail_back_after.is_some()
            && !matches!(self.strategy, Strategy::Failover { .. })
        {
            return Err(ConfigError::Conflict {
                option: "fail_back_after",
                reason: "applies only to the failover strategy",
            });
        }
        Ok(())
    }

    /// Checks the pool's own fields, each on its own.
    fn check_fields(&self) -> Result<(), ConfigError> {
        let invalid = |option, value: String, expected| ConfigError::InvalidValue {
            option,
            value,
            expected,
        };
        if self.max_attempts == 0 {
            return Err(invalid("max_attempts", "0".into(), "at least 1"));
        }
        if self.slow_factor == 0 {
            return Err(invalid("slow_factor", "0".into(), "at least 1"));
        }
        if matches!(self.strategy, Strategy::FanOut { copies: 0 }) || self.by_name.copies == Some(0)
        {
            return Err(invalid("copies", "0".into(), "at least one copy"));
        }
        let budget = &self.retry_budget;
        for (option, value) in [
            ("retry_budget_ratio", budget.ratio),
            ("retry_budget_per_second", budget.per_second),
            ("retry_budget_max", budget.max),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(invalid(option, value.to_string(), "a number of at least 0"));
            }
        }
        #[cfg(feature = "lookupd")]
        if self.lookupd_poll_interval.is_zero() {
            return Err(invalid(
                "lookupd_poll_interval",
                "0s".into(),
                "more than zero",
            ));
        }
        Ok(())
    }
}

#[cfg(feature = "serde")]
impl nsq_conn::by_name::SetByName for PoolConfig {
    fn option_name(option: &str) -> Result<&'static str, ConfigError> {
        match find(option) {
            Some(entry) => Ok(entry.name),
            None => crate::config::go_nsq::canonical_name(option),
        }
    }

    fn set_by_name(&mut self, option: &'static str, text: &str) -> Result<(), ConfigError> {
        self.set(option, text)
    }

    /// Takes a list where the option takes one (`lookupd`), as its comma-separated text.
    fn set_value(
        &mut self,
        option: &str,
        value: nsq_conn::by_name::OptionValue,
    ) -> Result<(), ConfigError> {
        use nsq_conn::by_name::OptionValue;

        let text = match (value, find(option)) {
            (OptionValue::Text(text), _) => text,
            (OptionValue::List(items), Some(entry)) if entry.list => items.join(","),
            (list, _) => list.single(Self::option_name(option)?)?,
        };
        self.set(option, &text)
    }
}

/// Deserializes from a map of the names [`PoolConfig::set`] takes, the pool's own and the
/// producer's, in one map; a list value is taken where a list is (`lookupd`). An error names
/// the option at fault.
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> serde::Deserialize<'de> for PoolConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        nsq_conn::by_name::deserialize(
            deserializer,
            "a map of pool and go-nsq option names to values",
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use std::time::Duration;

    use super::*;
    use crate::ProducerConfig;

    #[test]
    fn the_slow_node_rule_is_set_by_name() {
        let mut config = PoolConfig::default();
        config.set("slow_after", "50ms").unwrap();
        config.set("slow-factor", "20").unwrap();
        assert_eq!(config.slow_after, Some(Duration::from_millis(50)));
        assert_eq!(config.slow_factor, 20);
        config.set("slow_after", "none").unwrap();
        assert_eq!(config.slow_after, None);
        let err = config.set("slow_factor", "0").unwrap_err();
        assert_eq!(err.option(), "slow_factor");
        assert_eq!(config.slow_factor, 20, "unchanged by a refused value");
    }

    #[test]
    fn strategy_names_read_and_write_the_same_words() {
        for (name, strategy) in [
            ("round-robin", Strategy::RoundRobin),
            (
                "failover",
                Strategy::Failover {
                    fail_back_after: Strategy::DEFAULT_FAIL_BACK_AFTER,
                },
            ),
            ("least-outstanding", Strategy::LeastOutstanding),
            (
                "fan-out",
                Strategy::FanOut {
                    copies: Strategy::DEFAULT_COPIES,
                },
            ),
        ] {
            assert_eq!(name.parse::<Strategy>().unwrap(), strategy);
            assert_eq!(strategy.to_string(), name);
            let shouted = name.to_uppercase().replace('-', "_");
            assert_eq!(shouted.parse::<Strategy>().unwrap(), strategy, "{shouted}");
        }
        let err = "least-loaded".parse::<Strategy>().unwrap_err();
        assert_eq!(err.option(), "strategy");
        assert!(err.to_string().contains("least-outstanding"), "{err}");
    }

    #[test]
    fn parameters_apply_whichever_comes_first() {
        let mut config = PoolConfig::default();
        config.set("copies", "3").unwrap();
        config.set("strategy", "fan-out").unwrap();
        assert_eq!(config.strategy, Strategy::FanOut { copies: 3 });
        config.set("copies", "1").unwrap();
        assert_eq!(config.strategy, Strategy::FanOut { copies: 1 });
        config.validate().unwrap();

        let mut config = PoolConfig::default();
        config.set("strategy", "failover").unwrap();
        config.set("fail-back-after", "2s").unwrap();
        assert_eq!(
            config.strategy,
            Strategy::Failover {
                fail_back_after: Duration::from_secs(2)
            }
        );
        config.validate().unwrap();

        let mut config = PoolConfig::default();
        config.set("copies", "2").unwrap();
        config.set("strategy", "round-robin").unwrap();
        let err = config.validate().unwrap_err();
        assert_eq!(err.option(), "copies", "{err}");
        assert!(err.to_string().contains("fan-out"), "{err}");

        let mut config = PoolConfig::default();
        let err = config.set("copies", "0").unwrap_err();
        assert_eq!(err.option(), "copies");
        let err = config.set("retry_budget_ratio", "-1").unwrap_err();
        assert_eq!(err.option(), "retry_budget_ratio");
        assert_eq!(config.retry_budget, crate::RetryBudget::default());
    }

    #[test]
    fn every_pool_option_is_set_by_name() {
        let mut config = PoolConfig::default();
        for (option, value) in [
            ("strategy", "least-outstanding"),
            ("max_attempts", "7"),
            ("retry_unknown", "true"),
            ("retry_budget_ratio", "0.5"),
            ("retry_budget_per_second", "2"),
            ("retry_budget_max", "20"),
            ("publish_timeout", "2s"),
        ] {
            config
                .set(option, value)
                .unwrap_or_else(|err| panic!("{option}={value}: {err}"));
        }
        assert_eq!(config.strategy, Strategy::LeastOutstanding);
        assert_eq!(config.max_attempts, 7);
        assert!(config.retry_unknown);
        let budget = config.retry_budget;
        assert_eq!(
            (budget.ratio, budget.per_second, budget.max),
            (0.5, 2.0, 20.0)
        );
        assert_eq!(
            config.producer.publish_timeout,
            Some(Duration::from_secs(2))
        );
        config.set("max_attempts", "0").unwrap();
        assert_eq!(config.max_attempts, u32::MAX, "0 is go-nsq's no limit");
        assert!(config.ignored_options().is_empty());
        let err = config.set("no_such_option", "1").unwrap_err();
        assert_eq!(err.option(), "no_such_option");
        config.validate().unwrap();
    }

    #[cfg(feature = "lookupd")]
    #[test]
    fn lookupd_options_by_name() {
        let mut config = PoolConfig::default();
        config
            .set("lookupd-http-address", "10.0.0.1:4161, 10.0.0.2:4161")
            .unwrap();
        config.set("lookupd_poll_interval", "15s").unwrap();
        config.set("lookupd-grace-period", "2m").unwrap();
        assert_eq!(config.lookupd_grace_period, Duration::from_secs(120));
        assert_eq!(config.lookupd, ["10.0.0.1:4161", "10.0.0.2:4161"]);
        assert_eq!(config.lookupd_poll_interval, Duration::from_secs(15));
        let err = config.set("lookupd_poll_interval", "0").unwrap_err();
        assert_eq!(err.option(), "lookupd_poll_interval");
    }

    #[test]
    fn go_nsq_options_a_producer_ignores_apply_to_the_pool() {
        let mut producer = ProducerConfig::default();
        for (option, value) in [
            ("max_attempts", "9"),
            ("lookupd_poll_interval", "10s"),
            ("max_in_flight", "1"),
        ] {
            producer.set(option, value).unwrap();
        }
        let config = PoolConfig::new(producer);
        assert_eq!(config.max_attempts, 9);
        #[cfg(feature = "lookupd")]
        {
            assert_eq!(config.lookupd_poll_interval, Duration::from_secs(10));
            assert_eq!(config.ignored_options(), ["max_in_flight"]);
        }
        #[cfg(not(feature = "lookupd"))]
        assert_eq!(
            config.ignored_options(),
            ["lookupd_poll_interval", "max_in_flight"]
        );
    }

    #[test]
    fn ignored_options_are_warned_once_per_pool() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        let mut config = PoolConfig::default();
        config.set("max_in_flight", "1").unwrap();
        config.set("low_rdy_timeout", "30s").unwrap();
        config.set("max_attempts", "4").unwrap();
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let recorder = crate::config::tests::WarnRecorder(warnings.clone());
        tracing::subscriber::with_default(recorder, || {
            let nodes = ["127.0.0.1:4150", "127.0.0.1:4152", "127.0.0.1:4154"];
            let pool = crate::Pool::new(nodes, config).unwrap();
            assert_eq!(pool.nodes().len(), 3);
        });
        let warnings = warnings.lock().unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("max_in_flight, low_rdy_timeout"),
            "{warnings:?}"
        );
        assert!(!warnings[0].contains("max_attempts"), "{warnings:?}");
    }

    #[cfg(feature = "serde")]
    #[test]
    fn deserializes_from_toml_and_errors_name_the_key() {
        let doc = r#"
            strategy = "fan-out"
            copies = 3
            max_attempts = 5
            retry_unknown = true
            retry_budget_max = 50.0
            publish_timeout = "2s"
            heartbeat_interval = "10s"
            max_in_flight = 200
        "#;
        let config: PoolConfig = toml::from_str(doc).unwrap();
        assert_eq!(config.strategy, Strategy::FanOut { copies: 3 });
        assert_eq!(config.max_attempts, 5);
        assert!(config.retry_unknown);
        assert_eq!(config.retry_budget.max, 50.0);
        assert_eq!(
            config.producer.publish_timeout,
            Some(Duration::from_secs(2))
        );
        assert_eq!(config.ignored_options(), ["max_in_flight"]);
        config.validate().unwrap();

        for (doc, key) in [
            ("copies = \"many\"", "copies"),
            ("strategy = \"least-loaded\"", "strategy"),
            ("max_attempts = [1, 2]", "max_attempts"),
            ("heartbeat_interval = { seconds = 1 }", "heartbeat_interval"),
            ("heartbeat_interval = [\"1s\"]", "heartbeat_interval"),
            ("retry_unknown = \"perhaps\"", "retry_unknown"),
            ("no_such_option = 1", "no_such_option"),
            ("lookupd = [1]", "lookupd"),
        ] {
            let err = toml::from_str::<PoolConfig>(doc).unwrap_err();
            assert!(err.to_string().contains(key), "{doc}: {err}");
        }
        // The error shows the line of the value at fault.
        let doc = "strategy = \"fan-out\"\nmax_attempts = 3\ncopies = -1\n";
        let err = toml::from_str::<PoolConfig>(doc).unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        assert!(err.to_string().contains("copies"), "{err}");
        // The producer's configuration alone names its keys too.
        let err = toml::from_str::<ProducerConfig>("dial_timeout = [1]").unwrap_err();
        assert!(err.to_string().contains("dial_timeout"), "{err}");
    }

    #[cfg(all(feature = "serde", feature = "lookupd"))]
    #[test]
    fn lookupd_deserializes_from_a_list() {
        let doc = r#"
            lookupd = ["10.0.0.1:4161", "10.0.0.2:4161"]
            lookupd_poll_interval = "5s"
        "#;
        let config: PoolConfig = toml::from_str(doc).unwrap();
        assert_eq!(config.lookupd, ["10.0.0.1:4161", "10.0.0.2:4161"]);
        assert_eq!(config.lookupd_poll_interval, Duration::from_secs(5));
    }
}
