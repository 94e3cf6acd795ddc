//! `--consumer-opt key,value`: consumer options by go-nsq's names.

use nsq_consumer::ConsumerConfig;

/// A `--consumer-opt` split into option and value; a bare `key` means `key,true`, as go-nsq's
/// flag reads it.
pub(crate) fn split(text: &str) -> (&str, &str) {
    match text.split_once(',') {
        Some((key, value)) => (key, value),
        None => (text, "true"),
    }
}

/// Whether `key` names `max_in_flight` (go-nsq takes `-` for `_`).
pub(crate) fn is_max_in_flight(key: &str) -> bool {
    key.replace('-', "_") == "max_in_flight"
}

/// Sets the option `key` to `value`.
///
/// # Errors
///
/// An unknown option or a value it does not take, as a sentence.
pub(crate) fn apply(config: &mut ConsumerConfig, key: &str, value: &str) -> Result<(), String> {
    let name = key.replace('-', "_");
    let number = |expected: &str| -> Result<u64, String> {
        value
            .parse::<u64>()
            .map_err(|_| format!("{name} takes {expected}, not {value:?}"))
    };
    match name.as_str() {
        "max_in_flight" => {
            config.max_in_flight = u32::try_from(number("0 to 4294967295")?)
                .map_err(|_| format!("{name} takes 0 to 4294967295, not {value:?}"))?;
        }
        "max_attempts" => {
            config.max_attempts = u16::try_from(number("0 to 65535")?)
                .map_err(|_| format!("{name} takes 0 to 65535, not {value:?}"))?;
        }
        "user_agent" => config.conn = config.conn.clone().user_agent(value),
        "sample_rate" => {
            let rate = u8::try_from(number("0 to 99")?)
                .ok()
                .filter(|&r| r < 100)
                .ok_or_else(|| format!("{name} takes 0 to 99, not {value:?}"))?;
            config.conn = config.conn.clone().sample_rate(rate);
        }
        "auth_secret" => config.conn = config.conn.clone().auth_secret(value),
        _ => return Err(format!("unknown consumer option {key:?}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_option_means_true_and_values_are_checked() {
        assert_eq!(split("snappy"), ("snappy", "true"));
        assert_eq!(split("user_agent,a,b"), ("user_agent", "a,b"));
        let mut config = ConsumerConfig::default();
        apply(&mut config, "max-in-flight", "30").unwrap();
        assert_eq!(config.max_in_flight, 30);
        apply(&mut config, "max_attempts", "9").unwrap();
        assert_eq!(config.max_attempts, 9);
        assert!(apply(&mut config, "max_attempts", "70000").is_err());
        assert!(
            apply(&mut config, "sample_rate", "100")
                .unwrap_err()
                .contains("100")
        );
        assert!(
            apply(&mut config, "bogus", "1")
                .unwrap_err()
                .contains("bogus")
        );
        assert!(is_max_in_flight("max-in-flight"));
    }
}
