//! Helpers shared by the nsq-pub and nsq-tail tests: running a binary with some standard input,
//! multiset comparisons, test inputs and binary MPUB. Messages are read back with
//! nsq-test-support's `read_all`.
//!
// Each test file uses its own subset of these.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nsq_test_support::{HANG, Nsqd};
use serde_json::Value;

/// A command for the binary under test.
pub fn nsq_pub() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nsq-pub"))
}

/// A command for the nsq-tail binary.
pub fn nsq_tail() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nsq-tail"))
}

/// Publishes `bodies` to `topic` with one binary `POST /mpub` (any bytes, newlines included).
pub fn mpub(nsqd: &Nsqd, topic: &str, bodies: &[Vec<u8>]) {
    let mut payload = Vec::new();
    payload.extend_from_slice(&u32::try_from(bodies.len()).unwrap().to_be_bytes());
    for body in bodies {
        payload.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
        payload.extend_from_slice(body);
    }
    let response = nsqd.http_request(
        "POST",
        &format!("/mpub?topic={topic}&binary=true"),
        &payload,
    );
    assert!(response.is_success(), "MPUB to {topic}: {response:?}");
}

/// A number from the `/stats` entry of `channel` on `topic`.
pub fn channel_count(nsqd: &Nsqd, topic: &str, channel: &str, field: &str) -> u64 {
    let stats = nsqd
        .channel_stats(topic, channel)
        .unwrap_or_else(|| panic!("no channel {topic}/{channel}"));
    stats[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {stats}"))
}

/// Waits (up to [`HANG`]) until the channel's depth is `depth`: a topic hands what it is
/// published to its channels a moment later.
pub fn wait_for_depth(nsqd: &Nsqd, topic: &str, channel: &str, depth: u64) {
    let deadline = Instant::now() + HANG;
    loop {
        let now = channel_count(nsqd, topic, channel, "depth");
        if now == depth {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}/{channel}: depth {now}, waited for {depth}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// Waits up to 5 s until the channel has nothing in flight: after a reader exits, nsqd may
/// still be reading the last FINs and REQs it wrote. A message really left in flight stays
/// for nsqd's `msg_timeout` (60 s), so this still fails on one.
pub fn wait_nothing_in_flight(nsqd: &Nsqd, topic: &str, channel: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let in_flight = channel_count(nsqd, topic, channel, "in_flight_count");
        if in_flight == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}/{channel}: {in_flight} messages still in flight after 5 s"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// A running nsq-pub: its standard input is fed from a thread, its output collected by two
/// others. Dropping it kills the process if it still runs.
pub struct Running {
    child: Child,
    started: Instant,
    feeder: Option<JoinHandle<io::Result<()>>>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    args: String,
}

/// How a run ended.
#[derive(Debug)]
pub struct Finished {
    /// The exit code (`None` if a signal ended the process).
    pub code: Option<i32>,
    pub stdout: String,
    /// Standard output as written.
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
    /// From just before the spawn to when the exit was seen: at least the process's run time.
    pub elapsed: Duration,
    /// What writing the standard input came to (an error if nsq-pub closed it early).
    pub fed: io::Result<()>,
}

impl Running {
    /// Spawns `command` with `stdin` written to its standard input (then closed).
    pub fn spawn(command: &mut Command, stdin: Vec<u8>) -> Self {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let args = format!("{command:?}");
        let started = Instant::now();
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {args}: {err}"));
        let mut input = child.stdin.take().expect("stdin is piped");
        let feeder = thread::spawn(move || {
            input.write_all(&stdin)?;
            input.flush()
        });
        let stdout = collect(child.stdout.take().expect("stdout is piped"));
        let stderr = collect(child.stderr.take().expect("stderr is piped"));
        Self {
            child,
            started,
            feeder: Some(feeder),
            stdout: Some(stdout),
            stderr: Some(stderr),
            args,
        }
    }

    /// When the process was spawned (taken just before the spawn).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Sends the process SIGINT (what Ctrl-C sends), by the PID this test started.
    pub fn interrupt(&self) {
        self.signal("INT");
    }

    /// Sends the process the signal `name` (`INT`, `TERM`, `HUP`), by the PID this test
    /// started.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {}", self.child.id());
    }

    /// Kills the process (SIGKILL, by the PID this test started) and waits for it.
    pub fn kill(mut self) {
        self.child.kill().expect("kill nsq-pub");
        self.child.wait().expect("wait for nsq-pub");
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits for the process to exit and collects its output.
    ///
    /// # Panics
    ///
    /// When it runs for longer than [`HANG`]; it is killed then.
    pub fn wait(self) -> Finished {
        self.wait_within(HANG)
    }

    /// Waits for the process to exit, at most `limit` from the spawn, and collects its output.
    ///
    /// # Panics
    ///
    /// When it runs for longer than `limit`; it is killed then.
    pub fn wait_within(mut self, limit: Duration) -> Finished {
        let deadline = self.started + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = join(self.stderr.take());
                panic!(
                    "{} still running after {limit:?}; stderr:\n{}",
                    self.args,
                    String::from_utf8_lossy(&stderr)
                );
            }
            thread::sleep(Duration::from_millis(2));
        };
        let elapsed = self.started.elapsed();
        let fed = self
            .feeder
            .take()
            .expect("fed once")
            .join()
            .expect("stdin feeder");
        let stdout_bytes = join(self.stdout.take());
        Finished {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
            stdout_bytes,
            stderr: String::from_utf8_lossy(&join(self.stderr.take())).into_owned(),
            elapsed,
            fed,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn collect(mut from: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut out = Vec::new();
        let _ = from.read_to_end(&mut out);
        out
    })
}

fn join(handle: Option<JoinHandle<Vec<u8>>>) -> Vec<u8> {
    handle
        .map(|h| h.join().unwrap_or_default())
        .unwrap_or_default()
}

/// Runs nsq-pub with `args` and `stdin` to the end.
pub fn run<I, S>(args: I, stdin: &[u8]) -> Finished
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = nsq_pub();
    command.args(args);
    Running::spawn(&mut command, stdin.to_vec()).wait()
}

impl Finished {
    /// Asserts the exit code, showing stderr when it differs.
    pub fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "nsq-pub's exit code; stderr:\n{}",
            self.stderr
        );
    }
}

/// The report nsq-pub wrote with `--report-json`.
pub fn report(path: &Path) -> Value {
    let text =
        std::fs::read(path).unwrap_or_else(|err| panic!("no report at {}: {err}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|err| {
        panic!(
            "the report is not JSON ({err}): {}",
            String::from_utf8_lossy(&text)
        )
    })
}

/// A numeric field of the report (a path like `rejected.too_large` goes into objects).
pub fn count(report: &Value, field: &str) -> u64 {
    let mut value = report;
    for key in field.split('.') {
        value = &value[key];
    }
    value
        .as_u64()
        .unwrap_or_else(|| panic!("the report has no count {field:?}: {report}"))
}

/// The records of `bytes` split on `delimiter`, each terminated by it (the format of
/// `--failed-out` and `--unknown-out`).
///
/// # Panics
///
/// When the last record is not terminated.
pub fn records(bytes: &[u8], delimiter: u8) -> Vec<Vec<u8>> {
    if bytes.is_empty() {
        return Vec::new();
    }
    assert_eq!(
        bytes.last(),
        Some(&delimiter),
        "every record is followed by the delimiter"
    );
    bytes[..bytes.len() - 1]
        .split(|&b| b == delimiter)
        .map(<[u8]>::to_vec)
        .collect()
}

/// How often each message occurs.
pub fn multiset<'a, M: AsRef<[u8]> + 'a>(
    messages: impl IntoIterator<Item = &'a M>,
) -> HashMap<&'a [u8], usize> {
    let mut counts = HashMap::new();
    for message in messages {
        *counts.entry(message.as_ref()).or_default() += 1;
    }
    counts
}

/// Asserts that `got` and `want` hold the same messages the same number of times.
pub fn assert_same_messages<G: AsRef<[u8]>, W: AsRef<[u8]>>(got: &[G], want: &[W], what: &str) {
    if got.len() == want.len() && multiset(got) == multiset(want) {
        return;
    }
    let (got_counts, want_counts) = (multiset(got), multiset(want));
    let show = |m: &[u8]| String::from_utf8_lossy(m).into_owned();
    let missing: Vec<_> = want_counts
        .iter()
        .filter(|(m, n)| got_counts.get(*m).copied().unwrap_or(0) < **n)
        .take(5)
        .map(|(m, _)| show(m))
        .collect();
    let extra: Vec<_> = got_counts
        .iter()
        .filter(|(m, n)| want_counts.get(*m).copied().unwrap_or(0) < **n)
        .take(5)
        .map(|(m, _)| show(m))
        .collect();
    panic!(
        "{what}: got {} messages, want {}; some missing or too few: {missing:?}; some extra or \
         too many: {extra:?}",
        got.len(),
        want.len()
    );
}

/// `n` distinct newline-terminated lines `<prefix><i>`: the input bytes and the lines.
pub fn numbered_lines(prefix: &str, n: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let lines: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("{prefix}{i:07}").into_bytes())
        .collect();
    let mut input = Vec::with_capacity(n * (prefix.len() + 8));
    for line in &lines {
        input.extend_from_slice(line);
        input.push(b'\n');
    }
    (input, lines)
}

/// Names of the topics nsqd has.
pub fn topic_names(nsqd: &Nsqd) -> Vec<String> {
    nsqd.stats()["topics"]
        .as_array()
        .map(|topics| {
            topics
                .iter()
                .filter_map(|t| t["topic_name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
