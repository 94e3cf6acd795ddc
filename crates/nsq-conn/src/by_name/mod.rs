//! Options by name, as go-nsq's `Config.Set` takes them: option names, values in go-nsq's
//! syntax, and (with the `serde` feature) deserialization of a map of names to values.
//!
//! [`ConnConfigBuilder::set`](crate::ConnConfigBuilder::set) sets the connection options by
//! name; the producer's and the consumer's configurations use it for those options and the
//! parsers of this module for their own, so every crate reads a value the same way:
//!
//! - names may use `_` or `-` (`dial_timeout` or `dial-timeout`);
//! - durations take Go's syntax (`1500ms`, `1.5s`, `1m30s`, `2h`) or a whole number of
//!   milliseconds;
//! - booleans take `true`/`false`, `1`/`0`, `t`/`f` (as Go's `strconv.ParseBool`);
//! - numbers are decimal; surrounding spaces are ignored.
//!
//! ```
//! use std::time::Duration;
//! use nsq_conn::by_name::{Value, parse_duration};
//!
//! assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
//! let value = Value { option: "max_in_flight", text: "lots" };
//! let err = value.uint().unwrap_err();
//! assert_eq!(err.to_string(), r#"invalid max_in_flight "lots": expected a whole number"#);
//! ```

use std::time::Duration;

use crate::ConfigError;

#[cfg(feature = "serde")]
mod de;
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use de::{ByName, OptionValue, SetByName, deserialize};

/// One option's value as given by name, with parsers whose errors name the option.
#[derive(Debug, Clone, Copy)]
pub struct Value<'a> {
    /// The option's canonical name (with `_`), which errors name.
    pub option: &'static str,
    /// The value as given.
    pub text: &'a str,
}

impl Value<'_> {
    /// The error for a value that is not what the option takes: [`ConfigError::InvalidValue`]
    /// with the value quoted and `expected` saying what would do.
    pub fn invalid(&self, expected: &'static str) -> ConfigError {
        ConfigError::InvalidValue {
            option: self.option,
            value: format!("{:?}", self.text),
            expected,
        }
    }

    /// A whole number of at least zero.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] if the text is not one.
    pub fn uint(&self) -> Result<u64, ConfigError> {
        self.text
            .trim()
            .parse()
            .map_err(|_| self.invalid("a whole number"))
    }

    /// A whole number, possibly negative.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] if the text is not one.
    pub fn int(&self) -> Result<i64, ConfigError> {
        self.text
            .trim()
            .parse()
            .map_err(|_| self.invalid("a whole number"))
    }

    /// A number, with or without a fraction.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] if the text is not one.
    pub fn float(&self) -> Result<f64, ConfigError> {
        self.text
            .trim()
            .parse()
            .map_err(|_| self.invalid("a number"))
    }

    /// A duration, as [`parse_duration`] reads it.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] if the text is not one.
    pub fn duration(&self) -> Result<Duration, ConfigError> {
        parse_duration(self.text).ok_or_else(|| self.invalid("a duration such as 500ms or 30s"))
    }

    /// A boolean, as [`parse_bool`] reads it.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] if the text is not one.
    pub fn boolean(&self) -> Result<bool, ConfigError> {
        parse_bool(self.text).ok_or_else(|| self.invalid("true or false"))
    }

    /// A whole number that fits `T`; `expected` names the range in the error.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] if the text is not a whole number or does not fit.
    pub fn small<T: TryFrom<u64>>(&self, expected: &'static str) -> Result<T, ConfigError> {
        T::try_from(self.uint()?).map_err(|_| self.invalid(expected))
    }

    /// Checks that the text has the syntax `kind` says, for an option that is then ignored.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] if it does not.
    pub fn check(&self, kind: Kind) -> Result<(), ConfigError> {
        match kind {
            Kind::Duration => self.duration().map(drop),
            Kind::DurationOrNone => match self.text.trim() {
                "none" => Ok(()),
                _ => self.duration().map(drop),
            },
            Kind::Float => self.float().map(drop),
            Kind::Uint => self.uint().map(drop),
            Kind::Bool => self.boolean().map(drop),
            Kind::Text => Ok(()),
            Kind::OneOf { values, expected } => match values.contains(&self.text.trim()) {
                true => Ok(()),
                false => Err(self.invalid(expected)),
            },
        }
    }
}

/// The kind of value an option takes, for checking the value of an option that is otherwise
/// ignored (so that a typo in a shared configuration still fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A duration ([`parse_duration`]).
    Duration,
    /// A duration, or `none`.
    DurationOrNone,
    /// A number.
    Float,
    /// A whole number of at least zero.
    Uint,
    /// A boolean ([`parse_bool`]).
    Bool,
    /// Any text.
    Text,
    /// One of a few words (after trimming spaces).
    OneOf {
        /// The words accepted.
        values: &'static [&'static str],
        /// What the error says is expected.
        expected: &'static str,
    },
}

/// An option's name with spaces around it removed and `-` read as `_`.
///
/// ```
/// assert_eq!(nsq_conn::by_name::normalize(" dial-timeout"), "dial_timeout");
/// ```
pub fn normalize(option: &str) -> String {
    option.trim().replace('-', "_")
}

/// The entry of `names` that `option` names once [`normalize`]d.
///
/// # Errors
///
/// [`ConfigError::UnknownOption`], with the normalized name, if none does.
pub fn find<'n>(
    names: impl IntoIterator<Item = &'n &'static str>,
    option: &str,
) -> Result<&'static str, ConfigError> {
    let normalized = normalize(option);
    names
        .into_iter()
        .copied()
        .find(|name| *name == normalized)
        .ok_or(ConfigError::UnknownOption(normalized))
}

/// Parses a duration in Go's syntax (`300ms`, `1.5s`, `1m30s`, `2h`; units `ns`, `us`, `µs`,
/// `ms`, `s`, `m`, `h`) or a whole number of milliseconds. `None` if it is neither.
pub fn parse_duration(text: &str) -> Option<Duration> {
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

/// Parses a boolean as Go's `strconv.ParseBool` does: `true`, `TRUE`, `True`, `t`, `T`, `1`
/// and their false counterparts. `None` for anything else.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim() {
        "true" | "TRUE" | "True" | "1" | "t" | "T" => Some(true),
        "false" | "FALSE" | "False" | "0" | "f" | "F" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_go_syntax_or_milliseconds() {
        assert_eq!(parse_duration("1500ms"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration(" 10us "), Some(Duration::from_micros(10)));
        for bad in ["", "5 s", "ms", "1d", "-1s", "1.5.5s"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn booleans_take_go_syntax() {
        for (text, expected) in [("true", true), ("T", true), ("1", true), ("F", false)] {
            assert_eq!(parse_bool(text), Some(expected), "{text}");
        }
        for bad in ["yes", "on", "", "2"] {
            assert_eq!(parse_bool(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn errors_name_the_option_and_quote_the_value() {
        let value = Value {
            option: "sample_rate",
            text: "300",
        };
        let err = value.small::<u8>("0 to 99").unwrap_err();
        assert_eq!(err.option(), "sample_rate");
        assert_eq!(
            err.to_string(),
            r#"invalid sample_rate "300": expected 0 to 99"#
        );
        assert_eq!(value.int().unwrap(), 300);
        assert!(value.boolean().is_err());
    }

    #[test]
    fn kinds_check_the_syntax_of_ignored_options() {
        let v = |text| Value {
            option: "some_option",
            text,
        };
        let strategy = Kind::OneOf {
            values: &["exponential", "full_jitter"],
            expected: "exponential or full_jitter",
        };
        for (kind, good, bad) in [
            (Kind::Duration, "2s", "none"),
            (Kind::DurationOrNone, "none", "never"),
            (Kind::Float, "0.3", "a third"),
            (Kind::Uint, "3", "-3"),
            (Kind::Bool, "false", "no"),
            (strategy, " full_jitter", "linear"),
        ] {
            v(good).check(kind).unwrap();
            let err = v(bad).check(kind).unwrap_err();
            assert_eq!(err.option(), "some_option", "{kind:?}");
        }
        v("anything at all").check(Kind::Text).unwrap();
    }

    #[test]
    fn names_are_found_with_dashes_or_underscores() {
        let names = ["dial_timeout", "max_in_flight"];
        assert_eq!(find(&names, "max-in-flight").unwrap(), "max_in_flight");
        assert_eq!(find(&names, " dial_timeout ").unwrap(), "dial_timeout");
        let err = find(&names, "max-inflight").unwrap_err();
        assert!(matches!(&err, ConfigError::UnknownOption(name) if name == "max_inflight"));
    }
}
