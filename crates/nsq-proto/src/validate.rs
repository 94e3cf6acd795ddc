//! Checks a publish against nsqd's limits before it is queued (docs/protocol.md, "Limits and
//! names").

use std::time::Duration;

use bytes::Bytes;

use crate::command::mpub_body_len;
use crate::error::InvalidPublish;

/// nsqd's default `--max-msg-size`: the largest single message, in bytes.
pub const DEFAULT_MAX_MSG_SIZE: u64 = 1024 * 1024;
/// nsqd's default `--max-body-size`: the largest MPUB body, in bytes.
pub const DEFAULT_MAX_BODY_SIZE: u64 = 5 * 1024 * 1024;
/// nsqd's default `--max-req-timeout`: the longest DPUB delay.
pub const DEFAULT_MAX_DEFER: Duration = Duration::from_secs(3600);

/// The limits a publish must respect, mirroring the server's configuration.
///
/// nsqd does not advertise its limits, so they are configured; the defaults are nsqd's. Every
/// limit is inclusive, as in nsqd.
///
/// ```
/// use std::time::Duration;
/// use nsq_proto::{InvalidPublish, PublishLimits};
///
/// let limits = PublishLimits::default();
/// assert!(limits.check_pub(b"hello").is_ok());
/// assert_eq!(limits.check_pub(b""), Err(InvalidPublish::EmptyBody));
/// assert!(limits.check_dpub(Duration::from_secs(3600), b"x").is_ok());
/// assert!(limits.check_dpub(Duration::from_secs(3601), b"x").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishLimits {
    /// The largest message body in bytes (nsqd `--max-msg-size`).
    pub max_msg_size: u64,
    /// The largest MPUB body in bytes, counting the message count and each size field
    /// (nsqd `--max-body-size`).
    pub max_body_size: u64,
    /// The longest DPUB delay (nsqd `--max-req-timeout`).
    pub max_defer: Duration,
}

impl Default for PublishLimits {
    fn default() -> Self {
        Self {
            max_msg_size: DEFAULT_MAX_MSG_SIZE,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
            max_defer: DEFAULT_MAX_DEFER,
        }
    }
}

impl PublishLimits {
    /// Checks a PUB body.
    ///
    /// # Errors
    ///
    /// [`InvalidPublish::EmptyBody`] or [`InvalidPublish::MessageTooLarge`].
    pub fn check_pub(&self, body: &[u8]) -> Result<(), InvalidPublish> {
        self.check_message(None, body.len())
    }

    /// Checks the bodies of an MPUB: at least one, none empty, each within the message limit,
    /// and the whole body within the body limit.
    ///
    /// # Errors
    ///
    /// [`InvalidPublish::NoMessages`], [`InvalidPublish::EmptyMessage`],
    /// [`InvalidPublish::MessageTooLarge`] or [`InvalidPublish::BatchTooLarge`].
    pub fn check_mpub(&self, bodies: &[Bytes]) -> Result<(), InvalidPublish> {
        if bodies.is_empty() {
            return Err(InvalidPublish::NoMessages);
        }
        for (index, body) in bodies.iter().enumerate() {
            self.check_message(Some(index), body.len())?;
        }
        let size = mpub_body_len(bodies);
        if size > self.max_body_size {
            return Err(InvalidPublish::BatchTooLarge {
                size,
                max: self.max_body_size,
            });
        }
        Ok(())
    }

    /// Checks a DPUB delay and body.
    ///
    /// # Errors
    ///
    /// [`InvalidPublish::DeferTooLong`] or the errors of [`check_pub`](Self::check_pub).
    pub fn check_dpub(&self, delay: Duration, body: &[u8]) -> Result<(), InvalidPublish> {
        // Compared in whole milliseconds, as sent on the wire.
        if delay.as_millis() > self.max_defer.as_millis() {
            return Err(InvalidPublish::DeferTooLong {
                delay,
                max: self.max_defer,
            });
        }
        self.check_pub(body)
    }

    /// The MPUB body size of `bodies`, as [`check_mpub`](Self::check_mpub) compares it with
    /// `max_body_size`: 4 + the sum of (4 + each length).
    pub fn mpub_body_size(bodies: &[Bytes]) -> u64 {
        mpub_body_len(bodies)
    }

    fn check_message(&self, index: Option<usize>, len: usize) -> Result<(), InvalidPublish> {
        if len == 0 {
            return Err(match index {
                Some(index) => InvalidPublish::EmptyMessage { index },
                None => InvalidPublish::EmptyBody,
            });
        }
        if len as u64 > self.max_msg_size {
            return Err(InvalidPublish::MessageTooLarge {
                index,
                size: len as u64,
                max: self.max_msg_size,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> PublishLimits {
        PublishLimits {
            max_msg_size: 100,
            max_body_size: 1000,
            max_defer: Duration::from_millis(3_600_000),
        }
    }

    fn bodies(n: usize, len: usize) -> Vec<Bytes> {
        (0..n).map(|_| Bytes::from(vec![b'x'; len])).collect()
    }

    #[test]
    fn message_limit_is_inclusive() {
        assert!(limits().check_pub(&[1; 100]).is_ok());
        assert_eq!(
            limits().check_pub(&[1; 101]),
            Err(InvalidPublish::MessageTooLarge {
                index: None,
                size: 101,
                max: 100
            })
        );
    }

    #[test]
    fn mpub_mirrors_nsqd_size_cases() {
        // nsqd's own test cases with max-msg-size 100 and max-body-size 1000 (scenario 23).
        assert!(limits().check_mpub(&bodies(5, 100)).is_ok());
        assert_eq!(
            limits().check_mpub(&bodies(11, 100)),
            Err(InvalidPublish::BatchTooLarge {
                size: 1148,
                max: 1000
            })
        );
        let mut with_empty = bodies(5, 100);
        with_empty.push(Bytes::new());
        assert_eq!(
            limits().check_mpub(&with_empty),
            Err(InvalidPublish::EmptyMessage { index: 5 })
        );
        assert_eq!(
            limits().check_mpub(&bodies(5, 101)),
            Err(InvalidPublish::MessageTooLarge {
                index: Some(0),
                size: 101,
                max: 100
            })
        );
        assert_eq!(limits().check_mpub(&[]), Err(InvalidPublish::NoMessages));
    }

    #[test]
    fn mpub_body_limit_is_inclusive() {
        // 4 + 9 * (4 + 100) = 940; one more message of 56 makes 4 + 940 - 4 + 60 = 1000.
        let mut exact = bodies(9, 100);
        exact.push(Bytes::from(vec![b'y'; 56]));
        assert_eq!(PublishLimits::mpub_body_size(&exact), 1000);
        assert!(limits().check_mpub(&exact).is_ok());
        *exact.last_mut().unwrap() = Bytes::from(vec![b'y'; 57]);
        assert!(limits().check_mpub(&exact).is_err());
    }

    #[test]
    fn defer_bounds() {
        let l = limits();
        assert!(l.check_dpub(Duration::ZERO, b"x").is_ok());
        assert!(l.check_dpub(Duration::from_millis(3_600_000), b"x").is_ok());
        // Sub-millisecond excess truncates to the limit on the wire, so it is accepted.
        assert!(
            l.check_dpub(Duration::from_micros(3_600_000_999), b"x")
                .is_ok()
        );
        assert_eq!(
            l.check_dpub(Duration::from_millis(3_600_001), b"x"),
            Err(InvalidPublish::DeferTooLong {
                delay: Duration::from_millis(3_600_001),
                max: Duration::from_millis(3_600_000)
            })
        );
        assert_eq!(
            l.check_dpub(Duration::ZERO, b""),
            Err(InvalidPublish::EmptyBody)
        );
    }
}
