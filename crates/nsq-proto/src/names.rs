//! Topic and channel names, checked once at construction.
//!
//! nsqd accepts a name of 1 to 64 bytes made of ASCII letters, digits, `.`, `_` and `-`, optionally
//! followed by the literal suffix `#ephemeral`, the suffix counting towards the 64 (nsqd
//! `protocol/names.go`). Anything else makes nsqd close the connection, or worse, a
//! space silently truncates the name on the wire, so these types can hold nothing else.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::{InvalidName, InvalidNameReason, NameKind};

/// The longest name nsqd accepts, in bytes, including any `#ephemeral` suffix.
pub const MAX_NAME_LEN: usize = 64;

/// The suffix that makes a topic or channel ephemeral (never written to disk).
pub const EPHEMERAL_SUFFIX: &str = "#ephemeral";

/// A topic name that nsqd accepts.
///
/// ```
/// use nsq_proto::Topic;
///
/// let topic = Topic::new("events.click_v2").unwrap();
/// assert_eq!(topic.as_str(), "events.click_v2");
/// assert!(Topic::new("a b").is_err());
/// assert!(Topic::new("metrics#ephemeral").unwrap().is_ephemeral());
/// ```
///
/// Cloning is cheap (a reference count), so a topic can travel with every message.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Topic(Arc<str>);

/// A channel name that nsqd accepts (same rule as [`Topic`]).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Channel(Arc<str>);

macro_rules! name_type {
    ($ty:ident, $kind:expr) => {
        impl $ty {
            /// Checks `name` against nsqd's rule.
            ///
            /// # Errors
            ///
            /// [`InvalidName`] says which rule the name breaks.
            pub fn new(name: impl Into<String>) -> Result<Self, InvalidName> {
                let name = name.into();
                match check_name(&name) {
                    Ok(()) => Ok(Self(Arc::from(name))),
                    Err(reason) => Err(InvalidName::new($kind, name, reason)),
                }
            }

            /// The name as it goes on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Whether the name ends in `#ephemeral`.
            pub fn is_ephemeral(&self) -> bool {
                self.0.ends_with(EPHEMERAL_SUFFIX)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl FromStr for $ty {
            type Err = InvalidName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = InvalidName;

            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = InvalidName;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<$ty> for String {
            fn from(name: $ty) -> Self {
                name.0.as_ref().to_owned()
            }
        }
    };
}

name_type!(Topic, NameKind::Topic);
name_type!(Channel, NameKind::Channel);

/// Whether nsqd would accept `name` as a topic or channel name.
pub fn is_valid_name(name: &str) -> bool {
    check_name(name).is_ok()
}

fn check_name(name: &str) -> Result<(), InvalidNameReason> {
    if name.is_empty() {
        return Err(InvalidNameReason::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(InvalidNameReason::TooLong { len: name.len() });
    }
    let stem = name.strip_suffix(EPHEMERAL_SUFFIX).unwrap_or(name);
    if stem.is_empty() {
        return Err(InvalidNameReason::Empty);
    }
    match stem.char_indices().find(|&(_, c)| !is_name_char(c)) {
        Some((index, ch)) => Err(InvalidNameReason::InvalidChar { ch, index }),
        None => Ok(()),
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_nsqd_examples() {
        for name in [
            "test",
            "test-with_period.",
            "test#ephemeral",
            ".",
            "..",
            &"a".repeat(64),
            &format!("{}#ephemeral", "a".repeat(54)),
        ] {
            assert!(Topic::new(name).is_ok(), "{name:?} should be valid");
            assert!(Channel::new(name).is_ok(), "{name:?} should be valid");
        }
    }

    #[test]
    fn rejects_nsqd_examples() {
        for name in [
            "",
            "a b",
            "a:b",
            "a/b",
            "test:ephemeral",
            "#ephemeral",
            "a#ephemeral#ephemeral",
            "a\nb",
            "ünïcode",
            &"a".repeat(65),
            &format!("{}#ephemeral", "a".repeat(55)),
        ] {
            assert!(Topic::new(name).is_err(), "{name:?} should be invalid");
        }
    }

    #[test]
    fn error_says_what_is_wrong() {
        let err = Topic::new("a:b").unwrap_err();
        assert_eq!(
            err.reason(),
            &InvalidNameReason::InvalidChar { ch: ':', index: 1 }
        );
        assert_eq!(err.name(), "a:b");
        assert_eq!(
            err.to_string(),
            "invalid topic name \"a:b\": character ':' at byte 1 is not allowed"
        );
        let err = Channel::new("x".repeat(65)).unwrap_err();
        assert_eq!(err.reason(), &InvalidNameReason::TooLong { len: 65 });
        assert_eq!(err.kind(), NameKind::Channel);
    }

    #[test]
    fn ephemeral_is_detected() {
        assert!(Topic::new("t#ephemeral").unwrap().is_ephemeral());
        assert!(!Topic::new("t").unwrap().is_ephemeral());
    }
}
