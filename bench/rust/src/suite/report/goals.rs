//! The goals, checked against a run's medians, as text lines and a Markdown table.

use std::fmt::Write as _;

use serde::Serialize;

use super::Report;
use super::metrics::{ALLOCS, P99, PEAK_RSS, RESOLVED, THROUGHPUT};
use super::text::push_line;
use crate::suite::plan::{Case, Client};

/// The pool of one node must reach this share of the producer's rate in b and c*.
const POOL_COST_GOAL: f64 = 0.95;

/// Waiting calls that must return per second once nsqd is back, in cases h and i.
const STALL_GOAL: f64 = 200_000.0;

/// nsq-pub's lines per second over to_nsq's, in case k.
const CLI_GOAL: f64 = 20.0;

/// nsq-tail's messages per second over nsq_tail's, in case o.
const TAIL_GOAL: f64 = 3.0;

/// nsq-to-nsq's messages per second over nsq_to_nsq's, in case p.
const FORWARD_GOAL: f64 = 5.0;

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
    pub(super) fn at_least(
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

    pub(super) fn at_most(
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

impl Report<'_> {
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
        goals.push(Goal::at_least(
            "o",
            "nsq-tail / nsq_tail msgs/s to /dev/null",
            ratio(tp(Case::O, Client::NsqTail), tp(Case::O, Client::NsqTailGo)),
            TAIL_GOAL,
            "x",
        ));
        goals.push(Goal::at_least(
            "p",
            "nsq-to-nsq / nsq_to_nsq msgs/s forwarded",
            ratio(
                tp(Case::P, Client::NsqToNsq),
                tp(Case::P, Client::NsqToNsqGo),
            ),
            FORWARD_GOAL,
            "x",
        ));
        goals.push(self.frozen_goal());
        goals.extend(self.consumer_goals());
        goals.retain(|g| self.plan.cases.iter().any(|c| c.id() == g.case));
        goals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
