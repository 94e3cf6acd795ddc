//! `results.json`: everything a suite run records.

use serde::Serialize;

use super::Cell;
use super::goals::Goal;
use crate::suite::facts::Facts;
use crate::suite::outcome::Outcome;
use crate::suite::plan::{Case, Plan};

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
    pub(crate) consumer_n: u64,
    pub(crate) max_in_flight: u32,
    pub(crate) latency_n: u64,
    pub(crate) latency_rate: f64,
    pub(crate) consumer_api: String,
    pub(crate) consumer_time_limit_s: f64,
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
            consumer_n: plan.consumer_n,
            max_in_flight: plan.max_in_flight,
            latency_n: plan.latency_n,
            latency_rate: plan.latency_rate,
            consumer_api: plan.consumer_api.clone(),
            consumer_time_limit_s: plan.time_limit_of(Case::M).as_secs_f64(),
            time_limit_s: plan.time_limit.as_secs_f64(),
            quick: plan.quick,
            nsqd_mem_queue_size: plan.mem_queue_size(),
            clients: plan.clients.iter().map(|c| c.name()).collect(),
            cases: plan.cases.iter().map(|c| c.id()).collect(),
        }
    }
}
