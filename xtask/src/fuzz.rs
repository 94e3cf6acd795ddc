//! `cargo xtask fuzz <target> [--seconds N]`: run one cargo-fuzz target of nsq-proto on nightly.

use std::process::Command;

use crate::cmd::{self, Failure};
use crate::workspace_root;

const DEFAULT_SECONDS: u64 = 60;

/// Entry point.
pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    let (target, seconds) = parse_args(args)?;

    let fuzz_dir = workspace_root()
        .join("crates")
        .join("nsq-proto")
        .join("fuzz");
    if !fuzz_dir.join("Cargo.toml").is_file() {
        return Err(Failure::new(format!(
            "there is no fuzz crate at {} yet, so there is nothing to fuzz",
            fuzz_dir.display()
        )));
    }
    if !nightly_installed() {
        return Err(Failure::new(
            "fuzzing needs the nightly toolchain: install it with `rustup toolchain install \
             nightly` and rerun",
        ));
    }
    if !cmd::succeeds(nightly_cargo().args(["fuzz", "--version"])) {
        let mut install = nightly_cargo();
        install.args(["install", "cargo-fuzz", "--locked"]);
        cmd::header(&format!(
            "cargo-fuzz is missing: {}",
            cmd::display(&install)
        ));
        let status = cmd::status(&mut install)?;
        if !status.success() {
            return Err(Failure::new(
                "installing cargo-fuzz failed (see above): run `cargo install cargo-fuzz \
                 --locked` yourself and rerun",
            ));
        }
    }

    let mut fuzz = nightly_cargo();
    fuzz.current_dir(&fuzz_dir)
        .args(["fuzz", "run", &target, "--"])
        .arg(format!("-max_total_time={seconds}"));
    cmd::header(&format!(
        "(in {}) {}",
        fuzz_dir.display(),
        cmd::display(&fuzz)
    ));
    let status = cmd::status(&mut fuzz)?;
    if status.success() {
        return Ok(());
    }
    let code = status
        .code()
        .and_then(|code| u8::try_from(code).ok())
        .filter(|&code| code != 0)
        .unwrap_or(1);
    Err(Failure::with_code(
        code,
        format!("fuzz target `{target}` failed ({status}); see the cargo-fuzz output above"),
    ))
}

fn parse_args(args: &[String]) -> Result<(String, u64), Failure> {
    let mut target = None;
    let mut seconds = DEFAULT_SECONDS;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = if arg == "--seconds" {
            let value = args.next().map(String::as_str);
            Some(value.ok_or_else(|| Failure::usage("`--seconds` needs a value"))?)
        } else {
            arg.strip_prefix("--seconds=")
        };
        match value {
            Some(value) => {
                seconds = value.parse().map_err(|_| {
                    Failure::usage(format!("`--seconds` takes a whole number, got `{value}`"))
                })?;
            }
            None if arg.starts_with('-') => {
                return Err(Failure::usage(format!("unknown fuzz option `{arg}`")));
            }
            None if target.is_none() => target = Some(arg.clone()),
            None => return Err(Failure::usage(format!("unexpected argument `{arg}`"))),
        }
    }
    let target = target.ok_or_else(|| {
        Failure::usage("usage: cargo xtask fuzz <target> [--seconds N], e.g. `frame_decoder`")
    })?;
    Ok((target, seconds))
}

fn nightly_installed() -> bool {
    cmd::output(Command::new("rustup").args(["toolchain", "list"])).is_some_and(|output| {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .any(|line| line.starts_with("nightly"))
    })
}

/// `cargo +nightly`, through the rustup proxy: `$CARGO` is the stable toolchain's own cargo,
/// which does not understand `+nightly`.
fn nightly_cargo() -> Command {
    let mut command = Command::new("cargo");
    command.env_remove("RUSTUP_TOOLCHAIN").arg("+nightly");
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn parses_target_and_seconds() {
        let parsed = parse_args(&args(&["frame_decoder"])).unwrap();
        assert_eq!(parsed, ("frame_decoder".to_owned(), DEFAULT_SECONDS));
        let parsed = parse_args(&args(&["frame_decoder", "--seconds", "120"])).unwrap();
        assert_eq!(parsed, ("frame_decoder".to_owned(), 120));
        let parsed = parse_args(&args(&["--seconds=5", "identify_response"])).unwrap();
        assert_eq!(parsed, ("identify_response".to_owned(), 5));
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(parse_args(&[]).is_err());
        assert!(parse_args(&args(&["a", "b"])).is_err());
        assert!(parse_args(&args(&["a", "--seconds"])).is_err());
        assert!(parse_args(&args(&["a", "--seconds", "x"])).is_err());
        assert!(parse_args(&args(&["a", "--minutes", "1"])).is_err());
    }
}
