//! What happened to the messages: counters while forwarding, status lines, the final report
//! and the exit status.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use nsq_consumer::DrainReport;

use crate::console::count;

/// A usage error: a bad flag or option.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Could not start: no source nsqd, a file not writable, no signal handler.
pub(crate) const EXIT_CANNOT_START: u8 = 4;
/// Stopped by an interrupt, after the drain: the usual status of a process ended by a signal.
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// Every source message taken ends in exactly one of these (or is still in flight).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Acknowledged by a destination nsqd, then finished at the source.
    pub(crate) forwarded: AtomicU64,
    /// Certainly not stored at the destination (after trying the other nodes): requeued.
    pub(crate) requeued: AtomicU64,
    /// Maybe stored at the destination: requeued, so it may arrive twice.
    pub(crate) unknown_requeued: AtomicU64,
    /// Maybe stored at the destination: written to `--unknown-out` and finished.
    pub(crate) unknown_written: AtomicU64,
    /// Not forwarded by the JSON flags: finished.
    pub(crate) filtered: AtomicU64,
    /// Left unanswered by a second interrupt while their publish was under way: requeued at
    /// the source, and maybe stored at the destination.
    pub(crate) abandoned: AtomicU64,
    /// Acknowledged by the destination, but the source connection was gone before the FIN:
    /// the source delivers them again after its message timeout, so they arrive twice.
    pub(crate) finish_lost: AtomicU64,
    /// Bytes of the bodies forwarded.
    pub(crate) bytes: AtomicU64,
}

/// A reading of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) forwarded: u64,
    pub(crate) requeued: u64,
    pub(crate) unknown_requeued: u64,
    pub(crate) unknown_written: u64,
    pub(crate) filtered: u64,
    pub(crate) abandoned: u64,
    pub(crate) finish_lost: u64,
    pub(crate) bytes: u64,
}

impl Counters {
    /// Adds one to `counter`.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    /// The counters now.
    pub(crate) fn read(&self) -> Counts {
        Counts {
            forwarded: self.forwarded.load(Relaxed),
            requeued: self.requeued.load(Relaxed),
            unknown_requeued: self.unknown_requeued.load(Relaxed),
            unknown_written: self.unknown_written.load(Relaxed),
            filtered: self.filtered.load(Relaxed),
            abandoned: self.abandoned.load(Relaxed),
            finish_lost: self.finish_lost.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
        }
    }
}

/// A status line: the counts and the rate since the start.
pub(crate) struct Status<'a> {
    pub(crate) counts: &'a Counts,
    pub(crate) elapsed: Duration,
}

impl fmt::Display for Status<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.counts;
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            c.forwarded as f64 / secs
        } else {
            0.0
        };
        write!(
            f,
            "{} forwarded ({}/s), {} requeued, {} unknown, {} filtered",
            count(c.forwarded),
            count(rate as u64),
            count(c.requeued),
            count(c.unknown_requeued + c.unknown_written),
            count(c.filtered),
        )
    }
}

/// The final report.
pub(crate) struct Report {
    pub(crate) counts: Counts,
    pub(crate) elapsed: Duration,
    pub(crate) signal: Option<&'static str>,
    /// The consumers' drains, summed.
    pub(crate) drain: DrainReport,
    /// Where unknown messages were written.
    pub(crate) unknown_out: Option<String>,
}

impl Report {
    /// The exit status: the tool forwards until it is interrupted.
    pub(crate) fn exit_code(&self) -> u8 {
        EXIT_INTERRUPTED
    }

    /// The report as JSON, for `--report-json`: every count by name, and the source side.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let c = &self.counts;
        let d = &self.drain;
        serde_json::json!({
            "signal": self.signal,
            "elapsed_secs": self.elapsed.as_secs_f64(),
            "forwarded": c.forwarded,
            "forwarded_bytes": c.bytes,
            "requeued": c.requeued,
            "unknown_requeued": c.unknown_requeued,
            "unknown_written": c.unknown_written,
            "filtered": c.filtered,
            "abandoned": c.abandoned,
            "finish_lost": c.finish_lost,
            "source": {
                "received": d.received,
                "finished": d.finished,
                "requeued": d.requeued,
                "requeued_by_drain": d.requeued_by_drain,
                "given_up": d.given_up,
                "lost_with_connection": d.lost_with_connection,
                "left_in_flight": d.left_in_flight,
            },
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        let secs = self.elapsed.as_secs_f64();
        match self.signal {
            Some(signal) => writeln!(f, "nsq-to-nsq: stopped by {signal} after {secs:.1} s")?,
            None => writeln!(f, "nsq-to-nsq: stopped after {secs:.1} s")?,
        }
        let rate = if secs > 0.0 {
            c.forwarded as f64 / secs
        } else {
            0.0
        };
        writeln!(
            f,
            "  forwarded:  {:>12}  acknowledged by the destination, finished ({}/s, {})",
            count(c.forwarded),
            count(rate as u64),
            crate::console::bytes(c.bytes)
        )?;
        writeln!(
            f,
            "  requeued:   {:>12}  not stored by any destination nsqd, requeued at the source",
            count(c.requeued)
        )?;
        writeln!(
            f,
            "  unknown:    {:>12}  maybe stored, requeued: may arrive twice",
            count(c.unknown_requeued)
        )?;
        if let Some(path) = &self.unknown_out {
            writeln!(
                f,
                "  unknown:    {:>12}  maybe stored, written to {path} and finished",
                count(c.unknown_written)
            )?;
        }
        writeln!(
            f,
            "  filtered:   {:>12}  not forwarded by the JSON flags, finished",
            count(c.filtered)
        )?;
        if c.abandoned > 0 {
            writeln!(
                f,
                "  abandoned:  {:>12}  publish under way at the second interrupt, requeued: may \
                 arrive twice",
                count(c.abandoned)
            )?;
        }
        if c.finish_lost > 0 {
            writeln!(
                f,
                "  FIN lost:   {:>12}  forwarded, but the source connection closed before the \
                 FIN: nsqd delivers them again",
                count(c.finish_lost)
            )?;
        }
        let d = &self.drain;
        if d.given_up > 0 {
            writeln!(
                f,
                "  given up:   {:>12}  delivered max_attempts times, logged and finished at the \
                 source, not forwarded",
                count(d.given_up)
            )?;
        }
        write!(
            f,
            "  source:     {} received, {} finished, {} requeued ({} by the drain), {} left in \
             flight",
            count(d.received),
            count(d.finished),
            count(d.requeued),
            count(d.requeued_by_drain),
            count(d.left_in_flight)
        )
    }
}
