//! What a caller learns about a publish: the error type it matches on.

use std::fmt;
use std::sync::Arc;

use nsq_conn::ConnError;
use nsq_proto::{ErrorCode, InvalidName, InvalidPublish, ServerError};

use crate::stats::ProducerState;

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
/// | [`Closed`](Self::Closed) | no | no: the producer or pool is closed |
///
/// [`is_retry_safe`](Self::is_retry_safe) and [`delivery`](Self::delivery) sum this up. Every
/// error that happened on one nsqd names it: [`addr`](Self::addr) returns its address, and the
/// error's `Display` includes it.
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
    #[error("rejected by nsqd {addr}: {error}")]
    Rejected {
        /// The address of the nsqd that rejected it.
        addr: Arc<str>,
        /// nsqd's error.
        error: ServerError,
    },
    /// nsqd answered an MPUB with an error after which some of its messages may be stored:
    /// `E_MPUB_FAILED`. nsqd stores an MPUB's messages one at a time and stops at the first
    /// failure, so the messages before it are stored and the rest are not; which ones, the
    /// error does not say. Every publish that went out in that MPUB, including publishes
    /// batched into it automatically, gets this error, and a retry may duplicate what was
    /// stored. nsqd closes the connection after the error, so the producer reconnects.
    #[error("nsqd {addr} failed the MPUB; some of its messages may be stored: {error}")]
    MaybeStored {
        /// The address of the nsqd that failed the MPUB.
        addr: Arc<str>,
        /// nsqd's error.
        error: ServerError,
    },
    /// The request was never written, or was written behind a request nsqd rejected (nsqd stops
    /// reading at its first error, so it never executed it). Not stored; safe to retry.
    #[error("not sent: {0}")]
    NotSent(NotSentReason),
    /// The request was written, then the connection failed before nsqd answered. It may or may
    /// not have been stored.
    #[error("outcome unknown: the connection to nsqd {addr} failed after the request was written{}", cause_suffix(.cause))]
    Unknown {
        /// The address of the nsqd it was written to.
        addr: Arc<str>,
        /// Why the connection ended, when known.
        cause: Option<Arc<ConnError>>,
    },
    /// The publish timeout passed after the request was written. It may or may not have been
    /// stored; treat it like [`Unknown`](Self::Unknown).
    #[error("timed out waiting for the reply of nsqd {addr}; the message may or may not be stored")]
    TimedOut {
        /// The address of the nsqd it was written to.
        addr: Arc<str>,
    },
    /// The producer or pool was closed before this request.
    #[error("the {0} is closed")]
    Closed(Publisher),
    /// A [`Pool`](crate::Pool) with [`Strategy::FanOut`](crate::Strategy::FanOut) sent the
    /// message to several nodes and not every copy was acknowledged: each node's outcome.
    #[error("{}", describe_copies(.0))]
    Copies(Copies),
}

/// What was closed, for [`PublishError::Closed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Publisher {
    /// A [`Producer`](crate::Producer).
    Producer,
    /// A [`Pool`](crate::Pool).
    Pool,
}

impl fmt::Display for Publisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Producer => "producer",
            Self::Pool => "pool",
        })
    }
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
                // An error that happened on a node names it already.
                Err(err) if err.addr().is_some() => write!(f, "{err}")?,
                Err(err) => write!(f, "{addr}: {err}")?,
            }
        }
        Ok(())
    }
}

/// Why the outcome of written requests became unknown (the `reason` label of the metrics):
/// the cause behind a [`PublishError::Unknown`] or [`PublishError::MaybeStored`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lost {
    /// The connection failed, or was dropped, before nsqd's reply.
    Connection,
    /// nsqd answered an MPUB with `E_MPUB_FAILED`: part of it may be stored.
    MpubFailed,
    /// The producer closed (at its close timeout) before nsqd's reply.
    Closed,
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
    /// The producer, or the pool that held the request, closed before the request could be
    /// written.
    Closed,
    /// The caller withdrew it with [`Publish::cancel`](crate::Publish::cancel) before it was
    /// written.
    Cancelled,
    /// Its deadline passed while no node of a [`Pool`](crate::Pool) was up; each node's last
    /// connection error.
    NoNodeUp(NodesDown),
    /// Its deadline passed while fewer nodes of a fan-out [`Pool`](crate::Pool) were up than
    /// the copies it asks for; each node's state.
    TooFewNodesUp(TooFewNodes),
}

/// A fan-out [`Pool`](crate::Pool) had fewer nodes up than the copies of a message it asks
/// for.
#[derive(Debug, Clone)]
pub struct TooFewNodes {
    pub(crate) copies: usize,
    pub(crate) up: usize,
    pub(crate) nodes: NodesDown,
}

impl TooFewNodes {
    /// The copies asked for.
    pub fn copies(&self) -> usize {
        self.copies
    }

    /// The nodes that were up (and take the message's topic).
    pub fn up(&self) -> usize {
        self.up
    }

    /// Every node of the pool, with its state.
    pub fn nodes(&self) -> &[NodeDown] {
        self.nodes.nodes()
    }
}

impl fmt::Display for TooFewNodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (copies, up) = (self.copies, self.up);
        let nodes = if up == 1 { "node" } else { "nodes" };
        write!(
            f,
            "{} of {copies} copies possible: {up} {nodes} up ({})",
            up.min(copies),
            self.nodes
        )
    }
}

/// Nodes of a [`Pool`](crate::Pool), each with its state and last connection error: the nodes
/// that were down when no node was up, or every node when a fan-out found too few up.
#[derive(Debug, Clone)]
pub struct NodesDown(pub(crate) Arc<[NodeDown]>);

impl NodesDown {
    /// Each node that was down.
    pub fn nodes(&self) -> &[NodeDown] {
        &self.0
    }
}

/// One node of a [`Pool`](crate::Pool), as an error reports it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NodeDown {
    /// The node's nsqd address.
    pub addr: String,
    /// Why its last connection attempt failed or its last connection ended, if known.
    pub last_error: Option<Arc<ConnError>>,
    /// Its connection state then.
    pub state: ProducerState,
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
                Some(err) => write!(f, "{}: down: {err}", node.addr)?,
                None => write!(f, "{}: {}", node.addr, node.state)?,
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
            Self::Closed => f.write_str("closed before it was written"),
            Self::Cancelled => f.write_str("cancelled by the caller before it was written"),
            Self::NoNodeUp(nodes) => write!(f, "no nsqd of the pool is up ({nodes})"),
            Self::TooFewNodesUp(too_few) => too_few.fmt(f),
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
            Self::MaybeStored { .. } | Self::Unknown { .. } | Self::TimedOut { .. } => {
                Delivery::Unknown
            }
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
            | Self::Rejected { .. }
            | Self::NotSent(_)
            | Self::Closed(_) => Delivery::NotStored,
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
            Self::Rejected { error, .. } => {
                matches!(error.code(), ErrorCode::PubFailed | ErrorCode::DpubFailed)
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
            Self::Rejected { error, .. } | Self::MaybeStored { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The address of the nsqd the error happened on: for a rejection, a
    /// [`MaybeStored`](Self::MaybeStored) failure, an [`Unknown`](Self::Unknown) outcome or a
    /// timeout. `None` for errors of no single node (refused before queuing, not sent, several
    /// copies).
    pub fn addr(&self) -> Option<&str> {
        match self {
            Self::Rejected { addr, .. }
            | Self::MaybeStored { addr, .. }
            | Self::Unknown { addr, .. }
            | Self::TimedOut { addr } => Some(addr),
            _ => None,
        }
    }
}

impl PartialEq for PublishError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Invalid(a), Self::Invalid(b)) => a == b,
            (Self::InvalidTopic(a), Self::InvalidTopic(b)) => a == b,
            (Self::Rejected { addr, error }, Self::Rejected { addr: a, error: e })
            | (Self::MaybeStored { addr, error }, Self::MaybeStored { addr: a, error: e }) => {
                addr == a && error == e
            }
            (Self::NotSent(a), Self::NotSent(b)) => a == b,
            (Self::Unknown { addr, cause }, Self::Unknown { addr: a, cause: c }) => {
                addr == a && same_cause(cause.as_ref(), c.as_ref())
            }
            (Self::TimedOut { addr }, Self::TimedOut { addr: a }) => addr == a,
            (Self::Closed(a), Self::Closed(b)) => a == b,
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

    fn addr() -> Arc<str> {
        Arc::from("10.0.0.7:4150")
    }

    fn server_error(text: &'static [u8]) -> ServerError {
        ServerError::parse(Bytes::from_static(text))
    }

    #[test]
    fn retry_safety_follows_delivery_knowledge() {
        let rejected = |payload: &'static [u8]| PublishError::Rejected {
            addr: addr(),
            error: server_error(payload),
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
        let mpub_failed = server_error(b"E_MPUB_FAILED MPUB failed exiting");
        let maybe_stored = PublishError::MaybeStored {
            addr: addr(),
            error: mpub_failed.clone(),
        };
        assert!(!maybe_stored.is_retry_safe());
        assert_eq!(maybe_stored.delivery(), Delivery::Unknown);
        assert_eq!(maybe_stored.server_error(), Some(&mpub_failed));
        assert_ne!(
            maybe_stored,
            PublishError::MaybeStored {
                addr: Arc::from("10.0.0.8:4150"),
                error: mpub_failed.clone()
            }
        );
        assert_ne!(
            maybe_stored,
            PublishError::Rejected {
                addr: addr(),
                error: mpub_failed
            }
        );
        let timed_out = PublishError::TimedOut { addr: addr() };
        let unknown = PublishError::Unknown {
            addr: addr(),
            cause: None,
        };
        assert!(!timed_out.is_retry_safe());
        assert!(!unknown.is_retry_safe());
        assert!(!PublishError::Closed(Publisher::Pool).is_retry_safe());
        assert_eq!(timed_out.delivery(), Delivery::Unknown);
        assert_eq!(unknown.delivery(), Delivery::Unknown);
        assert_eq!(
            PublishError::NotSent(NotSentReason::QueueFull).delivery(),
            Delivery::NotStored
        );
    }

    #[test]
    fn errors_of_one_nsqd_name_it() {
        let errors = [
            PublishError::Rejected {
                addr: addr(),
                error: server_error(b"E_BAD_TOPIC PUB topic name \"a b\" is not valid"),
            },
            PublishError::MaybeStored {
                addr: addr(),
                error: server_error(b"E_MPUB_FAILED MPUB failed exiting"),
            },
            PublishError::Unknown {
                addr: addr(),
                cause: Some(Arc::new(ConnError::Closed)),
            },
            PublishError::TimedOut { addr: addr() },
        ];
        for err in &errors {
            assert_eq!(err.addr(), Some("10.0.0.7:4150"));
            assert!(err.to_string().contains("nsqd 10.0.0.7:4150"), "{err}");
        }
        assert_eq!(
            errors[0].to_string(),
            "rejected by nsqd 10.0.0.7:4150: E_BAD_TOPIC PUB topic name \"a b\" is not valid"
        );
        assert_eq!(
            errors[2].to_string(),
            "outcome unknown: the connection to nsqd 10.0.0.7:4150 failed after the request \
             was written: the nsqd connection is closed"
        );
        assert_eq!(
            errors[3].to_string(),
            "timed out waiting for the reply of nsqd 10.0.0.7:4150; the message may or may not \
             be stored"
        );
        // A copy's error names its node once.
        let copies = Copies(Arc::from(vec![
            ("10.0.0.6:4150".to_owned(), Ok(())),
            ("10.0.0.7:4150".to_owned(), Err(errors[3].clone())),
            (
                "10.0.0.8:4150".to_owned(),
                Err(PublishError::NotSent(NotSentReason::QueueFull)),
            ),
        ]));
        assert_eq!(
            PublishError::Copies(copies).to_string(),
            "1 of 3 copies acknowledged (10.0.0.6:4150: acknowledged; timed out waiting for the \
             reply of nsqd 10.0.0.7:4150; the message may or may not be stored; 10.0.0.8:4150: \
             not sent: the queue is full)"
        );
    }

    #[test]
    fn closed_says_what_closed() {
        assert_eq!(
            PublishError::Closed(Publisher::Producer).to_string(),
            "the producer is closed"
        );
        assert_eq!(
            PublishError::Closed(Publisher::Pool).to_string(),
            "the pool is closed"
        );
    }

    #[test]
    fn too_few_nodes_says_how_many_copies_are_possible_and_each_nodes_state() {
        let node = |addr: &str, state: ProducerState, last_error: Option<ConnError>| NodeDown {
            addr: addr.to_owned(),
            last_error: last_error.map(Arc::new),
            state,
        };
        let refused = ConnError::Connect {
            address: "127.0.0.1:4152".parse().unwrap(),
            source: Arc::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        };
        let reconnecting = ProducerState::Reconnecting {
            attempt: 2,
            last_error: Some(Arc::new(refused.clone())),
            next_attempt: std::time::Instant::now(),
        };
        let too_few = TooFewNodes {
            copies: 3,
            up: 2,
            nodes: NodesDown(Arc::from(vec![
                node("127.0.0.1:4150", ProducerState::Connected, None),
                node("127.0.0.1:4151", ProducerState::Connected, None),
                node("127.0.0.1:4152", reconnecting, Some(refused)),
            ])),
        };
        let text = PublishError::NotSent(NotSentReason::TooFewNodesUp(too_few)).to_string();
        assert_eq!(
            text,
            "not sent: 2 of 3 copies possible: 2 nodes up (127.0.0.1:4150: connected; \
             127.0.0.1:4151: connected; 127.0.0.1:4152: down: could not connect to \
             127.0.0.1:4152: connection refused)"
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
    #[error("nsqlookupd lists no nsqd node")]
    NoNode,
}

/// The errors of the nsqlookupd a [`Pool`](crate::Pool) polled, each naming its nsqlookupd.
#[derive(Debug, Clone)]
pub struct LookupdsFailed(pub(crate) Arc<[String]>);

impl LookupdsFailed {
    /// Each nsqlookupd's error, as text.
    pub fn errors(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for LookupdsFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}
