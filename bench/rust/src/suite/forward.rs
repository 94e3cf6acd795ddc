//! Case p: the forwarders. Before each run the suite fills the channel of case m
//! (`--consumer-n` messages of `--size` bytes and a few more, on the suite's nsqd) and starts a
//! second nsqd, the destination, with the same `--mem-queue-size`; then `nsq-to-nsq` (this workspace) or nsq's `nsq_to_nsq`
//! v1.3.0 forwards the channel to the destination's topic `forwarded` with the same
//! max_in_flight:
//!
//! - `nsq-to-nsq -topic T -channel C -nsqd-tcp-address A -destination-nsqd-tcp-address D
//!   -destination-topic forwarded -max-in-flight M -status-every 0`
//! - `nsq_to_nsq` with the same arguments.
//!
//! Neither ends on its own: the suite polls the destination's count every 10 ms and stops the
//! clock, reads the client's CPU time from the kernel (`/proc`) and sends SIGTERM once it holds
//! `--consumer-n` messages. The rate is that count over the time from the start of the process,
//! start-up included, for both alike.

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nsq_test_support::{Nsqd, NsqdOptions};

use super::child::GRACE;
use super::consume::{CHANNEL, fill};
use super::execute::{Executor, TOPIC};
use super::outcome::{CliRun, Outcome};
use super::plan::{Case, Client};
use crate::cpu::process_cpu;
use crate::record::RunResult;

/// The destination topic.
const DESTINATION_TOPIC: &str = "forwarded";

/// How often the destination's count is read.
const POLL: Duration = Duration::from_millis(10);

/// Runs `client` once in case p, from the suite's nsqd to a fresh destination nsqd.
pub(super) fn run(executor: &mut Executor<'_>, round: u32, client: Client) -> Outcome {
    let plan = executor.plan;
    let nsqd = executor.nsqd;
    let n = plan.consumer_n;
    let mut outcome = Outcome::new(round, Case::P, client);
    let tools = [
        (Client::NsqToNsq, &plan.nsq_to_nsq_bin),
        (Client::NsqToNsqGo, &plan.nsq_to_nsq_go_bin),
    ];
    let Some(bin) = outcome.cli_binary(plan, (Case::P, client, n), tools, "n/a (not found)") else {
        return outcome;
    };

    // As the suite's nsqd: every message in memory, none written to disk.
    let destination = Nsqd::start_with(NsqdOptions::new().mem_queue_size(plan.mem_queue_size()));
    let addr = nsqd.tcp_addr().to_string();
    let dest_addr = destination.tcp_addr().to_string();
    let mif = plan.max_in_flight.to_string();
    let args = [
        "-topic",
        TOPIC,
        "-channel",
        CHANNEL,
        "-nsqd-tcp-address",
        &addr,
        "-destination-nsqd-tcp-address",
        &dest_addr,
        "-destination-topic",
        DESTINATION_TOPIC,
        "-max-in-flight",
        &mif,
        "-status-every",
        "0",
    ];
    outcome.cli = Some(CliRun {
        topic: TOPIC.to_owned(),
        command: format!("{} {}", bin.display(), args.join(" ")),
        report: None,
    });
    if let Err(why) = fill(&[nsqd], plan) {
        outcome.failure = Some(why);
        nsqd.delete_topic(TOPIC);
        return outcome;
    }

    let pids: Vec<String> = [nsqd.pid(), destination.pid()]
        .into_iter()
        .flatten()
        .map(|p| p.to_string())
        .collect();
    let nsqd_cpu = || -> Option<Duration> { pids.iter().map(|p| process_cpu(p)).sum() };
    let nsqd_before = nsqd_cpu();
    let started = Instant::now();
    let mut child = match Command::new(&bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            outcome.failure = Some(format!("cannot run {}: {e}", bin.display()));
            nsqd.delete_topic(TOPIC);
            return outcome;
        }
    };
    let pid = child.id().to_string();
    let deadline = started + plan.time_limit_of(Case::P) + GRACE;
    let reached = loop {
        if destination
            .topic_message_count(DESTINATION_TOPIC)
            .unwrap_or(0)
            >= n
        {
            break Ok((started.elapsed(), process_cpu(&pid)));
        }
        match child.try_wait() {
            Ok(Some(status)) => break Err(format!("exited with {status} before forwarding {n}")),
            Ok(None) if Instant::now() >= deadline => {
                break Err(format!(
                    "not done after {} s",
                    deadline.duration_since(started).as_secs()
                ));
            }
            Ok(None) => thread::sleep(POLL),
            Err(e) => break Err(format!("waiting for {}: {e}", bin.display())),
        }
    };
    let nsqd_after = nsqd_cpu();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let stopped = Instant::now();
    while matches!(child.try_wait(), Ok(None)) && stopped.elapsed() < GRACE {
        thread::sleep(POLL);
    }
    let _ = child.kill();
    let _ = child.wait();
    if let (Some(before), Some(after)) = (nsqd_before, nsqd_after) {
        outcome.nsqd_cpu_s = Some(after.saturating_sub(before).as_secs_f64());
    }
    let forwarded = destination.topic_message_count(DESTINATION_TOPIC);
    nsqd.delete_topic(TOPIC);
    drop(destination);
    let (elapsed, cpu) = match reached {
        Ok(reached) => reached,
        Err(failure) => {
            outcome.failure = Some(failure);
            return outcome;
        }
    };
    let seconds = elapsed.as_secs_f64();
    outcome.process_s = seconds;
    let mut result = RunResult::new(client.name(), Case::P.arg(), n);
    result.seconds = Some(seconds);
    result.cpu_s = cpu.map(|c| c.as_secs_f64());
    result.acked = n;
    result.msgs_per_sec = Some(n as f64 / seconds.max(f64::EPSILON));
    // The source holds a few more than n: what arrived past n was forwarded by the time of
    // SIGTERM, never more than were filled.
    outcome.mismatch = match forwarded {
        None => Some("the destination topic is gone".to_owned()),
        Some(got) if got > plan.consumer_filled() => Some(format!(
            "{got} messages at the destination, more than the {} filled",
            plan.consumer_filled()
        )),
        _ => None,
    };
    outcome.result = Some(result);
    outcome
}
