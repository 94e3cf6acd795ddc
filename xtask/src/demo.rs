//! `cargo xtask demo`: builds and runs the demo publisher in release mode.

use crate::cmd::{self, Failure};
use crate::nsqd;

/// Runs `nsq-demo` with `args`; without `--nsqd` it needs (and installs) a local nsqd.
pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    let mut command = cmd::cargo();
    command.args(["run", "--release", "--quiet", "--package", "nsq-demo", "--"]);
    command.args(args);
    let external = args
        .iter()
        .any(|a| a == "--nsqd" || a.starts_with("--nsqd="));
    if !external {
        command.env("NSQD", nsqd::find_or_install()?);
    }
    let status = cmd::status(&mut command)?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::with_code(
            status.code().map_or(1, |c| c.clamp(1, 255) as u8),
            "the demo failed",
        ))
    }
}
