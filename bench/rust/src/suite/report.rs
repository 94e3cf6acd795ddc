//! Turning the runs into cells (min/median/max per case, client and metric), the terminal and
//! Markdown tables, the goal checks and `results.json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

mod frozen;

pub(crate) use frozen::TITLE as FROZEN_TITLE;

use super::cli::thousands;
use super::execute::Outcome;
use super::facts::Facts;
use super::plan::{Case, Client, Plan};
use crate::record::RunResult;

/// min, median and max over a cell's runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Stat {
    pub(crate) min: f64,
    pub(crate) median: f64,
    pub(crate) max: f64,
    /// Every run's value, in run order.
    pub(crate) runs: Vec<f64>,
}

impl Stat {
    /// The statistics of `values`; `None` when there are none.
    pub(crate) fn of(values: Vec<f64>) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        };
        Some(Self {
            min: sorted[0],
            median,
            max: sorted[sorted.len() - 1],
            runs: values,
        })
    }
}

/// A metric: its name and unit in `results.json`, and how to read it from a run.
struct Metric {
    name: &'static str,
    unit: &'static str,
    read: fn(&Outcome, &RunResult, &Plan) -> Option<f64>,
}

const THROUGHPUT: Metric = Metric {
    name: "throughput",
    unit: "msgs/s",
    read: |_, r, _| r.msgs_per_sec,
};
const MEGABYTES: Metric = Metric {
    name: "throughput_mb",
    unit: "MB/s",
    read: |_, r, plan| r.msgs_per_sec.map(|rate| rate * plan.size as f64 / 1e6),
};
const P50: Metric = Metric {
    name: "p50",
    unit: "us",
    read: |_, r, _| r.p50_us,
};
const P99: Metric = Metric {
    name: "p99",
    unit: "us",
    read: |_, r, _| r.p99_us,
};
const P999: Metric = Metric {
    name: "p999",
    unit: "us",
    read: |_, r, _| r.p999_us,
};
const PEAK_RSS: Metric = Metric {
    name: "peak_rss",
    unit: "MiB",
    read: |_, r, _| r.peak_rss_mib,
};
const ALLOCS: Metric = Metric {
    name: "allocs_per_msg",
    unit: "allocs/msg",
    read: |_, r, _| r.allocs_per_msg,
};
const ALLOC_BYTES: Metric = Metric {
    name: "alloc_bytes_per_msg",
    unit: "bytes/msg",
    read: |_, r, _| r.alloc_bytes_per_msg,
};
const RESOLVED: Metric = Metric {
    name: "resolved",
    unit: "calls/s",
    read: |_, r, _| r.resolved_per_sec,
};
const PRE_KILL_RATE: Metric = Metric {
    name: "pre_kill_rate",
    unit: "msgs/s",
    read: |o, _, _| Some(o.failover.as_ref()?.figures.as_ref()?.pre_kill_rate),
};
const FAILOVER_GAP: Metric = Metric {
    name: "failover_gap",
    unit: "ms",
    read: |o, _, _| Some(o.failover.as_ref()?.figures.as_ref()?.gap_ms? as f64),
};
const ACK_PAUSE: Metric = Metric {
    name: "longest_pause",
    unit: "ms",
    read: |o, _, _| Some(o.failover.as_ref()?.figures.as_ref()?.pause_ms as f64),
};
const LOWEST_WINDOW: Metric = Metric {
    name: "lowest_window",
    unit: "% of the pre-kill rate",
    read: |o, _, _| Some(o.failover.as_ref()?.figures.as_ref()?.lowest_window? * 100.0),
};
const ACKED: Metric = Metric {
    name: "acked",
    unit: "msgs",
    read: |_, r, _| Some(r.acked as f64),
};
const UNKNOWN: Metric = Metric {
    name: "unknown",
    unit: "msgs",
    read: |_, r, _| Some(r.outcomes.as_ref()?.unknown as f64),
};
const NOT_SENT: Metric = Metric {
    name: "not_sent",
    unit: "msgs",
    read: |_, r, _| Some(r.outcomes.as_ref()?.not_sent as f64),
};
const OTHER: Metric = Metric {
    name: "other",
    unit: "msgs",
    read: |_, r, _| Some(r.outcomes.as_ref()?.other as f64),
};
const RESENT: Metric = Metric {
    name: "resent",
    unit: "msgs",
    read: |_, r, _| Some(r.outcomes.as_ref()?.resent as f64),
};
const FAILED_ATTEMPTS: Metric = Metric {
    name: "failed_attempts",
    unit: "attempts",
    read: |_, r, _| Some(r.outcomes.as_ref()?.attempt_errors.values().sum::<u64>() as f64),
};
const KILLED_NODE_ACKED_AFTER: Metric = Metric {
    name: "killed_node_acked_after_kill",
    unit: "msgs",
    read: |_, r, _| {
        let index = r.kill_index?;
        let end = *r.node_acked.as_ref()?.get(index)?;
        let at_kill = *r.node_acked_at_kill.as_ref()?.get(index)?;
        Some(end.saturating_sub(at_kill) as f64)
    },
};
const RESTARTED: Metric = Metric {
    name: "restarted_after_kill",
    unit: "s",
    read: |o, _, _| o.failover.as_ref()?.restarted_after_kill_s,
};
const BACK: Metric = Metric {
    name: "killed_node_back_after_kill",
    unit: "s",
    read: |_, r, _| Some(r.back_at_s? - r.kill_at_s?),
};
const CLIENT_CPU: Metric = Metric {
    name: "client_cpu",
    unit: "% of one core",
    read: |_, r, _| Some(r.cpu_s? / r.seconds?.max(f64::EPSILON) * 100.0),
};
const NSQD_CPU: Metric = Metric {
    name: "nsqd_cpu",
    unit: "% of one core",
    read: |o, r, _| Some(o.nsqd_cpu_s? / r.seconds?.max(f64::EPSILON) * 100.0),
};

/// The metrics reported for each case (e is reported as e(a) and e(c), from those runs).
fn metrics(case: Case) -> &'static [Metric] {
    match case {
        Case::A | Case::B | Case::C | Case::CStar | Case::D | Case::K => {
            &[THROUGHPUT, MEGABYTES, CLIENT_CPU, NSQD_CPU]
        }
        Case::E => &[P50, P99, P999],
        Case::F => &[PEAK_RSS, THROUGHPUT, CLIENT_CPU, NSQD_CPU],
        Case::G => &[ALLOCS, ALLOC_BYTES, THROUGHPUT],
        Case::H | Case::I => &[RESOLVED, CLIENT_CPU, NSQD_CPU],
        Case::L => frozen::METRICS,
        Case::J | Case::J0 => &[
            THROUGHPUT,
            MEGABYTES,
            CLIENT_CPU,
            PRE_KILL_RATE,
            FAILOVER_GAP,
            ACK_PAUSE,
            LOWEST_WINDOW,
            ACKED,
            UNKNOWN,
            NOT_SENT,
            OTHER,
            RESENT,
            FAILED_ATTEMPTS,
            KILLED_NODE_ACKED_AFTER,
            RESTARTED,
            BACK,
        ],
    }
}

/// One cell of `results.json`: a metric of one client in one case over every run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Cell {
    pub(crate) case: String,
    pub(crate) client: &'static str,
    pub(crate) metric: &'static str,
    pub(crate) unit: &'static str,
    /// `ok`, `unsupported` or `failed`.
    pub(crate) status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    pub(crate) stat: Option<Stat>,
    /// This cell's median over go-nsq's in the same case and metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ratio_to_go_nsq: Option<f64>,
    /// The pool's cells: this cell's median over the producer's in the same case and metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ratio_to_producer: Option<f64>,
    /// Case j: this cell's median over the same client's in j0 (no kill).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ratio_to_no_kill: Option<f64>,
    /// Case k, nsq-pub's cells: this cell's median over to_nsq's in the same metric.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ratio_to_to_nsq: Option<f64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) notes: Vec<String>,
}

/// The state of one (case, client) pair over its runs.
#[derive(Debug, Clone)]
enum Status {
    Ok,
    Unsupported(String),
    Failed(String),
}

/// Every run, grouped by (case, client).
pub(crate) struct Report<'a> {
    plan: &'a Plan,
    groups: BTreeMap<(Case, Client), Vec<&'a Outcome>>,
}

impl<'a> Report<'a> {
    pub(crate) fn new(plan: &'a Plan, outcomes: &'a [Outcome]) -> Self {
        let mut groups: BTreeMap<(Case, Client), Vec<&Outcome>> = BTreeMap::new();
        for outcome in outcomes {
            let case = Case::ALL
                .into_iter()
                .find(|c| c.id() == outcome.case)
                .unwrap_or(Case::A);
            let client = Client::ALL
                .into_iter()
                .find(|c| c.name() == outcome.client)
                .unwrap_or(Client::Producer);
            groups.entry((case, client)).or_default().push(outcome);
        }
        Self { plan, groups }
    }

    fn runs(&self, case: Case, client: Client) -> &[&'a Outcome] {
        self.groups
            .get(&(case, client))
            .map_or(&[], |runs| runs.as_slice())
    }

    fn status(&self, case: Case, client: Client) -> Status {
        let runs = self.runs(case, client);
        if runs.is_empty() {
            return Status::Failed("not run".to_owned());
        }
        if let Some(why) = runs.iter().find_map(|o| o.unsupported()) {
            return Status::Unsupported(why.to_owned());
        }
        if runs.iter().any(|o| o.measured().is_some()) {
            return Status::Ok;
        }
        let why = runs
            .iter()
            .find_map(|o| o.failure.clone())
            .unwrap_or_else(|| "no result".to_owned());
        Status::Failed(why)
    }

    /// What the table marks about a pair's runs.
    fn notes(&self, case: Case, client: Client) -> Vec<String> {
        let runs = self.runs(case, client);
        let mut notes = Vec::new();
        let failed = runs.iter().filter(|o| o.failure.is_some()).count();
        if failed > 0 && failed < runs.len() {
            notes.push(format!("{failed} of {} runs failed", runs.len()));
        }
        for outcome in runs {
            if let Some(mismatch) = &outcome.mismatch {
                notes.push(format!("run {}: count mismatch: {mismatch}", outcome.round));
            }
            if let Some(result) = outcome.measured() {
                if result.truncated {
                    notes.push(format!(
                        "run {}: stopped at the {} s time limit after {} of {} messages",
                        outcome.round,
                        self.plan.time_limit.as_secs_f64(),
                        result.acked + result.errors,
                        result.n
                    ));
                }
                if result.errors > 0 {
                    notes.push(format!(
                        "run {}: {} publishes failed, first: {}",
                        outcome.round,
                        result.errors,
                        result.first_error.as_deref().unwrap_or("?")
                    ));
                }
            }
            if outcome.backend_depth.unwrap_or(0) > 0 {
                notes.push(format!(
                    "run {}: nsqd spilled {} messages to disk",
                    outcome.round,
                    outcome.backend_depth.unwrap_or(0)
                ));
            }
        }
        notes
    }

    /// The statistics of `metric` over the runs of `source` (the case whose runs hold it).
    fn stat(&self, source: Case, client: Client, metric: &Metric) -> Option<Stat> {
        let values = self
            .runs(source, client)
            .iter()
            .filter_map(|o| (metric.read)(o, o.measured()?, self.plan))
            .collect();
        Stat::of(values)
    }

    fn median(&self, source: Case, client: Client, metric: &Metric) -> Option<f64> {
        self.stat(source, client, metric).map(|s| s.median)
    }

    /// Every cell, in table order.
    pub(crate) fn cells(&self) -> Vec<Cell> {
        let mut cells = Vec::new();
        for (label, source, case) in self.rows() {
            for metric in metrics(case) {
                for &client in &self.plan.clients {
                    let status = self.status(source, client);
                    let stat = self.stat(source, client, metric);
                    let go = self.median(source, Client::GoNsq, metric);
                    let ratio = match (&stat, go) {
                        (Some(s), Some(go)) if go > 0.0 && client != Client::GoNsq => {
                            Some(s.median / go)
                        }
                        _ => None,
                    };
                    let versus = |other: Option<f64>| match (&stat, other) {
                        (Some(s), Some(other)) if other > 0.0 => Some(s.median / other),
                        _ => None,
                    };
                    let ratio_to_producer = (client == Client::Pool)
                        .then(|| versus(self.median(source, Client::Producer, metric)))
                        .flatten();
                    let ratio_to_no_kill = (case == Case::J)
                        .then(|| versus(self.median(Case::J0, client, metric)))
                        .flatten();
                    let ratio_to_to_nsq = (case == Case::K && client == Client::NsqPub)
                        .then(|| versus(self.median(source, Client::ToNsq, metric)))
                        .flatten();
                    let (status, reason) = match status {
                        Status::Ok => ("ok", None),
                        Status::Unsupported(why) => ("unsupported", Some(why)),
                        Status::Failed(why) => ("failed", Some(why)),
                    };
                    cells.push(Cell {
                        case: label.clone(),
                        client: client.name(),
                        metric: metric.name,
                        unit: metric.unit,
                        status,
                        reason,
                        stat,
                        ratio_to_go_nsq: ratio,
                        ratio_to_producer,
                        ratio_to_no_kill,
                        ratio_to_to_nsq,
                        notes: self.notes(source, client),
                    });
                }
            }
        }
        cells
    }

    /// The table's rows: label, the case whose runs hold the numbers, and the case reported.
    fn rows(&self) -> Vec<(String, Case, Case)> {
        let mut rows = Vec::new();
        for case in Case::ALL {
            if !self.plan.wants(case) {
                continue;
            }
            if case == Case::E {
                rows.push(("e(a)".to_owned(), Case::A, Case::E));
                rows.push(("e(c)".to_owned(), Case::C, Case::E));
            } else if case == Case::J {
                rows.push(("j0".to_owned(), Case::J0, Case::J0));
                rows.push(("j".to_owned(), Case::J, Case::J));
            } else if case == Case::J0 && self.plan.wants(Case::J) {
                // Shown before j, as its reference.
            } else {
                rows.push((case.id().to_owned(), case, case));
            }
        }
        rows
    }

    /// The main table: rows are cases, columns clients; each cell has two lines.
    pub(crate) fn table(&self) -> Table {
        let mut table = Table::new(self.plan);
        for (label, source, case) in self.rows() {
            let title = row_title(&label, self.plan);
            let cells = self
                .plan
                .clients
                .iter()
                .map(|&client| self.cell_text(source, case, client))
                .collect();
            table.rows.push((title, cells));
        }
        table
    }

    fn cell_text(&self, source: Case, case: Case, client: Client) -> Vec<String> {
        match self.status(source, client) {
            Status::Unsupported(why) => return vec![why],
            Status::Failed(why) => return vec!["FAILED".to_owned(), shorten(&why, 40)],
            Status::Ok => {}
        }
        let marks = self.marks(source, client);
        let ratio = |metric: &Metric| -> String {
            // The pool is compared with the producer: the difference is the pool's cost; nsq-pub
            // with to_nsq.
            let (other, name) = if client == Client::Pool && !matches!(case, Case::J | Case::J0) {
                (Client::Producer, "producer")
            } else if case == Case::K {
                (Client::ToNsq, "to_nsq")
            } else {
                (Client::GoNsq, "go")
            };
            match (
                self.median(source, client, metric),
                self.median(source, other, metric),
            ) {
                (Some(mine), Some(theirs)) if theirs > 0.0 && client != other => {
                    format!(" · {:.2}x {name}", mine / theirs)
                }
                _ => String::new(),
            }
        };
        match case {
            Case::E => {
                let p = |m: &Metric| self.median(source, client, m).map_or("?".into(), micros);
                vec![
                    format!("{} / {} / {}{marks}", p(&P50), p(&P99), p(&P999)),
                    format!("µs{}", ratio(&P99).replace(" · ", " · p99 ")),
                ]
            }
            Case::F => match self.stat(source, client, &PEAK_RSS) {
                Some(s) => vec![
                    format!("{:.1} MiB ({:.1}-{:.1}){marks}", s.median, s.min, s.max),
                    self.queue_mib()
                        .map_or_else(String::new, |q| format!("queue {q:.0} MiB")),
                ],
                None => vec!["?".to_owned()],
            },
            Case::G => match self.stat(source, client, &ALLOCS) {
                Some(s) => vec![
                    format!("{:.2}/msg ({:.2}-{:.2}){marks}", s.median, s.min, s.max),
                    self.median(source, client, &ALLOC_BYTES)
                        .map_or_else(String::new, |b| format!("{b:.0} B/msg")),
                ],
                None => vec!["?".to_owned()],
            },
            Case::J => match self.stat(source, client, &THROUGHPUT) {
                Some(s) => {
                    let no_kill = self
                        .median(Case::J0, client, &THROUGHPUT)
                        .filter(|&r| r > 0.0)
                        .map_or_else(
                            || "? no kill".to_owned(),
                            |r| format!("{:.2}x no kill", s.median / r),
                        );
                    let gap = self
                        .stat(source, client, &FAILOVER_GAP)
                        .map_or_else(|| "?".to_owned(), |g| format!("{:.0}", g.median));
                    vec![
                        format!(
                            "{} ({}-{}){marks}",
                            rate(s.median),
                            rate(s.min),
                            rate(s.max)
                        ),
                        format!("{no_kill} · gap {gap} ms"),
                    ]
                }
                None => vec!["?".to_owned()],
            },
            Case::H | Case::I => match self.stat(source, client, &RESOLVED) {
                Some(s) => vec![
                    format!(
                        "{} ({}-{}){marks}",
                        rate(s.median),
                        rate(s.min),
                        rate(s.max)
                    ),
                    format!("calls/s, {} waiting", rate(self.waiting(source, client))),
                ],
                None => vec!["?".to_owned()],
            },
            _ => match self.stat(source, client, &THROUGHPUT) {
                Some(s) => vec![
                    format!(
                        "{} ({}-{}){marks}",
                        rate(s.median),
                        rate(s.min),
                        rate(s.max)
                    ),
                    format!(
                        "{:.1} MB/s{}",
                        s.median * self.plan.size as f64 / 1e6,
                        ratio(&THROUGHPUT)
                    ),
                ],
                None => vec!["?".to_owned()],
            },
        }
    }

    /// `!` for a count mismatch, `+` for a run stopped at the time limit, `*` for anything
    /// else noted (failed runs or publishes, disk spill). Details are in `results.json`.
    fn marks(&self, case: Case, client: Client) -> String {
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
        let other = runs.iter().any(|o| {
            o.failure.is_some()
                || o.backend_depth.unwrap_or(0) > 0
                || o.measured().is_some_and(|r| r.errors > 0)
        });
        if other {
            marks.push('*');
        }
        if marks.is_empty() {
            marks
        } else {
            format!(" {marks}")
        }
    }

    /// The median number of calls that waited in a run of case h or i.
    fn waiting(&self, case: Case, client: Client) -> f64 {
        let values = self
            .runs(case, client)
            .iter()
            .filter_map(|o| Some(o.measured()?.waiting? as f64))
            .collect();
        Stat::of(values).map_or(0.0, |s| s.median)
    }

    fn queue_mib(&self) -> Option<f64> {
        self.runs(Case::F, Client::Producer)
            .iter()
            .find_map(|o| o.measured()?.queue_capacity_bytes)
            .map(|b| b as f64 / (1024.0 * 1024.0))
    }

    /// Where the time goes: the client's and nsqd's CPU use while the client published, as a
    /// share of one core, pooled over the runs (CPU seconds over publishing seconds). The
    /// kernel counts CPU time in 10 ms ticks, so pairs with less than half a second of
    /// publishing in all are left out.
    pub(crate) fn cpu_table(&self) -> Table {
        let mut table = Table::new(self.plan);
        for case in [
            Case::A,
            Case::B,
            Case::C,
            Case::CStar,
            Case::D,
            Case::F,
            Case::G,
            Case::H,
            Case::I,
            Case::J0,
            Case::J,
            Case::K,
            Case::L,
        ] {
            if !self.plan.run_cases().contains(&case) {
                continue;
            }
            let cells = self
                .plan
                .clients
                .iter()
                .map(|&client| vec![self.cpu_text(case, client)])
                .collect();
            table.rows.push((case.id().to_owned(), cells));
        }
        table
    }

    fn cpu_text(&self, case: Case, client: Client) -> String {
        let runs: Vec<(&Outcome, &RunResult)> = self
            .runs(case, client)
            .iter()
            .filter_map(|o| Some((*o, o.measured()?)))
            .collect();
        if runs.is_empty() {
            return "-".to_owned();
        }
        let seconds: f64 = runs.iter().filter_map(|(_, r)| r.seconds).sum();
        if seconds < 0.5 {
            return "(too short)".to_owned();
        }
        let share = |cpu: Option<f64>| {
            cpu.map_or("?".to_owned(), |c| format!("{:.0}%", c / seconds * 100.0))
        };
        let client_cpu: Option<f64> = runs.iter().map(|(_, r)| r.cpu_s).sum();
        let nsqd_cpu: Option<f64> = runs.iter().map(|(o, _)| o.nsqd_cpu_s).sum();
        format!("{} / {}", share(client_cpu), share(nsqd_cpu))
    }

    /// The goals, checked against this run's medians.
    pub(crate) fn goals(&self) -> Vec<Goal> {
        let tp = |case, client| self.median(case, client, &THROUGHPUT);
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        let producer = Client::Producer;
        let mut goals = vec![
            Goal::at_least(
                "a",
                "one caller, ratio to go-nsq",
                ratio(tp(Case::A, producer), tp(Case::A, Client::GoNsq)),
                1.2,
                "x",
            ),
            Goal::at_least(
                "b",
                "16 callers, ratio to go-nsq",
                ratio(tp(Case::B, producer), tp(Case::B, Client::GoNsq)),
                3.0,
                "x",
            ),
            Goal::at_least(
                "c",
                "pipelined, ratio to go-nsq",
                ratio(tp(Case::C, producer), tp(Case::C, Client::GoNsq)),
                3.0,
                "x",
            ),
            Goal::at_least(
                "c*",
                "batching, ratio to bench_writer (d)",
                ratio(tp(Case::CStar, producer), tp(Case::D, Client::BenchWriter)),
                0.6,
                "x",
            ),
            Goal::at_least(
                "d",
                "MPUB 100, ratio to bench_writer (d)",
                ratio(tp(Case::D, producer), tp(Case::D, Client::BenchWriter)),
                0.9,
                "x",
            ),
            Goal::at_least(
                "d",
                "MPUB 100, ratio to raw (d)",
                ratio(tp(Case::D, producer), tp(Case::D, Client::Raw)),
                0.9,
                "x",
            ),
        ];
        let p99 = |client| self.median(Case::A, client, &P99);
        goals.push(Goal::at_most(
            "e",
            "p99 of (a), ratio to go-nsq",
            ratio(p99(producer), p99(Client::GoNsq)),
            1.0,
            "x",
        ));
        let peak = self.median(Case::F, producer, &PEAK_RSS);
        let queue = self.queue_mib();
        goals.push(Goal::at_most(
            "f",
            "peak RSS, MiB",
            peak,
            queue.map_or(f64::NAN, |q| q + 32.0),
            " MiB",
        ));
        goals.push(Goal::at_most(
            "g",
            "allocations per message",
            self.median(Case::G, producer, &ALLOCS),
            2.0,
            "",
        ));
        goals.push(Goal::at_least(
            "h",
            "waiting calls returned per second after a stall, one task each",
            self.median(Case::H, producer, &RESOLVED),
            STALL_GOAL,
            "",
        ));
        goals.push(Goal::at_least(
            "i",
            "waiting calls returned per second after a stall, one FuturesUnordered",
            self.median(Case::I, producer, &RESOLVED),
            STALL_GOAL,
            "",
        ));
        for (case, id) in [(Case::B, "b"), (Case::CStar, "c*")] {
            goals.push(Goal::at_least(
                id,
                "pool of 1 node / producer (pool costs at most 5%)",
                ratio(tp(case, Client::Pool), tp(case, producer)),
                POOL_COST_GOAL,
                "x",
            ));
        }
        goals.push(Goal::at_least(
            "k",
            "nsq-pub / to_nsq lines per second",
            ratio(tp(Case::K, Client::NsqPub), tp(Case::K, Client::ToNsq)),
            CLI_GOAL,
            "x",
        ));
        goals.push(frozen::goal(self));
        goals.retain(|g| self.plan.cases.iter().any(|c| c.id() == g.case));
        goals
    }

    /// Cases j and j0 side by side for each client that ran them: rates, the failover gap and
    /// the outcomes. `None` when neither ran.
    pub(crate) fn failover_table(&self) -> Option<Table> {
        if !(self.plan.wants(Case::J) || self.plan.wants(Case::J0)) {
            return None;
        }
        let clients: Vec<Client> = self
            .plan
            .clients
            .iter()
            .copied()
            .filter(|&c| {
                [Case::J, Case::J0]
                    .iter()
                    .any(|&case| matches!(self.status(case, c), Status::Ok))
            })
            .collect();
        if clients.is_empty() {
            return None;
        }
        let mut header = vec!["failover (j, j0)".to_owned()];
        header.extend(clients.iter().map(|c| match c {
            Client::Pool => "pool (3 nsqd)".to_owned(),
            Client::GoNsq => "go-nsq (3 Producers)".to_owned(),
            other => other.name().to_owned(),
        }));
        let mut table = Table {
            header,
            rows: Vec::new(),
        };
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
    fn stat_cells(
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

/// The pool of one node must reach this share of the producer's rate in b and c*.
const POOL_COST_GOAL: f64 = 0.95;

/// Waiting calls that must return per second once nsqd is back, in cases h and i.
const STALL_GOAL: f64 = 200_000.0;

/// nsq-pub's lines per second over to_nsq's, in case k.
const CLI_GOAL: f64 = 20.0;

/// One of the goals and whether this run meets it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Goal {
    pub(crate) case: &'static str,
    pub(crate) what: &'static str,
    pub(crate) value: Option<f64>,
    /// `>=` or `<=`.
    pub(crate) comparison: &'static str,
    pub(crate) target: f64,
    #[serde(skip)]
    unit: &'static str,
    /// `met`, `not met`, or `n/a` when a number is missing.
    pub(crate) verdict: &'static str,
}

impl Goal {
    fn at_least(
        case: &'static str,
        what: &'static str,
        value: Option<f64>,
        target: f64,
        unit: &'static str,
    ) -> Self {
        let verdict = match value {
            Some(v) if target.is_finite() => {
                if v >= target {
                    "met"
                } else {
                    "not met"
                }
            }
            _ => "n/a",
        };
        Self {
            case,
            what,
            value,
            comparison: ">=",
            target,
            unit,
            verdict,
        }
    }

    fn at_most(
        case: &'static str,
        what: &'static str,
        value: Option<f64>,
        target: f64,
        unit: &'static str,
    ) -> Self {
        let verdict = match value {
            Some(v) if target.is_finite() => {
                if v <= target {
                    "met"
                } else {
                    "not met"
                }
            }
            _ => "n/a",
        };
        Self {
            comparison: "<=",
            verdict,
            ..Self::at_least(case, what, value, target, unit)
        }
    }

    fn line(&self) -> [String; 4] {
        [
            format!("({}) {}", self.case, self.what),
            self.value.map_or("-".to_owned(), |v| {
                // Within rounding of the target, two decimals could show a value that misses
                // the target as equal to it.
                let decimals = if (v - self.target).abs() < 0.005 {
                    3
                } else {
                    2
                };
                format!("{v:.decimals$}{}", self.unit)
            }),
            format!("{} {:.2}{}", self.comparison, self.target, self.unit),
            self.verdict.to_owned(),
        ]
    }
}

/// A table with a label column and one column per client; cells may span several lines.
pub(crate) struct Table {
    header: Vec<String>,
    pub(crate) rows: Vec<(String, Vec<Vec<String>>)>,
}

impl Table {
    fn new(plan: &Plan) -> Self {
        let mut header = vec!["case".to_owned()];
        header.extend(plan.clients.iter().map(|c| c.name().to_owned()));
        Self {
            header,
            rows: Vec::new(),
        }
    }

    /// Plain text, columns padded, a rule between rows.
    pub(crate) fn render_text(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for (label, cells) in &self.rows {
            widths[0] = widths[0].max(label.chars().count());
            for (i, cell) in cells.iter().enumerate() {
                for line in cell {
                    widths[i + 1] = widths[i + 1].max(line.chars().count());
                }
            }
        }
        let rule: String = widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-");
        // A rule between rows only when cells span several lines.
        let tall = self
            .rows
            .iter()
            .any(|(_, cells)| cells.iter().any(|c| c.len() > 1));
        let mut out = String::new();
        push_line(&mut out, &self.header, &widths);
        out.push_str(&rule);
        out.push('\n');
        for (row, (label, cells)) in self.rows.iter().enumerate() {
            let height = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
            for line in 0..height {
                let mut fields = vec![if line == 0 {
                    label.clone()
                } else {
                    String::new()
                }];
                fields.extend(
                    cells
                        .iter()
                        .map(|cell| cell.get(line).cloned().unwrap_or_default()),
                );
                push_line(&mut out, &fields, &widths);
            }
            if tall && row + 1 < self.rows.len() {
                out.push_str(&rule);
                out.push('\n');
            }
        }
        out
    }

    /// A Markdown table; a cell's lines are joined with `<br>`.
    pub(crate) fn render_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "| {} |", self.header.join(" | "));
        let _ = writeln!(
            out,
            "|{}",
            self.header.iter().map(|_| "---|").collect::<String>()
        );
        for (label, cells) in &self.rows {
            let cells: Vec<String> = cells
                .iter()
                .map(|c| c.join("<br>").replace('|', "\\|"))
                .collect();
            let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
        }
        out
    }
}

fn push_line(out: &mut String, fields: &[String], widths: &[usize]) {
    let padded: Vec<String> = fields
        .iter()
        .zip(widths)
        .map(|(f, w)| format!("{f}{}", " ".repeat(w.saturating_sub(f.chars().count()))))
        .collect();
    out.push_str(padded.join(" | ").trim_end());
    out.push('\n');
}

/// The goals as text lines and as a Markdown table.
pub(crate) fn render_goals(goals: &[Goal]) -> (String, String) {
    let lines: Vec<[String; 4]> = goals.iter().map(Goal::line).collect();
    let mut widths = [0; 4];
    for line in &lines {
        for (w, field) in widths.iter_mut().zip(line) {
            *w = (*w).max(field.chars().count());
        }
    }
    let mut text = String::new();
    let mut markdown = String::from("| goal | median | target | verdict |\n|---|---|---|---|\n");
    for line in &lines {
        let fields: Vec<String> = line.to_vec();
        push_line(&mut text, &fields, &widths);
        let _ = writeln!(markdown, "| {} |", fields.join(" | "));
    }
    (text, markdown)
}

/// The row label of the main table.
fn row_title(label: &str, plan: &Plan) -> String {
    match label {
        "a" => "(a) one caller, wait each".to_owned(),
        "b" => format!("(b) {} callers, shared", plan.callers),
        "c" => format!("(c) pipelined, {} out", plan.window),
        "c*" => "(c*) as (c), batching on".to_owned(),
        "d" => format!("(d) MPUB of {}", plan.batch),
        "e(a)" => "(e) latency of (a) p50/p99/p99.9".to_owned(),
        "e(c)" => "(e) latency of (c) p50/p99/p99.9".to_owned(),
        "f" => format!("(f) peak RSS, {} burst", rate(plan.rss_n as f64)),
        "g" => "(g) allocations per message".to_owned(),
        "h" => "(h) after a stall, task per call".to_owned(),
        "i" => "(i) after a stall, FuturesUnordered".to_owned(),
        "j0" => format!("(j0) 3 nsqd, {} callers, no kill", plan.callers),
        "j" => "(j) as (j0), one nsqd killed".to_owned(),
        "l" => "(l) as (j0), one nsqd stopped 6 s".to_owned(),
        "k" => format!(
            "(k) CLI: {} lines of {} bytes from a file",
            thousands(plan.cli_n),
            plan.size
        ),
        other => other.to_owned(),
    }
}

/// A rate with three significant digits: `950`, `23.6k`, `1.11M`.
pub(crate) fn rate(value: f64) -> String {
    let (scaled, suffix) = if value >= 1e6 {
        (value / 1e6, "M")
    } else if value >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    let decimals = if suffix.is_empty() || scaled >= 100.0 {
        0
    } else if scaled >= 10.0 {
        1
    } else {
        2
    };
    format!("{scaled:.decimals$}{suffix}")
}

fn micros(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(max.saturating_sub(3)).collect();
        short.push_str("...");
        short
    }
}

/// Everything `results.json` holds.
#[derive(Serialize)]
pub(crate) struct ResultsFile<'a> {
    pub(crate) date: String,
    pub(crate) command: &'a str,
    pub(crate) wall_clock_s: f64,
    pub(crate) settings: Settings,
    pub(crate) machine: &'a Facts,
    pub(crate) cells: Vec<Cell>,
    pub(crate) goals: Vec<Goal>,
    pub(crate) runs: &'a [Outcome],
}

/// The plan's numbers, as recorded.
#[derive(Serialize)]
pub(crate) struct Settings {
    pub(crate) n: u64,
    pub(crate) size: usize,
    pub(crate) runs: u32,
    pub(crate) callers: u64,
    pub(crate) window: usize,
    pub(crate) batch: usize,
    pub(crate) rss_n: u64,
    pub(crate) allocs_n: u64,
    pub(crate) allocs_warmup: u64,
    pub(crate) stall_n: u64,
    pub(crate) failover_n: u64,
    pub(crate) failover_runs: u32,
    pub(crate) failover_time_limit_s: f64,
    pub(crate) failover_mem_queue_size: u64,
    pub(crate) cli_n: u64,
    pub(crate) cli_runs: u32,
    pub(crate) cli_time_limit_s: f64,
    pub(crate) time_limit_s: f64,
    pub(crate) quick: bool,
    pub(crate) nsqd_mem_queue_size: u64,
    pub(crate) clients: Vec<&'static str>,
    pub(crate) cases: Vec<&'static str>,
}

impl Settings {
    pub(crate) fn of(plan: &Plan) -> Self {
        Self {
            n: plan.n,
            size: plan.size,
            runs: plan.runs,
            callers: plan.callers,
            window: plan.window,
            batch: plan.batch,
            rss_n: plan.rss_n,
            allocs_n: plan.allocs_n,
            allocs_warmup: plan.warmup,
            stall_n: plan.stall_n,
            failover_n: plan.failover_n,
            failover_runs: plan.failover_runs.min(plan.runs),
            failover_time_limit_s: plan.time_limit_of(Case::J).as_secs_f64(),
            failover_mem_queue_size: plan.failover_mem_queue_size(),
            cli_n: plan.cli_n,
            cli_runs: plan.cli_runs.min(plan.runs),
            cli_time_limit_s: plan.time_limit_of(Case::K).as_secs_f64(),
            time_limit_s: plan.time_limit.as_secs_f64(),
            quick: plan.quick,
            nsqd_mem_queue_size: plan.mem_queue_size(),
            clients: plan.clients.iter().map(|c| c.name()).collect(),
            cases: plan.cases.iter().map(|c| c.id()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats() {
        let s = Stat::of(vec![3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        assert_eq!(s.runs, vec![3.0, 1.0, 2.0]);
        assert_eq!(Stat::of(vec![4.0, 1.0]).unwrap().median, 2.5);
        assert!(Stat::of(vec![]).is_none());
    }

    #[test]
    fn rates() {
        assert_eq!(rate(950.4), "950");
        assert_eq!(rate(23_574.0), "23.6k");
        assert_eq!(rate(104_160.0), "104k");
        assert_eq!(rate(1_113_900.0), "1.11M");
    }

    #[test]
    fn goals_compare() {
        assert_eq!(Goal::at_least("a", "x", Some(1.3), 1.2, "x").verdict, "met");
        assert_eq!(
            Goal::at_least("a", "x", Some(1.1), 1.2, "x").verdict,
            "not met"
        );
        assert_eq!(Goal::at_most("g", "x", Some(2.0), 2.0, "").verdict, "met");
        assert_eq!(Goal::at_most("g", "x", None, 2.0, "").verdict, "n/a");
        assert_eq!(
            Goal::at_most("f", "x", Some(1.0), f64::NAN, "").verdict,
            "n/a"
        );
    }

    #[test]
    fn goals_near_the_target_show_three_decimals() {
        let near = Goal::at_least("c*", "x", Some(0.9459), 0.95, "x");
        assert_eq!(near.verdict, "not met");
        assert_eq!(near.line()[1], "0.946x");
        assert_eq!(
            Goal::at_least("b", "x", Some(0.98), 0.95, "x").line()[1],
            "0.98x"
        );
    }

    #[test]
    fn tables_render() {
        let table = Table {
            header: vec!["case".into(), "producer".into()],
            rows: vec![("(a)".into(), vec![vec!["1k".into(), "0.1 MB/s".into()]])],
        };
        let text = table.render_text();
        assert!(text.starts_with("case | producer\n"));
        assert!(text.contains("(a)  | 1k\n     | 0.1 MB/s\n"));
        let md = table.render_markdown();
        assert!(md.contains("| (a) | 1k<br>0.1 MB/s |"));
    }
}
