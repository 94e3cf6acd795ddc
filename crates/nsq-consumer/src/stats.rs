//! Counters, their snapshot (`Stats`) and the report of a drain.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The consumer's counters, updated by the connection tasks.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) finished: AtomicU64,
    pub(crate) requeued: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) touched: AtomicU64,
    pub(crate) given_up: AtomicU64,
    pub(crate) requeued_by_drain: AtomicU64,
    pub(crate) late_answers: AtomicU64,
    pub(crate) lost_with_connection: AtomicU64,
    pub(crate) timed_out: AtomicU64,
    pub(crate) fin_failed: AtomicU64,
    pub(crate) req_failed: AtomicU64,
    pub(crate) touch_failed: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) disconnects: AtomicU64,
    pub(crate) backoffs: AtomicU64,
}

/// Something counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    Received,
    Finished,
    Requeued,
    Dropped,
    Touched,
    GivenUp,
    RequeuedByDrain,
    LateAnswer,
    LostWithConnection,
    TimedOut,
    FinFailed,
    ReqFailed,
    TouchFailed,
    Connect,
    Disconnect,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

impl Counters {
    pub(crate) fn add(&self, event: Event, n: u64) {
        let counter = match event {
            Event::Received => &self.received,
            Event::Finished => &self.finished,
            Event::Requeued => &self.requeued,
            Event::Dropped => &self.dropped,
            Event::Touched => &self.touched,
            Event::GivenUp => &self.given_up,
            Event::RequeuedByDrain => &self.requeued_by_drain,
            Event::LateAnswer => &self.late_answers,
            Event::LostWithConnection => &self.lost_with_connection,
            Event::TimedOut => &self.timed_out,
            Event::FinFailed => &self.fin_failed,
            Event::ReqFailed => &self.req_failed,
            Event::TouchFailed => &self.touch_failed,
            Event::Connect => &self.connects,
            Event::Disconnect => &self.disconnects,
        };
        counter.fetch_add(n, Relaxed);
    }

    pub(crate) fn snapshot(&self, connections: usize, total_rdy: u64, backoff_level: u32) -> Stats {
        let get = |c: &AtomicU64| c.load(Relaxed);
        Stats {
            received: get(&self.received),
            finished: get(&self.finished),
            requeued: get(&self.requeued),
            dropped: get(&self.dropped),
            touched: get(&self.touched),
            given_up: get(&self.given_up),
            requeued_by_drain: get(&self.requeued_by_drain),
            late_answers: get(&self.late_answers),
            lost_with_connection: get(&self.lost_with_connection),
            timed_out: get(&self.timed_out),
            fin_failed: get(&self.fin_failed),
            req_failed: get(&self.req_failed),
            touch_failed: get(&self.touch_failed),
            connects: get(&self.connects),
            disconnects: get(&self.disconnects),
            backoffs: get(&self.backoffs),
            connections,
            total_rdy,
            backoff_level,
        }
    }
}

/// A snapshot of a consumer's counters.
///
/// Every message received is, once answered, counted in exactly one of `finished`, `requeued`
/// (which includes `dropped` and `requeued_by_drain`), `given_up`, `lost_with_connection` and
/// `timed_out`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Messages delivered by nsqd.
    pub received: u64,
    /// Messages finished (`FIN` written), given-up ones excluded.
    pub finished: u64,
    /// Messages requeued (`REQ` written), by the application, on drop, or by a drain.
    pub requeued: u64,
    /// Of `requeued`: messages dropped unanswered.
    pub dropped: u64,
    /// `TOUCH`es written.
    pub touched: u64,
    /// Messages past `max_attempts`, handed to the give-up hook (or logged) and finished.
    pub given_up: u64,
    /// Of `requeued`: messages a drain requeued because they were not answered in time.
    pub requeued_by_drain: u64,
    /// Answers that came after the message was already answered (by a drain) or after its
    /// connection closed; nothing was written for them.
    pub late_answers: u64,
    /// Messages unanswered when their connection failed: nsqd redelivers them after its
    /// `msg_timeout`.
    pub lost_with_connection: u64,
    /// Deliveries nsqd timed out (its `msg_timeout` passed unanswered) and delivered again with
    /// the same id; the later delivery is the one an answer applies to.
    pub timed_out: u64,
    /// `E_FIN_FAILED` errors from nsqd (the message had timed out or was unknown).
    pub fin_failed: u64,
    /// `E_REQ_FAILED` errors from nsqd.
    pub req_failed: u64,
    /// `E_TOUCH_FAILED` errors from nsqd.
    pub touch_failed: u64,
    /// Connections established (reconnections included).
    pub connects: u64,
    /// Connections lost or closed.
    pub disconnects: u64,
    /// Backoff windows started.
    pub backoffs: u64,
    /// Connections up now.
    pub connections: usize,
    /// The sum of the RDY counts now.
    pub total_rdy: u64,
    /// The backoff level now (0: not backing off).
    pub backoff_level: u32,
}

/// What a drain did: what the consumer received over its life and how each message ended.
///
/// `received = finished + requeued + given_up + lost_with_connection + timed_out +
/// left_in_flight`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DrainReport {
    /// Messages delivered by nsqd.
    pub received: u64,
    /// Messages finished.
    pub finished: u64,
    /// Messages requeued (by the application, on drop, or by the drain).
    pub requeued: u64,
    /// Of `requeued`: those the drain requeued because they were not answered by its deadline.
    pub requeued_by_drain: u64,
    /// Messages given up after `max_attempts`.
    pub given_up: u64,
    /// Messages whose connection failed before they were answered (nsqd redelivers them after
    /// its `msg_timeout`).
    pub lost_with_connection: u64,
    /// Deliveries nsqd timed out and delivered again (counted again in `received`).
    pub timed_out: u64,
    /// Messages still unanswered when the consumer closed: 0 unless a connection could not
    /// write its last answers.
    pub left_in_flight: u64,
    /// Whether every handler finished before the deadline.
    pub within_deadline: bool,
}

impl DrainReport {
    pub(crate) fn from_stats(stats: &Stats, within_deadline: bool) -> Self {
        let answered = stats.finished
            + stats.requeued
            + stats.given_up
            + stats.lost_with_connection
            + stats.timed_out;
        Self {
            received: stats.received,
            finished: stats.finished,
            requeued: stats.requeued,
            requeued_by_drain: stats.requeued_by_drain,
            given_up: stats.given_up,
            lost_with_connection: stats.lost_with_connection,
            timed_out: stats.timed_out,
            left_in_flight: stats.received.saturating_sub(answered),
            within_deadline,
        }
    }
}

impl fmt::Display for DrainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "received {}, finished {}, requeued {} ({} by the drain), given up {}, \
             lost with a connection {}, timed out {}, left in flight {}",
            self.received,
            self.finished,
            self.requeued,
            self.requeued_by_drain,
            self.given_up,
            self.lost_with_connection,
            self.timed_out,
            self.left_in_flight
        )?;
        if !self.within_deadline {
            f.write_str("; the drain deadline passed")?;
        }
        Ok(())
    }
}
