//! `nsq-bench consume`: this workspace's consumer in cases m (one nsqd) and n (three), reading
//! a topic the suite filled beforehand.
//!
//! The throughput phase: the clock starts before the consumer connects (`--addrs`, one
//! connection per nsqd) and stops when the stream has yielded `--n` messages, each finished
//! (FIN) at once, as a handler that does nothing would be. CPU time and the peak resident set
//! (`VmHWM`) are taken then, and the CPU time of the nsqd processes named by `--nsqd-pids` over
//! the same time. The channel holds `--filled` messages, a few more than `--n`, so
//! that the last timed ones do not wait for nsqd's output buffer timer; the loop reads the rest
//! after the clock stops. The latency phase: with the consumer still connected, the pacer
//! (`nsq-bench pace`, this binary) publishes `--latency-n` messages at `--latency-rate` per
//! second, each stamped with the moment it was written; the loop records now minus that moment
//! for each. Then the consumer drains and closes.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use nsq_consumer::{Consumer, ConsumerConfig};
use tokio::time::timeout_at;

use crate::cpu::{CpuClock, process_cpu};
use crate::flags::Flags;
use crate::memory::status_kib;
use crate::pace::stamped_at;
use crate::record::{RunResult, Tally};

/// The client's name in results.
pub(crate) const CLIENT: &str = "consumer";

/// How long messages of the latency phase may take to arrive after the pacer is done.
const LATENCY_GRACE: Duration = Duration::from_secs(5);

/// The options of `nsq-bench consume`.
#[derive(Debug, Clone)]
pub(crate) struct ConsumeOptions {
    /// Every nsqd to read from.
    addrs: Vec<String>,
    topic: String,
    channel: String,
    /// `m` or `n`, as recorded.
    case: String,
    /// The pids of the nsqd read from, whose CPU time is taken with the client's.
    nsqd_pids: Vec<String>,
    /// Messages of the throughput phase.
    n: u64,
    /// Messages in the channel when the client starts: `n` and some after them, read untimed.
    filled: u64,
    /// Body size of the latency phase's messages.
    size: usize,
    max_in_flight: u32,
    latency_n: u64,
    latency_rate: f64,
    time_limit: Duration,
}

impl ConsumeOptions {
    /// Reads the options from the command line.
    pub(crate) fn parse(args: &[String]) -> Result<Self, String> {
        let mut flags = Flags::parse(args, &[])?;
        let n = flags.get("n", 1_000_000)?;
        let options = Self {
            addrs: flags
                .string("addrs")
                .unwrap_or_else(|| "127.0.0.1:4150".to_owned())
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
            nsqd_pids: flags
                .string("nsqd-pids")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            topic: flags.get("topic", "bench".to_owned())?,
            channel: flags.get("channel", "bench".to_owned())?,
            case: flags.get("case", "m".to_owned())?,
            n,
            filled: flags.get("filled", n)?.max(n),
            size: flags.get("size", 100)?,
            max_in_flight: flags.get("max-in-flight", 2500)?,
            latency_n: flags.get("latency-n", 2_000)?,
            latency_rate: flags.get("latency-rate", 1_000.0)?,
            time_limit: Duration::from_secs_f64(flags.get("time-limit", 60.0)?),
        };
        flags.finish()?;
        if options.addrs.is_empty()
            || options.n == 0
            || options.max_in_flight == 0
            || options.latency_rate.is_nan()
            || options.latency_rate <= 0.0
        {
            return Err("--addrs must name an address; --n, --max-in-flight and \
                        --latency-rate must be positive"
                .into());
        }
        Ok(options)
    }
}

/// Runs both phases and returns the result line.
pub(crate) async fn run(options: ConsumeOptions) -> Result<RunResult, String> {
    let mut config = ConsumerConfig::default();
    config.max_in_flight = options.max_in_flight;
    let baseline = status_kib("VmRSS")?;

    let nsqd_cpu = || -> Option<Duration> {
        if options.nsqd_pids.is_empty() {
            return None;
        }
        options.nsqd_pids.iter().map(|pid| process_cpu(pid)).sum()
    };
    let nsqd_before = nsqd_cpu();
    let cpu = CpuClock::start();
    let started = Instant::now();
    let mut builder = Consumer::builder(options.topic.as_str(), options.channel.as_str())
        .map_err(|e| format!("topic or channel: {e}"))?
        .config(config);
    for addr in &options.addrs {
        builder = builder.nsqd(addr.as_str());
    }
    let mut consumer = builder
        .connect()
        .await
        .map_err(|e| format!("connecting to {}: {e}", options.addrs.join(", ")))?;

    let deadline = tokio::time::Instant::from_std(started + options.time_limit);
    let mut tally = Tally::with_capacity(options.latency_n as usize);
    let mut received = 0;
    while received < options.n {
        match timeout_at(deadline, consumer.next()).await {
            Ok(Some(message)) => {
                received += 1;
                tally.record(message.finish(), 1);
            }
            Ok(None) => {
                tally.record(Err("the consumer's stream ended"), 0);
                break;
            }
            Err(_) => {
                tally.truncated = true;
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    let cpu_s = cpu.seconds();
    let nsqd_cpu_s = nsqd_before
        .zip(nsqd_cpu())
        .map(|(before, after)| after.saturating_sub(before).as_secs_f64());
    let peak = status_kib("VmHWM")?;

    // The messages after the timed ones, untimed.
    let mut extra = 0;
    while received == options.n && extra < options.filled - options.n {
        match timeout_at(deadline, consumer.next()).await {
            Ok(Some(message)) => {
                extra += 1;
                tally.record(message.finish(), 0);
            }
            Ok(None) | Err(_) => break,
        }
    }

    let mut latency_n = None;
    if received == options.n && extra == options.filled - options.n && options.latency_n > 0 {
        let samples = latency_phase(&mut consumer, &options, &mut tally).await;
        latency_n = Some(samples);
    }
    consumer.drain().await;

    let mut result = RunResult::new(CLIENT, &options.case, options.n);
    result.fill(tally, elapsed);
    result.cpu_s = cpu_s;
    result.nsqd_cpu_s = nsqd_cpu_s;
    result.peak_rss_mib = Some(peak as f64 / 1024.0);
    result.baseline_rss_mib = Some(baseline as f64 / 1024.0);
    result.latency_n = latency_n;
    result.uncounted_acked = Some(extra);
    Ok(result)
}

/// Runs the pacer and times each stamped message from its publish to the loop; the number of
/// messages timed.
async fn latency_phase(
    consumer: &mut Consumer,
    options: &ConsumeOptions,
    tally: &mut Tally,
) -> u64 {
    let mut pacer = match std::env::current_exe() {
        Ok(this) => pacer(this, options),
        Err(err) => {
            tally.record(Err(format!("finding this binary for the pacer: {err}")), 0);
            return 0;
        }
    };
    let pacing = tokio::task::spawn_blocking(move || pacer.status());
    let pace_time = Duration::from_secs_f64(options.latency_n as f64 / options.latency_rate);
    let deadline = tokio::time::Instant::now() + pace_time + LATENCY_GRACE;
    let mut timed = 0;
    while timed < options.latency_n {
        match timeout_at(deadline, consumer.next()).await {
            Ok(Some(message)) => {
                if let Some(at) = stamped_at(message.body()) {
                    let took = SystemTime::now().duration_since(at).unwrap_or_default();
                    tally.latency(took);
                    timed += 1;
                }
                if let Err(err) = message.finish() {
                    tally.record(Err(err), 0);
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    match pacing.await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => tally.record(Err(format!("the pacer exited with {status}")), 0),
        Ok(Err(err)) => tally.record(Err(format!("running the pacer: {err}")), 0),
        Err(err) => tally.record(Err(format!("the pacer task failed: {err}")), 0),
    }
    timed
}

/// The pacer's command line: `nsq-bench pace` to every nsqd of the run.
fn pacer(this: PathBuf, options: &ConsumeOptions) -> Command {
    let mut command = Command::new(this);
    command.arg("pace").args([
        "--addrs",
        &options.addrs.join(","),
        "--topic",
        &options.topic,
        "--n",
        &options.latency_n.to_string(),
        "--rate",
        &options.latency_rate.to_string(),
        "--size",
        &options.size.to_string(),
    ]);
    command
}
