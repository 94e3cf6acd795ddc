//! Cases m and n in the report: the consumer table, its notes and its goals.

use super::goals::Goal;
use super::metrics::{
    CLIENT_CPU, CPU_PER_MSG, Metric, NSQD_CPU, P50, P99, P999, PEAK_RSS, RSS_CONSTANT, THROUGHPUT,
};
use super::text::{Table, micros, rate, shorten};
use super::{Report, Status};
use crate::suite::plan::{Case, Client};

/// This workspace's consumer must read at least this many times as fast as go-nsq's, in m and n.
const GO_NSQ_GOAL: f64 = 1.5;

/// And at least this share of bench_reader's rate, in m.
const BENCH_READER_GOAL: f64 = 0.9;

/// The most the consumer's peak resident set may exceed max_in_flight messages by, in MiB.
const RSS_CONSTANT_GOAL: f64 = 32.0;

/// A row of the consumer table: its label, its metric and how a value is written.
type Row = (String, &'static Metric, fn(f64) -> String);

/// The heading of the consumer table.
pub(crate) const TITLE: &str = "Consumers: a channel filled beforehand, read to the end; then \
                                messages published at a fixed rate, timed from their publish \
                                to the handler (m: 1 nsqd, n: 3 nsqd):";

impl Report<'_> {
    /// The consumer clients that the plan has, in table order.
    fn consumer_clients(&self) -> Vec<Client> {
        self.plan
            .clients
            .iter()
            .copied()
            .filter(|&c| c.consumes() || c == Client::GoNsq)
            .collect()
    }

    /// Cases m and n, a column per consumer. `None` when neither ran.
    pub(crate) fn consumer_table(&self) -> Option<Table> {
        let cases: Vec<Case> = [Case::M, Case::N]
            .into_iter()
            .filter(|&c| self.plan.wants(c))
            .collect();
        let clients = self.consumer_clients();
        if cases.is_empty() || clients.is_empty() {
            return None;
        }
        let mut header = vec!["consumers (m, n)".to_owned()];
        header.extend(clients.iter().map(|c| c.name().to_owned()));
        let mut table = Table {
            header,
            rows: Vec::new(),
        };
        let mib = |v: f64| format!("{v:.1} MiB");
        let us = |v: f64| format!("{v:.2} µs");
        let percent = |v: f64| format!("{v:.0}%");
        for case in cases {
            let id = case.id();
            let nodes = if case == Case::M { "1 nsqd" } else { "3 nsqd" };
            let rows: [Row; 4] = [
                (
                    format!(
                        "({id}) msgs/s, {} messages, {nodes}",
                        rate(self.plan.consumer_n as f64)
                    ),
                    &THROUGHPUT,
                    rate,
                ),
                (format!("({id}) client CPU per message"), &CPU_PER_MSG, us),
                (format!("({id}) peak RSS"), &PEAK_RSS, mib),
                (
                    format!(
                        "({id}) peak RSS - {} x {} B in flight",
                        self.plan.max_in_flight, self.plan.size
                    ),
                    &RSS_CONSTANT,
                    mib,
                ),
            ];
            for (i, (label, metric, format)) in rows.into_iter().enumerate() {
                let cells = self.consumer_cells(case, &clients, metric, format, i == 0);
                table.rows.push((label, cells));
                if i == 0 {
                    let ratios = clients
                        .iter()
                        .map(|&client| vec![self.ratio_text(case, client)])
                        .collect();
                    table
                        .rows
                        .push((format!("({id}) ratio of medians"), ratios));
                }
            }
            let cpu = clients
                .iter()
                .map(|&client| match self.status(case, client) {
                    Status::Ok => {
                        let share = |m: &Metric| {
                            self.median(case, client, m)
                                .map_or_else(|| "?".to_owned(), percent)
                        };
                        vec![format!("{} / {}", share(&CLIENT_CPU), share(&NSQD_CPU))]
                    }
                    _ => vec!["-".to_owned()],
                })
                .collect();
            table
                .rows
                .push((format!("({id}) CPU client / nsqd, % of one core"), cpu));
            let latency = clients
                .iter()
                .map(|&client| match self.status(case, client) {
                    Status::Ok if client == Client::BenchReader => {
                        vec!["n/a (no handler)".to_owned()]
                    }
                    Status::Ok => {
                        let p = |m: &Metric| {
                            self.median(case, client, m)
                                .map_or_else(|| "?".to_owned(), micros)
                        };
                        vec![format!("{} / {} / {} µs", p(&P50), p(&P99), p(&P999))]
                    }
                    _ => vec!["-".to_owned()],
                })
                .collect();
            table.rows.push((
                format!(
                    "({id}) publish to handler p50 / p99 / p99.9, {} msgs/s",
                    rate(self.plan.latency_rate)
                ),
                latency,
            ));
        }
        Some(table)
    }

    /// A row's cells: the statistics of `metric`, or, in the first row, why a client has none.
    fn consumer_cells(
        &self,
        case: Case,
        clients: &[Client],
        metric: &Metric,
        format: fn(f64) -> String,
        first: bool,
    ) -> Vec<Vec<String>> {
        let stats = self.stat_cells(case, clients, metric, format);
        clients
            .iter()
            .zip(stats)
            .map(|(&client, cell)| match self.status(case, client) {
                Status::Ok => {
                    let marks = if first {
                        self.consumer_marks(case, client)
                    } else {
                        String::new()
                    };
                    vec![format!("{}{marks}", cell.join(" "))]
                }
                Status::Unsupported(why) if first => vec![why],
                Status::Failed(why) if first => vec![format!("FAILED: {}", shorten(&why, 40))],
                _ => vec!["-".to_owned()],
            })
            .collect()
    }

    /// `!` when what nsqd held after a run does not match the client, `+` when a run stopped
    /// at its time limit, `*` for a failed run among others.
    fn consumer_marks(&self, case: Case, client: Client) -> String {
        let runs = self.runs(case, client);
        let mut marks = String::new();
        if runs.iter().any(|o| o.mismatch.is_some()) {
            marks.push('!');
        }
        if runs
            .iter()
            .any(|o| o.measured().is_some_and(|r| r.truncated))
        {
            marks.push('+');
        }
        if runs
            .iter()
            .any(|o| o.failure.is_some() || o.measured().is_some_and(|r| r.errors > 0))
        {
            marks.push('*');
        }
        if marks.is_empty() {
            marks
        } else {
            format!(" {marks}")
        }
    }

    /// The consumer's rate over go-nsq's and bench_reader's, in its column.
    fn ratio_text(&self, case: Case, client: Client) -> String {
        if client != Client::Consumer {
            return String::new();
        }
        let ours = self.median(case, Client::Consumer, &THROUGHPUT);
        let versus = |other: Client, name: &str| match (ours, self.median(case, other, &THROUGHPUT))
        {
            (Some(ours), Some(theirs)) if theirs > 0.0 => {
                Some(format!("{:.2}x {name}", ours / theirs))
            }
            _ => None,
        };
        let parts: Vec<String> = [
            versus(Client::GoNsq, "go-nsq"),
            versus(Client::BenchReader, "bench_reader"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() {
            "-".to_owned()
        } else {
            parts.join(" · ")
        }
    }

    /// Each run of m and n that the table marks, with what happened.
    pub(crate) fn consumer_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for case in [Case::M, Case::N] {
            for client in self.consumer_clients() {
                for outcome in self.runs(case, client) {
                    let mut parts = Vec::new();
                    if let Some(mismatch) = &outcome.mismatch {
                        parts.push(mismatch.clone());
                    }
                    if let Some(failure) = &outcome.failure {
                        parts.push(format!("failed: {failure}"));
                    }
                    if let Some(result) = outcome.measured() {
                        if result.truncated {
                            parts.push(format!(
                                "stopped at the time limit after {} of {} messages",
                                result.acked, result.n
                            ));
                        }
                        if result.errors > 0 || result.first_error.is_some() {
                            parts.push(format!(
                                "{} errors, first: {}",
                                result.errors,
                                result.first_error.as_deref().unwrap_or("?")
                            ));
                        }
                        if client != Client::BenchReader
                            && result.latency_n.is_some_and(|n| n < self.plan.latency_n)
                        {
                            parts.push(format!(
                                "{} of {} paced messages timed",
                                result.latency_n.unwrap_or(0),
                                self.plan.latency_n
                            ));
                        }
                    }
                    if outcome.backend_depth.unwrap_or(0) > 0 {
                        parts.push(format!(
                            "nsqd spilled {} messages to disk",
                            outcome.backend_depth.unwrap_or(0)
                        ));
                    }
                    if !parts.is_empty() {
                        notes.push(format!(
                            "{} {} run {}: {}",
                            client.name(),
                            case.id(),
                            outcome.round,
                            parts.join("; ")
                        ));
                    }
                }
            }
        }
        notes
    }

    /// The consumer goals: against go-nsq in m and n, against bench_reader in m, and the bound
    /// on the resident set.
    pub(super) fn consumer_goals(&self) -> Vec<Goal> {
        let tp = |case, client| self.median(case, client, &THROUGHPUT);
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let ours = Client::Consumer;
        vec![
            Goal::at_least(
                "m",
                "consumer / go-nsq msgs/s, 1 nsqd",
                ratio(tp(Case::M, ours), tp(Case::M, Client::GoNsq)),
                GO_NSQ_GOAL,
                "x",
            ),
            Goal::at_least(
                "m",
                "consumer / bench_reader msgs/s, 1 nsqd",
                ratio(tp(Case::M, ours), tp(Case::M, Client::BenchReader)),
                BENCH_READER_GOAL,
                "x",
            ),
            Goal::at_most(
                "m",
                "consumer peak RSS - max_in_flight x size, MiB",
                self.median(Case::M, ours, &RSS_CONSTANT),
                RSS_CONSTANT_GOAL,
                " MiB",
            ),
            Goal::at_least(
                "n",
                "consumer / go-nsq msgs/s, 3 nsqd",
                ratio(tp(Case::N, ours), tp(Case::N, Client::GoNsq)),
                GO_NSQ_GOAL,
                "x",
            ),
            Goal::at_most(
                "n",
                "consumer peak RSS - max_in_flight x size, MiB",
                self.median(Case::N, ours, &RSS_CONSTANT),
                RSS_CONSTANT_GOAL,
                " MiB",
            ),
        ]
    }
}
