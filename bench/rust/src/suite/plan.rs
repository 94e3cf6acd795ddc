//! What the suite runs: the clients, the cases and the settings from the command line.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::flags::Flags;

/// A benchmarked client, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Client {
    /// This workspace's producer (`nsq-bench producer`).
    Producer,
    /// This workspace's `Pool` (`nsq-bench pool`): of one node in b and c*, of three in j.
    Pool,
    /// go-nsq v1.1.0 (`bench/go-nsq`).
    GoNsq,
    /// tokio-nsq 0.14 (`bench/tokio-nsq`).
    TokioNsq,
    /// The blocking loop on nsq-proto (`nsq-bench raw`).
    Raw,
    /// nsq's own `bench_writer` v1.3.0.
    BenchWriter,
    /// This workspace's command-line publisher `nsq-pub` (case k).
    NsqPub,
    /// nsq's own command-line publisher `to_nsq` v1.3.0 (case k).
    ToNsq,
    /// This workspace's consumer (`nsq-bench consume`, cases m and n).
    Consumer,
    /// nsq's own consumer benchmark `bench_reader` v1.3.0 (case m), raw TCP without a handler.
    BenchReader,
    /// This workspace's `nsq-tail` (case o).
    NsqTail,
    /// nsq's own `nsq_tail` v1.3.0 (case o).
    NsqTailGo,
    /// This workspace's `nsq-to-nsq` (case p).
    NsqToNsq,
    /// nsq's own `nsq_to_nsq` v1.3.0 (case p).
    NsqToNsqGo,
}

impl Client {
    pub(crate) const ALL: [Self; 14] = [
        Self::Producer,
        Self::Pool,
        Self::GoNsq,
        Self::TokioNsq,
        Self::Raw,
        Self::BenchWriter,
        Self::NsqPub,
        Self::ToNsq,
        Self::Consumer,
        Self::BenchReader,
        Self::NsqTail,
        Self::NsqTailGo,
        Self::NsqToNsq,
        Self::NsqToNsqGo,
    ];

    /// The name on the command line, in results and in the table.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Producer => "producer",
            Self::Pool => "pool",
            Self::GoNsq => "go-nsq",
            Self::TokioNsq => "tokio-nsq",
            Self::Raw => "raw",
            Self::BenchWriter => "bench_writer",
            Self::NsqPub => "nsq-pub",
            Self::ToNsq => "to_nsq",
            Self::Consumer => "consumer",
            Self::BenchReader => "bench_reader",
            Self::NsqTail => "nsq-tail",
            Self::NsqTailGo => "nsq_tail",
            Self::NsqToNsq => "nsq-to-nsq",
            Self::NsqToNsqGo => "nsq_to_nsq",
        }
    }

    /// Whether the client only consumes: it has a column in the consumer table only.
    pub(crate) fn consumes(self) -> bool {
        matches!(self, Self::Consumer | Self::BenchReader)
    }

    fn parse(name: &str) -> Option<Self> {
        let name = name.trim();
        Self::ALL.into_iter().find(|&c| {
            c.name() == name
                || (name == "bench-writer" && c == Self::BenchWriter)
                || (name == "to-nsq" && c == Self::ToNsq)
                || (name == "bench-reader" && c == Self::BenchReader)
        })
    }
}

/// A benchmark case, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Case {
    A,
    B,
    C,
    CStar,
    D,
    /// Latency, read from the runs of a and c.
    E,
    F,
    G,
    /// Callers waiting for room behind a stopped nsqd, one task per call.
    H,
    /// As h, every call driven from one `FuturesUnordered`.
    I,
    /// Failover: three nsqd, one killed a third of the way in and restarted 5 s later.
    J,
    /// As j without the kill: j's reference.
    J0,
    /// The command-line publishers: one file of lines published to one topic.
    K,
    /// A frozen node: three nsqd, one stopped (SIGSTOP) for 6 s a third of the way in, with a
    /// publish timeout of 2 s.
    L,
    /// The consumers: a topic filled beforehand, read from one nsqd.
    M,
    /// As m, the topic spread over three nsqd.
    N,
    /// The command-line readers: the topic of m read to /dev/null by nsq-tail and nsq_tail.
    O,
    /// The forwarders: the topic of m forwarded to a second nsqd by nsq-to-nsq and nsq_to_nsq.
    P,
}

impl Case {
    pub(crate) const ALL: [Self; 18] = [
        Self::A,
        Self::B,
        Self::C,
        Self::CStar,
        Self::D,
        Self::E,
        Self::F,
        Self::G,
        Self::H,
        Self::I,
        Self::J,
        Self::J0,
        Self::K,
        Self::L,
        Self::M,
        Self::N,
        Self::O,
        Self::P,
    ];

    /// The case's letter, as the report and docs/performance.md write it.
    pub(crate) fn id(self) -> &'static str {
        match self {
            Self::A => "a",
            Self::B => "b",
            Self::C => "c",
            Self::CStar => "c*",
            Self::D => "d",
            Self::E => "e",
            Self::F => "f",
            Self::G => "g",
            Self::H => "h",
            Self::I => "i",
            Self::J => "j",
            Self::J0 => "j0",
            Self::K => "k",
            Self::L => "l",
            Self::M => "m",
            Self::N => "n",
            Self::O => "o",
            Self::P => "p",
        }
    }

    /// The name passed to the clients' `--case` (`*` is awkward in a shell).
    pub(crate) fn arg(self) -> &'static str {
        match self {
            Self::CStar => "cstar",
            other => other.id(),
        }
    }

    fn parse(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|c| c.id() == name || c.arg() == name)
    }
}

/// Everything a suite run needs to know.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) n: u64,
    pub(crate) size: usize,
    pub(crate) runs: u32,
    pub(crate) callers: u64,
    pub(crate) window: usize,
    pub(crate) batch: usize,
    /// Messages of the case f burst.
    pub(crate) rss_n: u64,
    /// Counted messages of case g, after `warmup` uncounted ones.
    pub(crate) allocs_n: u64,
    pub(crate) warmup: u64,
    /// Calls started against a stopped nsqd in cases h and i.
    pub(crate) stall_n: u64,
    /// Messages of each failover run (cases j, j0 and l).
    pub(crate) failover_n: u64,
    /// Rounds that run cases j, j0 and l (the first ones): a failover run takes seconds.
    pub(crate) failover_runs: u32,
    /// Lines of the file the command-line publishers publish in case k.
    pub(crate) cli_n: u64,
    /// Rounds that run cases k and o (the first ones): to_nsq takes a minute for 1,000,000
    /// lines, nsq_tail 15 s for 1,000,000 messages.
    pub(crate) cli_runs: u32,
    /// Messages the topic of cases m and n holds before each consumer run.
    pub(crate) consumer_n: u64,
    /// The consumers' max_in_flight (bench_reader's RDY) in cases m and n.
    pub(crate) max_in_flight: u32,
    /// Messages of the latency phase of cases m and n, and their rate per second.
    pub(crate) latency_n: u64,
    pub(crate) latency_rate: f64,
    /// How the consumer client reads: `stream` (its `Stream`) or `run` (a handler).
    pub(crate) consumer_api: String,
    /// Longest a client may publish in one run.
    pub(crate) time_limit: Duration,
    pub(crate) quick: bool,
    pub(crate) clients: Vec<Client>,
    /// The cases asked for; e is computed from a and c.
    pub(crate) cases: Vec<Case>,
    /// The external clients' binaries.
    pub(crate) go_nsq_bin: Option<PathBuf>,
    pub(crate) bench_writer_bin: Option<PathBuf>,
    pub(crate) tokio_nsq_bin: Option<PathBuf>,
    pub(crate) nsq_pub_bin: Option<PathBuf>,
    pub(crate) to_nsq_bin: Option<PathBuf>,
    pub(crate) bench_reader_bin: Option<PathBuf>,
    pub(crate) nsq_tail_bin: Option<PathBuf>,
    pub(crate) nsq_tail_go_bin: Option<PathBuf>,
    pub(crate) nsq_to_nsq_bin: Option<PathBuf>,
    pub(crate) nsq_to_nsq_go_bin: Option<PathBuf>,
    /// Clients that could not be built, with the reason for their cells.
    pub(crate) unavailable: BTreeMap<Client, String>,
    pub(crate) out_json: PathBuf,
    pub(crate) out_md: PathBuf,
    /// The command line to record with the results.
    pub(crate) command: String,
}

impl Plan {
    /// Reads the plan from the suite's flags.
    pub(crate) fn from_flags(flags: &mut Flags) -> Result<Self, String> {
        let quick = flags.switch("quick");
        let n = flags.get("n", if quick { 20_000 } else { 200_000 })?;
        let clients = match flags.string("clients") {
            None => Client::ALL.to_vec(),
            Some(list) => parse_list(&list, Client::parse, "client")?,
        };
        let cases = match flags.string("cases") {
            None => Case::ALL.to_vec(),
            Some(list) => parse_list(&list, Case::parse, "case")?,
        };
        let mut unavailable = BTreeMap::new();
        if let Some(entry) = flags.string("unavailable") {
            // Entries are `client=reason;client=reason`.
            for item in entry.split(';').filter(|s| !s.trim().is_empty()) {
                let (name, reason) = item.split_once('=').ok_or_else(|| {
                    format!("--unavailable: expected CLIENT=REASON, got {item:?}")
                })?;
                let client = Client::parse(name)
                    .ok_or_else(|| format!("--unavailable: unknown client {name:?}"))?;
                unavailable.insert(client, reason.trim().to_owned());
            }
        }
        let plan = Self {
            n,
            size: flags.get("size", 100)?,
            runs: flags.get("runs", if quick { 1 } else { 3 })?,
            callers: flags.get("callers", 16)?,
            window: flags.get("window", 1000)?,
            batch: flags.get("batch", 100)?,
            rss_n: flags.get("rss-n", 1_000_000)?,
            allocs_n: flags.get("allocs-n", n)?,
            warmup: flags.get("warmup", (n / 10).max(10_000))?,
            stall_n: flags.get(
                "stall-n",
                if quick {
                    QUICK_STALL_CALLS
                } else {
                    STALL_CALLS
                },
            )?,
            failover_n: flags.get(
                "failover-n",
                if quick {
                    QUICK_FAILOVER_MESSAGES
                } else {
                    FAILOVER_MESSAGES
                },
            )?,
            failover_runs: flags.get("failover-runs", 1)?,
            cli_n: flags.get("cli-n", if quick { QUICK_CLI_LINES } else { CLI_LINES })?,
            cli_runs: flags.get("cli-runs", 1)?,
            consumer_n: flags.get(
                "consumer-n",
                if quick {
                    QUICK_CONSUMER_MESSAGES
                } else {
                    CONSUMER_MESSAGES
                },
            )?,
            max_in_flight: flags.get("max-in-flight", MAX_IN_FLIGHT)?,
            latency_n: flags.get(
                "latency-n",
                if quick {
                    QUICK_LATENCY_MESSAGES
                } else {
                    LATENCY_MESSAGES
                },
            )?,
            latency_rate: flags.get("latency-rate", LATENCY_RATE)?,
            consumer_api: flags.get("consumer-api", "stream".to_owned())?,
            time_limit: Duration::from_secs_f64(
                flags.get("time-limit", if quick { 10.0 } else { 20.0 })?,
            ),
            quick,
            clients,
            cases,
            go_nsq_bin: flags.string("go-nsq-bin").map(PathBuf::from),
            bench_writer_bin: flags.string("bench-writer-bin").map(PathBuf::from),
            tokio_nsq_bin: flags.string("tokio-nsq-bin").map(PathBuf::from),
            nsq_pub_bin: flags.string("nsq-pub-bin").map(PathBuf::from),
            to_nsq_bin: flags.string("to-nsq-bin").map(PathBuf::from),
            bench_reader_bin: flags.string("bench-reader-bin").map(PathBuf::from),
            nsq_tail_bin: flags.string("nsq-tail-bin").map(PathBuf::from),
            nsq_tail_go_bin: flags.string("nsq-tail-go-bin").map(PathBuf::from),
            nsq_to_nsq_bin: flags.string("nsq-to-nsq-bin").map(PathBuf::from),
            nsq_to_nsq_go_bin: flags.string("nsq-to-nsq-go-bin").map(PathBuf::from),
            unavailable,
            out_json: PathBuf::from(
                flags
                    .string("out")
                    .unwrap_or_else(|| "target/bench/results.json".to_owned()),
            ),
            out_md: PathBuf::from(
                flags
                    .string("out-md")
                    .unwrap_or_else(|| "target/bench/results.md".to_owned()),
            ),
            command: flags
                .string("command")
                .unwrap_or_else(|| "nsq-bench suite".to_owned()),
        };
        if plan.n == 0
            || plan.size == 0
            || plan.runs == 0
            || plan.batch == 0
            || plan.window == 0
            || plan.stall_n == 0
            || plan.failover_n == 0
            || plan.failover_runs == 0
            || plan.cli_n == 0
            || plan.cli_runs == 0
            || plan.consumer_n == 0
            || plan.max_in_flight == 0
        {
            return Err(
                "--n, --size, --runs, --batch, --window, --stall-n, --failover-n, \
                 --failover-runs, --cli-n, --cli-runs, --consumer-n and --max-in-flight must be \
                 at least 1"
                    .into(),
            );
        }
        if plan.latency_rate.is_nan() || plan.latency_rate <= 0.0 {
            return Err("--latency-rate must be positive".into());
        }
        if !matches!(plan.consumer_api.as_str(), "stream" | "run") {
            return Err(format!(
                "--consumer-api: `stream` or `run`, not `{}`",
                plan.consumer_api
            ));
        }
        if plan.time_limit.is_zero() {
            return Err("--time-limit must be positive".into());
        }
        Ok(plan)
    }

    /// The messages in the channel before a run of m or n: `consumer_n` measured, and as many
    /// again as ten RDY windows or a twentieth of `consumer_n`, whichever is more, read after
    /// the clock stops. Without them the last messages of the measured part would wait in
    /// nsqd's output buffer for its flush timer (250 ms by default): nsqd flushes a consumer's
    /// buffer when it is full, when the consumer's RDY is used up, or on that timer.
    pub(crate) fn consumer_filled(&self) -> u64 {
        let extra = (u64::from(self.max_in_flight) * 10).max(self.consumer_n / 20);
        self.consumer_n + extra
    }

    /// The clients of the main table and the CPU table: those that publish.
    pub(crate) fn publishers(&self) -> impl Iterator<Item = Client> + '_ {
        self.clients.iter().copied().filter(|c| !c.consumes())
    }

    /// Whether `case` was asked for.
    pub(crate) fn wants(&self, case: Case) -> bool {
        self.cases.contains(&case)
    }

    /// The cases that are run: those asked for, with a and c added when e needs them, and j0
    /// when j does.
    pub(crate) fn run_cases(&self) -> Vec<Case> {
        Case::ALL
            .into_iter()
            .filter(|&case| case != Case::E)
            .filter(|&case| {
                self.wants(case)
                    || (self.wants(Case::E) && matches!(case, Case::A | Case::C))
                    || (self.wants(Case::J) && case == Case::J0)
            })
            .collect()
    }

    /// Whether round `round` (from 1) runs `case`: the failover cases (j, j0, l) run in the
    /// first `failover_runs` rounds only, cases k and o in the first `cli_runs`.
    pub(crate) fn runs_in_round(&self, case: Case, round: u32) -> bool {
        match case {
            Case::J | Case::J0 | Case::L => round <= self.failover_runs,
            Case::K | Case::O | Case::P => round <= self.cli_runs,
            _ => true,
        }
    }

    /// How long a client may publish in one run of `case`: failover runs publish over three
    /// nsqd on the same cores and take longer than the others. The command-line publishers
    /// have no time limit of their own and run to the end of their input: theirs is the time
    /// of the whole file at `CLI_SLOWEST_RATE`, after which the process is killed.
    pub(crate) fn time_limit_of(&self, case: Case) -> Duration {
        match case {
            Case::J | Case::J0 | Case::L => self.time_limit.max(FAILOVER_TIME_LIMIT),
            Case::M | Case::N => self.time_limit.max(CONSUMER_TIME_LIMIT),
            Case::O | Case::P => self.time_limit.max(Duration::from_secs(
                self.consumer_n.div_ceil(CLI_SLOWEST_RATE),
            )),
            Case::K => self
                .time_limit
                .max(Duration::from_secs(self.cli_n.div_ceil(CLI_SLOWEST_RATE))),
            _ => self.time_limit,
        }
    }

    /// The memory queue of each nsqd of the failover cases, which case n shares.
    pub(crate) fn failover_mem_queue_size(&self) -> u64 {
        let mut largest = self.failover_n;
        if self.wants(Case::N) {
            largest = largest.max(self.consumer_filled());
        }
        largest + 100_000
    }

    /// The memory queue nsqd needs so that no run spills to disk: the largest run, with room
    /// for bench_writer, which runs for a time rather than a count and may outrun the others.
    pub(crate) fn mem_queue_size(&self) -> u64 {
        let mut largest = self.n.saturating_mul(4);
        if self.wants(Case::F) {
            largest = largest.max(self.rss_n);
        }
        if self.wants(Case::G) {
            largest = largest.max(self.allocs_n + self.warmup);
        }
        if self.wants(Case::H) || self.wants(Case::I) {
            largest = largest.max(self.stall_n);
        }
        if self.wants(Case::K) {
            largest = largest.max(self.cli_n);
        }
        if self.wants(Case::M) || self.wants(Case::O) || self.wants(Case::P) {
            largest = largest.max(self.consumer_filled());
        }
        largest + 100_000
    }
}

/// Calls of cases h and i: enough that nearly all of them wait (the producer's window and queue
/// take about 20,000), few enough that a run takes seconds.
const STALL_CALLS: u64 = 500_000;

/// Calls of cases h and i in a quick run.
const QUICK_STALL_CALLS: u64 = 200_000;

/// Messages of a failover run: enough that the run of the faster client (the pool, about 80k
/// msgs/s with two nodes left on the 2-core machine of docs/performance.md) goes on for a few
/// seconds after the restart of the killed nsqd, 5 s after the kill; the slower one takes about
/// 35 s.
const FAILOVER_MESSAGES: u64 = 1_000_000;

/// Messages of a failover run with `--quick`: the kill and the gap are measured, but the
/// restart may come after the run.
const QUICK_FAILOVER_MESSAGES: u64 = 200_000;

/// Lines of the case k file: to_nsq, one synchronous PUB per line, takes about a minute.
const CLI_LINES: u64 = 1_000_000;

/// Lines of the case k file with `--quick`.
const QUICK_CLI_LINES: u64 = 100_000;

/// The rate (lines per second) below which a run of case k is killed: a seventh of to_nsq's
/// usual rate, so 500 s for 1,000,000 lines.
const CLI_SLOWEST_RATE: u64 = 2_000;

/// Messages in the topic of cases m and n before each consumer run.
const CONSUMER_MESSAGES: u64 = 1_000_000;

/// Messages in the topic of cases m and n with `--quick`.
const QUICK_CONSUMER_MESSAGES: u64 = 100_000;

/// The consumers' max_in_flight in cases m and n: bench_reader's default RDY.
const MAX_IN_FLIGHT: u32 = 2500;

/// Messages of the latency phase of cases m and n: at `LATENCY_RATE`, two seconds.
const LATENCY_MESSAGES: u64 = 2_000;

/// Messages of the latency phase with `--quick`.
const QUICK_LATENCY_MESSAGES: u64 = 1_000;

/// Messages per second of the latency phase: a modest load, far below what any consumer
/// takes, so that the time measured is the way through nsqd and the client, not a queue.
const LATENCY_RATE: f64 = 1_000.0;

/// The shortest time limit of a consumer run (both phases).
const CONSUMER_TIME_LIMIT: Duration = Duration::from_secs(60);

/// The shortest time limit of a failover run.
const FAILOVER_TIME_LIMIT: Duration = Duration::from_secs(120);

fn parse_list<T: Ord>(
    list: &str,
    parse: impl Fn(&str) -> Option<T>,
    what: &str,
) -> Result<Vec<T>, String> {
    let mut items = Vec::new();
    for name in list.split(',').filter(|s| !s.trim().is_empty()) {
        items.push(parse(name).ok_or_else(|| format!("unknown {what} `{}`", name.trim()))?);
    }
    if items.is_empty() {
        return Err(format!("no {what} given"));
    }
    items.sort();
    items.dedup();
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &[&str]) -> Result<Plan, String> {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let mut flags = Flags::parse(&args, &["quick"])?;
        let plan = Plan::from_flags(&mut flags)?;
        flags.finish()?;
        Ok(plan)
    }

    #[test]
    fn defaults_and_quick() {
        let full = plan(&[]).unwrap();
        assert_eq!((full.n, full.runs, full.size), (200_000, 3, 100));
        assert_eq!(full.clients, Client::ALL.to_vec());
        assert_eq!(full.cases, Case::ALL.to_vec());
        assert_eq!(full.stall_n, 500_000);
        assert_eq!((full.failover_n, full.failover_runs), (1_000_000, 1));
        assert_eq!((full.cli_n, full.cli_runs), (1_000_000, 1));
        let quick = plan(&["--quick"]).unwrap();
        assert_eq!((quick.n, quick.runs, quick.stall_n), (20_000, 1, 200_000));
        assert_eq!(quick.failover_n, 200_000);
        assert_eq!(quick.cli_n, 100_000);
        assert_eq!((full.consumer_n, quick.consumer_n), (1_000_000, 100_000));
        assert_eq!((full.max_in_flight, full.latency_n), (2500, 2_000));
        assert_eq!(full.consumer_api, "stream");
        assert_eq!(
            plan(&["--consumer-api", "run"]).unwrap().consumer_api,
            "run"
        );
        assert!(plan(&["--consumer-api", "poll"]).is_err());
        assert_eq!(plan(&["--quick", "--n", "5"]).unwrap().n, 5);
    }

    #[test]
    fn lists_of_clients_and_cases() {
        let p = plan(&["--clients", "go-nsq,producer", "--cases", "cstar,e"]).unwrap();
        assert_eq!(p.clients, vec![Client::Producer, Client::GoNsq]);
        assert_eq!(p.cases, vec![Case::CStar, Case::E]);
        assert_eq!(p.run_cases(), vec![Case::A, Case::C, Case::CStar]);
        assert_eq!(plan(&["--cases", "c*"]).unwrap().cases, vec![Case::CStar]);
        assert!(plan(&["--clients", "rabbit"]).is_err());
        let p = plan(&["--clients", "pool", "--cases", "j"]).unwrap();
        assert_eq!(p.clients, vec![Client::Pool]);
        assert_eq!(p.run_cases(), vec![Case::J, Case::J0]);
        assert!(plan(&["--cases", "z"]).is_err());
        let p = plan(&["--clients", "pool,go-nsq", "--cases", "l"]).unwrap();
        assert_eq!(p.run_cases(), vec![Case::L]);
        assert!(p.runs_in_round(Case::L, 1) && !p.runs_in_round(Case::L, 2));
        assert_eq!(p.time_limit_of(Case::L), FAILOVER_TIME_LIMIT);
        let p = plan(&["--clients", "nsq-pub,to-nsq", "--cases", "k"]).unwrap();
        assert_eq!(p.clients, vec![Client::NsqPub, Client::ToNsq]);
        assert_eq!(p.run_cases(), vec![Case::K]);
        let p = plan(&[
            "--clients",
            "consumer,bench-reader,go-nsq",
            "--cases",
            "m,n",
        ])
        .unwrap();
        assert_eq!(
            p.clients,
            vec![Client::GoNsq, Client::Consumer, Client::BenchReader]
        );
        assert_eq!(p.run_cases(), vec![Case::M, Case::N]);
        assert_eq!(p.time_limit_of(Case::M), CONSUMER_TIME_LIMIT);
        assert!(Client::BenchReader.consumes() && !Client::GoNsq.consumes());
    }

    #[test]
    fn failover_rounds_and_limits() {
        let p = plan(&["--runs", "3", "--failover-runs", "2", "--time-limit", "5"]).unwrap();
        assert!(p.runs_in_round(Case::J, 2));
        assert!(!p.runs_in_round(Case::J0, 3));
        assert!(p.runs_in_round(Case::A, 3));
        assert_eq!(p.time_limit_of(Case::A), Duration::from_secs(5));
        assert_eq!(p.time_limit_of(Case::J), FAILOVER_TIME_LIMIT);
        assert!(plan(&["--failover-runs", "0"]).is_err());
        let p = plan(&["--runs", "3", "--cli-runs", "1", "--cli-n", "10000"]).unwrap();
        assert!(p.runs_in_round(Case::K, 1));
        assert!(!p.runs_in_round(Case::K, 2));
        assert_eq!(p.time_limit_of(Case::K), Duration::from_secs(20));
        let p = plan(&[]).unwrap();
        assert_eq!(p.time_limit_of(Case::K), Duration::from_secs(500));
        assert!(plan(&["--cli-runs", "0"]).is_err());
    }

    #[test]
    fn unavailable_clients() {
        let p = plan(&[
            "--unavailable",
            "tokio-nsq=n/a (build failed);go-nsq=n/a (no Go)",
        ])
        .unwrap();
        assert_eq!(p.unavailable[&Client::TokioNsq], "n/a (build failed)");
        assert_eq!(p.unavailable[&Client::GoNsq], "n/a (no Go)");
    }

    #[test]
    fn memory_queue_covers_the_largest_run() {
        let p = plan(&[]).unwrap();
        assert!(p.mem_queue_size() > p.rss_n);
        let p = plan(&["--cases", "a", "--n", "1000"]).unwrap();
        assert_eq!(p.mem_queue_size(), 104_000);
        let p = plan(&["--cases", "i", "--stall-n", "2000000"]).unwrap();
        assert_eq!(p.mem_queue_size(), 2_100_000);
        let p = plan(&["--cases", "k", "--n", "1000", "--cli-n", "3000000"]).unwrap();
        assert_eq!(p.mem_queue_size(), 3_100_000);
        let p = plan(&["--cases", "m,n", "--n", "1000", "--consumer-n", "2000000"]).unwrap();
        assert_eq!(p.consumer_filled(), 2_100_000);
        assert_eq!(p.mem_queue_size(), 2_200_000);
        assert_eq!(p.failover_mem_queue_size(), 2_200_000);
        let p = plan(&[
            "--cases",
            "m",
            "--consumer-n",
            "1000",
            "--max-in-flight",
            "10",
        ])
        .unwrap();
        assert_eq!(p.consumer_filled(), 1_100);
    }
}
