//! `cargo xtask test`: everything CI checks, in order, stopping at the first failure.

use std::process::Command;

use crate::cmd::{self, Failure};
use crate::{leftovers, nsqd, package, workspace_root};

/// Entry point. `args` may hold `-- <args>`, which are passed on to `cargo test`.
pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    let test_args = match args.split_first() {
        None => &[][..],
        Some((first, rest)) if first == "--" => rest,
        Some((first, _)) => {
            return Err(Failure::usage(format!(
                "unexpected argument `{first}`; pass arguments for cargo test after `--`"
            )));
        }
    };

    format_check()?;
    clippy()?;
    tests(test_args)?;
    docs()?;
    package::check()?;
    eprintln!("==> all checks passed");
    Ok(())
}

fn format_check() -> Result<(), Failure> {
    if !component_installed("fmt") {
        eprintln!("WARNING: rustfmt is not installed; skipping the format check");
        return Ok(());
    }
    step(cmd::cargo().args(["fmt", "--all", "--", "--check"]))
}

fn clippy() -> Result<(), Failure> {
    if !component_installed("clippy") {
        eprintln!("WARNING: clippy is not installed; skipping the lints");
        return Ok(());
    }
    step(cmd::cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))
}

/// Runs the whole test suite against a real nsqd and nsqlookupd, then kills whatever server
/// processes the tests left running. A leftover process fails the run even when the tests passed.
fn tests(extra_args: &[String]) -> Result<(), Failure> {
    cmd::header("finding nsqd, nsqlookupd and the nsq v1.3.0 tools (cargo xtask nsqd)");
    let tools = nsqd::find_or_install_all()?;
    for (tool, path) in &tools {
        eprintln!("using {} {}", tool.name(), path.display());
    }

    // Leftovers of an earlier, aborted run are not this run's leaks: clear them first.
    let earlier = leftovers::clean_up();
    if !earlier.killed.is_empty() {
        eprintln!(
            "note: killed {} nsqd/nsqlookupd process(es) left behind by an earlier test run: {:?}",
            earlier.killed.len(),
            earlier.killed
        );
    }

    let mut command = cmd::cargo();
    for (tool, path) in &tools {
        command.env(tool.env_var(), path);
    }
    command.args(["test", "--workspace", "--all-features"]);
    if !extra_args.is_empty() {
        command.arg("--").args(extra_args);
    }
    let outcome = step(&mut command);

    cmd::header("checking for nsqd and nsqlookupd processes left behind by the tests");
    let report = leftovers::clean_up();
    if report.stale_files > 0 {
        eprintln!(
            "removed {} stale pid file(s) of nsqd/nsqlookupd processes that had already exited",
            report.stale_files
        );
    }
    if !report.still_owned.is_empty() {
        eprintln!(
            "left alone {} nsqd/nsqlookupd process(es) whose test process is still running: {:?}",
            report.still_owned.len(),
            report.still_owned
        );
    }
    let leaked = report.killed.len() + report.survivors.len();
    if leaked == 0 {
        eprintln!("killed 0 nsqd/nsqlookupd processes: nothing was left behind");
    } else {
        eprintln!(
            "killed {} leftover nsqd/nsqlookupd process(es): {:?}",
            report.killed.len(),
            report.killed
        );
    }

    outcome?;
    if !report.survivors.is_empty() {
        return Err(Failure::new(format!(
            "nsqd/nsqlookupd process(es) {:?} left behind by the tests could not be killed",
            report.survivors
        )));
    }
    if leaked > 0 {
        return Err(Failure::new(format!(
            "{leaked} nsqd/nsqlookupd process(es) had been leaked by test processes that exited without \
             dropping their `Nsqd` or `Nsqlookupd` (pid files are in {})",
            leftovers::pid_dir().display()
        )));
    }
    Ok(())
}

fn docs() -> Result<(), Failure> {
    step(cmd::cargo().env("RUSTDOCFLAGS", "-D warnings").args([
        "doc",
        "--workspace",
        "--no-deps",
        "--all-features",
    ]))
}

/// Prints the header for `command`, then runs it from the workspace root.
fn step(command: &mut Command) -> Result<(), Failure> {
    command.current_dir(workspace_root());
    cmd::header(&cmd::display(command));
    cmd::run_step(command)
}

/// Whether the `cargo <subcommand>` component (fmt, clippy) is installed.
fn component_installed(subcommand: &str) -> bool {
    cmd::succeeds(cmd::cargo().args([subcommand, "--version"]))
}
