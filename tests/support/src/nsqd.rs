//! [`Nsqd`]: a real nsqd process on ephemeral loopback ports, for integration tests.

mod options;

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

use crate::NsqTool;
use crate::daemon::{Daemon, Deadline, Identity};
use crate::http::{self, HttpResponse};

pub use self::options::NsqdOptions;

/// A real nsqd v1.3.0, started on ephemeral ports of 127.0.0.1 with a temporary data directory.
///
/// The binary is [`NsqTool::Nsqd`]: `$NSQD`, else `<workspace>/target/nsqd/bin/nsqd` (what
/// `cargo xtask nsqd` installs), else `nsqd` on `PATH`; each candidate must report v1.3.0.
/// The listening ports are read from nsqd's own log, and the harness waits until `GET /ping`
/// answers before returning, so the server is ready for clients.
///
/// Everything is blocking, so it works from plain tests and from inside `#[tokio::test]` alike
/// (the calls are short; each HTTP request runs on a thread of its own).
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
    daemon: Daemon,
    options: NsqdOptions,
    data_dir: Option<TempDir>,
    /// `None` only until the first start has read them.
    addrs: Option<Addrs>,
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
        let binary = NsqTool::Nsqd.path();
        let mut builder = tempfile::Builder::new();
        builder.prefix("nsqd-test-");
        let memory = Path::new("/dev/shm");
        let data_dir = if options.data_in_memory_value() && memory.is_dir() {
            builder.tempdir_in(memory)
        } else {
            builder.tempdir()
        }
        .unwrap_or_else(|err| panic!("cannot create a data directory for nsqd: {err}"));
        let mut nsqd = Self {
            daemon: Daemon::new("nsqd", binary),
            options,
            data_dir: Some(data_dir),
            addrs: None,
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
        self.addrs().https.or_else(|| self.daemon.listening().https)
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
        self.daemon.binary()
    }

    /// The process id, while nsqd runs.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.pid()
    }

    /// Whether the nsqd process is running: `false` after [`stop`](Self::stop) and after nsqd
    /// exited on its own.
    pub fn is_running(&self) -> bool {
        self.daemon.is_running()
    }

    /// The last lines (up to 200) nsqd wrote to its log, across restarts.
    pub fn log_tail(&self) -> String {
        self.daemon.log_tail()
    }

    /// Kills nsqd (SIGKILL, like a crash: messages still in memory are lost) and waits for it
    /// to exit. The ports and the data directory are kept for [`restart`](Self::restart).
    /// Does nothing if nsqd is not running.
    pub fn stop(&mut self) {
        self.daemon.kill();
    }

    /// Asks nsqd to exit (SIGTERM) and waits up to ten seconds for it, then kills it. nsqd
    /// writes its in-memory messages to the data directory on the way out, so they are there
    /// again after [`restart`](Self::restart). Does nothing if nsqd is not running.
    pub fn shutdown(&mut self) {
        self.daemon.shutdown();
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
        self.daemon.pause();
    }

    /// Thaws nsqd after [`pause`](Self::pause) (SIGCONT).
    ///
    /// # Panics
    ///
    /// When nsqd is not running or the signal cannot be sent.
    pub fn resume(&self) {
        self.daemon.resume();
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
        self.daemon.note("restarting nsqd");
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
        let stats = self.channel_stats(topic, channel)?;
        Some(number(&stats, "depth", channel))
    }

    /// The `/stats` entry of `channel` on `topic` (`depth`, `in_flight_count`,
    /// `message_count`, ...). `None` if the topic or the channel does not exist.
    pub fn channel_stats(&self, topic: &str, channel: &str) -> Option<Value> {
        let stats = self.topic_stats(topic)?;
        find_named(&stats["channels"], "channel_name", channel).cloned()
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
        let deadline = Deadline::after(self.options.start_timeout_value());
        let mut command = self.command();
        let data_dir = self.data_dir().to_path_buf();
        self.daemon
            .spawn(&mut command, Identity::DataPath(&data_dir));

        let expect_https = self.options.has_tls();
        let listening = self
            .daemon
            .wait_for_listeners(&command, expect_https, deadline);
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
                self.daemon.fail(
                    &command,
                    &format!("came back on {addrs:?} instead of {previous:?}"),
                );
            }
        }
        self.addrs = Some(addrs);
        self.daemon
            .wait_for_ping(&command, http, deadline, |response| {
                (response.status == 200 && response.text().trim() == "OK")
                    // `--tls-required=true`: the plain HTTP API refuses everything, but it is up.
                    || (response.status == 403 && response.text().contains("TLS_REQUIRED"))
            });
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
        let mut command = self.daemon.command();
        // Options first, so that the harness's own flags below win over an `arg` that repeats
        // them (Go's flag package keeps the last value).
        command
            .arg("--broadcast-address=127.0.0.1")
            .args(self.options.to_args())
            .arg(format!("--tcp-address={tcp}"))
            .arg(format!("--http-address={http}"))
            // Only used when TLS is configured; never the fixed default port 4152.
            .arg(format!("--https-address={https}"))
            .arg(format!("--data-path={}", self.data_dir().display()));
        command
    }
}

impl Drop for Nsqd {
    fn drop(&mut self) {
        let label = match self.addrs {
            Some(addrs) => format!("on tcp {}", addrs.tcp),
            None => "that did not start".to_owned(),
        };
        self.daemon.end_for_drop(&label);
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
}
