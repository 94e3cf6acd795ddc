//! [`Nsqd`]: a real nsqd process on ephemeral loopback ports, for integration tests.

mod binary;
mod http;
mod log;
mod options;
mod pid_file;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

pub use self::http::HttpResponse;
use self::log::{Log, WaitError};
pub use self::options::NsqdOptions;
use self::pid_file::PidFile;

/// A real nsqd v1.3.0, started on ephemeral ports of 127.0.0.1 with a temporary data directory.
///
/// The binary comes from `$NSQD`, else `<workspace>/target/nsqd/bin/nsqd` (what
/// `cargo xtask nsqd` installs), else `nsqd` on `PATH`; each candidate must report v1.3.0.
/// The listening ports are read from nsqd's own log, and the harness waits until `GET /ping`
/// answers before returning, so the server is ready for clients.
///
/// Everything is blocking and uses only the standard library, so it works from plain tests and
/// from inside `#[tokio::test]` alike (the calls are short).
///
/// Dropping the value kills nsqd, waits for it and deletes the data directory. While nsqd runs,
/// `<workspace>/target/nsqd/pids/<pid>` records it, so that `cargo xtask test` can kill it if
/// the test process dies without dropping it. When a test panics, the drop prints the last lines
/// of nsqd's log next to the test's output.
///
/// ```no_run
/// use nsq_test_support::Nsqd;
///
/// let nsqd = Nsqd::start();
/// let addr = nsqd.tcp_addr(); // connect a producer here
/// # let _ = addr;
/// assert_eq!(nsqd.topic_depth("orders"), None);
/// ```
pub struct Nsqd {
    binary: PathBuf,
    options: NsqdOptions,
    data_dir: Option<TempDir>,
    process: Mutex<Option<Process>>,
    /// `None` only until the first start has read them.
    addrs: Option<Addrs>,
    log: Arc<Log>,
    /// The log was already printed by a start-up panic; the drop need not print it again.
    log_printed: bool,
}

/// One nsqd process and what belongs to it.
#[derive(Debug)]
struct Process {
    child: Child,
    stderr_reader: Option<JoinHandle<()>>,
    _pid_file: Option<PidFile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Addrs {
    tcp: SocketAddr,
    http: SocketAddr,
    https: Option<SocketAddr>,
}

impl Nsqd {
    /// Starts nsqd with its default options.
    ///
    /// # Panics
    ///
    /// When nsqd cannot be found or does not start; see [`Nsqd::start_with`].
    pub fn start() -> Self {
        Self::start_with(NsqdOptions::new())
    }

    /// Starts nsqd with `options` and waits until it answers `GET /ping`.
    ///
    /// # Panics
    ///
    /// When no nsqd v1.3.0 binary is found (the message says how to get one), when nsqd exits
    /// during start-up (for example because of a bad option), or when it does not answer within
    /// [`NsqdOptions::start_timeout`]. The message includes nsqd's command line and log.
    pub fn start_with(options: NsqdOptions) -> Self {
        let binary = binary::nsqd_binary();
        let data_dir = tempfile::Builder::new()
            .prefix("nsqd-test-")
            .tempdir()
            .unwrap_or_else(|err| panic!("cannot create a data directory for nsqd: {err}"));
        let mut nsqd = Self {
            binary,
            options,
            data_dir: Some(data_dir),
            process: Mutex::new(None),
            addrs: None,
            log: Arc::default(),
            log_printed: false,
        };
        // A panic in here unwinds through `nsqd`'s drop, which kills the process.
        nsqd.launch();
        nsqd
    }

    /// The address for NSQ TCP clients (producers).
    pub fn tcp_addr(&self) -> SocketAddr {
        self.addrs().tcp
    }

    /// The address of the plain HTTP API.
    pub fn http_addr(&self) -> SocketAddr {
        self.addrs().http
    }

    /// The address of the HTTPS API; `Some` when nsqd was given a TLS certificate.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        // Also catches a certificate passed through `NsqdOptions::arg` in an unusual spelling.
        self.addrs().https.or_else(|| self.log.listening().https)
    }

    /// The temporary data directory (`--data-path`). It survives [`stop`](Self::stop) and
    /// [`restart`](Self::restart) and is deleted on drop.
    pub fn data_dir(&self) -> &Path {
        self.data_dir
            .as_ref()
            .map_or_else(|| Path::new(""), TempDir::path)
    }

    /// The nsqd binary in use.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// The process id, while nsqd runs.
    pub fn pid(&self) -> Option<u32> {
        let mut process = self.lock_process();
        let process = process.as_mut()?;
        matches!(process.child.try_wait(), Ok(None)).then(|| process.child.id())
    }

    /// Whether the nsqd process is running: `false` after [`stop`](Self::stop) and after nsqd
    /// exited on its own.
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    /// The last lines (up to 200) nsqd wrote to its log, across restarts.
    pub fn log_tail(&self) -> String {
        self.log.tail()
    }

    /// Kills nsqd (SIGKILL, like a crash: messages still in memory are lost) and waits for it
    /// to exit. The ports and the data directory are kept for [`restart`](Self::restart).
    /// Does nothing if nsqd is not running.
    pub fn stop(&mut self) {
        if self.end_process(false).is_some() {
            self.log
                .note("--- nsq-test-support: nsqd killed ---".to_owned());
        }
    }

    /// Asks nsqd to exit (SIGTERM) and waits up to ten seconds for it, then kills it. nsqd
    /// writes its in-memory messages to the data directory on the way out, so they are there
    /// again after [`restart`](Self::restart). Does nothing if nsqd is not running.
    pub fn shutdown(&mut self) {
        if self.end_process(true).is_some() {
            self.log
                .note("--- nsq-test-support: nsqd shut down ---".to_owned());
        }
    }

    /// Freezes nsqd (SIGSTOP to the process this value started): its sockets stay open and the
    /// kernel still completes TCP connections to its ports, but nothing is read or answered,
    /// like a server stuck in a long pause. [`resume`](Self::resume) thaws it; dropping the
    /// value or stopping nsqd kills it frozen or not.
    ///
    /// # Panics
    ///
    /// When nsqd is not running or the signal cannot be sent.
    pub fn pause(&self) {
        self.signal("-STOP");
        self.wait_until_stopped();
        self.log
            .note("--- nsq-test-support: nsqd paused (SIGSTOP) ---".to_owned());
    }

    /// Thaws nsqd after [`pause`](Self::pause) (SIGCONT).
    ///
    /// # Panics
    ///
    /// When nsqd is not running or the signal cannot be sent.
    pub fn resume(&self) {
        self.signal("-CONT");
        self.log
            .note("--- nsq-test-support: nsqd resumed (SIGCONT) ---".to_owned());
    }

    /// Waits until every thread of nsqd has stopped: `kill` returns once the signal is sent, and
    /// a thread already running on another core may still answer a request before it stops.
    /// Where `/proc` is missing, returns at once.
    fn wait_until_stopped(&self) {
        let Some(pid) = self.pid() else { return };
        let tasks = std::path::PathBuf::from(format!("/proc/{pid}/task"));
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
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
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("nsqd (pid {pid}) did not stop within 5 s of SIGSTOP");
    }

    /// Sends `signal` (a `kill` option such as `-STOP`) to the nsqd process this value started.
    fn signal(&self, signal: &str) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("nsqd is not running; cannot send {signal}"));
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .status()
            .unwrap_or_else(|err| panic!("cannot run kill {signal} {pid}: {err}"));
        assert!(status.success(), "kill {signal} {pid} failed: {status}");
    }

    /// Starts nsqd again on the same TCP, HTTP (and HTTPS) ports with the same data directory
    /// and options, and waits until it answers `GET /ping`. A running nsqd is killed first, as by
    /// [`stop`](Self::stop); call [`shutdown`](Self::shutdown) before for a graceful restart.
    ///
    /// # Panics
    ///
    /// Like [`Nsqd::start_with`], and also when a port has been taken by another process in the
    /// meantime.
    pub fn restart(&mut self) {
        self.stop();
        self.log
            .note("--- nsq-test-support: restarting nsqd ---".to_owned());
        self.launch();
    }

    /// Sends one request to nsqd's HTTP API; `target` is the path and query, e.g.
    /// `"/stats?format=json"`.
    ///
    /// # Panics
    ///
    /// When the request fails at the HTTP level (nsqd not running, say). An error status is
    /// returned, not a panic.
    pub fn http_request(&self, method: &str, target: &str, body: &[u8]) -> HttpResponse {
        http::request(self.http_addr(), method, target, body).unwrap_or_else(|err| {
            panic!(
                "HTTP {method} {target} to nsqd at {} failed: {err} (nsqd running: {})",
                self.http_addr(),
                self.is_running()
            )
        })
    }

    /// `GET /stats?format=json`: the whole statistics document.
    ///
    /// In v1.3.0 it has `version`, `health`, `start_time`, `topics` (`null` when there are
    /// none) and `producers`; each topic has `topic_name`, `depth`, `message_count`,
    /// `message_bytes` and `channels`, each channel `channel_name`, `depth`, `message_count`, ...
    ///
    /// # Panics
    ///
    /// When nsqd does not answer with JSON.
    pub fn stats(&self) -> Value {
        self.get_json("/stats?format=json")
    }

    /// The statistics of one topic, or `None` if the topic does not exist.
    ///
    /// # Panics
    ///
    /// When nsqd does not answer with JSON.
    pub fn topic_stats(&self, topic: &str) -> Option<Value> {
        let stats = self.get_json(&format!(
            "/stats?format=json&include_mem=false&topic={}",
            http::encode_query_value(topic)
        ));
        find_named(&stats["topics"], "topic_name", topic).cloned()
    }

    /// The topic's depth: messages held by the topic itself, in memory and on disk. `None` if
    /// the topic does not exist.
    ///
    /// A topic hands its messages to its channels as soon as it has any, so with a channel the
    /// topic depth drops to 0 and [`channel_depth`](Self::channel_depth) counts them instead.
    pub fn topic_depth(&self, topic: &str) -> Option<u64> {
        self.topic_stats(topic)
            .map(|stats| number(&stats, "depth", topic))
    }

    /// How many messages the topic has received since nsqd started (a restart resets it).
    /// `None` if the topic does not exist.
    pub fn topic_message_count(&self, topic: &str) -> Option<u64> {
        self.topic_stats(topic)
            .map(|stats| number(&stats, "message_count", topic))
    }

    /// The channel's depth (messages waiting in it). `None` if the topic or channel does not
    /// exist.
    pub fn channel_depth(&self, topic: &str, channel: &str) -> Option<u64> {
        let stats = self.topic_stats(topic)?;
        let channel_stats = find_named(&stats["channels"], "channel_name", channel)?;
        Some(number(channel_stats, "depth", channel))
    }

    /// `POST /topic/create`. Creating an existing topic is not an error.
    ///
    /// # Panics
    ///
    /// When nsqd refuses (an invalid name, say).
    pub fn create_topic(&self, topic: &str) {
        let target = format!("/topic/create?topic={}", http::encode_query_value(topic));
        self.post_expecting_success(&target, b"");
    }

    /// `POST /topic/delete`; returns `false` if there was no such topic.
    ///
    /// # Panics
    ///
    /// When nsqd answers with anything but success or `404 TOPIC_NOT_FOUND`.
    pub fn delete_topic(&self, topic: &str) -> bool {
        let target = format!("/topic/delete?topic={}", http::encode_query_value(topic));
        let response = self.http_request("POST", &target, b"");
        match response.status {
            200..=299 => true,
            404 => false,
            _ => panic!("POST {target} failed: {response:?}"),
        }
    }

    /// Creates the topic (nsqd's `/channel/create` answers 404 for a missing topic), then
    /// `POST /channel/create`.
    ///
    /// # Panics
    ///
    /// When nsqd refuses (an invalid name, say).
    pub fn create_channel(&self, topic: &str, channel: &str) {
        self.create_topic(topic);
        let target = format!(
            "/channel/create?topic={}&channel={}",
            http::encode_query_value(topic),
            http::encode_query_value(channel)
        );
        self.post_expecting_success(&target, b"");
    }

    /// `POST /pub`: publishes one message through the HTTP API, e.g. to prepare a topic
    /// without going through the code under test.
    ///
    /// # Panics
    ///
    /// When nsqd refuses the message.
    pub fn http_publish(&self, topic: &str, body: &[u8]) {
        let target = format!("/pub?topic={}", http::encode_query_value(topic));
        self.post_expecting_success(&target, body);
    }

    fn addrs(&self) -> Addrs {
        self.addrs
            .expect("the addresses are known once `start_with` has returned")
    }

    fn lock_process(&self) -> std::sync::MutexGuard<'_, Option<Process>> {
        self.process.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get_json(&self, target: &str) -> Value {
        let response = self.http_request("GET", target, b"");
        if !response.is_success() {
            panic!("GET {target} failed: {response:?}");
        }
        serde_json::from_slice(&response.body).unwrap_or_else(|err| {
            panic!("GET {target} returned invalid JSON ({err}): {response:?}")
        })
    }

    fn post_expecting_success(&self, target: &str, body: &[u8]) {
        let response = self.http_request("POST", target, body);
        if !response.is_success() {
            panic!("POST {target} failed: {response:?}");
        }
    }

    /// Spawns nsqd (on the known ports after the first start) and waits until it is ready.
    fn launch(&mut self) {
        let started = Instant::now();
        let deadline = started + self.options.start_timeout_value();
        let mut command = self.command();
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", self.binary.display()));
        let pid = child.id();
        let pid_file = PidFile::create(pid, self.data_dir());
        let stderr = child.stderr.take().expect("stderr is piped");
        let stderr_reader = self.log.follow(stderr, pid);
        *self
            .process
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = Some(Process {
            child,
            stderr_reader: Some(stderr_reader),
            _pid_file: pid_file,
        });

        let expect_https = self.options.has_tls();
        let listening = match self.log.wait_for_listeners(expect_https, deadline) {
            Ok(listening) => listening,
            Err(WaitError::Exited) => {
                let status = self.end_process(false);
                self.fail(
                    &command,
                    &format!("nsqd exited during start-up ({})", describe(status)),
                );
            }
            Err(WaitError::TimedOut) => self.fail(
                &command,
                &format!(
                    "nsqd did not log its listening addresses within {:?}",
                    self.options.start_timeout_value()
                ),
            ),
        };
        let (Some(tcp), Some(http)) = (listening.tcp, listening.http) else {
            unreachable!("wait_for_listeners returns both addresses");
        };
        let addrs = Addrs {
            tcp,
            http,
            https: listening.https,
        };
        if let Some(previous) = self.addrs {
            if previous != addrs {
                self.fail(
                    &command,
                    &format!("nsqd came back on {addrs:?} instead of {previous:?}"),
                );
            }
        }
        self.addrs = Some(addrs);
        self.wait_for_ping(&command, deadline);
    }

    fn command(&self) -> Command {
        let (tcp, http, https) = match self.addrs {
            Some(addrs) => (
                addrs.tcp.to_string(),
                addrs.http.to_string(),
                addrs
                    .https
                    .map_or_else(|| "127.0.0.1:0".to_owned(), |https| https.to_string()),
            ),
            None => (
                "127.0.0.1:0".to_owned(),
                "127.0.0.1:0".to_owned(),
                "127.0.0.1:0".to_owned(),
            ),
        };
        let mut command = Command::new(&self.binary);
        // Options first, so that the harness's own flags below win over an `arg` that repeats
        // them (Go's flag package keeps the last value).
        command
            .arg("--broadcast-address=127.0.0.1")
            .args(self.options.to_args())
            .arg(format!("--tcp-address={tcp}"))
            .arg(format!("--http-address={http}"))
            // Only used when TLS is configured; never the fixed default port 4152.
            .arg(format!("--https-address={https}"))
            .arg(format!("--data-path={}", self.data_dir().display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }

    fn wait_for_ping(&mut self, command: &Command, deadline: Instant) {
        let http = self.http_addr();
        loop {
            let last_answer = match http::request(http, "GET", "/ping", b"") {
                Ok(response) if response.status == 200 && response.text().trim() == "OK" => return,
                // `--tls-required=true`: the plain HTTP API refuses everything, but it is up.
                Ok(response)
                    if response.status == 403 && response.text().contains("TLS_REQUIRED") =>
                {
                    return;
                }
                Ok(response) => format!("{response:?}"),
                Err(err) => err.to_string(),
            };
            if !self.is_running() {
                let status = self.end_process(false);
                self.fail(
                    command,
                    &format!("nsqd exited during start-up ({})", describe(status)),
                );
            }
            if Instant::now() >= deadline {
                self.fail(
                    command,
                    &format!(
                        "nsqd did not answer GET /ping on {http} within {:?}; last answer: {last_answer}",
                        self.options.start_timeout_value()
                    ),
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the process, then panics with everything needed to see why it did not start.
    fn fail(&mut self, command: &Command, reason: &str) -> ! {
        // Stopping first makes the log complete: the reader thread has seen every line.
        self.end_process(false);
        self.log_printed = true;
        let args: Vec<String> = command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        panic!(
            "{reason}\ncommand: {} {}\n--- nsqd's log (last lines) ---\n{}--- end of nsqd's log ---",
            self.binary.display(),
            args.join(" "),
            self.log.tail()
        );
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
            // A paused nsqd would not act on SIGTERM until thawed.
            let _ = Command::new("kill")
                .arg("-CONT")
                .arg(process.child.id().to_string())
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .status();
            terminate(&mut process.child, Duration::from_secs(10));
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

impl Drop for Nsqd {
    fn drop(&mut self) {
        // Stopping first makes the log complete before it is printed.
        self.end_process(false);
        if thread::panicking() && !self.log_printed && self.addrs.is_some() {
            eprintln!(
                "--- log of the nsqd on tcp {} (last lines) ---\n{}--- end of nsqd's log ---",
                self.tcp_addr(),
                self.log.tail()
            );
        }
        if let Some(data_dir) = self.data_dir.take() {
            let _ = data_dir.close();
        }
    }
}

impl fmt::Debug for Nsqd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nsqd")
            .field("pid", &self.pid())
            .field("tcp_addr", &self.addrs.map(|addrs| addrs.tcp))
            .field("http_addr", &self.addrs.map(|addrs| addrs.http))
            .field("https_addr", &self.addrs.and_then(|addrs| addrs.https))
            .field("data_dir", &self.data_dir())
            .field("options", &self.options)
            .finish_non_exhaustive()
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

/// The element of a JSON array whose `key` is `name`; `null` (nsqd's empty list) finds nothing.
/// The depth of `topic` on the nsqd whose HTTP API is at `http_addr`, for an nsqd this harness
/// did not start. `Ok(None)` if the topic does not exist.
///
/// # Errors
///
/// When the request fails or the answer is not nsqd's statistics.
pub fn topic_depth_at(http_addr: SocketAddr, topic: &str) -> std::io::Result<Option<u64>> {
    let target = format!(
        "/stats?format=json&include_mem=false&topic={}",
        http::encode_query_value(topic)
    );
    let response = http::request(http_addr, "GET", &target, b"")?;
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    if !response.is_success() {
        return Err(invalid(format!("GET {target}: {response:?}")));
    }
    let stats: Value = serde_json::from_slice(&response.body)
        .map_err(|e| invalid(format!("GET {target}: {e}")))?;
    Ok(find_named(&stats["topics"], "topic_name", topic).and_then(|t| t["depth"].as_u64()))
}

fn find_named<'a>(list: &'a Value, key: &str, name: &str) -> Option<&'a Value> {
    list.as_array()?
        .iter()
        .find(|item| item[key].as_str() == Some(name))
}

fn number(stats: &Value, field: &str, name: &str) -> u64 {
    stats[field]
        .as_u64()
        .unwrap_or_else(|| panic!("nsqd's stats for {name:?} have no numeric {field:?}: {stats}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_topics_and_channels_by_name() {
        let stats = json!({
            "topics": [
                {"topic_name": "a", "depth": 1, "channels": []},
                {"topic_name": "b", "depth": 2, "channels": [{"channel_name": "c", "depth": 3}]},
            ]
        });
        let b = find_named(&stats["topics"], "topic_name", "b").unwrap();
        assert_eq!(number(b, "depth", "b"), 2);
        let c = find_named(&b["channels"], "channel_name", "c").unwrap();
        assert_eq!(number(c, "depth", "c"), 3);
        assert!(find_named(&stats["topics"], "topic_name", "z").is_none());
    }

    #[test]
    fn null_topics_mean_none() {
        // What v1.3.0 returns when no topic matches.
        let stats = json!({"version": "1.3.0", "topics": null, "producers": null});
        assert!(find_named(&stats["topics"], "topic_name", "a").is_none());
        assert!(find_named(&json!({})["topics"], "topic_name", "a").is_none());
    }

    #[test]
    fn describes_unknown_exit_status() {
        assert_eq!(describe(None), "exit status unknown");
        assert_eq!(describe(Some(None)), "exit status unknown");
    }
}
