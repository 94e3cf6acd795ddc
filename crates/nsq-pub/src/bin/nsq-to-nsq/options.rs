//! `--consumer-opt`: the consumer's options by go-nsq's names.

use std::time::Duration;

use nsq_consumer::ConsumerConfig;

/// Sets the consumer option `key` to `value`.
///
/// # Errors
///
/// An option this tool does not know, or a value it cannot read.
pub(crate) fn set_consumer(
    config: &mut ConsumerConfig,
    key: &str,
    value: &str,
) -> Result<(), String> {
    let duration = || {
        parse_duration(value)
            .ok_or_else(|| format!("{value:?} is not a duration (such as 500ms, 2s or 1m)"))
    };
    let number = || {
        value
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{value:?} is not a whole number"))
    };
    match key {
        "max_in_flight" => {
            config.max_in_flight =
                u32::try_from(number()?).map_err(|_| format!("{value:?} is too large"))?
        }
        "max_attempts" => {
            config.max_attempts =
                u16::try_from(number()?).map_err(|_| format!("{value:?} is too large"))?
        }
        "default_requeue_delay" => config.default_requeue_delay = duration()?,
        "max_requeue_delay" => config.max_requeue_delay = duration()?,
        "backoff_multiplier" => config.backoff_multiplier = duration()?,
        "max_backoff_duration" => config.max_backoff_duration = duration()?,
        "lookupd_poll_interval" => config.lookupd_poll_interval = duration()?,
        "low_rdy_idle_timeout" => config.low_rdy_idle_timeout = duration()?,
        "rdy_redistribute_interval" => config.rdy_redistribute_interval = duration()?,
        "drain_timeout" => config.drain_timeout = duration()?,
        "msg_timeout" => config.conn = config.conn.clone().msg_timeout(duration()?),
        _ => return Err(format!("unknown option {key:?}")),
    }
    Ok(())
}

/// A duration as Go's `time.ParseDuration` writes the common ones: a number and a unit (`ns`,
/// `us`, `ms`, `s`, `m`, `h`), several in a row (`1m30s`).
fn parse_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += Duration::try_from_secs_f64(number * scale).ok()?;
        rest = &rest[unit..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_go_writes_them() {
        assert_eq!(parse_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("1"), None);
        assert_eq!(parse_duration("soon"), None);
    }

    #[test]
    fn options_by_name() {
        let mut config = ConsumerConfig::default();
        set_consumer(&mut config, "max_attempts", "3").unwrap();
        set_consumer(&mut config, "default_requeue_delay", "2s").unwrap();
        assert_eq!(config.max_attempts, 3);
        assert_eq!(config.default_requeue_delay, Duration::from_secs(2));
        assert!(
            set_consumer(&mut config, "nope", "1")
                .unwrap_err()
                .contains("nope")
        );
        assert!(set_consumer(&mut config, "max_attempts", "x").is_err());
    }
}
