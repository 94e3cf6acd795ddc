//! Cases j, j0 and l: the cluster of three nsqd, running a client against it while one nsqd is
//! killed (j), stopped (l) or left alone (j0), and checking each node's count afterwards.

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use nsq_test_support::{Nsqd, NsqdOptions};

use super::child::{GRACE, last_json_line, run_child, tail};
use super::execute::{Executor, TOPIC};
use super::failover::{FROZEN_RECOVERED, FailoverRun, Figures, RECOVERED};
use super::outcome::Outcome;
use super::plan::{Case, Client};
use crate::record::RunResult;

/// The nsqd of the failover cases.
const CLUSTER_SIZE: usize = 3;

/// The index of the nsqd killed in case j, or stopped in case l.
pub(super) const KILL_INDEX: usize = 1;

/// How long after the kill the killed nsqd is restarted.
const RESTART_AFTER: Duration = Duration::from_secs(5);

impl Executor<'_> {
    /// Runs `client` in case j (one nsqd of three killed a third of the way in, restarted 5 s
    /// later), j0 (no kill) or l (one nsqd stopped for 6 s a third of the way in, by the
    /// client) against the cluster, and checks each node's topic depth.
    pub(super) fn run_failover(&mut self, round: u32, case: Case, client: Client) -> Outcome {
        let mut outcome = Outcome::new(round, case, client);
        let unsupported = |why: &str| {
            Some(RunResult::unsupported(
                client.name(),
                case.arg(),
                self.plan.failover_n,
                why,
            ))
        };
        let go_bin = self.plan.go_nsq_bin.clone();
        if let Some(why) = self.plan.unavailable.get(&client) {
            outcome.result = unsupported(why);
            return outcome;
        }
        match client {
            Client::Pool => {}
            Client::GoNsq if go_bin.is_some() => {}
            Client::GoNsq => {
                outcome.result = unsupported("n/a (not built)");
                return outcome;
            }
            _ => {
                outcome.result = unsupported("n/a (pool and go-nsq only)");
                return outcome;
            }
        }

        self.start_cluster();
        for node in &mut self.cluster {
            if !node.is_running() {
                node.restart();
            }
            node.delete_topic(TOPIC);
            node.create_topic(TOPIC);
        }
        let kill = case == Case::J;
        let freeze = case == Case::L;
        let Some(pid) = self.cluster[KILL_INDEX].pid() else {
            outcome.failure = Some("the nsqd to kill or stop has no pid".to_owned());
            return outcome;
        };
        let addrs: Vec<String> = self
            .cluster
            .iter()
            .map(|n| n.tcp_addr().to_string())
            .collect();
        let plan = self.plan;
        let n = plan.failover_n.to_string();
        let limit = plan.time_limit_of(case);
        let mut command = match (client, &go_bin) {
            (Client::GoNsq, Some(bin)) => {
                let mut command = Command::new(bin);
                command.args([
                    format!("-addrs={}", addrs.join(",")),
                    format!("-topic={TOPIC}"),
                    format!("-n={n}"),
                    format!("-size={}", plan.size),
                    format!("-case={}", case.arg()),
                    format!("-callers={}", plan.callers),
                    format!("-kill-index={KILL_INDEX}"),
                    format!("-time-limit={}ms", limit.as_millis()),
                ]);
                if kill || freeze {
                    command.arg(format!("-kill-pid={pid}"));
                }
                command
            }
            _ => {
                let mut command = Command::new(&self.this);
                command.arg("pool").args([
                    "--addrs",
                    &addrs.join(","),
                    "--topic",
                    TOPIC,
                    "--n",
                    &n,
                    "--size",
                    &plan.size.to_string(),
                    "--case",
                    case.arg(),
                    "--callers",
                    &plan.callers.to_string(),
                    "--kill-index",
                    &KILL_INDEX.to_string(),
                    "--time-limit",
                    &limit.as_secs_f64().to_string(),
                ]);
                if kill || freeze {
                    command.args(["--nsqd-pid", &pid.to_string()]);
                }
                command
            }
        };

        // The client kills the nsqd when a third of its messages are acknowledged; the suite
        // sees it gone and restarts it RESTART_AFTER later, while the client goes on.
        let started = Instant::now();
        let mut killed: Option<Instant> = None;
        let mut restarted: Option<Instant> = None;
        let victim = &mut self.cluster[KILL_INDEX];
        let output = run_child(&mut command, limit + GRACE, || {
            if !kill {
                return;
            }
            match killed {
                None if !victim.is_running() => killed = Some(Instant::now()),
                Some(at) if restarted.is_none() && at.elapsed() >= RESTART_AFTER => {
                    victim.restart();
                    restarted = Some(Instant::now());
                }
                _ => {}
            }
        });
        outcome.process_s = started.elapsed().as_secs_f64();
        if freeze {
            // The client continues the node it stopped; should it have died first, this does.
            let _ = Command::new("kill")
                .args(["-CONT", &pid.to_string()])
                .status();
        }
        let restarted_during_run = restarted.is_some();
        if kill && !victim.is_running() {
            // The run ended first (or the client died): the next run needs the node back.
            if let Some(at) = killed {
                thread::sleep(RESTART_AFTER.saturating_sub(at.elapsed()));
            }
            victim.restart();
            restarted = Some(Instant::now());
        }

        let node_depths: Vec<Option<u64>> = self
            .cluster
            .iter()
            .map(|node| node.topic_stats(TOPIC).and_then(|s| s["depth"].as_u64()))
            .collect();
        for node in &self.cluster {
            node.delete_topic(TOPIC);
        }
        let mut run = FailoverRun {
            figures: None,
            node_depths,
            killed_after_s: killed.map(|at| (at - started).as_secs_f64()),
            restarted_after_kill_s: killed.zip(restarted).map(|(k, r)| (r - k).as_secs_f64()),
            restarted_during_run,
        };
        let parsed = output.and_then(|(stdout, stderr)| {
            last_json_line(&stdout)
                .ok_or_else(|| format!("no result line on stdout; stderr: {}", tail(&stderr)))
        });
        match parsed {
            Ok(mut result) => {
                if result.unsupported.is_none() {
                    if let (Some(acks), Some(at), Some(seconds)) =
                        (&result.acks_per_ms, result.kill_at_s, result.seconds)
                    {
                        let share = if freeze { FROZEN_RECOVERED } else { RECOVERED };
                        run.figures = Figures::of(acks, at, seconds, share);
                    }
                    // The per-millisecond counts are summed into the figures' windows;
                    // results.json keeps those.
                    result.acks_per_ms = None;
                    outcome.mismatch = check_node_depths(&result, &run.node_depths, kill || freeze);
                    if (kill || freeze) && !result.killed {
                        outcome.failure = Some(
                            "the client did not kill or stop the nsqd (too few \
                             acknowledgements?)"
                                .into(),
                        );
                    }
                }
                outcome.result = Some(result);
            }
            Err(failure) => outcome.failure = Some(failure),
        }
        outcome.failover = Some(run);
        outcome
    }

    /// Starts the failover cases' nsqd, once.
    pub(super) fn start_cluster(&mut self) {
        if !self.cluster.is_empty() {
            return;
        }
        let queue = self.plan.failover_mem_queue_size();
        eprintln!(
            "==> starting {CLUSTER_SIZE} nsqd for the failover cases (--mem-queue-size={queue})"
        );
        self.cluster = (0..CLUSTER_SIZE)
            .map(|_| Nsqd::start_with(NsqdOptions::new().mem_queue_size(queue)))
            .collect();
    }
}

/// Whether each nsqd's count agrees with what the client saw it acknowledge: as
/// `check_depth` of `execute.rs`, node by node, at most the run's failed messages besides. In j
/// the killed nsqd is left out: what it held in memory went with it, and its depth counts only
/// what it stored after the restart. In l the stopped nsqd is left out too: it stores, once
/// continued, the messages whose publish timed out, and for a client that then published them
/// again elsewhere, those are stored twice; [`stored_twice`] counts those.
fn check_node_depths(result: &RunResult, depths: &[Option<u64>], skip: bool) -> Option<String> {
    let Some(acked) = &result.node_acked else {
        return Some("the client reported no per-node counts".to_owned());
    };
    let problems: Vec<String> = acked
        .iter()
        .zip(depths)
        .enumerate()
        .filter(|&(i, _)| !(skip && i == KILL_INDEX))
        .filter_map(|(i, (&acked, &depth))| {
            let depth = depth.unwrap_or(0);
            (depth < acked || depth > acked + result.errors).then(|| {
                format!(
                    "nsqd {i} holds {depth} messages, the client had {acked} acknowledged there \
                     and {} failed in all",
                    result.errors
                )
            })
        })
        .collect();
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// Messages stored beyond those acknowledged and those whose publish failed, over every node:
/// at least that many were stored twice (a message can be stored at most once per failed or
/// acknowledged publish). `None` when a node's count is missing.
pub(super) fn stored_twice(result: &RunResult, depths: &[Option<u64>]) -> Option<u64> {
    let total: u64 = depths.iter().copied().sum::<Option<u64>>()?;
    Some(total.saturating_sub(result.acked + result.errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_depth_checks() {
        let mut result = RunResult::new("pool", "j", 30);
        result.node_acked = Some(vec![10, 8, 10]);
        result.errors = 2;
        let depths = [Some(10), Some(3), Some(11)];
        assert_eq!(check_node_depths(&result, &depths, true), None);
        let mismatch = check_node_depths(&result, &depths, false).unwrap();
        assert!(mismatch.starts_with("nsqd 1 holds 3"), "{mismatch}");
        assert!(check_node_depths(&result, &[Some(9), None, Some(10)], true).is_some());
        result.node_acked = None;
        assert!(check_node_depths(&result, &depths, true).is_some());
    }

    #[test]
    fn messages_stored_twice() {
        let mut result = RunResult::new("go-nsq", "l", 30);
        result.acked = 28;
        result.errors = 2;
        assert_eq!(
            stored_twice(&result, &[Some(10), Some(12), Some(8)]),
            Some(0)
        );
        assert_eq!(
            stored_twice(&result, &[Some(10), Some(15), Some(8)]),
            Some(3)
        );
        assert_eq!(stored_twice(&result, &[Some(10), None, Some(8)]), None);
    }
}
