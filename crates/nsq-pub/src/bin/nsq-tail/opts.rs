//! `--consumer-opt key,value`: consumer options by go-nsq's names, read by
//! [`ConsumerConfig::set`](nsq_consumer::ConsumerConfig::set).

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_option_means_true() {
        assert_eq!(split("snappy"), ("snappy", "true"));
        assert_eq!(split("user_agent,a,b"), ("user_agent", "a,b"));
        assert!(is_max_in_flight("max-in-flight"));
        assert!(is_max_in_flight("max_in_flight"));
        assert!(!is_max_in_flight("max_attempts"));
    }
}
