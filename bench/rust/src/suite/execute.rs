//! Running one client for one case against the suite's nsqd, and checking nsqd's count.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use nsq_test_support::Nsqd;

use super::child::{GRACE, last_json_line, run_child, tail};
use super::cli;
use super::consume;
use super::forward;
use super::outcome::Outcome;
use super::plan::{Case, Client, Plan};
use super::tools;
use crate::cpu::process_cpu;
use crate::record::RunResult;

/// The topic every run publishes to; it is deleted after each run.
pub(crate) const TOPIC: &str = "bench";

/// Runs clients against one nsqd.
pub(crate) struct Executor<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) nsqd: &'a Nsqd,
    /// This binary, for the Rust clients.
    pub(crate) this: PathBuf,
    /// The best MPUB rate seen so far, to size bench_writer's run (it runs for a time).
    pub(crate) mpub_rate: Option<f64>,
    /// The nsqd of the failover cases, started at the first failover run.
    pub(crate) cluster: Vec<Nsqd>,
    /// Case k's file of lines, written at its first run: its path, or why it could not be.
    pub(crate) cli_input: Option<Result<PathBuf, String>>,
    /// The best rate of a consumer so far in cases m and n, to size bench_reader's run.
    pub(crate) consume_rate: BTreeMap<Case, f64>,
}

/// How a (case, client) pair is run, or why it is not.
enum Launch {
    Process(Command),
    Unsupported(String),
}

impl Executor<'_> {
    /// Runs `client` in `case` once and checks the topic depth against its acknowledgements.
    pub(crate) fn run(&mut self, round: u32, case: Case, client: Client) -> Outcome {
        if matches!(case, Case::J | Case::J0 | Case::L) {
            return self.run_failover(round, case, client);
        }
        if case == Case::K {
            return cli::run(self.plan, self.nsqd, &mut self.cli_input, round, client);
        }
        if matches!(case, Case::M | Case::N) {
            return consume::run(self, round, case, client);
        }
        if case == Case::O {
            return tools::run(self, round, client);
        }
        if case == Case::P {
            return forward::run(self, round, client);
        }
        let mut outcome = Outcome::new(round, case, client);
        let mut command = match self.launch(case, client) {
            Launch::Unsupported(why) => {
                outcome.result = Some(RunResult::unsupported(
                    client.name(),
                    case.arg(),
                    self.plan.n,
                    &why,
                ));
                return outcome;
            }
            Launch::Process(command) => command,
        };

        // A fresh topic, created before the clock starts: creating it allocates nsqd's
        // memory queue, which is not what is measured.
        self.nsqd.delete_topic(TOPIC);
        self.nsqd.create_topic(TOPIC);
        let nsqd_pid = self.nsqd.pid().map(|pid| pid.to_string());
        let nsqd_cpu_before = nsqd_pid.as_deref().and_then(process_cpu);
        let started = Instant::now();
        let output = run_child(&mut command, self.plan.time_limit_of(case) + GRACE, || {});
        outcome.process_s = started.elapsed().as_secs_f64();
        if matches!(case, Case::H | Case::I) {
            // The client stops nsqd and resumes it; if it died in between, nsqd is resumed here.
            if let Some(pid) = &nsqd_pid {
                let _ = Command::new("kill").args(["-CONT", pid]).status();
            }
        }
        if let (Some(before), Some(after)) =
            (nsqd_cpu_before, nsqd_pid.as_deref().and_then(process_cpu))
        {
            outcome.nsqd_cpu_s = Some(after.saturating_sub(before).as_secs_f64());
        }

        let stats = self.nsqd.topic_stats(TOPIC);
        let depth = stats.as_ref().and_then(|s| s["depth"].as_u64());
        outcome.topic_depth = depth;
        outcome.backend_depth = stats.as_ref().and_then(|s| s["backend_depth"].as_u64());
        self.nsqd.delete_topic(TOPIC);

        let parsed = output.and_then(|(stdout, stderr)| {
            if client == Client::BenchWriter {
                bench_writer_result(&stderr, depth.unwrap_or(0), self.plan.size)
            } else {
                last_json_line(&stdout)
                    .ok_or_else(|| format!("no result line on stdout; stderr: {}", tail(&stderr)))
            }
        });
        match parsed {
            Ok(result) => {
                if result.unsupported.is_none() {
                    outcome.mismatch = check_depth(&result, depth);
                    if case == Case::D {
                        if let Some(rate) = result.msgs_per_sec {
                            self.mpub_rate = Some(self.mpub_rate.map_or(rate, |r| r.max(rate)));
                        }
                    }
                }
                outcome.result = Some(result);
            }
            Err(failure) => outcome.failure = Some(failure),
        }
        outcome
    }

    fn launch(&self, case: Case, client: Client) -> Launch {
        if let Some(why) = self.plan.unavailable.get(&client) {
            return Launch::Unsupported(why.clone());
        }
        let plan = self.plan;
        match (client, case) {
            (_, Case::J | Case::J0 | Case::K | Case::L | Case::M | Case::N | Case::O | Case::P) => {
                unreachable!(
                    "cases j, j0, k, l, m, n and o are launched by run_failover, cli::run, \
                     consume::run and tools::run"
                )
            }
            (Client::NsqToNsq | Client::NsqToNsqGo, _) => {
                Launch::Unsupported("n/a (p only)".to_owned())
            }
            (Client::NsqTail | Client::NsqTailGo, _) => {
                Launch::Unsupported("n/a (o only)".to_owned())
            }
            (Client::Consumer | Client::BenchReader, _) => {
                Launch::Unsupported("n/a (m and n only)".to_owned())
            }
            (Client::NsqPub | Client::ToNsq, _) => Launch::Unsupported("n/a (k only)".to_owned()),
            (Client::Pool, Case::B | Case::CStar) => {
                let mut command = Command::new(&self.this);
                command.arg("pool").args(self.common_args(plan.n, case));
                Launch::Process(command)
            }
            (Client::Pool, Case::A | Case::C | Case::D | Case::E) => {
                Launch::Unsupported("n/a (b, c* and j only)".to_owned())
            }
            (Client::Producer, Case::F) => {
                let mut command = Command::new(&self.this);
                command.arg("rss").args(self.common_args(plan.rss_n, case));
                Launch::Process(command)
            }
            (Client::Producer, Case::G) => {
                let mut command = Command::new(&self.this);
                command
                    .arg("allocs")
                    .args(self.common_args(plan.allocs_n, case))
                    .args(["--warmup", &plan.warmup.to_string()]);
                Launch::Process(command)
            }
            (Client::Producer, Case::H | Case::I) => match self.nsqd.pid() {
                Some(pid) => {
                    let mut command = Command::new(&self.this);
                    command
                        .arg("stall")
                        .args(self.common_args(plan.stall_n, case))
                        .args(["--nsqd-pid", &pid.to_string()]);
                    Launch::Process(command)
                }
                None => Launch::Unsupported("n/a (no nsqd pid)".to_owned()),
            },
            (_, Case::F | Case::G | Case::H | Case::I) => {
                Launch::Unsupported("n/a (producer only)".to_owned())
            }
            (Client::Producer | Client::Raw, _) => {
                let mut command = Command::new(&self.this);
                command
                    .arg(if client == Client::Raw {
                        "raw"
                    } else {
                        "producer"
                    })
                    .args(self.common_args(plan.n, case));
                Launch::Process(command)
            }
            (Client::TokioNsq, _) => match &plan.tokio_nsq_bin {
                Some(bin) => {
                    let mut command = Command::new(bin);
                    command.args(self.common_args(plan.n, case));
                    Launch::Process(command)
                }
                None => Launch::Unsupported("n/a (not built)".to_owned()),
            },
            (Client::GoNsq, _) => match &plan.go_nsq_bin {
                Some(bin) => Launch::Process(self.go_nsq(bin, case)),
                None => Launch::Unsupported("n/a (not built)".to_owned()),
            },
            (Client::BenchWriter, Case::D) => match &plan.bench_writer_bin {
                Some(bin) => Launch::Process(self.bench_writer(bin)),
                None => Launch::Unsupported("n/a (not built)".to_owned()),
            },
            (Client::BenchWriter, _) => Launch::Unsupported("n/a (MPUB only)".to_owned()),
        }
    }

    /// The flags of the Rust clients (this binary's subcommands and the tokio-nsq client).
    fn common_args(&self, n: u64, case: Case) -> Vec<String> {
        let plan = self.plan;
        [
            ("--addr", self.nsqd.tcp_addr().to_string()),
            ("--topic", TOPIC.to_owned()),
            ("--n", n.to_string()),
            ("--size", plan.size.to_string()),
            ("--case", case.arg().to_owned()),
            ("--callers", plan.callers.to_string()),
            ("--window", plan.window.to_string()),
            ("--batch", plan.batch.to_string()),
            (
                "--time-limit",
                plan.time_limit_of(case).as_secs_f64().to_string(),
            ),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect()
    }

    fn go_nsq(&self, bin: &Path, case: Case) -> Command {
        let plan = self.plan;
        let mut command = Command::new(bin);
        command.args([
            format!("-addr={}", self.nsqd.tcp_addr()),
            format!("-topic={TOPIC}"),
            format!("-n={}", plan.n),
            format!("-size={}", plan.size),
            format!("-case={}", case.arg()),
            format!("-callers={}", plan.callers),
            format!("-window={}", plan.window),
            format!("-batch={}", plan.batch),
            format!("-time-limit={}ms", plan.time_limit.as_millis()),
        ]);
        command
    }

    /// nsq's bench_writer with GOMAXPROCS=1, so that it opens one connection (it opens one per
    /// GOMAXPROCS), like case d's one caller. It runs for a time, not a count: long enough for
    /// about `n` messages at the best MPUB rate seen so far.
    fn bench_writer(&self, bin: &Path) -> Command {
        let plan = self.plan;
        let rate = self.mpub_rate.unwrap_or(1_000_000.0).max(1.0);
        let seconds = (plan.n as f64 / rate).clamp(0.05, plan.time_limit.as_secs_f64());
        let mut command = Command::new(bin);
        command.env("GOMAXPROCS", "1").args([
            format!("-nsqd-tcp-address={}", self.nsqd.tcp_addr()),
            format!("-topic={TOPIC}"),
            format!("-size={}", plan.size),
            format!("-batch-size={}", plan.batch),
            format!("-runfor={}ms", (seconds * 1000.0).ceil() as u64),
        ]);
        command
    }
}

/// Whether nsqd's count agrees with the client: it must hold every acknowledged message, and
/// at most the failed ones besides (a publish whose answer was lost may still be stored).
fn check_depth(result: &RunResult, depth: Option<u64>) -> Option<String> {
    let depth = depth.unwrap_or(0);
    let acked = result.acked + result.uncounted_acked.unwrap_or(0);
    if depth >= acked && depth <= acked + result.errors {
        None
    } else {
        Some(format!(
            "nsqd holds {depth} messages, the client had {acked} acknowledged and {} failed",
            result.errors
        ))
    }
}

/// bench_writer prints no count, only `duration: 1.0004s - 106.191mb/s - 1113488.982ops/s -
/// 0.898us/op` on stderr. The count is nsqd's depth; the rate is the depth over the duration,
/// cross-checked against the printed rate.
fn bench_writer_result(stderr: &str, depth: u64, size: usize) -> Result<RunResult, String> {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("duration:"))
        .ok_or_else(|| {
            format!(
                "no `duration:` line in bench_writer's output: {}",
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
    let ops: f64 = fields
        .iter()
        .find_map(|f| f.strip_suffix("ops/s")?.parse().ok())
        .ok_or_else(|| format!("cannot read the rate in {line:?}"))?;
    let printed = (ops * seconds).round() as u64;
    let mut result = RunResult::new(Client::BenchWriter.name(), Case::D.arg(), depth);
    result.seconds = Some(seconds);
    result.msgs_per_sec = Some(depth as f64 / seconds.max(f64::EPSILON));
    result.acked = depth;
    // The printed rate is rounded to 3 decimals; a whole batch apart means a real difference.
    if printed.abs_diff(depth) >= size.max(1) as u64 && printed.abs_diff(depth) > depth / 1000 {
        result.first_error = Some(format!(
            "bench_writer counted {printed} messages, nsqd holds {depth}"
        ));
        result.errors = printed.saturating_sub(depth);
    }
    Ok(result)
}

/// Seconds in a Go duration such as `1.000369126s`, `523.4ms` or `1m2.5s`.
pub(super) fn parse_go_duration(text: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1.5s"), Some(1.5));
        assert_eq!(parse_go_duration("250ms"), Some(0.25));
        assert_eq!(parse_go_duration("1m2s"), Some(62.0));
        assert!((parse_go_duration("3µs").unwrap() - 3e-6).abs() < 1e-12);
        assert_eq!(parse_go_duration("fast"), None);
        assert_eq!(parse_go_duration(""), None);
    }

    #[test]
    fn bench_writers_line() {
        let stderr = "[bench_writer] 2026/11/21 09:43:58 duration: 2s - 106.191mb/s - \
                      500000.000ops/s - 2.000us/op\n";
        let result = bench_writer_result(stderr, 1_000_000, 100).unwrap();
        assert_eq!(result.acked, 1_000_000);
        assert_eq!(result.msgs_per_sec, Some(500_000.0));
        assert_eq!(result.first_error, None);
        let off = bench_writer_result(stderr, 900_000, 100).unwrap();
        assert!(off.first_error.is_some());
        assert!(bench_writer_result("panic: connection refused", 0, 100).is_err());
    }

    #[test]
    fn depth_checks() {
        let mut result = RunResult::new("producer", "a", 10);
        result.acked = 10;
        assert_eq!(check_depth(&result, Some(10)), None);
        assert!(check_depth(&result, Some(9)).is_some());
        assert!(check_depth(&result, None).is_some());
        result.errors = 2;
        assert_eq!(check_depth(&result, Some(12)), None);
        assert!(check_depth(&result, Some(13)).is_some());
        result.uncounted_acked = Some(5);
        assert_eq!(check_depth(&result, Some(15)), None);
        assert!(check_depth(&result, Some(12)).is_some());
    }
}
