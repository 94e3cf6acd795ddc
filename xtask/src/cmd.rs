//! Running child processes and reporting failures.

use std::env;
use std::ffi::OsStr;
use std::io;
use std::path::PathBuf;
use std::process::{Command, ExitCode, ExitStatus, Output, Stdio};

/// Why a command failed: one message for the user and the process exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    code: u8,
    message: String,
    show_usage: bool,
}

impl Failure {
    /// A failure that exits with code 1.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self::with_code(1, message)
    }

    /// A failure that exits with `code`.
    pub(crate) fn with_code(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            show_usage: false,
        }
    }

    /// Bad command-line arguments: exit code 2 and a pointer to the usage text.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            show_usage: true,
            ..Self::with_code(2, message)
        }
    }

    /// The message for the user.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    /// Prints the message to stderr and returns the exit code.
    pub(crate) fn report(self) -> ExitCode {
        eprintln!("error: {}", self.message);
        if self.show_usage {
            eprintln!("run `cargo xtask help` for the list of commands");
        }
        ExitCode::from(self.code)
    }
}

/// Prints the header line that introduces a step.
pub(crate) fn header(text: &str) {
    eprintln!("==> {text}");
}

/// Shell-like rendering of a command, for headers and error messages.
pub(crate) fn display(command: &Command) -> String {
    let mut parts: Vec<String> = command
        .get_envs()
        .filter_map(|(key, value)| {
            value.map(|value| format!("{}={}", key.to_string_lossy(), quote(value)))
        })
        .collect();
    let program = PathBuf::from(command.get_program());
    // `$CARGO` is an absolute toolchain path; the short name reads better.
    let program = match program.file_stem() {
        Some(stem) if stem == "cargo" => "cargo".into(),
        _ => program.display().to_string(),
    };
    parts.push(program);
    parts.extend(command.get_args().map(quote));
    parts.join(" ")
}

fn quote(arg: &OsStr) -> String {
    let arg = arg.to_string_lossy();
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=+./:@,".contains(c));
    if plain {
        arg.into_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Runs `command` with inherited stdio and returns its exit status.
pub(crate) fn status(command: &mut Command) -> Result<ExitStatus, Failure> {
    command.status().map_err(|err| spawn_failure(command, &err))
}

/// Runs `command` with its stdout sent to our stderr, so that our stdout stays clean.
pub(crate) fn status_stdout_to_stderr(command: &mut Command) -> Result<ExitStatus, Failure> {
    command.stdout(Stdio::from(io::stderr()));
    status(command)
}

/// Runs `command` and captures its output; `None` if it could not be started at all.
pub(crate) fn output(command: &mut Command) -> Option<Output> {
    command.stdin(Stdio::null()).output().ok()
}

/// Whether `command` runs and exits successfully; its output is discarded.
pub(crate) fn succeeds(command: &mut Command) -> bool {
    output(command).is_some_and(|output| output.status.success())
}

/// Runs a step's command and turns a non-zero exit into a failure that names the step.
pub(crate) fn run_step(command: &mut Command) -> Result<(), Failure> {
    let shown = display(command);
    let status = status(command)?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::new(format!("step failed: `{shown}` ({status})")))
    }
}

/// The cargo that is running this xtask, so every step uses the same toolchain.
pub(crate) fn cargo() -> Command {
    let mut command = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // `cargo run` gave xtask its own package's variables. A cargo started from here must not
    // inherit them: build scripts that watch them (ring's watches `CARGO_MANIFEST_DIR`) would
    // see them change between a plain `cargo build` and one started by xtask, and rebuild
    // everything above them each time.
    for (key, _) in env::vars_os() {
        if key.to_str().is_some_and(is_package_variable) {
            command.env_remove(key);
        }
    }
    command
}

/// A variable cargo sets for the package it runs, rather than for itself.
fn is_package_variable(key: &str) -> bool {
    key.starts_with("CARGO_PKG_")
        || key.starts_with("CARGO_MANIFEST_")
        || matches!(
            key,
            "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
        )
}

fn spawn_failure(command: &Command, err: &io::Error) -> Failure {
    Failure::new(format!(
        "could not run `{}`: {err}",
        command.get_program().to_string_lossy()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_package_variables_are_left_out() {
        for key in [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_NAME",
            "CARGO_PRIMARY_PACKAGE",
        ] {
            assert!(is_package_variable(key), "{key}");
        }
        for key in [
            "CARGO",
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "RUSTFLAGS",
            "PATH",
        ] {
            assert!(!is_package_variable(key), "{key}");
        }
    }
}
