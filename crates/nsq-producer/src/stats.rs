//! What a producer shows of itself: its connection state and a snapshot of its counters.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use nsq_conn::ConnError;

/// Where the producer's connection stands, as published on its `watch` channel.
///
/// Its `Debug` and `Display` forms show when the next attempt is due relative to now
/// (`in 1.6s`), not as a raw clock reading.
#[derive(Clone)]
#[non_exhaustive]
pub enum ProducerState {
    /// No connection yet; the first publish or [`ping`](crate::Producer::ping) connects.
    Idle,
    /// Dialling and handshaking.
    Connecting,
    /// Connected and publishing.
    Connected,
    /// Not connected: the last attempt failed, or the connection was lost. Publishes wait in
    /// the queue (up to their deadline) for the attempt at `next_attempt`.
    Reconnecting {
        /// The number of the next attempt, counted from 1 since the last healthy connection.
        /// The delay before it grows with each failed attempt in a row.
        attempt: u32,
        /// Why the last attempt failed or the connection ended; `None` when the producer
        /// dropped the connection itself (after a rejection or a stalled reply).
        last_error: Option<Arc<ConnError>>,
        /// When the next attempt starts.
        next_attempt: Instant,
    },
    /// Closed for good.
    Closed,
}

impl PartialEq for ProducerState {
    /// Connection errors compare by identity: two states are equal when they carry the same
    /// error value.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::Reconnecting {
                    attempt: a,
                    last_error: e,
                    next_attempt: t,
                },
                Self::Reconnecting {
                    attempt: b,
                    last_error: f,
                    next_attempt: u,
                },
            ) => {
                a == b
                    && t == u
                    && match (e, f) {
                        (None, None) => true,
                        (Some(e), Some(f)) => Arc::ptr_eq(e, f),
                        _ => false,
                    }
            }
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

impl Eq for ProducerState {}

impl fmt::Debug for ProducerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Idle => f.write_str("Idle"),
            Self::Connecting => f.write_str("Connecting"),
            Self::Connected => f.write_str("Connected"),
            Self::Closed => f.write_str("Closed"),
            Self::Reconnecting {
                attempt,
                last_error,
                next_attempt,
            } => f
                .debug_struct("Reconnecting")
                .field("attempt", attempt)
                .field("last_error", &last_error.as_ref().map(|e| e.to_string()))
                .field("next_attempt", &format_args!("{}", Due(*next_attempt)))
                .finish(),
        }
    }
}

impl fmt::Display for ProducerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Idle => f.write_str("idle"),
            Self::Connecting => f.write_str("connecting"),
            Self::Connected => f.write_str("connected"),
            Self::Closed => f.write_str("closed"),
            Self::Reconnecting {
                attempt,
                last_error,
                next_attempt,
            } => {
                write!(f, "reconnecting: attempt {attempt} {}", Due(*next_attempt))?;
                match last_error {
                    Some(err) => write!(f, " (last error: {err})"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// An instant shown relative to now: `in 1.6s`, or `now` once it has passed.
struct Due(Instant);

impl fmt::Display for Due {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let left = self.0.saturating_duration_since(Instant::now());
        if left.is_zero() {
            f.write_str("now")
        } else {
            write!(f, "in {left:.1?}")
        }
    }
}

/// A snapshot of the producer's counters. Requests are counted, not messages: an MPUB is one
/// request (`acked_messages` counts the messages acknowledged).
///
/// Every request that leaves the queue ends in exactly one of `acked`, `rejected`, `not_sent`,
/// `unknown` and `withdrawn`, or, in a [`Pool`](crate::Pool), is `handed_back` to be queued on
/// another node. `timed_out` is a separate view: callers that stopped
/// waiting after their request was written. Such a request is counted there *and* under the
/// outcome it still reaches (`acked` if nsqd's reply came within the stall grace, `unknown`
/// if the connection was dropped waiting for it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Requests waiting in the queue, not written yet.
    pub queued: u64,
    /// Requests written and waiting for nsqd's reply.
    pub in_flight: u64,
    /// Requests nsqd acknowledged.
    pub acked: u64,
    /// Messages nsqd acknowledged: `acked` counting each message of an MPUB (what a topic's
    /// depth grows by).
    pub acked_messages: u64,
    /// Requests nsqd rejected (not stored), by error code.
    pub rejected: BTreeMap<String, u64>,
    /// Requests that were never sent (or never executed) and are safe to retry.
    pub not_sent: u64,
    /// Requests written whose connection failed before the reply, and requests in an MPUB
    /// that nsqd answered with `E_MPUB_FAILED` (which may be stored in part).
    pub unknown: u64,
    /// Requests their callers withdrew before they were written, with
    /// [`Publish::cancel`](crate::Publish::cancel) or by dropping the future of
    /// [`publish`](crate::Producer::publish) (or its MPUB and DPUB forms). Never sent.
    pub withdrawn: u64,
    /// Requests a [`Pool`](crate::Pool) moved from this node to another before they were
    /// written, because this node's connection was lost or could not be made. Their outcome is
    /// counted where they end.
    pub handed_back: u64,
    /// Requests whose caller stopped waiting after they were written (also counted under their
    /// wire outcome).
    pub timed_out: u64,
    /// Successful connections after the first.
    pub reconnects: u64,
    /// Connection attempts that failed (the dial, the handshake, TLS or AUTH).
    pub connect_failures: u64,
    /// Bytes handed to the connection (before TLS or compression).
    pub bytes_written: u64,
}

impl Stats {
    /// Total rejections across codes.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}
