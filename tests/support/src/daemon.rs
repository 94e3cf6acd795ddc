//! What [`Nsqd`](crate::Nsqd) and [`Nsqlookupd`](crate::Nsqlookupd) share: one server process
//! at a time, its log, its pid file, readiness checks, signals and stopping.

mod log;
mod pid_file;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::http::{self, HttpResponse};

use self::log::{Listening, Log, WaitError};
pub(crate) use self::pid_file::Identity;
use self::pid_file::PidFile;

/// How long a graceful shutdown may take before the process is killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// When a start must be complete, and the start timeout it came from (for messages).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Instant,
    timeout: Duration,
}

impl Deadline {
    /// `timeout` from now.
    pub(crate) fn after(timeout: Duration) -> Self {
        Self {
            at: Instant::now() + timeout,
            timeout,
        }
    }
}

/// A server process started by a harness, or none while it is stopped.
///
/// Dropping the value kills the process and waits for it.
#[derive(Debug)]
pub(crate) struct Daemon {
    /// `nsqd` or `nsqlookupd`, for messages.
    name: &'static str,
    binary: PathBuf,
    process: Mutex<Option<Process>>,
    log: Arc<Log>,
    /// The log was already printed by a start-up panic; the drop need not print it again.
    log_printed: bool,
}

/// One process and what belongs to it.
#[derive(Debug)]
struct Process {
    child: Child,
    stderr_reader: Option<JoinHandle<()>>,
    _pid_file: Option<PidFile>,
}

impl Daemon {
    pub(crate) fn new(name: &'static str, binary: PathBuf) -> Self {
        Self {
            name,
            binary,
            process: Mutex::new(None),
            log: Arc::default(),
            log_printed: false,
        }
    }

    pub(crate) fn binary(&self) -> &Path {
        &self.binary
    }

    /// A command for the binary with stdin and stdout closed and stderr piped to the log.
    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }

    /// Spawns `command` (made by [`command`](Self::command)), records its pid file and starts
    /// following its log.
    ///
    /// # Panics
    ///
    /// When the binary cannot be run.
    pub(crate) fn spawn(&mut self, command: &mut Command, identity: Identity<'_>) {
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", self.binary.display()));
        let pid = child.id();
        let pid_file = PidFile::create(pid, identity);
        let stderr = child.stderr.take().expect("stderr is piped");
        let stderr_reader = self.log.follow(stderr, self.name, pid);
        *self
            .process
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = Some(Process {
            child,
            stderr_reader: Some(stderr_reader),
            _pid_file: pid_file,
        });
    }

    /// Waits until the process has logged its TCP and HTTP addresses (and HTTPS when `https`
    /// is set), and returns them.
    ///
    /// # Panics
    ///
    /// When the process exits first or `deadline` passes; the message has the log.
    pub(crate) fn wait_for_listeners(
        &mut self,
        command: &Command,
        https: bool,
        deadline: Deadline,
    ) -> Listening {
        match self.log.wait_for_listeners(https, deadline.at) {
            Ok(listening) => listening,
            Err(WaitError::Exited) => {
                let status = self.end_process(false);
                self.fail(
                    command,
                    &format!("exited during start-up ({})", describe(status)),
                )
            }
            Err(WaitError::TimedOut) => self.fail(
                command,
                &format!(
                    "did not log its listening addresses within {:?}",
                    deadline.timeout
                ),
            ),
        }
    }

    /// What the current process has logged so far.
    pub(crate) fn listening(&self) -> Listening {
        self.log.listening()
    }

    /// Polls `GET /ping` on `http` every 20 ms until `ready` accepts the answer.
    ///
    /// # Panics
    ///
    /// When the process exits first or `deadline` passes; the message has the log and the last
    /// answer.
    pub(crate) fn wait_for_ping(
        &mut self,
        command: &Command,
        http: SocketAddr,
        deadline: Deadline,
        ready: impl Fn(&HttpResponse) -> bool,
    ) {
        loop {
            let last_answer = match http::request(http, "GET", "/ping", b"") {
                Ok(response) if ready(&response) => return,
                Ok(response) => format!("{response:?}"),
                Err(err) => err.to_string(),
            };
            if !self.is_running() {
                let status = self.end_process(false);
                self.fail(
                    command,
                    &format!("exited during start-up ({})", describe(status)),
                );
            }
            if Instant::now() >= deadline.at {
                self.fail(
                    command,
                    &format!(
                        "did not answer GET /ping on {http} within {:?}; last answer: {last_answer}",
                        deadline.timeout
                    ),
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id, while the process runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        let mut process = self.lock_process();
        let process = process.as_mut()?;
        matches!(process.child.try_wait(), Ok(None)).then(|| process.child.id())
    }

    pub(crate) fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// The last lines (up to 200) of the log, across restarts.
    pub(crate) fn log_tail(&self) -> String {
        self.log.tail()
    }

    /// Adds a line of the harness's own to the log, between the process's lines.
    pub(crate) fn note(&self, what: &str) {
        self.log.note(format!("--- nsq-test-support: {what} ---"));
    }

    /// SIGKILL, like a crash; does nothing if the process is not running.
    pub(crate) fn kill(&mut self) {
        if self.end_process(false).is_some() {
            self.note(&format!("{} killed", self.name));
        }
    }

    /// SIGTERM, then up to ten seconds for the process to exit, then SIGKILL; does nothing if
    /// the process is not running.
    pub(crate) fn shutdown(&mut self) {
        if self.end_process(true).is_some() {
            self.note(&format!("{} shut down", self.name));
        }
    }

    /// Freezes the process with SIGSTOP.
    ///
    /// # Panics
    ///
    /// When the process is not running or the signal cannot be sent.
    pub(crate) fn pause(&self) {
        self.signal("-STOP");
        self.wait_until_stopped();
        self.note(&format!("{} paused (SIGSTOP)", self.name));
    }

    /// Waits until every thread of the process has stopped: `kill` returns once the signal is
    /// sent, and a thread already running on another core may still answer a request before it
    /// stops. Where `/proc` is missing, returns at once.
    fn wait_until_stopped(&self) {
        let Some(pid) = self.pid() else { return };
        let tasks = std::path::PathBuf::from(format!("/proc/{pid}/task"));
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(5) {
            let Ok(entries) = std::fs::read_dir(&tasks) else {
                return;
            };
            let all_stopped = entries.flatten().all(|task| {
                std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
                    // The state follows the command name, which is in parentheses.
                    stat.rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().next())
                        .is_some_and(|state| state == "T" || state == "t")
                })
            });
            if all_stopped {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!(
            "{} (pid {pid}) did not stop within 5 s of SIGSTOP",
            self.name
        );
    }

    /// Thaws the process with SIGCONT.
    ///
    /// # Panics
    ///
    /// When the process is not running or the signal cannot be sent.
    pub(crate) fn resume(&self) {
        self.signal("-CONT");
        self.note(&format!("{} resumed (SIGCONT)", self.name));
    }

    /// Sends `signal` (a `kill` option such as `-STOP`) to the process this value started.
    fn signal(&self, signal: &str) {
        let name = self.name;
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("{name} is not running; cannot send {signal}"));
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .status()
            .unwrap_or_else(|err| panic!("cannot run kill {signal} {pid}: {err}"));
        assert!(status.success(), "kill {signal} {pid} failed: {status}");
    }

    /// Stops the process, then panics with everything needed to see why it did not start.
    pub(crate) fn fail(&mut self, command: &Command, reason: &str) -> ! {
        // Stopping first makes the log complete: the reader thread has seen every line.
        self.end_process(false);
        self.log_printed = true;
        let args: Vec<String> = command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        panic!(
            "{name} {reason}\ncommand: {} {}\n--- {name}'s log (last lines) ---\n{}--- end of {name}'s log ---",
            self.binary.display(),
            args.join(" "),
            self.log.tail(),
            name = self.name,
        );
    }

    /// Ends the process, and prints the log when the thread is panicking (a failed test), unless
    /// a start-up failure already did. `label` says which server it was, e.g. `on tcp 127.0.0.1:1`.
    pub(crate) fn end_for_drop(&mut self, label: &str) {
        // Stopping first makes the log complete before it is printed.
        self.end_process(false);
        if thread::panicking() && !self.log_printed {
            self.log_printed = true;
            eprintln!(
                "--- log of the {name} {label} (last lines) ---\n{}--- end of {name}'s log ---",
                self.log.tail(),
                name = self.name,
            );
        }
    }

    fn lock_process(&self) -> MutexGuard<'_, Option<Process>> {
        self.process.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the process (gracefully or not), reaps it, waits for the log reader and removes the
    /// pid file. Never panics: it also runs in `drop`.
    fn end_process(&mut self, graceful: bool) -> Option<Option<ExitStatus>> {
        let mut process = self
            .process
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()?;
        if graceful {
            // A paused process would not act on SIGTERM until thawed.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(process.child.id().to_string())
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .status();
            terminate(&mut process.child, SHUTDOWN_TIMEOUT);
        }
        let _ = process.child.kill();
        let status = process.child.wait().ok();
        if let Some(reader) = process.stderr_reader.take() {
            // The pipe closed with the process, so the reader is at its end.
            let _ = reader.join();
        }
        Some(status)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.end_process(false);
    }
}

/// Sends SIGTERM (through `kill`, to stay free of `unsafe`) and waits up to `timeout` for the
/// process to exit.
fn terminate(child: &mut Child, timeout: Duration) {
    let sent = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !sent {
        return;
    }
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn describe(status: Option<Option<ExitStatus>>) -> String {
    match status.flatten() {
        Some(status) => status.to_string(),
        None => "exit status unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_unknown_exit_status() {
        assert_eq!(describe(None), "exit status unknown");
        assert_eq!(describe(Some(None)), "exit status unknown");
    }
}
