//! Case o: the command-line readers. Before each run the suite fills the channel of case m
//! (`--consumer-n` messages of `--size` bytes and a few more, on the suite's nsqd); then
//! `nsq-tail` (this workspace) or nsq's `nsq_tail` v1.3.0 reads `--consumer-n` of them with the
//! same max_in_flight, its standard output sent to /dev/null:
//!
//! - `nsq-tail -topic T -channel C -nsqd-tcp-address A -n N -max-in-flight M > /dev/null`
//! - `nsq_tail` with the same arguments.
//!
//! The rate is N over the wall-clock time of the whole process, start-up included, timed by the
//! suite the same way for both; the client's CPU time is the kernel's, once it has been waited
//! for. Afterwards nsq-tail must have left exactly the rest in the channel (nothing in flight),
//! and nsq_tail at least the rest (it exits on its Nth message before finishing it).

use std::process::{Command, Stdio};
use std::time::Instant;

use super::child::{GRACE, run_child_with};
use super::consume::{CHANNEL, fill};
use super::execute::{Executor, TOPIC};
use super::outcome::{CliRun, Outcome};
use super::plan::{Case, Client};
use crate::cpu::{children_cpu, process_cpu};
use crate::record::RunResult;

/// Runs `client` once in case o against the suite's nsqd, and checks what is left.
pub(super) fn run(executor: &mut Executor<'_>, round: u32, client: Client) -> Outcome {
    let plan = executor.plan;
    let nsqd = executor.nsqd;
    let n = plan.consumer_n;
    let mut outcome = Outcome::new(round, Case::O, client);
    let tools = [
        (Client::NsqTail, &plan.nsq_tail_bin),
        (Client::NsqTailGo, &plan.nsq_tail_go_bin),
    ];
    let Some(bin) = outcome.cli_binary(plan, (Case::O, client, n), tools, "n/a (not found)") else {
        return outcome;
    };

    let addr = nsqd.tcp_addr().to_string();
    // Through sh, so that standard output is /dev/null (the suite reads the client's).
    let mut command = Command::new("sh");
    command
        .args(["-c", "exec \"$0\" \"$@\" > /dev/null"])
        .arg(&bin)
        .args([
            "-topic",
            TOPIC,
            "-channel",
            CHANNEL,
            "-nsqd-tcp-address",
            &addr,
        ])
        .args(["-n", &n.to_string()])
        .args(["-max-in-flight", &plan.max_in_flight.to_string()]);
    outcome.cli = Some(CliRun {
        topic: TOPIC.to_owned(),
        command: format!(
            "{} -topic {TOPIC} -channel {CHANNEL} -nsqd-tcp-address {addr} -n {n} \
             -max-in-flight {} > /dev/null",
            bin.display(),
            plan.max_in_flight
        ),
        report: None,
    });

    if let Err(why) = fill(&[nsqd], plan) {
        outcome.failure = Some(why);
        nsqd.delete_topic(TOPIC);
        return outcome;
    }
    let nsqd_pid = nsqd.pid().map(|pid| pid.to_string());
    let nsqd_before = nsqd_pid.as_deref().and_then(process_cpu);
    let children_before = children_cpu();
    let started = Instant::now();
    let output = run_child_with(
        &mut command,
        Stdio::null(),
        plan.time_limit_of(Case::O) + GRACE,
        || {},
    );
    let seconds = started.elapsed().as_secs_f64();
    outcome.process_s = seconds;
    if let (Some(before), Some(after)) = (nsqd_before, nsqd_pid.as_deref().and_then(process_cpu)) {
        outcome.nsqd_cpu_s = Some(after.saturating_sub(before).as_secs_f64());
    }
    let client_cpu = children_before
        .zip(children_cpu())
        .map(|(before, after)| after.saturating_sub(before).as_secs_f64());

    // What is left: messages not finished, in the channel's queue or still in flight.
    let stats = nsqd.channel_stats(TOPIC, CHANNEL);
    let count = |field: &str| stats.as_ref().and_then(|s| s[field].as_u64());
    let left = count("depth")
        .zip(count("in_flight_count"))
        .map(|(depth, in_flight)| depth + in_flight);
    let in_flight = count("in_flight_count");
    outcome.topic_depth = left;
    outcome.backend_depth = count("backend_depth");
    nsqd.delete_topic(TOPIC);
    if let Err(failure) = output {
        outcome.failure = Some(failure);
        return outcome;
    }

    let mut result = RunResult::new(client.name(), Case::O.arg(), n);
    result.seconds = Some(seconds);
    result.cpu_s = client_cpu;
    result.acked = n;
    result.msgs_per_sec = Some(n as f64 / seconds.max(f64::EPSILON));
    let rest = plan.consumer_filled() - n;
    outcome.mismatch = match (client, left) {
        (_, None) => Some("the channel is gone".to_owned()),
        (Client::NsqTail, Some(left)) if left != rest || in_flight != Some(0) => Some(format!(
            "{left} messages left ({} in flight), not {rest}",
            in_flight.unwrap_or(0)
        )),
        (_, Some(left)) if left < rest => Some(format!(
            "{left} messages left, fewer than the {rest} not printed"
        )),
        _ => None,
    };
    outcome.result = Some(result);
    outcome
}
