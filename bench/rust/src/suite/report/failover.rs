//! Cases j and j0 in the report: their table, side by side for each client, and their notes.

use super::metrics::{
    ACK_PAUSE, ACKED, BACK, FAILED_ATTEMPTS, FAILOVER_GAP, KILLED_NODE_ACKED_AFTER, LOWEST_WINDOW,
    Metric, NOT_SENT, OTHER, PRE_KILL_RATE, RESENT, RESTARTED, THROUGHPUT, UNKNOWN,
};
use super::text::{Table, rate};
use super::{Report, Status};
use crate::suite::plan::{Case, Client};

impl Report<'_> {
    /// The clients that ran any of `cases` (of the three-nsqd cluster), and an empty table with
    /// a column for each under `title`. `None` when no client ran them.
    pub(super) fn cluster_table(
        &self,
        cases: &[Case],
        title: &str,
    ) -> Option<(Vec<Client>, Table)> {
        let clients: Vec<Client> = self
            .plan
            .clients
            .iter()
            .copied()
            .filter(|&c| {
                cases
                    .iter()
                    .any(|&case| matches!(self.status(case, c), Status::Ok))
            })
            .collect();
        if clients.is_empty() {
            return None;
        }
        let mut header = vec![title.to_owned()];
        header.extend(clients.iter().map(|c| match c {
            Client::Pool => "pool (3 nsqd)".to_owned(),
            Client::GoNsq => "go-nsq (3 Producers)".to_owned(),
            other => other.name().to_owned(),
        }));
        let table = Table {
            header,
            rows: Vec::new(),
        };
        Some((clients, table))
    }

    /// Cases j and j0 side by side for each client that ran them: rates, the failover gap and
    /// the outcomes. `None` when neither ran.
    pub(crate) fn failover_table(&self) -> Option<Table> {
        if !(self.plan.wants(Case::J) || self.plan.wants(Case::J0)) {
            return None;
        }
        let (clients, mut table) = self.cluster_table(&[Case::J, Case::J0], "failover (j, j0)")?;
        let cell = |case: Case, metric: &Metric, format: fn(f64) -> String| {
            self.stat_cells(case, &clients, metric, format)
        };
        let count = |v: f64| format!("{v:.0}");
        let millis = |v: f64| format!("{v:.0} ms");
        let percent = |v: f64| format!("{v:.0}%");
        let seconds = |v: f64| format!("{v:.1} s");
        let mut row = |label: &str, cells: Vec<Vec<String>>| {
            table.rows.push((label.to_owned(), cells));
        };
        row("msgs/s, no kill (j0)", cell(Case::J0, &THROUGHPUT, rate));
        row(
            "msgs/s, one nsqd killed (j)",
            cell(Case::J, &THROUGHPUT, rate),
        );
        row(
            "ratio j / j0 (medians)",
            clients
                .iter()
                .map(|&client| {
                    vec![match (
                        self.median(Case::J, client, &THROUGHPUT),
                        self.median(Case::J0, client, &THROUGHPUT),
                    ) {
                        (Some(j), Some(j0)) if j0 > 0.0 => format!("{:.2}x", j / j0),
                        _ => "-".to_owned(),
                    }]
                })
                .collect(),
        );
        row(
            "j: msgs/s before the kill",
            cell(Case::J, &PRE_KILL_RATE, rate),
        );
        row(
            "j: failover gap (to a 100 ms window at >= 90%)",
            cell(Case::J, &FAILOVER_GAP, millis),
        );
        row(
            "j: longest pause without acks, 1st s after the kill",
            cell(Case::J, &ACK_PAUSE, millis),
        );
        row(
            "j: lowest 100 ms window, 1st s after the kill",
            cell(Case::J, &LOWEST_WINDOW, percent),
        );
        row(
            "j0 at the same point: gap / pause / lowest",
            clients
                .iter()
                .map(|&client| {
                    let m = |metric: &Metric, f: fn(f64) -> String| {
                        self.median(Case::J0, client, metric)
                            .map_or_else(|| "-".to_owned(), f)
                    };
                    vec![format!(
                        "{} / {} / {}",
                        m(&FAILOVER_GAP, millis),
                        m(&ACK_PAUSE, millis),
                        m(&LOWEST_WINDOW, percent)
                    )]
                })
                .collect(),
        );
        row("j: acked", cell(Case::J, &ACKED, count));
        row("j: unknown", cell(Case::J, &UNKNOWN, count));
        row("j: not sent", cell(Case::J, &NOT_SENT, count));
        row("j: other errors", cell(Case::J, &OTHER, count));
        row(
            "j: acked after a resend (may be stored twice)",
            cell(Case::J, &RESENT, count),
        );
        row(
            "j: failed attempts, retries included",
            cell(Case::J, &FAILED_ATTEMPTS, count),
        );
        row(
            "j: killed nsqd restarted, after the kill",
            cell(Case::J, &RESTARTED, seconds),
        );
        row(
            "j: killed nsqd acking again, after the kill",
            cell(Case::J, &BACK, seconds),
        );
        row(
            "j: acked by the killed nsqd after the kill",
            cell(Case::J, &KILLED_NODE_ACKED_AFTER, count),
        );
        Some(table)
    }

    /// One cell per client of `clients`: the median (min-max) of `metric` over the runs of
    /// `case`. Runs without the value (a node not back before the run ended) are counted next
    /// to the others.
    pub(super) fn stat_cells(
        &self,
        case: Case,
        clients: &[Client],
        metric: &Metric,
        format: fn(f64) -> String,
    ) -> Vec<Vec<String>> {
        clients
            .iter()
            .map(|&client| {
                let measured = self
                    .runs(case, client)
                    .iter()
                    .filter(|o| o.measured().is_some())
                    .count();
                vec![match self.stat(case, client, metric) {
                    Some(s) => {
                        let mut text = if s.min == s.max {
                            format(s.median)
                        } else {
                            format!("{} ({}-{})", format(s.median), format(s.min), format(s.max))
                        };
                        if s.runs.len() < measured {
                            text.push_str(&format!(", in {} of {measured} runs", s.runs.len()));
                        }
                        text
                    }
                    None if measured > 0 => "none in the run".to_owned(),
                    None => "-".to_owned(),
                }]
            })
            .collect()
    }

    /// Notes on the failover runs: the kinds of failed attempts, and restarts that came after
    /// the run.
    pub(crate) fn failover_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for &client in &self.plan.clients {
            for outcome in self.runs(Case::J, client) {
                let Some(result) = outcome.measured() else {
                    continue;
                };
                let mut parts = Vec::new();
                if let Some(out) = &result.outcomes {
                    if !out.attempt_errors.is_empty() {
                        let kinds: Vec<String> = out
                            .attempt_errors
                            .iter()
                            .map(|(kind, n)| format!("{n} {kind}"))
                            .collect();
                        parts.push(format!("failed attempts: {}", kinds.join(", ")));
                    }
                }
                if let Some(run) = &outcome.failover {
                    match (run.killed_after_s, run.restarted_after_kill_s) {
                        (Some(killed), Some(restarted)) => parts.push(format!(
                            "killed {killed:.1} s into the run, back {restarted:.1} s later{}",
                            if run.restarted_during_run {
                                ""
                            } else {
                                ", after the run had ended"
                            }
                        )),
                        _ => parts.push("the kill was not seen".to_owned()),
                    }
                }
                if let Some(seconds) = result.seconds {
                    parts.push(format!("the run took {seconds:.1} s"));
                }
                // Each run's own gap and return, which the medians above do not show.
                let figures = outcome.failover.as_ref().and_then(|f| f.figures.as_ref());
                if let Some(figures) = figures {
                    parts.push(match figures.gap_ms {
                        Some(gap) => format!("gap {gap} ms"),
                        None => "gap not closed in the run".to_owned(),
                    });
                }
                match (result.kill_at_s, result.back_at_s, result.seconds) {
                    (Some(kill), Some(back), _) => {
                        parts.push(format!("acking again {:.1} s after the kill", back - kill));
                    }
                    (Some(kill), None, Some(seconds)) => {
                        let restart = outcome
                            .failover
                            .as_ref()
                            .and_then(|f| f.restarted_after_kill_s)
                            .unwrap_or(f64::NAN);
                        parts.push(format!(
                            "not acking again before the run ended, {:.1} s after the restart",
                            seconds - kill - restart
                        ));
                    }
                    _ => {}
                }
                notes.push(format!(
                    "{} j run {}: {}",
                    client.name(),
                    outcome.round,
                    parts.join("; ")
                ));
            }
        }
        notes
    }
}
