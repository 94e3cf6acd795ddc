//! The producer's counters, one method per event, and the `metrics` feature's reporting of
//! each event where it is counted; [`Stats`] is their snapshot.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::error::{Lost, NotSentReason, PublishError};
#[cfg(feature = "metrics")]
pub(crate) use crate::metrics::Timer;
use crate::stats::Stats;

/// The producer's counters, updated by the handles and the router through one method per event
/// so that the `metrics` feature, when on, reports each event where it is counted.
#[derive(Debug)]
pub(crate) struct Counters {
    queued: AtomicU64,
    /// Requests the router has taken from the channel but not written yet (still queued).
    held: AtomicU64,
    in_flight: AtomicU64,
    acked: AtomicU64,
    acked_messages: AtomicU64,
    rejected: Mutex<BTreeMap<String, u64>>,
    not_sent: AtomicU64,
    unknown: AtomicU64,
    withdrawn: AtomicU64,
    handed_back: AtomicU64,
    /// Requests ever put in the queue; `flush` waits for the ones before its call.
    accepted: AtomicU64,
    timed_out: AtomicU64,
    reconnects: AtomicU64,
    connect_failures: AtomicU64,
    bytes_written: AtomicU64,
    #[cfg(feature = "metrics")]
    metrics: crate::metrics::Metrics,
}

impl Counters {
    /// Counters of the producer for `addr` (the `addr` label of its metrics).
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(addr: &str) -> Self {
        Self {
            queued: AtomicU64::new(0),
            held: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            acked_messages: AtomicU64::new(0),
            rejected: Mutex::default(),
            not_sent: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            withdrawn: AtomicU64::new(0),
            handed_back: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            #[cfg(feature = "metrics")]
            metrics: crate::metrics::Metrics::new(addr),
        }
    }

    /// Starts timing a publish that was just called.
    #[cfg(feature = "metrics")]
    pub(crate) fn timer(&self) -> Timer {
        self.metrics.timer()
    }

    /// Starts timing a publish that was just called: nothing to time without metrics.
    #[cfg(not(feature = "metrics"))]
    pub(crate) fn timer(&self) -> Timer {
        Timer
    }

    /// A request left the queue for another node of its pool.
    pub(crate) fn handed_back(&self) {
        self.handed_back_n(1);
    }

    fn handed_back_n(&self, requests: u64) {
        self.handed_back.fetch_add(requests, Relaxed);
        #[cfg(feature = "metrics")]
        self.metrics.handed_back(requests);
    }

    /// `requests` written requests left this node of a pool to be sent again on another: nsqd
    /// did not execute them (or their outcome is unknown and the pool sends those again too).
    pub(crate) fn handed_back_written(&self, requests: usize) {
        self.answered(requests as u64);
        self.handed_back_n(requests as u64);
    }

    /// Requests queued or written and not answered: the load a pool balances on.
    pub(crate) fn outstanding(&self) -> u64 {
        self.queued.load(Relaxed) + self.held.load(Relaxed) + self.in_flight.load(Relaxed)
    }

    /// A request entered the queue.
    pub(crate) fn enqueued(&self) {
        self.queued.fetch_add(1, Relaxed);
        // Release: a flush that sees this count also finds the request in the channel.
        self.accepted.fetch_add(1, Release);
        #[cfg(feature = "metrics")]
        self.metrics.queued(1.0);
    }

    /// The router took a request from the channel; it counts as queued while it is held.
    pub(crate) fn dequeued(&self) {
        self.queued.fetch_sub(1, Relaxed);
        #[cfg(feature = "metrics")]
        self.metrics.queued(-1.0);
    }

    /// The router holds `held` requests taken from the channel and not written yet.
    pub(crate) fn set_held(&self, held: u64) {
        #[cfg(not(feature = "metrics"))]
        self.held.store(held, Relaxed);
        #[cfg(feature = "metrics")]
        {
            // The router is the only writer, so the difference is exact.
            let before = self.held.swap(held, Relaxed);
            if held != before {
                self.metrics.queued(held as f64 - before as f64);
            }
        }
    }

    /// `requests` requests went out in one command of `bytes` bytes.
    pub(crate) fn wrote(&self, requests: usize, bytes: usize) {
        self.bytes_written.fetch_add(bytes as u64, Relaxed);
        self.in_flight.fetch_add(requests as u64, Relaxed);
        #[cfg(feature = "metrics")]
        {
            self.metrics.bytes_written(bytes as u64);
            self.metrics.in_flight(requests as f64);
        }
    }

    /// Automatic batching wrote `requests` PUBs as one command.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn batched(&self, requests: usize) {
        #[cfg(feature = "metrics")]
        self.metrics.batch(requests);
    }

    fn answered(&self, requests: u64) {
        self.in_flight.fetch_sub(requests, Relaxed);
        #[cfg(feature = "metrics")]
        self.metrics.in_flight(-(requests as f64));
    }

    /// nsqd acknowledged `requests` written requests, publishing `messages` messages.
    pub(crate) fn acked(&self, requests: usize, messages: u64) {
        let requests = requests as u64;
        self.acked.fetch_add(requests, Relaxed);
        self.acked_messages.fetch_add(messages, Relaxed);
        #[cfg(feature = "metrics")]
        self.metrics.acked(requests, messages);
        self.answered(requests);
    }

    /// nsqd rejected `requests` written requests with `code`.
    pub(crate) fn rejected(&self, code: &str, requests: usize) {
        let requests = requests as u64;
        {
            let mut map = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
            *map.entry(code.to_owned()).or_default() += requests;
        }
        #[cfg(feature = "metrics")]
        self.metrics.rejected(code, requests);
        self.answered(requests);
    }

    /// The outcome of `requests` written requests became unknown.
    pub(crate) fn unknown(&self, lost: Lost, requests: usize) {
        let requests = requests as u64;
        self.unknown.fetch_add(requests, Relaxed);
        #[cfg(feature = "metrics")]
        self.metrics.unknown(lost, requests);
        #[cfg(not(feature = "metrics"))]
        let _ = lost;
        self.answered(requests);
    }

    /// `requests` written requests behind a rejected one were never executed.
    pub(crate) fn aborted(&self, requests: usize) {
        let requests = requests as u64;
        self.not_sent.fetch_add(requests, Relaxed);
        #[cfg(feature = "metrics")]
        self.metrics.not_sent(&NotSentReason::Aborted, requests);
        self.answered(requests);
    }

    /// A request a pool held between nodes, after nsqd did not execute it, ended with
    /// `outcome` without being sent again (it is in flight nowhere).
    pub(crate) fn ended(&self, outcome: &PublishError) {
        match outcome {
            PublishError::Rejected { error: err, .. } => {
                let code = err.code().as_str();
                {
                    let mut map = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
                    *map.entry(code.to_owned()).or_default() += 1;
                }
                #[cfg(feature = "metrics")]
                self.metrics.rejected(code, 1);
            }
            PublishError::MaybeStored { .. }
            | PublishError::Unknown { .. }
            | PublishError::TimedOut { .. } => {
                self.unknown.fetch_add(1, Relaxed);
                #[cfg(feature = "metrics")]
                {
                    let lost = if matches!(outcome, PublishError::MaybeStored { .. }) {
                        Lost::MpubFailed
                    } else {
                        Lost::Connection
                    };
                    self.metrics.unknown(lost, 1);
                }
            }
            PublishError::NotSent(reason) => self.not_sent(reason),
            _ => self.not_sent(&NotSentReason::Closed),
        }
    }

    /// A request that was never written failed.
    pub(crate) fn not_sent(&self, reason: &NotSentReason) {
        self.not_sent.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        self.metrics.not_sent(reason, 1);
        #[cfg(not(feature = "metrics"))]
        let _ = reason;
    }

    /// How many requests ever entered the queue.
    pub(crate) fn accepted(&self) -> u64 {
        self.accepted.load(Acquire)
    }

    /// The router skipped a request its caller withdrew before it was written.
    pub(crate) fn withdrawn(&self) {
        self.withdrawn.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        self.metrics.withdrawn();
    }

    /// The callers of `requests` written requests were told they timed out.
    pub(crate) fn timed_out(&self, requests: usize) {
        self.timed_out.fetch_add(requests as u64, Relaxed);
        #[cfg(feature = "metrics")]
        self.metrics.timed_out(requests as u64);
    }

    /// A connection other than the first was made.
    pub(crate) fn reconnected(&self) {
        self.reconnects.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        self.metrics.reconnected();
    }

    /// A connection attempt failed.
    pub(crate) fn connect_failed(&self) {
        self.connect_failures.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        self.metrics.connect_failed();
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            queued: self.queued.load(Relaxed) + self.held.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            acked: self.acked.load(Relaxed),
            acked_messages: self.acked_messages.load(Relaxed),
            rejected: self
                .rejected
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            not_sent: self.not_sent.load(Relaxed),
            unknown: self.unknown.load(Relaxed),
            withdrawn: self.withdrawn.load(Relaxed),
            handed_back: self.handed_back.load(Relaxed),
            timed_out: self.timed_out.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            connect_failures: self.connect_failures.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
        }
    }
}

/// Times a publish for the latency histogram; without the `metrics` feature it is empty and
/// records nothing.
#[cfg(not(feature = "metrics"))]
#[derive(Debug, Clone)]
pub(crate) struct Timer;

#[cfg(not(feature = "metrics"))]
impl Timer {
    /// A timer that records nothing.
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        Self
    }

    /// Records nothing.
    #[inline]
    pub(crate) fn record(&self, _error: Option<&PublishError>) {}
}
