//! The metrics: each one's name and unit in `results.json`, how it is read from a run, and
//! which cases show which; and the min/median/max of a metric over runs.

use serde::Serialize;

use crate::record::RunResult;
use crate::suite::cluster::stored_twice;
use crate::suite::outcome::Outcome;
use crate::suite::plan::{Case, Plan};

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
pub(super) struct Metric {
    pub(super) name: &'static str,
    pub(super) unit: &'static str,
    pub(super) read: fn(&Outcome, &RunResult, &Plan) -> Option<f64>,
}

pub(super) const THROUGHPUT: Metric = Metric {
    name: "throughput",
    unit: "msgs/s",
    read: |_, r, _| r.msgs_per_sec,
};
pub(super) const MEGABYTES: Metric = Metric {
    name: "throughput_mb",
    unit: "MB/s",
    read: |_, r, plan| r.msgs_per_sec.map(|rate| rate * plan.size as f64 / 1e6),
};
pub(super) const P50: Metric = Metric {
    name: "p50",
    unit: "us",
    read: |_, r, _| r.p50_us,
};
pub(super) const P99: Metric = Metric {
    name: "p99",
    unit: "us",
    read: |_, r, _| r.p99_us,
};
pub(super) const P999: Metric = Metric {
    name: "p999",
    unit: "us",
    read: |_, r, _| r.p999_us,
};
pub(super) const PEAK_RSS: Metric = Metric {
    name: "peak_rss",
    unit: "MiB",
    read: |_, r, _| r.peak_rss_mib,
};
pub(super) const ALLOCS: Metric = Metric {
    name: "allocs_per_msg",
    unit: "allocs/msg",
    read: |_, r, _| r.allocs_per_msg,
};
pub(super) const ALLOC_BYTES: Metric = Metric {
    name: "alloc_bytes_per_msg",
    unit: "bytes/msg",
    read: |_, r, _| r.alloc_bytes_per_msg,
};
pub(super) const RESOLVED: Metric = Metric {
    name: "resolved",
    unit: "calls/s",
    read: |_, r, _| r.resolved_per_sec,
};
pub(super) const PRE_KILL_RATE: Metric = Metric {
    name: "pre_kill_rate",
    unit: "msgs/s",
    read: |o, _, _| Some(o.failover.as_ref()?.figures.as_ref()?.pre_kill_rate),
};
pub(super) const FAILOVER_GAP: Metric = Metric {
    name: "failover_gap",
    unit: "ms",
    read: |o, _, _| Some(o.failover.as_ref()?.figures.as_ref()?.gap_ms? as f64),
};
pub(super) const ACK_PAUSE: Metric = Metric {
    name: "longest_pause",
    unit: "ms",
    read: |o, _, _| Some(o.failover.as_ref()?.figures.as_ref()?.pause_ms as f64),
};
pub(super) const LOWEST_WINDOW: Metric = Metric {
    name: "lowest_window",
    unit: "% of the pre-kill rate",
    read: |o, _, _| Some(o.failover.as_ref()?.figures.as_ref()?.lowest_window? * 100.0),
};
pub(super) const ACKED: Metric = Metric {
    name: "acked",
    unit: "msgs",
    read: |_, r, _| Some(r.acked as f64),
};
pub(super) const UNKNOWN: Metric = Metric {
    name: "unknown",
    unit: "msgs",
    read: |_, r, _| Some(r.outcomes.as_ref()?.unknown as f64),
};
pub(super) const NOT_SENT: Metric = Metric {
    name: "not_sent",
    unit: "msgs",
    read: |_, r, _| Some(r.outcomes.as_ref()?.not_sent as f64),
};
pub(super) const OTHER: Metric = Metric {
    name: "other",
    unit: "msgs",
    read: |_, r, _| Some(r.outcomes.as_ref()?.other as f64),
};
pub(super) const RESENT: Metric = Metric {
    name: "resent",
    unit: "msgs",
    read: |_, r, _| Some(r.outcomes.as_ref()?.resent as f64),
};
pub(super) const FAILED_ATTEMPTS: Metric = Metric {
    name: "failed_attempts",
    unit: "attempts",
    read: |_, r, _| Some(r.outcomes.as_ref()?.attempt_errors.values().sum::<u64>() as f64),
};
pub(super) const KILLED_NODE_ACKED_AFTER: Metric = Metric {
    name: "killed_node_acked_after_kill",
    unit: "msgs",
    read: |_, r, _| {
        let index = r.kill_index?;
        let end = *r.node_acked.as_ref()?.get(index)?;
        let at_kill = *r.node_acked_at_kill.as_ref()?.get(index)?;
        Some(end.saturating_sub(at_kill) as f64)
    },
};
pub(super) const RESTARTED: Metric = Metric {
    name: "restarted_after_kill",
    unit: "s",
    read: |o, _, _| o.failover.as_ref()?.restarted_after_kill_s,
};
pub(super) const BACK: Metric = Metric {
    name: "killed_node_back_after_kill",
    unit: "s",
    read: |_, r, _| Some(r.back_at_s? - r.kill_at_s?),
};
pub(super) const CLIENT_CPU: Metric = Metric {
    name: "client_cpu",
    unit: "% of one core",
    read: |_, r, _| Some(r.cpu_s? / r.seconds?.max(f64::EPSILON) * 100.0),
};
pub(super) const NSQD_CPU: Metric = Metric {
    name: "nsqd_cpu",
    unit: "% of one core",
    read: |o, r, _| Some(o.nsqd_cpu_s? / r.seconds?.max(f64::EPSILON) * 100.0),
};

/// Cases m and n: the client's CPU time per message read, in microseconds.
pub(super) const CPU_PER_MSG: Metric = Metric {
    name: "cpu_per_msg",
    unit: "us/msg",
    read: |_, r, _| Some(r.cpu_s? / (r.acked as f64).max(1.0) * 1e6),
};

/// Cases m and n: the peak resident set less max_in_flight messages of the run's size, the
/// constant of the bound `peak RSS <= max_in_flight x size + constant`.
pub(super) const RSS_CONSTANT: Metric = Metric {
    name: "rss_less_in_flight",
    unit: "MiB",
    read: |_, r, plan| {
        let in_flight = f64::from(plan.max_in_flight) * plan.size as f64 / (1024.0 * 1024.0);
        Some(r.peak_rss_mib? - in_flight)
    },
};

/// The metrics reported for each case (e is reported as e(a) and e(c), from those runs).
pub(super) fn metrics(case: Case) -> &'static [Metric] {
    match case {
        Case::A | Case::B | Case::C | Case::CStar | Case::D | Case::K | Case::O | Case::P => {
            &[THROUGHPUT, MEGABYTES, CLIENT_CPU, NSQD_CPU]
        }
        Case::E => &[P50, P99, P999],
        Case::F => &[PEAK_RSS, THROUGHPUT, CLIENT_CPU, NSQD_CPU],
        Case::G => &[ALLOCS, ALLOC_BYTES, THROUGHPUT],
        Case::H | Case::I => &[RESOLVED, CLIENT_CPU, NSQD_CPU],
        Case::L => FROZEN,
        Case::M | Case::N => &[
            THROUGHPUT,
            MEGABYTES,
            CPU_PER_MSG,
            CLIENT_CPU,
            NSQD_CPU,
            PEAK_RSS,
            RSS_CONSTANT,
            P50,
            P99,
            P999,
        ],
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

/// Messages stored beyond those acknowledged and those that failed: stored twice.
pub(super) const STORED_TWICE: Metric = Metric {
    name: "stored_twice",
    unit: "msgs",
    read: |o, r, _| Some(stored_twice(r, &o.failover.as_ref()?.node_depths)? as f64),
};

/// The metrics of case l. `pre_kill_rate`, `failover_gap`, `longest_pause` and `lowest_window`
/// are taken around the stop; the gap ends at a window at 80% of the rate before it.
pub(super) const FROZEN: &[Metric] = &[
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
    STORED_TWICE,
];

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
}
