//! Helpers shared by the nsq-pub tests: running the binary with some standard input, a small
//! blocking consumer to read messages back from nsqd, multiset comparisons and test inputs.
//!
// Each test file uses its own subset of these.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use nsq_proto::{Channel, Command as NsqCommand, Frame, FrameDecoder, MAGIC_V2, Response, Topic};
use nsq_test_support::{HANG, Nsqd};
use serde_json::Value;

/// How long the consumer waits for a message it expects.
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// The channel every read-back subscribes to.
pub const READBACK: &str = "readback";

/// A command for the binary under test.
pub fn nsq_pub() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nsq-pub"))
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
        Finished {
            code: status.code(),
            stdout: String::from_utf8_lossy(&join(self.stdout.take())).into_owned(),
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
pub fn multiset<'a>(messages: impl IntoIterator<Item = &'a Vec<u8>>) -> HashMap<&'a [u8], usize> {
    let mut counts = HashMap::new();
    for message in messages {
        *counts.entry(message.as_slice()).or_default() += 1;
    }
    counts
}

/// Asserts that `got` and `want` hold the same messages the same number of times.
pub fn assert_same_messages(got: &[Vec<u8>], want: &[Vec<u8>], what: &str) {
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

/// Everything `topic` holds on `nsqd`, read through the channel [`READBACK`], which must not
/// exist yet (so the topic's depth is everything there is). An absent topic holds nothing.
pub fn read_all(nsqd: &Nsqd, topic: &str) -> Vec<Vec<u8>> {
    let Some(stats) = nsqd.topic_stats(topic) else {
        return Vec::new();
    };
    assert!(
        stats["channels"].as_array().is_none_or(Vec::is_empty),
        "read_all needs a topic without channels: {stats}"
    );
    let depth = stats["depth"].as_u64().expect("topic depth");
    read_at_least(nsqd, topic, READBACK, depth as usize)
}

/// Reads `n` messages from `topic`/`channel`, then any more there are, until nsqd reports the
/// topic and the channel empty with nothing in flight (a message delivered and not yet read
/// would stay in flight, since only what is read is finished). Returns the bodies in arrival
/// order.
///
/// `n` is what the caller knows to be there; more may be: after a SIGKILL, nsqd's depth can
/// miss a message written just before the kill.
pub fn read_at_least(nsqd: &Nsqd, topic: &str, channel: &str, n: usize) -> Vec<Vec<u8>> {
    let mut consumer = Consumer::subscribe(nsqd.tcp_addr(), topic, channel);
    let mut bodies = consumer.read(n);
    let deadline = Instant::now() + HANG;
    loop {
        while let Some(body) = consumer.next_within(Duration::from_millis(50)) {
            bodies.push(body);
        }
        consumer.flush();
        let stats = nsqd
            .channel_stats(topic, channel)
            .expect("the channel exists");
        let in_flight = stats["in_flight_count"].as_u64().expect("in_flight_count");
        let depth = stats["depth"].as_u64().expect("channel depth");
        let topic_depth = nsqd.topic_depth(topic).expect("the topic exists");
        if in_flight == 0 && depth == 0 && topic_depth == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after reading {} messages, {topic} still has depth {topic_depth}, {channel} depth \
             {depth} and {in_flight} in flight",
            bodies.len()
        );
    }
    assert_eq!(consumer.redeliveries, 0, "no message is delivered twice");
    bodies
}

/// A bare blocking consumer: SUB, one RDY, and a FIN for every message (written whenever no
/// whole frame is waiting, so reading many messages costs few writes).
pub struct Consumer {
    stream: TcpStream,
    input: BytesMut,
    decoder: FrameDecoder,
    output: BytesMut,
    received: usize,
    redeliveries: u64,
}

impl Consumer {
    /// Connects, subscribes to `topic`/`channel` and announces RDY 2500.
    pub fn subscribe(addr: SocketAddr, topic: &str, channel: &str) -> Self {
        let stream = TcpStream::connect(addr)
            .unwrap_or_else(|err| panic!("consumer cannot connect to {addr}: {err}"));
        stream.set_nodelay(true).unwrap();
        let mut consumer = Self {
            stream,
            input: BytesMut::new(),
            decoder: FrameDecoder::default(),
            output: BytesMut::new(),
            received: 0,
            redeliveries: 0,
        };
        consumer.output.extend_from_slice(MAGIC_V2);
        let topic = Topic::new(topic).expect("valid topic");
        let channel = Channel::new(channel).expect("valid channel");
        consumer.queue(NsqCommand::Sub {
            topic: &topic,
            channel: &channel,
        });
        consumer.flush();
        match consumer.frame() {
            Frame::Response(Response::Ok) => {}
            other => panic!("SUB answered with {other:?}"),
        }
        consumer.queue(NsqCommand::Rdy { count: 2500 });
        consumer.flush();
        consumer
    }

    fn queue(&mut self, command: NsqCommand<'_>) {
        command.encode(&mut self.output).expect("encode a command");
    }

    /// Writes out what is queued (FINs, NOPs).
    pub fn flush(&mut self) {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).expect("write to nsqd");
            self.output.clear();
        }
    }

    /// The next frame other than a heartbeat (answered with NOP).
    ///
    /// # Panics
    ///
    /// When none comes within [`READ_TIMEOUT`].
    fn frame(&mut self) -> Frame {
        self.frame_within(READ_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "no frame from nsqd within {READ_TIMEOUT:?} after {} messages",
                self.received
            )
        })
    }

    /// The next frame other than a heartbeat (answered with NOP), if one comes within `wait`.
    /// What is queued is written out before waiting.
    fn frame_within(&mut self, wait: Duration) -> Option<Frame> {
        let mut chunk = vec![0; 64 * 1024];
        self.stream.set_read_timeout(Some(wait)).unwrap();
        loop {
            match self.decoder.decode(&mut self.input).expect("valid frames") {
                Some(Frame::Response(Response::Heartbeat)) => self.queue(NsqCommand::Nop),
                Some(frame) => return Some(frame),
                None => {
                    self.flush();
                    match self.stream.read(&mut chunk) {
                        Ok(0) => panic!(
                            "nsqd closed the connection after {} messages",
                            self.received
                        ),
                        Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                        Err(err)
                            if matches!(
                                err.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                            ) =>
                        {
                            return None;
                        }
                        Err(err) => panic!(
                            "reading from nsqd failed after {} messages: {err}",
                            self.received
                        ),
                    }
                }
            }
        }
    }

    /// The next message's body; the message is finished with the next flush.
    pub fn next(&mut self) -> Vec<u8> {
        let frame = self.frame();
        self.finish(frame)
    }

    /// Queues the FIN of the message in `frame` and returns its body.
    fn finish(&mut self, frame: Frame) -> Vec<u8> {
        match frame {
            Frame::Message(message) => {
                self.queue(NsqCommand::Fin { id: &message.id });
                self.received += 1;
                if message.attempts > 1 {
                    self.redeliveries += 1;
                }
                message.body.to_vec()
            }
            other => panic!("the consumer expected a message, got {other:?}"),
        }
    }

    /// The next message's body if one comes within `wait`.
    pub fn next_within(&mut self, wait: Duration) -> Option<Vec<u8>> {
        let frame = self.frame_within(wait)?;
        Some(self.finish(frame))
    }

    /// Reads exactly `n` messages.
    pub fn read(&mut self, n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|_| self.next()).collect()
    }
}
