//! Project automation for the NSQ workspace, run as `cargo xtask <command>`.
//!
//! Uses only the standard library so that it compiles in seconds on a fresh checkout.

mod bench;
mod cmd;
mod demo;
// The search for the nsq commands, shared with nsq-test-support (which this crate must not
// depend on). Its public items are public there, for the tests.
#[allow(unreachable_pub)]
#[path = "../../tests/support/src/tools/find.rs"]
mod find;
mod fuzz;
mod leftovers;
mod nsqd;
mod package;
mod test;

use std::env;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cmd::Failure;

const USAGE: &str = "\
usage: cargo xtask <command> [args]

commands:
  test [-- <cargo test args>]     format check, clippy, every test against a real nsqd, docs,
                                  and the published crates built and tested from their packages
  package                         package the published crates, then build and test them from
                                  the packages, and check them with warnings denied against the
                                  newest compatible dependencies (the last step of `test`)
  nsqd                            print the path of an nsqd v1.3.0 binary; installs nsqd,
                                  nsqlookupd, to_nsq, nsq_tail, nsq_to_nsq and bench_reader
                                  v1.3.0 if needed
  fuzz <target> [--seconds N]     run a cargo-fuzz target of nsq-proto on nightly (default 60 s)
  demo [--nsqd HOST:PORT] [...]   publish 1,000,000 messages, show the rate, verify nsqd's count
  bench [--quick] [...]           benchmark the producer against go-nsq, tokio-nsq and the raw
                                  limit; `cargo xtask bench --help` lists the options
  help                            show this message";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => ("help", &[][..]),
    };
    let result = match command {
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        "test" => test::run(rest),
        "nsqd" => nsqd::run(rest),
        "package" => package::run(rest),
        "fuzz" => fuzz::run(rest),
        "demo" => demo::run(rest),
        "bench" => bench::run(rest),
        other => Err(Failure::usage(format!("unknown command `{other}`"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// The workspace root: the parent of this crate's directory, fixed at compile time.
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}
