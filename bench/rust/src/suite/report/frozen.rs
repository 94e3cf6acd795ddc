//! Case l in the report: its table (beside j's), its notes and its goal.

use super::Report;
use super::goals::Goal;
use super::metrics::{
    ACK_PAUSE, ACKED, CLIENT_CPU, FAILED_ATTEMPTS, FAILOVER_GAP, LOWEST_WINDOW, Metric, NOT_SENT,
    OTHER, PRE_KILL_RATE, RESENT, STORED_TWICE, THROUGHPUT, UNKNOWN,
};
use super::text::{Table, rate};
use crate::suite::plan::{Case, Client};

/// A row of the frozen-node table: its label, its metric and how a value is written.
type Row = (&'static str, &'static Metric, fn(f64) -> String);

/// The heading of the frozen-node table.
pub(crate) const TITLE: &str = "Frozen node: 3 nsqd, 16 callers, publish timeout 2 s, one nsqd \
                                stopped (SIGSTOP) for 6 s a third of the way in (l):";

/// The pool must carry the load again this soon after a node freezes.
const FROZEN_GOAL_MS: f64 = 500.0;

/// How many windows after the stop the notes show.
const TRACE_WINDOWS: usize = 10;

impl Report<'_> {
    /// The pool's time to 80% of the load after the stop.
    pub(super) fn frozen_goal(&self) -> Goal {
        Goal::at_most(
            "l",
            "frozen node: survivors at 80% of the load after, pool, ms",
            self.median(Case::L, Client::Pool, &FAILOVER_GAP),
            FROZEN_GOAL_MS,
            " ms",
        )
    }

    /// Case l for each client that ran it. `None` when it did not run.
    pub(crate) fn frozen_table(&self) -> Option<Table> {
        if !self.plan.wants(Case::L) {
            return None;
        }
        let (clients, mut table) = self.cluster_table(&[Case::L], "frozen node (l)")?;
        let count = |v: f64| format!("{v:.0}");
        let millis = |v: f64| format!("{v:.0} ms");
        let percent = |v: f64| format!("{v:.0}%");
        let rows: [Row; 13] = [
            ("msgs/s over the run", &THROUGHPUT, rate),
            ("msgs/s before the stop", &PRE_KILL_RATE, rate),
            (
                "others at >= 80% of that (100 ms windows), after the stop",
                &FAILOVER_GAP,
                millis,
            ),
            (
                "longest pause without acks, 1st s after the stop",
                &ACK_PAUSE,
                millis,
            ),
            (
                "lowest 100 ms window, 1st s after the stop",
                &LOWEST_WINDOW,
                percent,
            ),
            ("acked", &ACKED, count),
            ("unknown (timed out or lost)", &UNKNOWN, count),
            ("not sent", &NOT_SENT, count),
            ("other errors", &OTHER, count),
            ("acked after a resend (may be stored twice)", &RESENT, count),
            (
                "stored twice (nsqd counts - acked - failed)",
                &STORED_TWICE,
                count,
            ),
            ("failed attempts, retries included", &FAILED_ATTEMPTS, count),
            ("client CPU, % of one core", &CLIENT_CPU, percent),
        ];
        for (label, metric, format) in rows {
            let cells = self.stat_cells(Case::L, &clients, metric, format);
            table.rows.push((label.to_owned(), cells));
        }
        Some(table)
    }

    /// Each run of l: the failed attempts by kind, and the windows after the stop.
    pub(crate) fn frozen_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for &client in &self.plan.clients {
            for outcome in self.runs(Case::L, client) {
                let Some(result) = outcome.measured() else {
                    continue;
                };
                let mut parts = Vec::new();
                if let Some(out) = result.outcomes.as_ref() {
                    if !out.attempt_errors.is_empty() {
                        let kinds: Vec<String> = out
                            .attempt_errors
                            .iter()
                            .map(|(kind, n)| format!("{n} {kind}"))
                            .collect();
                        parts.push(format!("failed attempts: {}", kinds.join(", ")));
                    }
                }
                if let (Some(at), Some(seconds)) = (result.kill_at_s, result.seconds) {
                    parts.push(format!("stopped {at:.1} s into a {seconds:.1} s run"));
                }
                let figures = outcome.failover.as_ref().and_then(|f| f.figures.as_ref());
                if let Some(figures) = figures {
                    let before = figures.pre_kill_rate / 10.0;
                    let trace: Vec<String> = figures
                        .windows
                        .iter()
                        .skip(figures.kill_window)
                        .take(TRACE_WINDOWS)
                        .map(|&c| format!("{:.0}%", f64::from(c) / before * 100.0))
                        .collect();
                    parts.push(format!(
                        "100 ms windows from the stop, % of before: {}",
                        trace.join(" ")
                    ));
                }
                if let Some(mismatch) = &outcome.mismatch {
                    parts.push(format!("count mismatch: {mismatch}"));
                }
                notes.push(format!(
                    "{} l run {}: {}",
                    client.name(),
                    outcome.round,
                    parts.join("; ")
                ));
            }
        }
        notes
    }
}
