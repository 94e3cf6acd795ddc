//! Command-line options for the nsqd under test.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::Nsqlookupd;

/// How to run nsqd: a builder over its command-line flags.
///
/// Every setter is optional; anything not set keeps nsqd's own default. The listening
/// addresses and the data path are chosen by [`Nsqd`](crate::Nsqd) and cannot be set here.
///
/// ```no_run
/// use std::time::Duration;
/// use nsq_test_support::{Nsqd, NsqdOptions};
///
/// let nsqd = Nsqd::start_with(
///     NsqdOptions::new()
///         .max_msg_size(64)
///         .max_heartbeat_interval(Duration::from_secs(2))
///         .snappy(false),
/// );
/// # drop(nsqd);
/// ```
#[derive(Debug, Clone)]
#[must_use = "options do nothing until passed to `Nsqd::start_with`"]
pub struct NsqdOptions {
    max_msg_size: Option<u64>,
    max_body_size: Option<u64>,
    mem_queue_size: Option<u64>,
    max_heartbeat_interval: Option<Duration>,
    max_req_timeout: Option<Duration>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_root_ca_file: Option<PathBuf>,
    tls_client_auth_policy: Option<String>,
    tls_required: Option<String>,
    tls_min_version: Option<String>,
    auth_http_addresses: Vec<String>,
    lookupd_tcp_addresses: Vec<SocketAddr>,
    snappy: Option<bool>,
    deflate: Option<bool>,
    max_deflate_level: Option<u8>,
    extra_args: Vec<String>,
    start_timeout: Duration,
    data_in_memory: bool,
}

impl Default for NsqdOptions {
    fn default() -> Self {
        Self {
            max_msg_size: None,
            max_body_size: None,
            mem_queue_size: None,
            max_heartbeat_interval: None,
            max_req_timeout: None,
            tls_cert: None,
            tls_key: None,
            tls_root_ca_file: None,
            tls_client_auth_policy: None,
            tls_required: None,
            tls_min_version: None,
            auth_http_addresses: Vec::new(),
            lookupd_tcp_addresses: Vec::new(),
            snappy: None,
            deflate: None,
            max_deflate_level: None,
            extra_args: Vec::new(),
            start_timeout: Duration::from_secs(10),
            data_in_memory: false,
        }
    }
}

impl NsqdOptions {
    /// nsqd's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// `--max-msg-size`: the largest message body nsqd accepts, in bytes. Larger PUB bodies are
    /// refused with `E_BAD_MESSAGE`.
    pub fn max_msg_size(mut self, bytes: u64) -> Self {
        self.max_msg_size = Some(bytes);
        self
    }

    /// `--max-body-size`: the largest command body (a whole MPUB, say), in bytes.
    pub fn max_body_size(mut self, bytes: u64) -> Self {
        self.max_body_size = Some(bytes);
        self
    }

    /// `--mem-queue-size`: messages kept in memory per topic and channel before spilling to disk.
    pub fn mem_queue_size(mut self, messages: u64) -> Self {
        self.mem_queue_size = Some(messages);
        self
    }

    /// `--max-heartbeat-interval`: the longest heartbeat interval a client may negotiate.
    pub fn max_heartbeat_interval(mut self, interval: Duration) -> Self {
        self.max_heartbeat_interval = Some(interval);
        self
    }

    /// `--max-req-timeout`: the longest requeue delay, which also caps DPUB's defer time.
    pub fn max_req_timeout(mut self, timeout: Duration) -> Self {
        self.max_req_timeout = Some(timeout);
        self
    }

    /// `--tls-cert`: the server certificate (PEM). Together with [`tls_key`](Self::tls_key) this
    /// enables TLS negotiation and the HTTPS listener ([`Nsqd::https_addr`](crate::Nsqd::https_addr)).
    pub fn tls_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls_cert = Some(path.into());
        self
    }

    /// `--tls-key`: the server certificate's private key (PEM).
    pub fn tls_key(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls_key = Some(path.into());
        self
    }

    /// `--tls-root-ca-file`: the CA bundle used to verify client certificates.
    pub fn tls_root_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls_root_ca_file = Some(path.into());
        self
    }

    /// `--tls-client-auth-policy`: `"require"` or `"require-verify"`.
    ///
    /// nsqd then requires TLS everywhere unless [`tls_required`](Self::tls_required) says
    /// otherwise, and its plain HTTP API answers every request with `403 TLS_REQUIRED`, so
    /// [`Nsqd::stats`](crate::Nsqd::stats) and friends stop working. Add
    /// `.tls_required("tcp-https")` to keep them.
    pub fn tls_client_auth_policy(mut self, policy: &str) -> Self {
        self.tls_client_auth_policy = Some(policy.to_owned());
        self
    }

    /// `--tls-required`: `"true"` (TLS on TCP and HTTP) or `"tcp-https"` (TLS on TCP only; the
    /// plain HTTP API stays usable). `"false"` is nsqd's default.
    ///
    /// With `"true"` the plain HTTP API answers `403 TLS_REQUIRED`, so the HTTP helpers of
    /// [`Nsqd`](crate::Nsqd) panic; use `"tcp-https"` when a test needs them.
    pub fn tls_required(mut self, required: &str) -> Self {
        self.tls_required = Some(required.to_owned());
        self
    }

    /// `--tls-min-version`: `"tls1.2"`, `"tls1.3"`, ...
    pub fn tls_min_version(mut self, version: &str) -> Self {
        self.tls_min_version = Some(version.to_owned());
        self
    }

    /// `--auth-http-address`: an auth server (`host:port` or a URL). May be called more than
    /// once; each call adds one server.
    pub fn auth_http_address(mut self, address: impl Into<String>) -> Self {
        self.auth_http_addresses.push(address.into());
        self
    }

    /// `--lookupd-tcp-address`: an nsqlookupd's TCP address to register with. May be called
    /// more than once; each call adds one nsqlookupd. nsqd then announces itself as
    /// `127.0.0.1` (the harness always passes `--broadcast-address=127.0.0.1`) with its TCP and
    /// HTTP ports, and each of its topics and channels as they are created.
    ///
    /// The registration happens in the background after nsqd has started; see
    /// [`Nsqlookupd::wait_for_nsqd`](crate::Nsqlookupd::wait_for_nsqd).
    pub fn lookupd_tcp_address(mut self, address: SocketAddr) -> Self {
        self.lookupd_tcp_addresses.push(address);
        self
    }

    /// Registers with `lookupd`: [`lookupd_tcp_address`](Self::lookupd_tcp_address) with its
    /// TCP address.
    pub fn lookupd(self, lookupd: &Nsqlookupd) -> Self {
        self.lookupd_tcp_address(lookupd.tcp_addr())
    }

    /// `--snappy`: whether clients may negotiate snappy compression (nsqd's default: yes).
    pub fn snappy(mut self, enabled: bool) -> Self {
        self.snappy = Some(enabled);
        self
    }

    /// `--deflate`: whether clients may negotiate deflate compression (nsqd's default: yes).
    pub fn deflate(mut self, enabled: bool) -> Self {
        self.deflate = Some(enabled);
        self
    }

    /// `--max-deflate-level`: the highest deflate level a client may ask for (nsqd's default: 6).
    pub fn max_deflate_level(mut self, level: u8) -> Self {
        self.max_deflate_level = Some(level);
        self
    }

    /// Any other flag, passed as is, e.g. `"--msg-timeout=5s"`. Use the `--name=value` form:
    /// nsqd's boolean-like flags (`--tls-required`, `--snappy`) only take a value that way.
    ///
    /// Do not raise `--log-level` above `info`: the harness learns the listening ports from
    /// nsqd's `INFO` log lines. The listening addresses and `--data-path` belong to the harness.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// How long [`Nsqd::start_with`](crate::Nsqd::start_with) and
    /// [`Nsqd::restart`](crate::Nsqd::restart) wait for nsqd to answer `/ping` before they
    /// panic. Default: 10 seconds.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Keeps the data directory in memory (`/dev/shm`, where it exists), so that
    /// `--sync-every=1` costs no disk flush per message. The data still outlives a SIGKILL, which
    /// is what a test that kills nsqd needs; only a machine crash would lose it.
    pub fn data_in_memory(mut self, in_memory: bool) -> Self {
        self.data_in_memory = in_memory;
        self
    }

    /// Whether the data directory is to be kept in memory.
    pub(crate) fn data_in_memory_value(&self) -> bool {
        self.data_in_memory
    }

    /// The start timeout in effect.
    pub(crate) fn start_timeout_value(&self) -> Duration {
        self.start_timeout
    }

    /// Whether nsqd will open its HTTPS listener, which it does when it has a certificate.
    pub(crate) fn has_tls(&self) -> bool {
        self.tls_cert.is_some()
            || self
                .extra_args
                .iter()
                .any(|arg| arg.trim_start_matches('-').starts_with("tls-cert"))
    }

    /// The flags for these options, without addresses and data path.
    pub(crate) fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        let mut push = |name: &str, value: String| args.push(format!("--{name}={value}"));
        if let Some(bytes) = self.max_msg_size {
            push("max-msg-size", bytes.to_string());
        }
        if let Some(bytes) = self.max_body_size {
            push("max-body-size", bytes.to_string());
        }
        if let Some(messages) = self.mem_queue_size {
            push("mem-queue-size", messages.to_string());
        }
        if let Some(interval) = self.max_heartbeat_interval {
            push("max-heartbeat-interval", go_duration(interval));
        }
        if let Some(timeout) = self.max_req_timeout {
            push("max-req-timeout", go_duration(timeout));
        }
        if let Some(path) = &self.tls_cert {
            push("tls-cert", path.display().to_string());
        }
        if let Some(path) = &self.tls_key {
            push("tls-key", path.display().to_string());
        }
        if let Some(path) = &self.tls_root_ca_file {
            push("tls-root-ca-file", path.display().to_string());
        }
        if let Some(policy) = &self.tls_client_auth_policy {
            push("tls-client-auth-policy", policy.clone());
        }
        if let Some(required) = &self.tls_required {
            push("tls-required", required.clone());
        }
        if let Some(version) = &self.tls_min_version {
            push("tls-min-version", version.clone());
        }
        for address in &self.auth_http_addresses {
            push("auth-http-address", address.clone());
        }
        for address in &self.lookupd_tcp_addresses {
            push("lookupd-tcp-address", address.to_string());
        }
        if let Some(enabled) = self.snappy {
            push("snappy", enabled.to_string());
        }
        if let Some(enabled) = self.deflate {
            push("deflate", enabled.to_string());
        }
        if let Some(level) = self.max_deflate_level {
            push("max-deflate-level", level.to_string());
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// A duration in Go's `time.ParseDuration` syntax, exact to the nanosecond.
fn go_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos % 1_000_000 == 0 {
        format!("{}ms", nanos / 1_000_000)
    } else {
        format!("{nanos}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_add_no_flags() {
        assert!(NsqdOptions::new().to_args().is_empty());
        assert!(!NsqdOptions::new().has_tls());
    }

    #[test]
    fn every_setter_becomes_a_flag() {
        let args = NsqdOptions::new()
            .max_msg_size(10)
            .max_body_size(20)
            .mem_queue_size(0)
            .max_heartbeat_interval(Duration::from_secs(2))
            .max_req_timeout(Duration::from_millis(1500))
            .tls_cert("/c.pem")
            .tls_key("/k.pem")
            .tls_root_ca_file("/ca.pem")
            .tls_client_auth_policy("require-verify")
            .tls_required("tcp-https")
            .tls_min_version("tls1.2")
            .auth_http_address("127.0.0.1:1")
            .auth_http_address("http://127.0.0.1:2/auth")
            .lookupd_tcp_address("127.0.0.1:3".parse().unwrap())
            .lookupd_tcp_address("127.0.0.1:4".parse().unwrap())
            .snappy(false)
            .deflate(true)
            .max_deflate_level(9)
            .arg("--msg-timeout=5s")
            .to_args();
        assert_eq!(
            args,
            [
                "--max-msg-size=10",
                "--max-body-size=20",
                "--mem-queue-size=0",
                "--max-heartbeat-interval=2000ms",
                "--max-req-timeout=1500ms",
                "--tls-cert=/c.pem",
                "--tls-key=/k.pem",
                "--tls-root-ca-file=/ca.pem",
                "--tls-client-auth-policy=require-verify",
                "--tls-required=tcp-https",
                "--tls-min-version=tls1.2",
                "--auth-http-address=127.0.0.1:1",
                "--auth-http-address=http://127.0.0.1:2/auth",
                "--lookupd-tcp-address=127.0.0.1:3",
                "--lookupd-tcp-address=127.0.0.1:4",
                "--snappy=false",
                "--deflate=true",
                "--max-deflate-level=9",
                "--msg-timeout=5s",
            ]
        );
    }

    #[test]
    fn tls_is_detected_from_the_setter_or_a_raw_flag() {
        assert!(NsqdOptions::new().tls_cert("/c.pem").has_tls());
        assert!(NsqdOptions::new().arg("--tls-cert=/c.pem").has_tls());
        assert!(NsqdOptions::new().arg("-tls-cert=/c.pem").has_tls());
        assert!(!NsqdOptions::new().tls_min_version("tls1.2").has_tls());
    }

    #[test]
    fn durations_use_go_syntax() {
        assert_eq!(go_duration(Duration::from_secs(60)), "60000ms");
        assert_eq!(go_duration(Duration::from_millis(5)), "5ms");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1500000ns");
        assert_eq!(go_duration(Duration::ZERO), "0ms");
    }
}
