//! `cargo xtask bench`: builds the benchmark clients, then runs `nsq-bench suite`, which starts
//! a dedicated nsqd through the test harness, runs every case for every client and writes
//! `target/bench/results.json` and `target/bench/results.md`.
//!
//! | client | built from | with |
//! |---|---|---|
//! | producer, pool, raw | `bench/rust` (package `nsq-bench`) | `cargo build --release` |
//! | tokio-nsq | `bench/tokio-nsq` (a workspace of its own) | `cargo build --release` |
//! | go-nsq | `bench/go-nsq` (go-nsq v1.1.0 pinned in its go.mod) | `go build` |
//! | bench_writer | nsq v1.3.0's `bench/bench_writer` | `go install ...@v1.3.0`, else `go build` from `bench/go-nsq` |
//! | nsq-pub | `crates/nsq-pub` | `cargo build --release -p nsq-pub` |
//! | to_nsq | nsq v1.3.0's `apps/to_nsq` | found or installed as `cargo xtask nsqd` does |
//! | consumer | `bench/rust` (`nsq-bench consume`) | `cargo build --release` |
//! | bench_reader | nsq v1.3.0's `bench/bench_reader` | found or installed as `cargo xtask nsqd` does |
//! | nsq-tail | `crates/nsq-pub` (its second binary) | `cargo build --release -p nsq-pub` |
//! | nsq_tail | nsq v1.3.0's `apps/nsq_tail` | found or installed as `cargo xtask nsqd` does |
//! | nsq-to-nsq | `crates/nsq-pub` (its third binary) | `cargo build --release -p nsq-pub` |
//! | nsq_to_nsq | nsq v1.3.0's `apps/nsq_to_nsq` | found or installed as `cargo xtask nsqd` does |
//!
//! A client that cannot be built is reported as unavailable in its cells; the others still run.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{self, Failure};
use crate::nsqd::{self, Tool};
use crate::workspace_root;

const USAGE: &str = "\
usage: cargo xtask bench [options]

  --quick              N=20,000 messages, 1 run, without tokio-nsq unless --clients names it,
                       failover runs of 200,000 messages, case k of 100,000 lines
                       (default: N=200,000, 3 runs, every client)
  --n N                messages per run
  --size BYTES         message body size (default 100)
  --runs K             runs of every (case, client) pair, interleaved (default 3)
  --clients LIST       among producer,pool,go-nsq,tokio-nsq,raw,bench_writer,nsq-pub,to_nsq,
                       consumer,bench_reader,nsq-tail,nsq_tail,nsq-to-nsq,nsq_to_nsq
                       (default: all)
  --cases LIST         among a,b,c,c*,d,e,f,g,h,i,j,j0,k,l,m,n,o,p (default: all; `cstar` may
                       stand for c*; j runs j0 too)
  --time-limit SECS    longest a client may publish in one run (default 20, quick 10)
  --rss-n N            messages of the case f burst (default 1,000,000)
  --allocs-n N         counted messages of case g (default N)
  --stall-n N          calls started against a stopped nsqd in cases h and i
                       (default 500,000, quick 200,000)
  --failover-n N       messages of each failover run, cases j, j0 and l (default 1,000,000)
  --failover-runs K    rounds that run j, j0 and l (default 1: a failover run takes seconds)
  --cli-n N            lines of the file published in case k (default 1,000,000, quick 100,000)
  --cli-runs K         rounds that run cases k, o and p (default 1: to_nsq takes a minute for
                       1,000,000 lines, nsq_tail 15 s for 1,000,000 messages)
  --consumer-n N       messages in the topic before each run of cases m, n, o and p
                       (default 1,000,000, quick 100,000)
  --max-in-flight N    the consumers' max_in_flight in cases m, n, o and p (default 2500)
  --latency-n N        paced messages timed after each consumer run (default 2,000, quick 1,000)
  --latency-rate R     their rate per second (default 1,000)
  --consumer-api A     how the consumer client reads in m and n: `stream` (default) or `run`
                       (Consumer::run with a handler that does nothing, one worker)
  --callers N, --window N, --batch N   case b, c, d, j and l shapes (default 16, 1000, 100)

Prints the table and writes target/bench/results.json and target/bench/results.md.
docs/performance.md describes the cases.";

/// The clients of `--quick` when `--clients` is not given.
const QUICK_CLIENTS: [&str; 13] = [
    "producer",
    "pool",
    "go-nsq",
    "raw",
    "bench_writer",
    "nsq-pub",
    "to_nsq",
    "consumer",
    "bench_reader",
    "nsq-tail",
    "nsq_tail",
    "nsq-to-nsq",
    "nsq_to_nsq",
];

/// The bench_writer release, the same as nsqd's.
const BENCH_WRITER: &str = "github.com/nsqio/nsq/bench/bench_writer";

/// Entry point of `cargo xtask bench`.
pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return Ok(());
    }
    let clients = selected_clients(args)?;
    let root = workspace_root();
    let target = target_dir(&root);
    let bin_dir = target.join("bench").join("bin");

    cmd::header("finding nsqd v1.3.0 (cargo xtask nsqd)");
    let nsqd = nsqd::find_or_install()?;
    eprintln!("using {}", nsqd.display());

    let mut suite_args: Vec<String> = Vec::new();
    let mut unavailable: Vec<String> = Vec::new();

    if clients.iter().any(|c| c == "go-nsq" || c == "bench_writer") {
        if crate::find::find_on_path("go").is_none() {
            for client in ["go-nsq", "bench_writer"] {
                unavailable.push(format!("{client}=n/a (Go not installed)"));
            }
        } else {
            if clients.iter().any(|c| c == "go-nsq") {
                match build_go_nsq(&root, &bin_dir) {
                    Some(bin) => push_flag(&mut suite_args, "--go-nsq-bin", &bin),
                    None => unavailable.push("go-nsq=n/a (build failed)".to_owned()),
                }
            }
            if clients.iter().any(|c| c == "bench_writer") {
                match build_bench_writer(&root, &bin_dir) {
                    Some(bin) => push_flag(&mut suite_args, "--bench-writer-bin", &bin),
                    None => unavailable.push("bench_writer=n/a (build failed)".to_owned()),
                }
            }
        }
    }

    if clients.iter().any(|c| c == "tokio-nsq") {
        match build_tokio_nsq(&root, &target) {
            Some(bin) => push_flag(&mut suite_args, "--tokio-nsq-bin", &bin),
            None => unavailable.push("tokio-nsq=n/a (build failed)".to_owned()),
        }
    }

    // nsq's own tools, found or installed as `cargo xtask nsqd` does.
    let nsq_tools = [
        ("to_nsq", Tool::ToNsq, "--to-nsq-bin"),
        ("bench_reader", Tool::BenchReader, "--bench-reader-bin"),
        ("nsq_to_nsq", Tool::NsqToNsq, "--nsq-to-nsq-go-bin"),
        ("nsq_tail", Tool::NsqTail, "--nsq-tail-go-bin"),
    ];
    for (name, tool, flag) in nsq_tools {
        if !clients.iter().any(|c| c == name) {
            continue;
        }
        cmd::header(&format!(
            "finding {name} {} (cargo xtask nsqd)",
            nsqd::VERSION
        ));
        match nsqd::find_or_install_tool(tool) {
            Ok(bin) => {
                eprintln!("using {}", bin.display());
                push_flag(&mut suite_args, flag, &bin);
            }
            Err(failure) => {
                failure.report();
                eprintln!("warning: {name} is reported as unavailable");
                unavailable.push(format!("{name}=n/a (not found)"));
            }
        }
    }

    // One build of the package gives both of its binaries.
    let wants_pub = clients.iter().any(|c| c == "nsq-pub");
    let wants_tail = clients.iter().any(|c| c == "nsq-tail");
    let wants_fwd = clients.iter().any(|c| c == "nsq-to-nsq");
    if wants_pub || wants_tail || wants_fwd {
        match build_nsq_pub(&root, &target) {
            Ok(bin) => {
                if wants_pub {
                    push_flag(&mut suite_args, "--nsq-pub-bin", &bin);
                }
                if wants_tail {
                    let tail = bin.with_file_name(format!("nsq-tail{}", env::consts::EXE_SUFFIX));
                    push_flag(&mut suite_args, "--nsq-tail-bin", &tail);
                }
                if wants_fwd {
                    let fwd = bin.with_file_name(format!("nsq-to-nsq{}", env::consts::EXE_SUFFIX));
                    push_flag(&mut suite_args, "--nsq-to-nsq-bin", &fwd);
                }
            }
            Err(why) => {
                for (wanted, name) in [
                    (wants_pub, "nsq-pub"),
                    (wants_tail, "nsq-tail"),
                    (wants_fwd, "nsq-to-nsq"),
                ] {
                    if wanted {
                        unavailable.push(format!("{name}=n/a ({why})"));
                    }
                }
            }
        }
    }

    cmd::header("building nsq-bench (bench/rust) in release mode");
    let mut build = cmd::cargo();
    build
        .current_dir(&root)
        .args(["build", "--release", "--package", "nsq-bench"]);
    cmd::run_step(&mut build)?;
    let runner = target
        .join("release")
        .join(format!("nsq-bench{}", env::consts::EXE_SUFFIX));

    let results = target.join("bench").join("results.json");
    let markdown = target.join("bench").join("results.md");
    let mut command = Command::new(&runner);
    command
        .current_dir(&root)
        .env("NSQD", &nsqd)
        .arg("suite")
        .args(args)
        .args(&suite_args)
        .arg("--out")
        .arg(&results)
        .arg("--out-md")
        .arg(&markdown)
        .arg("--command")
        .arg(shown_command(args));
    if !unavailable.is_empty() {
        command.arg("--unavailable").arg(unavailable.join(";"));
    }
    if !args
        .iter()
        .any(|a| a == "--clients" || a.starts_with("--clients="))
    {
        command.arg("--clients").arg(clients.join(","));
    }
    cmd::header("running the benchmarks");
    let status = cmd::status(&mut command)?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::with_code(
            status.code().map_or(1, |c| c.clamp(1, 255) as u8),
            "the benchmark run failed",
        ))
    }
}

/// The clients named by `--clients`, or all of them.
fn selected_clients(args: &[String]) -> Result<Vec<String>, Failure> {
    let mut list = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--clients" {
            let value = it
                .next()
                .ok_or_else(|| Failure::usage("--clients needs a value"))?;
            list = Some(value.clone());
        } else if let Some(value) = arg.strip_prefix("--clients=") {
            list = Some(value.to_owned());
        }
    }
    Ok(match list {
        Some(list) => list
            .split(',')
            .map(|s| {
                match s.trim() {
                    "bench-writer" => "bench_writer",
                    "bench-reader" => "bench_reader",
                    "to-nsq" => "to_nsq",
                    other => other,
                }
                .to_owned()
            })
            .filter(|s| !s.is_empty())
            .collect(),
        // A quick run leaves out tokio-nsq, whose dependency tree alone takes about two
        // minutes to build on a fresh clone; name it in --clients to include it.
        None if args.iter().any(|a| a == "--quick") => QUICK_CLIENTS.map(str::to_owned).to_vec(),
        None => [
            "producer",
            "pool",
            "go-nsq",
            "tokio-nsq",
            "raw",
            "bench_writer",
            "nsq-pub",
            "to_nsq",
            "consumer",
            "bench_reader",
            "nsq-tail",
            "nsq_tail",
            "nsq-to-nsq",
            "nsq_to_nsq",
        ]
        .map(str::to_owned)
        .to_vec(),
    })
}

/// `cargo xtask bench` with `args`, as recorded in the results.
fn shown_command(args: &[String]) -> String {
    let mut shown = "cargo xtask bench".to_owned();
    for arg in args {
        shown.push(' ');
        shown.push_str(arg);
    }
    shown
}

fn push_flag(args: &mut Vec<String>, flag: &str, path: &Path) {
    args.push(flag.to_owned());
    args.push(path.display().to_string());
}

/// Where cargo puts build output: `$CARGO_TARGET_DIR`, else `<root>/target`.
fn target_dir(root: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// `go build` of bench/go-nsq into `bin_dir`; `None` (with the output shown) on failure.
fn build_go_nsq(root: &Path, bin_dir: &Path) -> Option<PathBuf> {
    let module = root.join("bench").join("go-nsq");
    let bin = bin_dir.join(format!("go-nsq-bench{}", env::consts::EXE_SUFFIX));
    cmd::header("building the go-nsq client (bench/go-nsq) with go");
    let mut build = Command::new("go");
    build
        .current_dir(&module)
        .args(["build", "-o"])
        .arg(&bin)
        .arg(".");
    go_step(&mut build).then_some(bin)
}

/// nsq's bench_writer v1.3.0 in `bin_dir`. First the canonical `go install ...@v1.3.0`; it
/// needs the Go proxy's version list and refuses nsq's go.mod (it has a `replace`), so when it
/// fails the same package is built from the module in bench/go-nsq, which pins nsq v1.3.0.
fn build_bench_writer(root: &Path, bin_dir: &Path) -> Option<PathBuf> {
    let bin = bin_dir.join(format!("bench_writer{}", env::consts::EXE_SUFFIX));
    if bin.is_file() {
        return Some(bin);
    }
    cmd::header(&format!("installing bench_writer {}", nsqd::VERSION));
    let mut install = Command::new("go");
    install
        .current_dir(root)
        .env("GOBIN", bin_dir)
        .arg("install")
        .arg(format!("{BENCH_WRITER}@{}", nsqd::VERSION));
    eprintln!("  {}", cmd::display(&install));
    if let Some(output) = cmd::output(&mut install) {
        if output.status.success() && bin.is_file() {
            return Some(bin);
        }
        for line in String::from_utf8_lossy(&output.stderr).lines() {
            eprintln!("    {line}");
        }
    }
    let module = root.join("bench").join("go-nsq");
    eprintln!(
        "that failed; building bench_writer {} from the pinned module in {} ...",
        nsqd::VERSION,
        module.display()
    );
    let mut build = Command::new("go");
    build
        .current_dir(&module)
        .args(["build", "-o"])
        .arg(&bin)
        .arg(BENCH_WRITER);
    go_step(&mut build).then_some(bin)
}

/// Runs a go command, showing it and its output; whether it succeeded.
fn go_step(command: &mut Command) -> bool {
    eprintln!("  {}", cmd::display(command));
    match cmd::status_stdout_to_stderr(command) {
        Ok(status) if status.success() => true,
        Ok(status) => {
            eprintln!("warning: `{}` failed ({status})", cmd::display(command));
            false
        }
        Err(failure) => {
            failure.report();
            false
        }
    }
}

/// Builds the command-line publisher `nsq-pub` of this workspace in release mode; why not
/// (for its cells) when the package is not in this tree or its build fails.
fn build_nsq_pub(root: &Path, target: &Path) -> Result<PathBuf, &'static str> {
    if !root
        .join("crates")
        .join("nsq-pub")
        .join("Cargo.toml")
        .is_file()
    {
        eprintln!(
            "warning: crates/nsq-pub is not in this tree; nsq-pub is reported as unavailable"
        );
        return Err("not in this tree");
    }
    cmd::header("building nsq-pub (crates/nsq-pub) in release mode");
    let mut build = cmd::cargo();
    build
        .current_dir(root)
        .args(["build", "--release", "--package", "nsq-pub"]);
    match cmd::run_step(&mut build) {
        Ok(()) => Ok(target
            .join("release")
            .join(format!("nsq-pub{}", env::consts::EXE_SUFFIX))),
        Err(failure) => {
            failure.report();
            eprintln!("warning: nsq-pub is reported as unavailable");
            Err("build failed")
        }
    }
}

/// Builds bench/tokio-nsq, a workspace of its own, into `<target>/bench/tokio-nsq`.
fn build_tokio_nsq(root: &Path, target: &Path) -> Option<PathBuf> {
    let target_dir = target.join("bench").join("tokio-nsq");
    cmd::header("building the tokio-nsq client (bench/tokio-nsq) in release mode");
    let mut build = cmd::cargo();
    build
        .current_dir(root)
        .args(["build", "--release", "--locked", "--manifest-path"])
        .arg(root.join("bench").join("tokio-nsq").join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    match cmd::run_step(&mut build) {
        Ok(()) => Some(
            target_dir
                .join("release")
                .join(format!("nsq-bench-tokio-nsq{}", env::consts::EXE_SUFFIX)),
        ),
        Err(failure) => {
            failure.report();
            eprintln!("warning: the tokio-nsq client is reported as unavailable");
            None
        }
    }
}
