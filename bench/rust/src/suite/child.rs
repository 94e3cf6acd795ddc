//! Running a client as a child process: its output captured, killed after a time limit.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::record::RunResult;

/// How long a client may take beyond its time limit (start-up, connecting, closing) before it
/// is killed.
pub(super) const GRACE: Duration = Duration::from_secs(120);

/// Runs `command` to completion with its output captured, killing it after `timeout`, and
/// calls `tick` every few milliseconds while it runs. Returns stdout and stderr, or why it
/// failed.
pub(super) fn run_child(
    command: &mut Command,
    timeout: Duration,
    tick: impl FnMut(),
) -> Result<(String, String), String> {
    run_child_with(command, Stdio::null(), timeout, tick)
}

/// [`run_child`] with `stdin` as the child's standard input.
pub(super) fn run_child_with(
    command: &mut Command,
    stdin: Stdio,
    timeout: Duration,
    mut tick: impl FnMut(),
) -> Result<(String, String), String> {
    run_child_watching(command, stdin, timeout, |_| tick())
}

/// [`run_child_with`], `tick` given the child's pid.
pub(super) fn run_child_watching(
    command: &mut Command,
    stdin: Stdio,
    timeout: Duration,
    mut tick: impl FnMut(u32),
) -> Result<(String, String), String> {
    command
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let pid = child.id();
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("killed after {} s", timeout.as_secs()));
            }
            Ok(None) => {
                tick(pid);
                thread::sleep(Duration::from_millis(2));
            }
            Err(err) => break Err(format!("waiting for {program}: {err}")),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let status = status?;
    if status.success() {
        Ok((stdout, stderr))
    } else {
        Err(format!("exited with {status}: {}", tail(&stderr)))
    }
}

fn read_all(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// The last lines of `text`, for error messages.
pub(super) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(3);
    let tail = lines[start..].join(" | ");
    if tail.is_empty() {
        "(no output)".to_owned()
    } else {
        tail
    }
}

/// The last line of `stdout` that parses as a result.
pub(super) fn last_json_line(stdout: &str) -> Option<RunResult> {
    stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line.trim()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_result_line_wins() {
        let stdout =
            "connected\n{\"client\":\"x\",\"case\":\"a\",\"n\":1,\"acked\":1,\"errors\":0}\n";
        assert_eq!(last_json_line(stdout).unwrap().client, "x");
        assert!(last_json_line("nothing").is_none());
    }
}
