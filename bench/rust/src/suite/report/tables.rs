//! The main table (a row per case, a column per client) and the CPU table.

use super::metrics::{
    ALLOC_BYTES, ALLOCS, FAILOVER_GAP, Metric, P50, P99, P999, PEAK_RSS, RESOLVED, Stat, THROUGHPUT,
};
use super::text::{Table, micros, rate, row_title, shorten};
use super::{Report, Status};
use crate::record::RunResult;
use crate::suite::outcome::Outcome;
use crate::suite::plan::{Case, Client};

impl Report<'_> {
    /// The table's rows: label, the case whose runs hold the numbers, and the case reported.
    pub(super) fn rows(&self) -> Vec<(String, Case, Case)> {
        let mut rows = Vec::new();
        for case in Case::ALL {
            // The consumer cases have a table of their own.
            if !self.plan.wants(case) || matches!(case, Case::M | Case::N) {
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
                .publishers()
                .map(|client| self.cell_text(source, case, client))
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
            } else if case == Case::O {
                (Client::NsqTailGo, "nsq_tail")
            } else if case == Case::P {
                (Client::NsqToNsqGo, "nsq_to_nsq")
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

    pub(super) fn queue_mib(&self) -> Option<f64> {
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
            Case::O,
            Case::P,
        ] {
            if !self.plan.run_cases().contains(&case) {
                continue;
            }
            let cells = self
                .plan
                .publishers()
                .map(|client| vec![self.cpu_text(case, client)])
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
}
