//! The state a producer's handles and its router share.

use std::sync::atomic::AtomicBool;

use tokio::sync::{Semaphore, watch};

use crate::counters::Counters;
use crate::stats::ProducerState;

/// State shared by a producer's handles and its router.
#[derive(Debug)]
pub(crate) struct ProducerShared {
    pub(crate) counters: Counters,
    pub(crate) state: watch::Sender<ProducerState>,
    /// The queue's room, in bytes: the only thing a publisher waits for. A request holds
    /// `Gate::permits` of it while queued, which bounds the number of requests as well as
    /// their bytes; a publisher that has its permits always finds a place in the channel.
    pub(crate) queue_bytes: Semaphore,
    pub(crate) closed: AtomicBool,
}
