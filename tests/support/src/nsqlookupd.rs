//! [`Nsqlookupd`]: a real nsqlookupd process on ephemeral loopback ports, for integration tests.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{self, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::daemon::{Daemon, Deadline, Identity};
use crate::http::{self, HttpResponse};
use crate::{NsqTool, Nsqd};

/// How long [`Nsqlookupd::wait_for_nsqd`] and [`Nsqlookupd::wait_for_topic`] wait. nsqd
/// registers at once when it starts, but it pings each nsqlookupd only every 15 seconds: after
/// an nsqlookupd restart one ping finds the old connection dead and the next one reconnects,
/// up to 30 seconds later.
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(45);

/// How to run nsqlookupd: a builder over the few flags tests need.
///
/// ```no_run
/// use std::time::Duration;
/// use nsq_test_support::{Nsqlookupd, NsqlookupdOptions};
///
/// let lookupd = Nsqlookupd::start_with(
///     NsqlookupdOptions::new().tombstone_lifetime(Duration::from_secs(5)),
/// );
/// # drop(lookupd);
/// ```
#[derive(Debug, Clone)]
#[must_use = "options do nothing until passed to `Nsqlookupd::start_with`"]
pub struct NsqlookupdOptions {
    tombstone_lifetime: Option<Duration>,
    inactive_producer_timeout: Option<Duration>,
    extra_args: Vec<String>,
    start_timeout: Duration,
}

impl Default for NsqlookupdOptions {
    fn default() -> Self {
        Self {
            tombstone_lifetime: None,
            inactive_producer_timeout: None,
            extra_args: Vec::new(),
            start_timeout: Duration::from_secs(10),
        }
    }
}

impl NsqlookupdOptions {
    /// nsqlookupd's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// `--tombstone-lifetime`: how long a topic stays tombstoned on a node (default 45 s).
    pub fn tombstone_lifetime(mut self, lifetime: Duration) -> Self {
        self.tombstone_lifetime = Some(lifetime);
        self
    }

    /// `--inactive-producer-timeout`: how long an nsqd stays listed after its last ping
    /// (default 300 s).
    pub fn inactive_producer_timeout(mut self, timeout: Duration) -> Self {
        self.inactive_producer_timeout = Some(timeout);
        self
    }

    /// Any other flag, passed as is, e.g. `"--log-level=debug"`. The listening addresses,
    /// `--broadcast-address` and `--log-prefix` belong to the harness.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// How long [`Nsqlookupd::start_with`] and [`Nsqlookupd::restart`] wait for nsqlookupd to
    /// answer `/ping` before they panic. Default: 10 seconds.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(lifetime) = self.tombstone_lifetime {
            args.push(format!("--tombstone-lifetime={}ms", lifetime.as_millis()));
        }
        if let Some(timeout) = self.inactive_producer_timeout {
            args.push(format!(
                "--inactive-producer-timeout={}ms",
                timeout.as_millis()
            ));
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// A real nsqlookupd v1.3.0, started on ephemeral ports of 127.0.0.1.
///
/// The binary is [`NsqTool::Nsqlookupd`]: `$NSQLOOKUPD`, else
/// `<workspace>/target/nsqd/bin/nsqlookupd` (what `cargo xtask nsqd` installs), else
/// `nsqlookupd` on `PATH`; each candidate must report v1.3.0. Like [`Nsqd`], the harness reads
/// the listening ports from the log, returns once `GET /ping` answers, is blocking (usable from
/// `#[tokio::test]`), records the process in `<workspace>/target/nsqd/pids/<pid>` while it runs,
/// kills it on drop, and prints its log when a test panics.
///
/// Register an nsqd with [`NsqdOptions::lookupd`](crate::NsqdOptions::lookupd):
///
/// ```no_run
/// use nsq_test_support::{Nsqd, NsqdOptions, Nsqlookupd};
///
/// let lookupd = Nsqlookupd::start();
/// let nsqd = Nsqd::start_with(NsqdOptions::new().lookupd(&lookupd));
/// nsqd.create_topic("orders");
/// lookupd.wait_for_topic(&nsqd, "orders");
/// lookupd.tombstone_topic("orders", &nsqd);
/// ```
pub struct Nsqlookupd {
    daemon: Daemon,
    options: NsqlookupdOptions,
    /// `--log-prefix=...`: an argument no other process has, for the pid file.
    marker: String,
    /// TCP and HTTP; `None` only until the first start has read them.
    addrs: Option<(SocketAddr, SocketAddr)>,
}

impl Nsqlookupd {
    /// Starts nsqlookupd with its default options.
    ///
    /// # Panics
    ///
    /// When nsqlookupd cannot be found or does not start; see [`Nsqlookupd::start_with`].
    pub fn start() -> Self {
        Self::start_with(NsqlookupdOptions::new())
    }

    /// Starts nsqlookupd with `options` and waits until it answers `GET /ping`.
    ///
    /// # Panics
    ///
    /// When no nsqlookupd v1.3.0 binary is found (the message says how to get one), when it
    /// exits during start-up, or when it does not answer within
    /// [`NsqlookupdOptions::start_timeout`]. The message includes the command line and log.
    pub fn start_with(options: NsqlookupdOptions) -> Self {
        static STARTED: AtomicU32 = AtomicU32::new(0);
        let sequence = STARTED.fetch_add(1, Ordering::Relaxed);
        let mut lookupd = Self {
            daemon: Daemon::new("nsqlookupd", NsqTool::Nsqlookupd.path()),
            options,
            marker: format!("--log-prefix=[nsqlookupd-{}-{sequence}] ", process::id()),
            addrs: None,
        };
        // A panic in here unwinds through `lookupd`'s drop, which kills the process.
        lookupd.launch();
        lookupd
    }

    /// The address nsqd registers with (`--lookupd-tcp-address`).
    pub fn tcp_addr(&self) -> SocketAddr {
        self.addrs().0
    }

    /// The address of the HTTP API, which clients query (`/lookup`, `/nodes`).
    pub fn http_addr(&self) -> SocketAddr {
        self.addrs().1
    }

    /// The nsqlookupd binary in use.
    pub fn binary(&self) -> &Path {
        self.daemon.binary()
    }

    /// The process id, while nsqlookupd runs.
    pub fn pid(&self) -> Option<u32> {
        self.daemon.pid()
    }

    /// Whether the process is running: `false` after [`stop`](Self::stop) and after it exited
    /// on its own.
    pub fn is_running(&self) -> bool {
        self.daemon.is_running()
    }

    /// The last lines (up to 200) of its log, across restarts.
    pub fn log_tail(&self) -> String {
        self.daemon.log_tail()
    }

    /// Kills nsqlookupd (SIGKILL) and waits for it; every registration is lost. The ports are
    /// kept for [`restart`](Self::restart). Does nothing if it is not running.
    pub fn stop(&mut self) {
        self.daemon.kill();
    }

    /// Freezes nsqlookupd (SIGSTOP to the process this value started): connections to it are
    /// accepted by the kernel but nothing is answered. [`resume`](Self::resume) thaws it.
    ///
    /// # Panics
    ///
    /// When it is not running or the signal cannot be sent.
    pub fn pause(&self) {
        self.daemon.pause();
    }

    /// Thaws nsqlookupd after [`pause`](Self::pause) (SIGCONT).
    ///
    /// # Panics
    ///
    /// When it is not running or the signal cannot be sent.
    pub fn resume(&self) {
        self.daemon.resume();
    }

    /// Starts nsqlookupd again on the same TCP and HTTP ports (killing it first if it runs) and
    /// waits until it answers `GET /ping`. It starts empty: each registered nsqd registers again
    /// once its pings (every 15 seconds) notice, which takes up to 30 seconds.
    ///
    /// # Panics
    ///
    /// Like [`Nsqlookupd::start_with`], and also when a port has been taken meanwhile.
    pub fn restart(&mut self) {
        self.stop();
        self.daemon.note("restarting nsqlookupd");
        self.launch();
    }

    /// Sends one request to the HTTP API; `target` is the path and query, e.g. `"/topics"`.
    ///
    /// # Panics
    ///
    /// When the request fails at the HTTP level. An error status is returned, not a panic.
    pub fn http_request(&self, method: &str, target: &str, body: &[u8]) -> HttpResponse {
        http::request(self.http_addr(), method, target, body).unwrap_or_else(|err| {
            panic!(
                "HTTP {method} {target} to nsqlookupd at {} failed: {err} (running: {})",
                self.http_addr(),
                self.is_running()
            )
        })
    }

    /// `GET /nodes`: the `producers` array, one object per registered nsqd with
    /// `broadcast_address`, `hostname`, `remote_address`, `tcp_port`, `http_port`, `version`,
    /// `topics` and `tombstones` (whether each of those topics is tombstoned on that node).
    ///
    /// # Panics
    ///
    /// When nsqlookupd does not answer with such a document.
    pub fn nodes(&self) -> Vec<Value> {
        let response = self.http_request("GET", "/nodes", b"");
        assert!(response.is_success(), "GET /nodes failed: {response:?}");
        let document: Value = serde_json::from_slice(&response.body)
            .unwrap_or_else(|err| panic!("GET /nodes returned invalid JSON ({err}): {response:?}"));
        match &document["producers"] {
            Value::Array(nodes) => nodes.clone(),
            Value::Null => Vec::new(),
            other => panic!("GET /nodes: `producers` is not a list: {other}"),
        }
    }

    /// The `/nodes` entry of `nsqd`, if it is registered.
    pub fn node(&self, nsqd: &Nsqd) -> Option<Value> {
        find_node(&self.nodes(), nsqd.tcp_addr().port())
    }

    /// Waits until `nsqd` is registered and returns its `/nodes` entry.
    ///
    /// # Panics
    ///
    /// When it is not within 45 seconds.
    pub fn wait_for_nsqd(&self, nsqd: &Nsqd) -> Value {
        self.wait_for_node(nsqd, "to register", |_| true)
    }

    /// Waits until `nsqd` has registered `topic`.
    ///
    /// # Panics
    ///
    /// When it has not within 45 seconds.
    pub fn wait_for_topic(&self, nsqd: &Nsqd, topic: &str) {
        self.wait_for_node(nsqd, &format!("to register topic {topic:?}"), |node| {
            topic_index(node, topic).is_some()
        });
    }

    /// Whether `topic` is tombstoned on `nsqd` according to `/nodes`; `None` when that nsqd has
    /// not registered the topic (or is not registered at all).
    pub fn is_tombstoned(&self, nsqd: &Nsqd, topic: &str) -> Option<bool> {
        let node = self.node(nsqd)?;
        let index = topic_index(&node, topic)?;
        node["tombstones"][index].as_bool()
    }

    /// `POST /topic/tombstone?topic=...&node=127.0.0.1:<http port>`: marks `topic` as
    /// tombstoned on `nsqd`, so that nsqlookupd leaves that nsqd out of `/lookup` answers for the
    /// topic for the tombstone lifetime.
    ///
    /// # Panics
    ///
    /// When nsqlookupd refuses.
    pub fn tombstone_topic(&self, topic: &str, nsqd: &Nsqd) {
        let target = format!(
            "/topic/tombstone?topic={}&node={}",
            http::encode_query_value(topic),
            http::encode_query_value(&format!("127.0.0.1:{}", nsqd.http_addr().port()))
        );
        let response = self.http_request("POST", &target, b"");
        assert!(response.is_success(), "POST {target} failed: {response:?}");
    }

    fn wait_for_node(&self, nsqd: &Nsqd, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + REGISTRATION_TIMEOUT;
        loop {
            let nodes = self.nodes();
            if let Some(node) = find_node(&nodes, nsqd.tcp_addr().port()) {
                if done(&node) {
                    return node;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the nsqd on tcp {} did not manage {what} with the nsqlookupd on {} within \
                 {REGISTRATION_TIMEOUT:?}; its nodes: {nodes:?}",
                nsqd.tcp_addr(),
                self.tcp_addr(),
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn addrs(&self) -> (SocketAddr, SocketAddr) {
        self.addrs
            .expect("the addresses are known once `start_with` has returned")
    }

    /// Spawns nsqlookupd (on the known ports after the first start) and waits until it is
    /// ready.
    fn launch(&mut self) {
        let deadline = Deadline::after(self.options.start_timeout);
        let mut command = self.command();
        let marker = self.marker.clone();
        self.daemon.spawn(&mut command, Identity::Marker(&marker));
        let listening = self.daemon.wait_for_listeners(&command, false, deadline);
        let (Some(tcp), Some(http)) = (listening.tcp, listening.http) else {
            unreachable!("wait_for_listeners returns both addresses");
        };
        if let Some(previous) = self.addrs {
            if previous != (tcp, http) {
                self.daemon.fail(
                    &command,
                    &format!("came back on {:?} instead of {previous:?}", (tcp, http)),
                );
            }
        }
        self.addrs = Some((tcp, http));
        self.daemon
            .wait_for_ping(&command, http, deadline, |response| {
                response.status == 200 && response.text().trim() == "OK"
            });
    }

    fn command(&self) -> Command {
        let (tcp, http) = self.addrs.map_or_else(
            || ("127.0.0.1:0".to_owned(), "127.0.0.1:0".to_owned()),
            |(tcp, http)| (tcp.to_string(), http.to_string()),
        );
        let mut command = self.daemon.command();
        // Options first, so that the harness's own flags win (Go's flag package keeps the last).
        command
            .args(self.options.to_args())
            .arg("--broadcast-address=127.0.0.1")
            .arg(format!("--tcp-address={tcp}"))
            .arg(format!("--http-address={http}"))
            .arg(&self.marker);
        command
    }
}

impl Drop for Nsqlookupd {
    fn drop(&mut self) {
        let label = match self.addrs {
            Some((tcp, _)) => format!("on tcp {tcp}"),
            None => "that did not start".to_owned(),
        };
        self.daemon.end_for_drop(&label);
    }
}

impl fmt::Debug for Nsqlookupd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nsqlookupd")
            .field("pid", &self.pid())
            .field("tcp_addr", &self.addrs.map(|(tcp, _)| tcp))
            .field("http_addr", &self.addrs.map(|(_, http)| http))
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The `/nodes` entry of the nsqd at `127.0.0.1:<tcp_port>`.
fn find_node(nodes: &[Value], tcp_port: u16) -> Option<Value> {
    nodes
        .iter()
        .find(|node| {
            node["broadcast_address"] == "127.0.0.1" && node["tcp_port"] == u64::from(tcp_port)
        })
        .cloned()
}

/// Where `topic` is in a node's `topics` (and so its flag in `tombstones`).
fn topic_index(node: &Value, topic: &str) -> Option<usize> {
    node["topics"]
        .as_array()?
        .iter()
        .position(|name| name == topic)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn options_become_flags() {
        assert!(NsqlookupdOptions::new().to_args().is_empty());
        let args = NsqlookupdOptions::new()
            .tombstone_lifetime(Duration::from_secs(5))
            .inactive_producer_timeout(Duration::from_millis(1500))
            .arg("--log-level=debug")
            .to_args();
        assert_eq!(
            args,
            [
                "--tombstone-lifetime=5000ms",
                "--inactive-producer-timeout=1500ms",
                "--log-level=debug",
            ]
        );
    }

    #[test]
    fn finds_a_node_and_its_topics() {
        let nodes = json!([
            {"broadcast_address": "127.0.0.1", "tcp_port": 4001, "topics": ["a", "b"],
             "tombstones": [false, true]},
            {"broadcast_address": "10.0.0.1", "tcp_port": 4002, "topics": []},
        ]);
        let nodes = nodes.as_array().unwrap();
        let node = find_node(nodes, 4001).unwrap();
        assert_eq!(topic_index(&node, "b"), Some(1));
        assert_eq!(topic_index(&node, "c"), None);
        assert!(find_node(nodes, 4002).is_none(), "another host");
        assert!(find_node(nodes, 4003).is_none());
        assert_eq!(topic_index(&json!({"topics": null}), "a"), None);
    }
}
