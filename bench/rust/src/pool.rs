//! `nsq-bench pool`: this workspace's `nsq_producer::Pool`.
//!
//! - Cases a, b, c, c* and d run the loops of `nsq-bench producer` through a pool of one node
//!   (`--addr`), with the same configuration: the pool's own cost.
//! - Case j (failover): a pool of the nsqd in `--addrs`, round-robin, `--n` messages published
//!   by `--callers` callers, each publishing and waiting as in case b. When the `n / 3`-th
//!   acknowledgement arrives, the nsqd at `--addrs[--kill-index]` is killed (SIGKILL to
//!   `--nsqd-pid`, through the `kill` command); the suite restarts it 5 s later. Case j0 is the
//!   same run without the kill. Every acknowledgement is counted in its millisecond since the
//!   clock started, so that the suite can see the rate around the kill, and every message's
//!   final outcome is counted by kind. Callers do not retry: the pool moves what a lost node had
//!   not written, and reports what it had written and not had answered as
//!   `PublishError::Unknown`.
//! - Case l (a frozen node): as j, with a publish timeout of [`FREEZE_PUBLISH_TIMEOUT`]; instead
//!   of the kill, the nsqd at `--addrs[--kill-index]` is stopped (SIGSTOP to `--nsqd-pid`) for
//!   [`FREEZE_FOR`], then continued (SIGCONT). Its connection stays open: the pool sees no
//!   failure, only requests that go unanswered.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use nsq_producer::{
    Pool, PoolConfig, ProducerConfig, ProducerState, PublishError, Strategy, Topic,
};

use crate::cpu::CpuClock;
use crate::flags::{ClientOptions, expired};
use crate::producer::{case_config, measure};
use crate::record::{Outcomes, RunResult, Tally};

/// The client's name in results.
pub(crate) const CLIENT: &str = "pool";

/// Runs one case and returns its result line.
pub(crate) async fn run(options: &ClientOptions) -> Result<RunResult, String> {
    match options.case.as_str() {
        "j" | "j0" | "l" => failover(options).await,
        _ => {
            let Some(config) = case_config(options)? else {
                return Ok(RunResult::unsupported(
                    CLIENT,
                    &options.case,
                    options.n,
                    "n/a (not implemented)",
                ));
            };
            let pool = connect(std::slice::from_ref(&options.addr), config).await?;
            measure(CLIENT, &pool, options).await
        }
    }
}

/// A round-robin pool of `addrs`, every node connected before the clock starts.
async fn connect(addrs: &[String], config: ProducerConfig) -> Result<Pool, String> {
    let config = PoolConfig::new(config).strategy(Strategy::RoundRobin);
    let pool = Pool::connect(addrs.to_vec(), config)
        .await
        .map_err(|e| format!("connecting a pool to {addrs:?}: {e}"))?;
    let down: Vec<String> = pool
        .nodes()
        .into_iter()
        .filter(|n| n.state != ProducerState::Connected)
        .map(|n| format!("{} ({:?})", n.addr, n.state))
        .collect();
    if down.is_empty() {
        Ok(pool)
    } else {
        pool.close_now().await;
        Err(format!("pool nodes not connected: {}", down.join(", ")))
    }
}

/// What one caller of a failover run saw.
#[derive(Default)]
struct CallerRun {
    tally: Tally,
    outcomes: Outcomes,
    /// Acknowledgements per millisecond since the clock started.
    acks_per_ms: Vec<u32>,
}

impl CallerRun {
    fn ack_at(&mut self, since_start: Duration) {
        count_ack(&mut self.acks_per_ms, since_start);
    }

    fn merge(&mut self, other: Self) {
        self.tally.merge(other.tally);
        merge_outcomes(&mut self.outcomes, other.outcomes);
        if self.acks_per_ms.len() < other.acks_per_ms.len() {
            self.acks_per_ms.resize(other.acks_per_ms.len(), 0);
        }
        for (mine, theirs) in self.acks_per_ms.iter_mut().zip(other.acks_per_ms) {
            *mine += theirs;
        }
    }
}

/// Adds one acknowledgement to its millisecond.
pub(crate) fn count_ack(acks_per_ms: &mut Vec<u32>, since_start: Duration) {
    let ms = usize::try_from(since_start.as_millis()).unwrap_or(usize::MAX - 1);
    if acks_per_ms.len() <= ms {
        // Grows by a second at a time, so that a long run reallocates rarely.
        acks_per_ms.resize(ms + 1000, 0);
    }
    acks_per_ms[ms] += 1;
}

fn merge_outcomes(into: &mut Outcomes, other: Outcomes) {
    into.unknown += other.unknown;
    into.not_sent += other.not_sent;
    into.other += other.other;
    into.resent += other.resent;
    for (kind, n) in other.attempt_errors {
        *into.attempt_errors.entry(kind).or_default() += n;
    }
}

/// The moment of the kill and the nodes' acknowledgements then.
struct KillMark {
    at: Duration,
    node_acked: Vec<u64>,
    /// Why the kill failed, if it did.
    failure: Option<String>,
    /// The first acknowledgement by the killed node more than [`STALE`] after the kill.
    back_at: Option<Duration>,
}

/// After the kill, acknowledgements the killed nsqd sent before it died may still be read for
/// a moment; one this long after it comes from the restarted nsqd (restarted 5 s later).
const STALE: Duration = Duration::from_secs(1);

/// How often the kill thread looks at the killed node's count, to see it acknowledge again.
const SAMPLE: Duration = Duration::from_millis(5);

/// Case l: how long the node is stopped.
pub(crate) const FREEZE_FOR: Duration = Duration::from_secs(6);

/// Case l: every publish's timeout.
pub(crate) const FREEZE_PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// What is done to the node at `--kill-index` a third of the way in.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    /// j0: nothing.
    None,
    /// j: SIGKILL.
    Kill,
    /// l: SIGSTOP, and SIGCONT [`FREEZE_FOR`] later.
    Freeze,
}

/// Cases j, j0 and l.
async fn failover(options: &ClientOptions) -> Result<RunResult, String> {
    let fault = match options.case.as_str() {
        "j" => Fault::Kill,
        "l" => Fault::Freeze,
        _ => Fault::None,
    };
    let pid = match (fault, options.nsqd_pid) {
        (Fault::None, _) => None,
        (_, Some(pid)) => Some(pid),
        (_, None) => {
            return Err(format!(
                "case {} needs --nsqd-pid, the pid of the nsqd at --kill-index",
                options.case
            ));
        }
    };
    if options.kill_index >= options.addrs.len() {
        return Err(format!(
            "--kill-index {} is not among the {} --addrs",
            options.kill_index,
            options.addrs.len()
        ));
    }
    let mut config = ProducerConfig::default();
    if fault == Fault::Freeze {
        config.publish_timeout = Some(FREEZE_PUBLISH_TIMEOUT);
    }
    let pool = connect(&options.addrs, config).await?;
    let topic = Topic::new(options.topic.clone()).map_err(|e| e.to_string())?;
    let body = Bytes::from(vec![b'x'; options.size]);
    let n = options.n;
    let third = (n / 3).max(1);
    let acked = Arc::new(AtomicU64::new(0));
    let deadline = options.deadline();

    let cpu = CpuClock::start();
    let started = Instant::now();
    // The caller whose acknowledgement is the `third`-th wakes this thread, which kills the
    // node (in j) and notes the moment; the `kill` command is not run on a runtime worker.
    // In j it then watches the killed node's count (the pool does not say which node
    // acknowledged a publish) until the node acknowledges again or the run ends.
    let (trigger, triggered) = std_mpsc::channel::<()>();
    let done = Arc::new(AtomicBool::new(false));
    let killer = {
        let (pool, done) = (pool.clone(), done.clone());
        let index = options.kill_index;
        std::thread::spawn(move || -> Option<KillMark> {
            triggered.recv().ok()?;
            let signal = if fault == Fault::Freeze {
                "STOP"
            } else {
                "KILL"
            };
            let failure = pid.and_then(|pid| send_signal(signal, pid).err());
            let at = started.elapsed();
            let node_acked = pool.nodes().iter().map(|n| n.stats.acked).collect();
            let mut back_at = None;
            if fault == Fault::Freeze {
                // Continued after FREEZE_FOR whether or not the run is over.
                std::thread::sleep(FREEZE_FOR.saturating_sub(started.elapsed() - at));
                let failure = pid
                    .and_then(|pid| send_signal("CONT", pid).err())
                    .or(failure);
                return Some(KillMark {
                    at,
                    node_acked,
                    failure,
                    back_at,
                });
            }
            if pid.is_some() && failure.is_none() {
                let acked = || pool.nodes().get(index).map_or(0, |n| n.stats.acked);
                let mut baseline = None;
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(SAMPLE);
                    let now = started.elapsed();
                    if now < at + STALE {
                        continue;
                    }
                    let count = acked();
                    match baseline {
                        None => baseline = Some(count),
                        Some(before) if count > before => {
                            back_at = Some(now);
                            break;
                        }
                        Some(_) => {}
                    }
                }
            }
            Some(KillMark {
                at,
                node_acked,
                failure,
                back_at,
            })
        })
    };

    let callers = options.callers;
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let share = n / callers + u64::from(caller < n % callers);
            let (pool, topic, body) = (pool.clone(), topic.clone(), body.clone());
            let (acked, trigger) = (acked.clone(), trigger.clone());
            tokio::spawn(async move {
                let mut run = CallerRun {
                    tally: Tally::with_capacity(share as usize),
                    acks_per_ms: vec![0; 16_384],
                    ..CallerRun::default()
                };
                for _ in 0..share {
                    if expired(deadline) {
                        run.tally.truncated = true;
                        break;
                    }
                    let began = Instant::now();
                    let result = pool.publish(&topic, body.clone()).await;
                    let now = Instant::now();
                    run.tally.latency(now - began);
                    match &result {
                        Ok(()) => {
                            run.ack_at(now - started);
                            if acked.fetch_add(1, Ordering::Relaxed) + 1 == third {
                                let _ = trigger.send(());
                            }
                        }
                        Err(err) => {
                            let kind = error_kind(err);
                            match kind {
                                // Written, no answer in time (case l): may be stored.
                                "unknown" | "timed out" => run.outcomes.unknown += 1,
                                "not sent" => run.outcomes.not_sent += 1,
                                _ => run.outcomes.other += 1,
                            }
                            *run.outcomes
                                .attempt_errors
                                .entry(kind.to_owned())
                                .or_default() += 1;
                        }
                    }
                    run.tally.record(result, 1);
                }
                run
            })
        })
        .collect();
    drop(trigger);

    let mut all = CallerRun::default();
    for task in tasks {
        match task.await {
            Ok(part) => all.merge(part),
            Err(err) => all
                .tally
                .record(Err(format!("caller task failed: {err}")), 0),
        }
    }
    let elapsed = started.elapsed();
    let cpu_s = cpu.seconds();
    done.store(true, Ordering::Relaxed);
    // In l the frozen node is continued before the pool closes.
    let mark = tokio::task::spawn_blocking(move || killer.join())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|_| "the kill thread panicked".to_owned())?;
    let node_acked: Vec<u64> = pool.nodes().iter().map(|n| n.stats.acked).collect();
    pool.close().await;
    if let Some(failure) = mark.as_ref().and_then(|m| m.failure.clone()) {
        return Err(failure);
    }

    let mut result = RunResult::new(CLIENT, &options.case, n);
    result.fill(all.tally, elapsed);
    result.cpu_s = cpu_s;
    let used = usize::try_from(elapsed.as_millis()).unwrap_or(usize::MAX - 1) + 1;
    all.acks_per_ms.truncate(
        used.max(
            all.acks_per_ms
                .iter()
                .rposition(|&c| c > 0)
                .map_or(0, |i| i + 1),
        ),
    );
    result.acks_per_ms = Some(all.acks_per_ms);
    result.outcomes = Some(all.outcomes);
    result.kill_index = Some(options.kill_index);
    result.node_acked = Some(node_acked);
    if let Some(mark) = mark {
        result.kill_at_s = Some(mark.at.as_secs_f64());
        result.killed = fault != Fault::None;
        result.node_acked_at_kill = Some(mark.node_acked);
        result.back_at_s = mark.back_at.map(|d| d.as_secs_f64());
    }
    Ok(result)
}

/// The kind of a failed publish, for the outcome counts.
fn error_kind(err: &PublishError) -> &'static str {
    match err {
        PublishError::Unknown { .. } => "unknown",
        PublishError::NotSent(_) => "not sent",
        PublishError::TimedOut { .. } => "timed out",
        PublishError::Rejected { .. } => "rejected",
        PublishError::MaybeStored { .. } => "maybe stored",
        PublishError::Closed(_) => "closed",
        _ => "other",
    }
}

/// Sends SIG`signal` to `pid` with the `kill` command (the workspace forbids `unsafe`, so no
/// `libc::kill`).
fn send_signal(signal: &str, pid: u32) -> Result<(), String> {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .map_err(|e| format!("running kill -{signal} {pid}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -{signal} {pid} failed ({status})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_land_in_their_millisecond() {
        let mut acks = Vec::new();
        count_ack(&mut acks, Duration::from_micros(500));
        count_ack(&mut acks, Duration::from_micros(999));
        count_ack(&mut acks, Duration::from_millis(1500));
        assert_eq!(acks[0], 2);
        assert_eq!(acks[1500], 1);
        assert_eq!(acks.iter().map(|&c| u64::from(c)).sum::<u64>(), 3);
    }

    #[test]
    fn caller_runs_merge() {
        let mut a = CallerRun::default();
        a.ack_at(Duration::from_millis(3));
        a.outcomes.unknown = 2;
        a.outcomes.attempt_errors.insert("unknown".into(), 2);
        let mut b = CallerRun::default();
        b.ack_at(Duration::from_millis(3));
        b.ack_at(Duration::from_millis(2500));
        b.outcomes.attempt_errors.insert("unknown".into(), 1);
        b.outcomes.attempt_errors.insert("not sent".into(), 4);
        a.merge(b);
        assert_eq!(a.acks_per_ms[3], 2);
        assert_eq!(a.acks_per_ms[2500], 1);
        assert_eq!(a.outcomes.unknown, 2);
        assert_eq!(a.outcomes.attempt_errors["unknown"], 3);
        assert_eq!(a.outcomes.attempt_errors.values().sum::<u64>(), 7);
    }
}
