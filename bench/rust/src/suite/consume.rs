//! Cases m and n: the consumers. Before each run the suite fills the topic's channel with
//! `--consumer-n` messages of `--size` bytes and a few more (`Plan::consumer_filled`), by MPUB
//! of 1,000 over one TCP connection per nsqd, before the client starts: on the suite's nsqd in
//! m, spread evenly over the three nsqd of the failover cases in n. Then one client reads them,
//! timing the first `--consumer-n`:
//!
//! - `consumer`: `nsq-bench consume`, this workspace's consumer (see `consume.rs`), through its
//!   `Stream` or, with `--consumer-api run`, `Consumer::run` and a handler;
//! - `go-nsq`: the go-nsq client's consumer mode, go-nsq v1.1.0's `Consumer` with one handler;
//! - `bench_reader`: nsq v1.3.0's `bench/bench_reader`, m only (it reads one nsqd), with
//!   `GOMAXPROCS=1` so that it opens one connection, `--rdy` the same max_in_flight.
//!
//! The first two report their own numbers, latency included (they run the pacer themselves).
//! bench_reader runs for a time, not a count (`--runfor`), and prints only its rate: the suite
//! sizes the time from the best rate seen so far in the case, so that it ends before the channel
//! is empty, and checks that it did; it takes its CPU time from the kernel once the process has
//! been waited for, and samples its peak resident set while it runs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use nsq_proto::{Command as NsqCommand, Topic};
use nsq_test_support::Nsqd;

use super::child::{GRACE, last_json_line, run_child_watching, tail};
use super::execute::{Executor, TOPIC, parse_go_duration};
use super::outcome::Outcome;
use super::plan::{Case, Client, Plan};
use crate::cpu::{children_cpu, process_cpu};
use crate::raw::{Connection, encode};
use crate::record::RunResult;

/// The channel every consumer reads.
pub(crate) const CHANNEL: &str = "bench";

/// Messages per MPUB when the suite fills a topic.
const FILL_BATCH: usize = 1_000;

/// How long the channel may take to hold every message of the topic after the last MPUB.
const FILL_WAIT: Duration = Duration::from_secs(30);

/// The share of the time the best consumer so far would take to empty the channel that
/// bench_reader runs for, so that it stops before the channel is empty.
const RUNFOR_SHARE: f64 = 0.5;

/// The rate assumed for bench_reader's first run when no consumer has run the case yet.
const FIRST_RATE: f64 = 500_000.0;

/// How often, in the suite's 2 ms ticks, bench_reader's peak resident set is sampled.
const SAMPLE_EVERY: u32 = 10;

/// Runs `client` once in case m or n, and checks what is left in the channel.
pub(super) fn run(executor: &mut Executor<'_>, round: u32, case: Case, client: Client) -> Outcome {
    let plan = executor.plan;
    let mut outcome = Outcome::new(round, case, client);
    let unsupported = |why: &str| {
        Some(RunResult::unsupported(
            client.name(),
            case.arg(),
            plan.consumer_n,
            why,
        ))
    };
    if let Some(why) = plan.unavailable.get(&client) {
        outcome.result = unsupported(why);
        return outcome;
    }
    match client {
        Client::Consumer | Client::GoNsq => {}
        Client::BenchReader if case == Case::M => {}
        Client::BenchReader => {
            outcome.result = unsupported("n/a (one nsqd only)");
            return outcome;
        }
        _ => {
            outcome.result = unsupported("n/a (consumers only)");
            return outcome;
        }
    }
    if case == Case::N {
        executor.start_cluster();
        // A failover run restarts the node it killed; should it not have, this does.
        for node in &mut executor.cluster {
            if !node.is_running() {
                node.restart();
            }
        }
    }
    let nodes: Vec<&Nsqd> = if case == Case::N {
        executor.cluster.iter().collect()
    } else {
        vec![executor.nsqd]
    };
    let addrs: Vec<String> = nodes.iter().map(|n| n.tcp_addr().to_string()).collect();
    let best_rate = executor.consume_rate.get(&case).copied();

    let mut command = match client {
        Client::Consumer => consumer_command(&executor.this, plan, case, &addrs),
        Client::GoNsq => match &plan.go_nsq_bin {
            Some(bin) => go_nsq_command(bin, &executor.this, plan, case, &addrs),
            None => {
                outcome.result = unsupported("n/a (not built)");
                return outcome;
            }
        },
        _ => match &plan.bench_reader_bin {
            Some(bin) => bench_reader_command(bin, plan, &addrs[0], best_rate),
            None => {
                outcome.result = unsupported("n/a (not found)");
                return outcome;
            }
        },
    };

    if let Err(why) = fill(&nodes, plan) {
        outcome.failure = Some(why);
        for node in &nodes {
            node.delete_topic(TOPIC);
        }
        return outcome;
    }

    let nsqd_pids: Vec<String> = nodes
        .iter()
        .filter_map(|n| n.pid())
        .map(|p| p.to_string())
        .collect();
    if client != Client::BenchReader && nsqd_pids.len() == nodes.len() {
        // The consumers take nsqd's CPU time over their timed phase themselves.
        command.arg(if client == Client::GoNsq {
            format!("-nsqd-pids={}", nsqd_pids.join(","))
        } else {
            format!("--nsqd-pids={}", nsqd_pids.join(","))
        });
    }
    let nsqd_cpu = || -> Option<Duration> { nsqd_pids.iter().map(|p| process_cpu(p)).sum() };
    let nsqd_before = nsqd_cpu();
    let children_before = children_cpu();
    let mut peak_kib = 0;
    let mut ticks = 0_u32;
    let started = Instant::now();
    let output = run_child_watching(
        &mut command,
        Stdio::null(),
        plan.time_limit_of(case) + GRACE,
        |pid| {
            ticks += 1;
            if client == Client::BenchReader && ticks % SAMPLE_EVERY == 0 {
                peak_kib = peak_kib.max(peak_of(pid).unwrap_or(0));
            }
        },
    );
    outcome.process_s = started.elapsed().as_secs_f64();
    if let (Some(before), Some(after)) = (nsqd_before, nsqd_cpu()) {
        outcome.nsqd_cpu_s = Some(after.saturating_sub(before).as_secs_f64());
    }
    let client_cpu = children_before
        .zip(children_cpu())
        .map(|(before, after)| after.saturating_sub(before).as_secs_f64());

    // What is left: messages not finished, in the channel's queue or still in flight.
    let mut left = Some(0);
    let mut on_disk = 0;
    for node in &nodes {
        let stats = node.channel_stats(TOPIC, CHANNEL);
        let count = |field: &str| stats.as_ref().and_then(|s| s[field].as_u64());
        left = left
            .zip(count("depth"))
            .zip(count("in_flight_count"))
            .map(|((sum, depth), in_flight)| sum + depth + in_flight);
        on_disk += count("backend_depth").unwrap_or(0);
        node.delete_topic(TOPIC);
    }
    outcome.topic_depth = left;
    outcome.backend_depth = Some(on_disk);

    let parsed = output.and_then(|(stdout, stderr)| {
        if client == Client::BenchReader {
            bench_reader_result(&stderr, plan)
        } else {
            last_json_line(&stdout)
                .ok_or_else(|| format!("no result line on stdout; stderr: {}", tail(&stderr)))
        }
    });
    match parsed {
        Ok(mut result) => {
            if client == Client::BenchReader {
                result.cpu_s = client_cpu;
                result.peak_rss_mib = (peak_kib > 0).then(|| peak_kib as f64 / 1024.0);
            } else {
                // Over the timed phase, not the whole process (which the suite measured).
                outcome.nsqd_cpu_s = result.nsqd_cpu_s;
            }
            if result.unsupported.is_none() {
                outcome.mismatch = check_left(client, &result, left, plan);
                if client != Client::BenchReader && !result.truncated {
                    if let Some(rate) = result.msgs_per_sec {
                        let best = executor.consume_rate.entry(case).or_insert(rate);
                        *best = best.max(rate);
                    }
                }
            }
            outcome.result = Some(result);
        }
        Err(failure) => outcome.failure = Some(failure),
    }
    outcome
}

/// Fills the channel of each of `nodes` with its share of `plan.consumer_filled()` messages: a fresh
/// topic and channel, then MPUBs of [`FILL_BATCH`], each answered before the next.
pub(super) fn fill(nodes: &[&Nsqd], plan: &Plan) -> Result<(), String> {
    let topic = Topic::new(TOPIC).map_err(|e| e.to_string())?;
    let body = Bytes::from(vec![b'x'; plan.size]);
    let full = vec![body; FILL_BATCH];
    let mut out = BytesMut::new();
    let count = nodes.len() as u64;
    let total = plan.consumer_filled();
    for (i, node) in nodes.iter().enumerate() {
        node.delete_topic(TOPIC);
        node.create_channel(TOPIC, CHANNEL);
        let share = total / count + u64::from((i as u64) < total % count);
        let addr = node.tcp_addr().to_string();
        let mut conn = Connection::open(&addr)?;
        let mut left = share;
        while left > 0 {
            let size = left.min(FILL_BATCH as u64) as usize;
            out.clear();
            encode(
                NsqCommand::Mpub {
                    topic: &topic,
                    bodies: &full[..size],
                },
                &mut out,
            )?;
            conn.write(&out)?;
            conn.answer()?
                .map_err(|err| format!("filling the topic on {addr}: nsqd refused: {err}"))?;
            left -= size as u64;
        }
        // nsqd copies the topic's messages to its channels in a goroutine of its own.
        let until = Instant::now() + FILL_WAIT;
        loop {
            let depth = node.channel_depth(TOPIC, CHANNEL);
            if depth == Some(share) {
                break;
            }
            if Instant::now() >= until {
                return Err(format!(
                    "filling the topic on {addr}: the channel holds {} messages {} s after the \
                     last MPUB, not {share}",
                    depth.map_or_else(|| "no".to_owned(), |d| d.to_string()),
                    FILL_WAIT.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(())
}

/// `nsq-bench consume` with the case's settings.
fn consumer_command(this: &Path, plan: &Plan, case: Case, addrs: &[String]) -> Command {
    let mut command = Command::new(this);
    command.arg("consume").args([
        "--addrs",
        &addrs.join(","),
        "--topic",
        TOPIC,
        "--channel",
        CHANNEL,
        "--case",
        case.arg(),
        "--n",
        &plan.consumer_n.to_string(),
        "--filled",
        &plan.consumer_filled().to_string(),
        "--size",
        &plan.size.to_string(),
        "--max-in-flight",
        &plan.max_in_flight.to_string(),
        "--latency-n",
        &plan.latency_n.to_string(),
        "--latency-rate",
        &plan.latency_rate.to_string(),
        "--time-limit",
        &plan.time_limit_of(case).as_secs_f64().to_string(),
        "--api",
        &plan.consumer_api,
    ]);
    command
}

/// The go-nsq client's consumer mode with the case's settings; `this` is its pacer.
fn go_nsq_command(bin: &Path, this: &Path, plan: &Plan, case: Case, addrs: &[String]) -> Command {
    let mut command = Command::new(bin);
    command.args([
        format!("-case={}", case.arg()),
        format!("-addr={}", addrs[0]),
        format!("-addrs={}", addrs.join(",")),
        format!("-topic={TOPIC}"),
        format!("-channel={CHANNEL}"),
        format!("-n={}", plan.consumer_n),
        format!("-filled={}", plan.consumer_filled()),
        format!("-size={}", plan.size),
        format!("-max-in-flight={}", plan.max_in_flight),
        format!("-latency-n={}", plan.latency_n),
        format!("-latency-rate={}", plan.latency_rate),
        format!("-pacer={}", this.display()),
        format!("-time-limit={}ms", plan.time_limit_of(case).as_millis()),
    ]);
    command
}

/// bench_reader on one connection (`GOMAXPROCS=1`; it opens one per GOMAXPROCS) with RDY
/// max_in_flight, for [`RUNFOR_SHARE`] of the time the best consumer so far took to empty the
/// channel.
fn bench_reader_command(bin: &Path, plan: &Plan, addr: &str, best_rate: Option<f64>) -> Command {
    let rate = best_rate.unwrap_or(FIRST_RATE).max(1.0);
    let seconds =
        (plan.consumer_n as f64 / rate * RUNFOR_SHARE).clamp(0.05, plan.time_limit.as_secs_f64());
    let mut command = Command::new(bin);
    command.env("GOMAXPROCS", "1").args([
        format!("-nsqd-tcp-address={addr}"),
        format!("-topic={TOPIC}"),
        format!("-channel={CHANNEL}"),
        format!("-size={}", plan.size),
        format!("-rdy={}", plan.max_in_flight),
        format!("-runfor={}ms", (seconds * 1000.0).ceil() as u64),
    ]);
    command
}

/// bench_reader prints only `duration: 1.0004s - 106.191mb/s - 1113488.982ops/s - 0.898us/op`
/// on stderr; the count is the rate times the duration.
fn bench_reader_result(stderr: &str, plan: &Plan) -> Result<RunResult, String> {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("duration:"))
        .ok_or_else(|| {
            format!(
                "no `duration:` line in bench_reader's output: {}",
                tail(stderr)
            )
        })?;
    let fields: Vec<&str> = line
        .split("duration:")
        .nth(1)
        .unwrap_or_default()
        .split(" - ")
        .map(str::trim)
        .collect();
    let seconds = fields
        .first()
        .and_then(|d| parse_go_duration(d))
        .ok_or_else(|| format!("cannot read the duration in {line:?}"))?;
    let rate: f64 = fields
        .iter()
        .find_map(|f| f.strip_suffix("ops/s")?.parse().ok())
        .ok_or_else(|| format!("cannot read the rate in {line:?}"))?;
    let mut result = RunResult::new(Client::BenchReader.name(), Case::M.arg(), plan.consumer_n);
    result.seconds = Some(seconds);
    result.msgs_per_sec = Some(rate);
    result.acked = (rate * seconds).round() as u64;
    Ok(result)
}

/// Whether what is left in the channels agrees with the client: nothing for the consumers,
/// which read every message; for bench_reader, which runs for a time, something (else it
/// emptied the channel before its time was up, and its rate is too low).
fn check_left(
    client: Client,
    result: &RunResult,
    left: Option<u64>,
    plan: &Plan,
) -> Option<String> {
    let (n, filled) = (plan.consumer_n, plan.consumer_filled());
    let Some(left) = left else {
        return Some("nsqd reported no channel after the run".to_owned());
    };
    if client == Client::BenchReader {
        if left == 0 {
            return Some(
                "bench_reader emptied the channel before its time was up: its rate is too low"
                    .to_owned(),
            );
        }
        // The messages in flight when it closed the connection go back to the channel, so
        // its count and nsqd's differ by up to max_in_flight; more than were filled is wrong.
        return (result.acked > filled).then(|| {
            format!(
                "bench_reader counted {} messages, the channel had {filled}",
                result.acked
            )
        });
    }
    if result.truncated {
        return None;
    }
    let read = result.acked + result.uncounted_acked.unwrap_or(0);
    (left > 0 || result.acked != n || read != filled).then(|| {
        format!(
            "the client read {read} of {filled} messages ({} of the {n} timed) and nsqd still \
             holds {left}",
            result.acked
        )
    })
}

/// The peak resident set (`VmHWM`) of process `pid` in KiB.
fn peak_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix("VmHWM:")?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_readers_line() {
        let plan = {
            let mut flags = crate::flags::Flags::parse(&[], &["quick"]).unwrap();
            Plan::from_flags(&mut flags).unwrap()
        };
        let stderr = "[bench_reader] 2026/12/07 16:00:00 duration: 2s - 47.684mb/s - \
                      500000.000ops/s - 2.000us/op\n";
        let result = bench_reader_result(stderr, &plan).unwrap();
        assert_eq!(result.acked, 1_000_000);
        assert_eq!(result.msgs_per_sec, Some(500_000.0));
        assert_eq!(result.seconds, Some(2.0));
        assert!(bench_reader_result("panic: EOF", &plan).is_err());
    }

    #[test]
    fn what_is_left_must_match_the_client() {
        let args: Vec<String> = ["--consumer-n", "100", "--max-in-flight", "1"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let mut flags = crate::flags::Flags::parse(&args, &[]).unwrap();
        let plan = Plan::from_flags(&mut flags).unwrap();
        assert_eq!(plan.consumer_filled(), 110);
        let mut result = RunResult::new("consumer", "m", 100);
        result.acked = 100;
        result.uncounted_acked = Some(10);
        assert_eq!(check_left(Client::Consumer, &result, Some(0), &plan), None);
        assert!(check_left(Client::Consumer, &result, Some(3), &plan).is_some());
        assert!(check_left(Client::Consumer, &result, None, &plan).is_some());
        result.uncounted_acked = Some(7);
        assert!(check_left(Client::Consumer, &result, Some(0), &plan).is_some());
        result.acked = 60;
        assert_eq!(
            check_left(Client::BenchReader, &result, Some(40), &plan),
            None
        );
        let drained = check_left(Client::BenchReader, &result, Some(0), &plan).unwrap();
        assert!(drained.contains("emptied"), "{drained}");
        result.acked = 111;
        assert!(check_left(Client::BenchReader, &result, Some(5), &plan).is_some());
    }
}
