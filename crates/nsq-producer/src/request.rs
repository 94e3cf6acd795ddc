//! What a handle sends to the router.

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::completion::Responder;
use crate::stats::Stats;

/// One publish, already encoded by the caller.
#[derive(Debug)]
pub(crate) struct Request {
    /// The command's wire bytes.
    pub(crate) bytes: Bytes,
    pub(crate) responder: Responder,
    pub(crate) deadline: Option<Instant>,
    /// Messages carried: 1, or an MPUB's count.
    pub(crate) messages: u32,
    /// Queue-byte permits this request holds; returned when it leaves the queue.
    pub(crate) permits: u32,
}

/// Requests that are not publishes.
#[derive(Debug)]
pub(crate) enum Control {
    /// Connect if needed, then write a NOP and flush it.
    Ping(oneshot::Sender<Result<(), PingError>>),
    /// Write what is queued, wait for the replies, close.
    Close(oneshot::Sender<Stats>),
}

/// Why a ping failed.
pub(crate) type PingError = crate::error::PingFailure;
