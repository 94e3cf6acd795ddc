//! What a caller learns about a publish: the error type it matches on.

use std::fmt;
use std::sync::Arc;

use nsq_conn::ConnError;
use nsq_proto::{ErrorCode, InvalidName, InvalidPublish, ServerError};

/// Why a publish failed, sorted by what is known about delivery.
///
/// | variant | stored by nsqd? | retry on this producer |
/// |---|---|---|
/// | [`Invalid`](Self::Invalid) | no, nothing was sent | pointless: fix the request |
/// | [`Rejected`](Self::Rejected) | no, nsqd refused it | only for nsqd's transient `E_PUB_FAILED` and `E_DPUB_FAILED` |
/// | [`MaybeStored`](Self::MaybeStored) | maybe: nsqd failed part way through an MPUB | may duplicate |
/// | [`NotSent`](Self::NotSent) | no, never written or never executed | safe (after `NotSent(Closed)`, only elsewhere) |
/// | [`Unknown`](Self::Unknown) | maybe | may duplicate |
/// | [`TimedOut`](Self::TimedOut) | maybe | may duplicate |
/// | [`Closed`](Self::Closed) | no | no: the producer is closed |
///
/// [`is_retry_safe`](Self::is_retry_safe) and [`delivery`](Self::delivery) sum this up.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// Refused locally before anything was queued: nsqd would have refused it and closed the
    /// connection, failing every other request on it.
    #[error("invalid publish: {0}")]
    Invalid(#[from] InvalidPublish),
    /// The topic name is not one nsqd accepts.
    #[error(transparent)]
    InvalidTopic(#[from] InvalidName),
    /// nsqd answered with an error frame; the message was not stored. nsqd closes the connection
    /// after any error, so the producer reconnects.
    #[error("rejected by nsqd: {0}")]
    Rejected(ServerError),
    /// nsqd answered an MPUB with an error after which some of its messages may be stored:
    /// `E_MPUB_FAILED`. nsqd stores an MPUB's messages one at a time and stops at the first
    /// failure, so the messages before it are stored and the rest are not; which ones, the
    /// error does not say. Every publish that went out in that MPUB, including publishes
    /// batched into it automatically, gets this error, and a retry may duplicate what was
    /// stored. nsqd closes the connection after the error, so the producer reconnects.
    #[error("nsqd failed the MPUB; some of its messages may be stored: {0}")]
    MaybeStored(ServerError),
    /// The request was never written, or was written behind a request nsqd rejected (nsqd stops
    /// reading at its first error, so it never executed it). Not stored; safe to retry.
    #[error("not sent: {0}")]
    NotSent(NotSentReason),
    /// The request was written, then the connection failed before nsqd answered. It may or may
    /// not have been stored.
    #[error("outcome unknown: the connection failed after the request was written{}", cause_suffix(.0))]
    Unknown(Option<Arc<ConnError>>),
    /// The publish timeout passed after the request was written. It may or may not have been
    /// stored; treat it like [`Unknown`](Self::Unknown).
    #[error("timed out waiting for nsqd's reply; the message may or may not be stored")]
    TimedOut,
    /// The producer was closed before this request.
    #[error("the producer is closed")]
    Closed,
    /// A [`Pool`](crate::Pool) with [`Strategy::FanOut`](crate::Strategy::FanOut) sent the
    /// message to several nodes and not every copy was acknowledged: each node's outcome.
    #[error("{}", describe_copies(.0))]
    Copies(Copies),
}

/// Each node's outcome of a message a fan-out [`Pool`](crate::Pool) sent to several nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct Copies(pub(crate) Arc<[(String, Result<(), PublishError>)]>);

impl Copies {
    /// Each copy: the node's address and its outcome there.
    pub fn copies(&self) -> &[(String, Result<(), PublishError>)] {
        &self.0
    }

    /// How many copies nsqd acknowledged.
    pub fn acknowledged(&self) -> usize {
        self.0.iter().filter(|(_, r)| r.is_ok()).count()
    }
}

fn describe_copies(copies: &Copies) -> String {
    let total = copies.copies().len();
    format!(
        "{} of {total} copies acknowledged ({copies})",
        copies.acknowledged()
    )
}

impl fmt::Display for Copies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (addr, result)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            match result {
                Ok(()) => write!(f, "{addr}: acknowledged")?,
                Err(err) => write!(f, "{addr}: {err}")?,
            }
        }
        Ok(())
    }
}

/// Why a request was not sent.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum NotSentReason {
    /// It was queued behind a request nsqd rejected; nsqd closed the connection without reading
    /// it.
    Aborted,
    /// Its deadline passed before it could be written (nsqd unreachable, or the queue was slow).
    DeadlineExpired,
    /// The queue was full and the producer is configured to fail fast.
    QueueFull,
    /// nsqd could not be reached; the last connection error.
    Unavailable(Arc<ConnError>),
    /// The producer closed before the request could be written.
    Closed,
    /// The caller withdrew it with [`Publish::cancel`](crate::Publish::cancel) before it was
    /// written.
    Cancelled,
    /// Its deadline passed while no node of a [`Pool`](crate::Pool) was up; each node's last
    /// connection error.
    NoNodeUp(NodesDown),
}

/// The nodes of a [`Pool`](crate::Pool) that were down, each with its last connection error.
#[derive(Debug, Clone)]
pub struct NodesDown(pub(crate) Arc<[NodeDown]>);

impl NodesDown {
    /// Each node that was down.
    pub fn nodes(&self) -> &[NodeDown] {
        &self.0
    }
}

/// One node of a [`Pool`](crate::Pool) that was down.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NodeDown {
    /// The node's nsqd address.
    pub addr: String,
    /// Why its last connection attempt failed or its last connection ended, if known.
    pub last_error: Option<Arc<ConnError>>,
}

impl fmt::Display for NodesDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("the pool has no nodes");
        }
        for (i, node) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            match &node.last_error {
                Some(err) => write!(f, "{}: {err}", node.addr)?,
                None => write!(f, "{}: not connected", node.addr)?,
            }
        }
        Ok(())
    }
}

impl fmt::Display for NotSentReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Aborted => f.write_str("queued behind a request nsqd rejected"),
            Self::DeadlineExpired => {
                f.write_str("the publish timeout passed before it was written")
            }
            Self::QueueFull => f.write_str("the queue is full"),
            Self::Unavailable(err) => write!(f, "nsqd is unavailable: {err}"),
            Self::Closed => f.write_str("the producer closed before it was written"),
            Self::Cancelled => f.write_str("cancelled by the caller before it was written"),
            Self::NoNodeUp(nodes) => write!(f, "no nsqd of the pool is up ({nodes})"),
        }
    }
}

/// What is known about whether nsqd stored a message that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Certainly not stored.
    NotStored,
    /// Maybe stored: a retry may duplicate it.
    Unknown,
}

impl PublishError {
    /// Whether nsqd may have stored the message.
    pub fn delivery(&self) -> Delivery {
        match self {
            Self::MaybeStored(_) | Self::Unknown(_) | Self::TimedOut => Delivery::Unknown,
            // Stored if any copy was acknowledged, maybe if any copy's outcome is unknown.
            Self::Copies(copies) => {
                let stored = copies.copies().iter().any(|(_, r)| {
                    r.as_ref()
                        .map_or_else(|e| e.delivery() == Delivery::Unknown, |()| true)
                });
                if stored {
                    Delivery::Unknown
                } else {
                    Delivery::NotStored
                }
            }
            Self::Invalid(_)
            | Self::InvalidTopic(_)
            | Self::Rejected(_)
            | Self::NotSent(_)
            | Self::Closed => Delivery::NotStored,
        }
    }

    /// Whether publishing the same message again *on this producer* cannot duplicate it and may
    /// succeed: true for [`NotSent`](Self::NotSent) (except [`NotSentReason::Closed`]) and for
    /// nsqd's transient storage failures of a single message (`E_PUB_FAILED`,
    /// `E_DPUB_FAILED`). Never true for [`MaybeStored`](Self::MaybeStored) (`E_MPUB_FAILED`),
    /// since part of the MPUB may be stored.
    ///
    /// This mixes two questions; [`delivery`](Self::delivery) answers the first alone. A
    /// message whose delivery is [`Delivery::NotStored`] can be published elsewhere (another
    /// producer, another nsqd) without duplicating it, even when retrying here is pointless:
    /// after `NotSent(Closed)` this producer can only fail again.
    pub fn is_retry_safe(&self) -> bool {
        match self {
            Self::NotSent(NotSentReason::Closed) => false,
            Self::NotSent(_) => true,
            Self::Rejected(err) => {
                matches!(err.code(), ErrorCode::PubFailed | ErrorCode::DpubFailed)
            }
            Self::Copies(copies) => copies
                .copies()
                .iter()
                .all(|(_, r)| r.as_ref().is_err_and(Self::is_retry_safe)),
            _ => false,
        }
    }

    /// nsqd's error, for a rejection or a [`MaybeStored`](Self::MaybeStored) failure.
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            Self::Rejected(err) | Self::MaybeStored(err) => Some(err),
            _ => None,
        }
    }
}

impl PartialEq for PublishError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Invalid(a), Self::Invalid(b)) => a == b,
            (Self::InvalidTopic(a), Self::InvalidTopic(b)) => a == b,
            (Self::Rejected(a), Self::Rejected(b)) => a == b,
            (Self::MaybeStored(a), Self::MaybeStored(b)) => a == b,
            (Self::NotSent(a), Self::NotSent(b)) => a == b,
            (Self::Unknown(a), Self::Unknown(b)) => same_cause(a.as_ref(), b.as_ref()),
            (Self::TimedOut, Self::TimedOut) | (Self::Closed, Self::Closed) => true,
            (Self::Copies(a), Self::Copies(b)) => a == b,
            _ => false,
        }
    }
}

impl PartialEq for NotSentReason {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Unavailable(a), Self::Unavailable(b)) => Arc::ptr_eq(a, b),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

fn same_cause(a: Option<&Arc<ConnError>>, b: Option<&Arc<ConnError>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

fn cause_suffix(cause: &Option<Arc<ConnError>>) -> String {
    cause.as_ref().map(|c| format!(": {c}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn retry_safety_follows_delivery_knowledge() {
        let rejected = |payload: &'static [u8]| {
            PublishError::Rejected(ServerError::parse(Bytes::from_static(payload)))
        };
        assert!(PublishError::NotSent(NotSentReason::Aborted).is_retry_safe());
        // Not stored, so safe to publish elsewhere; but this producer is closed.
        let closed = PublishError::NotSent(NotSentReason::Closed);
        assert!(!closed.is_retry_safe());
        assert_eq!(closed.delivery(), Delivery::NotStored);
        assert!(rejected(b"E_PUB_FAILED PUB failed exiting").is_retry_safe());
        assert!(rejected(b"E_DPUB_FAILED DPUB failed exiting").is_retry_safe());
        assert!(!rejected(b"E_BAD_MESSAGE PUB message too big 105 > 100").is_retry_safe());
        assert_eq!(
            rejected(b"E_PUB_FAILED PUB failed exiting").delivery(),
            Delivery::NotStored
        );
        let mpub_failed =
            ServerError::parse(Bytes::from_static(b"E_MPUB_FAILED MPUB failed exiting"));
        let maybe_stored = PublishError::MaybeStored(mpub_failed.clone());
        assert!(!maybe_stored.is_retry_safe());
        assert_eq!(maybe_stored.delivery(), Delivery::Unknown);
        assert_eq!(maybe_stored.server_error(), Some(&mpub_failed));
        assert_eq!(maybe_stored, PublishError::MaybeStored(mpub_failed.clone()));
        assert_ne!(maybe_stored, PublishError::Rejected(mpub_failed));
        assert!(!PublishError::TimedOut.is_retry_safe());
        assert!(!PublishError::Unknown(None).is_retry_safe());
        assert!(!PublishError::Closed.is_retry_safe());
        assert_eq!(PublishError::TimedOut.delivery(), Delivery::Unknown);
        assert_eq!(PublishError::Unknown(None).delivery(), Delivery::Unknown);
        assert_eq!(
            PublishError::NotSent(NotSentReason::QueueFull).delivery(),
            Delivery::NotStored
        );
    }
}

/// Why [`Producer::ping`](crate::Producer::ping) or [`Producer::connect`](crate::Producer::connect)
/// failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PingFailure {
    /// Connecting or handshaking failed, or the connection failed while the NOP was written.
    #[error(transparent)]
    Connection(Arc<ConnError>),
    /// The producer is closed.
    #[error("the producer is closed")]
    Closed,
    /// A [`Pool`](crate::Pool) has no node to connect to: nsqlookupd listed none.
    #[error("the pool has no nsqd node")]
    NoNode,
}
