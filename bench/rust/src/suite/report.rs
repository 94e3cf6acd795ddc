//! Turning the runs into cells (min/median/max per case, client and metric), the terminal and
//! Markdown tables, the goal checks and `results.json`.
//!
//! This file groups the runs by case and client and makes the cells; `metrics.rs` says what is
//! measured in each case, `tables.rs`, `failover.rs`, `frozen.rs` and `consumer.rs` lay out the
//! tables,
//! `goals.rs` checks the goals, `text.rs` formats, and `results.rs` is the JSON file.

use std::collections::BTreeMap;

use serde::Serialize;

pub(crate) mod consumer;
pub(crate) mod failover;
pub(crate) mod frozen;
pub(crate) mod goals;
mod metrics;
pub(crate) mod results;
mod tables;
pub(crate) mod text;

use self::metrics::{Metric, Stat, metrics};
use super::outcome::Outcome;
use super::plan::{Case, Client, Plan};

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
    /// Cases m and n, the consumer's cells: this cell's median over bench_reader's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ratio_to_bench_reader: Option<f64>,
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
                    let ratio_to_bench_reader = (client == Client::Consumer)
                        .then(|| versus(self.median(source, Client::BenchReader, metric)))
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
                        ratio_to_bench_reader,
                        notes: self.notes(source, client),
                    });
                }
            }
        }
        cells
    }
}
