//! `nsq-bench consume`: this workspace's consumer in cases m (one nsqd) and n (three), reading
//! a topic the suite filled beforehand, through its `Stream` (`--api stream`, the default: each
//! message finished as the loop takes it, as a handler that does nothing would be) or through
//! `Consumer::run` with a handler that does nothing (`--api run`, `--concurrency` workers), which
//! finishes each message when it returns.
//!
//! The throughput phase: the clock starts before the consumer connects (`--addrs`, one
//! connection per nsqd) and stops when `--n` messages have been taken. CPU time and the peak resident set
//! (`VmHWM`) are taken then, and the CPU time of the nsqd processes named by `--nsqd-pids` over
//! the same time. The channel holds `--filled` messages, a few more than `--n`, so
//! that the last timed ones do not wait for nsqd's output buffer timer; the loop reads the rest
//! after the clock stops. The latency phase: with the consumer still connected, the pacer
//! (`nsq-bench pace`, this binary) publishes `--latency-n` messages at `--latency-rate` per
//! second, each stamped with the moment it was written; the loop or the handler records now
//! minus that moment for each. Then the consumer drains and closes.

mod handler;

use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use nsq_consumer::{Consumer, ConsumerConfig};
use tokio::task::JoinHandle;
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
    /// `Consumer::run` with a handler instead of the `Stream`.
    handler: bool,
    /// The handler's workers with `--api run`.
    concurrency: usize,
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
            handler: match flags.get("api", "stream".to_owned())?.as_str() {
                "stream" => false,
                "run" => true,
                other => return Err(format!("--api: `stream` or `run`, not `{other}`")),
            },
            concurrency: flags.get("concurrency", 1)?,
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

/// What the throughput phase measured, taken when its last message was taken.
struct Timed {
    elapsed: Duration,
    cpu_s: Option<f64>,
    nsqd_cpu_s: Option<f64>,
    peak_kib: u64,
}

/// The clocks of the throughput phase: wall, this process's CPU and nsqd's.
struct Clock<'a> {
    started: Instant,
    cpu: CpuClock,
    nsqd_pids: &'a [String],
    nsqd_before: Option<Duration>,
}

impl<'a> Clock<'a> {
    fn start(nsqd_pids: &'a [String]) -> Self {
        Self {
            nsqd_before: nsqd_cpu(nsqd_pids),
            cpu: CpuClock::start(),
            started: Instant::now(),
            nsqd_pids,
        }
    }

    fn stop(&self) -> Result<Timed, String> {
        let elapsed = self.started.elapsed();
        let cpu_s = self.cpu.seconds();
        let nsqd_cpu_s = self
            .nsqd_before
            .zip(nsqd_cpu(self.nsqd_pids))
            .map(|(before, after)| after.saturating_sub(before).as_secs_f64());
        Ok(Timed {
            elapsed,
            cpu_s,
            nsqd_cpu_s,
            peak_kib: status_kib("VmHWM")?,
        })
    }
}

/// The CPU time of the processes `pids`; `None` when there are none or one cannot be read.
fn nsqd_cpu(pids: &[String]) -> Option<Duration> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|pid| process_cpu(pid)).sum()
}

/// What a run gave, whichever the API.
struct Phases {
    /// Messages taken in the timed phase, errors and latencies.
    tally: Tally,
    received: u64,
    /// `None` when the timed phase did not end.
    timed: Option<Timed>,
    /// Messages taken after the timed ones.
    extra: u64,
    /// Messages timed in the latency phase, when it ran.
    latency_n: Option<u64>,
}

/// Runs both phases and returns the result line.
pub(crate) async fn run(options: ConsumeOptions) -> Result<RunResult, String> {
    let mut config = ConsumerConfig::default();
    config.max_in_flight = options.max_in_flight;
    let baseline = status_kib("VmRSS")?;

    let clock = Clock::start(&options.nsqd_pids);
    let mut builder = Consumer::builder(options.topic.as_str(), options.channel.as_str())
        .map_err(|e| format!("topic or channel: {e}"))?
        .config(config);
    for addr in &options.addrs {
        builder = builder.nsqd(addr.as_str());
    }
    let consumer = builder
        .connect()
        .await
        .map_err(|e| format!("connecting to {}: {e}", options.addrs.join(", ")))?;
    let deadline = tokio::time::Instant::from_std(clock.started + options.time_limit);
    let phases = if options.handler {
        handler::phases(consumer, &options, &clock, deadline).await?
    } else {
        stream_phases(consumer, &options, &clock, deadline).await?
    };

    let mut result = RunResult::new(CLIENT, &options.case, options.n);
    let mut tally = phases.tally;
    tally.acked = phases.received;
    tally.truncated |= phases.timed.is_none();
    let timed = match phases.timed {
        Some(timed) => timed,
        None => clock.stop()?,
    };
    result.fill(tally, timed.elapsed);
    result.cpu_s = timed.cpu_s;
    result.nsqd_cpu_s = timed.nsqd_cpu_s;
    result.peak_rss_mib = Some(timed.peak_kib as f64 / 1024.0);
    result.baseline_rss_mib = Some(baseline as f64 / 1024.0);
    result.latency_n = phases.latency_n;
    result.uncounted_acked = Some(phases.extra);
    Ok(result)
}

/// Both phases through the consumer's `Stream`, each message finished as it is taken; then
/// the consumer drains.
async fn stream_phases(
    mut consumer: Consumer,
    options: &ConsumeOptions,
    clock: &Clock<'_>,
    deadline: tokio::time::Instant,
) -> Result<Phases, String> {
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
            Err(_) => break,
        }
    }
    let timed = if received == options.n {
        Some(clock.stop()?)
    } else {
        None
    };

    // The messages after the timed ones, untimed.
    let mut extra = 0;
    while timed.is_some() && extra < options.filled - options.n {
        match timeout_at(deadline, consumer.next()).await {
            Ok(Some(message)) => {
                extra += 1;
                tally.record(message.finish(), 1);
            }
            Ok(None) | Err(_) => break,
        }
    }

    let mut latency_n = None;
    if timed.is_some() && extra == options.filled - options.n && options.latency_n > 0 {
        match start_pacer(options) {
            Ok(pacing) => {
                let mut samples = 0;
                let end = latency_deadline(options);
                while samples < options.latency_n {
                    match timeout_at(end, consumer.next()).await {
                        Ok(Some(message)) => {
                            if let Some(at) = stamped_at(message.body()) {
                                tally.latency(since(at));
                                samples += 1;
                            }
                            tally.record(message.finish(), 1);
                        }
                        Ok(None) | Err(_) => break,
                    }
                }
                latency_n = Some(samples);
                if let Err(err) = pacer_outcome(pacing).await {
                    tally.record(Err(err), 0);
                }
            }
            Err(err) => tally.record(Err(err), 0),
        }
    }
    consumer.drain().await;
    Ok(Phases {
        tally,
        received,
        timed,
        extra,
        latency_n,
    })
}

/// The wall-clock time from `at` to now.
fn since(at: SystemTime) -> Duration {
    SystemTime::now().duration_since(at).unwrap_or_default()
}

/// When the latency phase gives up: the pacer's time and [`LATENCY_GRACE`] from now.
fn latency_deadline(options: &ConsumeOptions) -> tokio::time::Instant {
    let pace_time = Duration::from_secs_f64(options.latency_n as f64 / options.latency_rate);
    tokio::time::Instant::now() + pace_time + LATENCY_GRACE
}

/// Starts the pacer (this binary's `pace`) on a blocking thread.
fn start_pacer(
    options: &ConsumeOptions,
) -> Result<JoinHandle<std::io::Result<ExitStatus>>, String> {
    let this =
        std::env::current_exe().map_err(|e| format!("finding this binary for the pacer: {e}"))?;
    let mut command = pacer(this, options);
    Ok(tokio::task::spawn_blocking(move || command.status()))
}

/// Waits for the pacer; why it failed, if it did.
async fn pacer_outcome(pacing: JoinHandle<std::io::Result<ExitStatus>>) -> Result<(), String> {
    match pacing.await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("the pacer exited with {status}")),
        Ok(Err(err)) => Err(format!("running the pacer: {err}")),
        Err(err) => Err(format!("the pacer task failed: {err}")),
    }
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
