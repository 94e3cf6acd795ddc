//! `ConnConfig`: everything one connection needs, validated once by its builder.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use nsq_proto::IdentifyConfig;

use crate::config_error::ConfigError;
#[cfg(feature = "tls")]
use crate::tls::{ResolvedTls, TlsConfig};

mod by_name;
mod check;

pub use by_name::SetOutcome;
use check::parse_host;

/// go-nsq's default `dial_timeout`.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(1);
/// The default for the whole handshake (IDENTIFY, TLS, compression, AUTH). go-nsq has none;
/// nsqd's own auth lookups may take up to its 2 s connect plus 5 s request timeouts.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// go-nsq's default `write_timeout`; here it bounds a *stall*, not a whole write.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// nsqd's default `--max-msg-size`, the default cap on incoming messages.
pub const DEFAULT_MAX_MSG_SIZE: u32 = 1024 * 1024;

/// The user agent sent in IDENTIFY unless configured otherwise.
pub const USER_AGENT: &str = concat!("nsq-rs/", env!("CARGO_PKG_VERSION"));

/// Frames are never capped below this, so the IDENTIFY and AUTH replies always fit.
const MIN_FRAME_CAP: u32 = 64 * 1024;
/// The message header and frame type that a message frame adds to the body.
const MESSAGE_FRAME_OVERHEAD: u32 = 26 + 4;

/// The settings of one connection to nsqd.
///
/// Built with [`ConnConfig::builder`]; every value is checked there, so a bad value fails
/// before any connection is made. Option names follow go-nsq's (`dial_timeout`,
/// `heartbeat_interval`, `tls_v1`, `deflate_level`, ...), as do the defaults where go-nsq has
/// one, except that consumer-only options are not sent unless set (a bad value for one of them
/// fails a producer's handshake for nothing).
///
/// `Debug` never shows the AUTH secret.
///
/// ```
/// use std::time::Duration;
/// use nsq_conn::ConnConfig;
///
/// let config = ConnConfig::builder("127.0.0.1:4150")
///     .heartbeat_interval(Duration::from_secs(5))
///     .auth_secret("s3cret")
///     .build()?;
/// assert_eq!(config.dial_timeout(), Duration::from_secs(1));
/// assert!(!format!("{config:?}").contains("s3cret"));
/// # Ok::<(), nsq_conn::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct ConnConfig {
    address: String,
    host: String,
    dial_timeout: Duration,
    handshake_timeout: Duration,
    write_timeout: Duration,
    local_addr: Option<SocketAddr>,
    identify: IdentifyConfig,
    max_msg_size: u32,
    auth_secret: Option<AuthSecret>,
    check_tls_required: bool,
    #[cfg(feature = "tls")]
    tls: Option<ResolvedTls>,
}

impl ConnConfig {
    /// Starts a configuration for nsqd's TCP address, `host:port` (`[v6]:port` for IPv6
    /// literals). The name is resolved on every connect.
    pub fn builder(address: impl Into<String>) -> ConnConfigBuilder {
        ConnConfigBuilder::new(address.into())
    }

    /// The address as configured.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The host part of the address (brackets removed from IPv6 literals).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// How long resolving and connecting may take.
    pub fn dial_timeout(&self) -> Duration {
        self.dial_timeout
    }

    /// How long the whole handshake may take.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// How long pending bytes may wait without a single byte being written.
    pub fn write_timeout(&self) -> Duration {
        self.write_timeout
    }

    /// The local address to bind before connecting.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The IDENTIFY request this configuration sends.
    pub fn identify(&self) -> &IdentifyConfig {
        &self.identify
    }

    /// The heartbeat interval asked of nsqd; `None` when heartbeats are disabled.
    pub fn heartbeat_interval(&self) -> Option<Duration> {
        self.identify.heartbeat_interval
    }

    /// The largest message body accepted from nsqd.
    pub fn max_msg_size(&self) -> u32 {
        self.max_msg_size
    }

    /// The cap on one incoming frame's size field: the message size plus the message header,
    /// and never less than 64 KiB.
    pub fn max_frame_size(&self) -> u32 {
        self.max_msg_size
            .saturating_add(MESSAGE_FRAME_OVERHEAD)
            .max(MIN_FRAME_CAP)
    }

    /// Whether an AUTH secret is configured.
    pub fn has_auth_secret(&self) -> bool {
        self.auth_secret.is_some()
    }

    /// Whether a plaintext handshake ends by checking that nsqd does not require TLS; see
    /// [`ConnConfigBuilder::check_tls_required`].
    pub fn checks_tls_required(&self) -> bool {
        self.check_tls_required
    }

    pub(crate) fn auth_secret(&self) -> Option<&[u8]> {
        self.auth_secret.as_ref().map(|s| s.0.as_bytes())
    }

    #[cfg(feature = "tls")]
    pub(crate) fn tls(&self) -> Option<&ResolvedTls> {
        self.tls.as_ref()
    }
}

/// Builds a [`ConnConfig`]; see there for the defaults.
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ConnConfigBuilder {
    address: String,
    dial_timeout: Duration,
    handshake_timeout: Duration,
    write_timeout: Duration,
    local_addr: Option<SocketAddr>,
    identify: IdentifyConfig,
    max_msg_size: u32,
    auth_secret: Option<AuthSecret>,
    check_tls_required: bool,
    /// How TLS is set up; used only when `identify.tls_v1` (the switch) is on.
    #[cfg(feature = "tls")]
    tls: TlsConfig,
}

impl ConnConfigBuilder {
    fn new(address: String) -> Self {
        let hostname = os_hostname();
        let client_id = hostname.split('.').next().unwrap_or_default().to_owned();
        Self {
            address,
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            local_addr: None,
            identify: IdentifyConfig::new(client_id, hostname, USER_AGENT),
            max_msg_size: DEFAULT_MAX_MSG_SIZE,
            auth_secret: None,
            check_tls_required: false,
            #[cfg(feature = "tls")]
            tls: TlsConfig::new(),
        }
    }

    /// Ends a handshake that did not start TLS by checking that nsqd does not require it
    /// (off by default). nsqd started with `--tls-required` answers IDENTIFY without TLS as
    /// usual, then refuses every other command and closes the connection, so without the
    /// check the handshake succeeds and the first command fails. The check writes `NOP` and a
    /// second IDENTIFY (the same one, asking for no upgrade), and reads the reply: one round
    /// trip. A refused `NOP` fails the handshake with [`ConnError::TlsRequired`](crate::ConnError::TlsRequired).
    pub fn check_tls_required(mut self, check: bool) -> Self {
        self.check_tls_required = check;
        self
    }

    /// Replaces the address given to [`ConnConfig::builder`].
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = address.into();
        self
    }

    /// go-nsq `dial_timeout` (default 1 s): the limit on resolving the address and
    /// establishing the TCP connection.
    pub fn dial_timeout(mut self, timeout: Duration) -> Self {
        self.dial_timeout = timeout;
        self
    }

    /// The limit on the whole handshake, from the magic to the AUTH reply (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// go-nsq `write_timeout` (default 1 s, 100 ms to 5 min), with one difference: it fails
    /// the connection only when *no byte at all* could be written for this long while bytes
    /// were waiting, so a large command on a slow link is not cut off while it still moves.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// go-nsq `local_addr`: bind to this local address (port 0 for any) before connecting.
    pub fn local_addr(mut self, addr: SocketAddr) -> Self {
        self.local_addr = Some(addr);
        self
    }

    /// go-nsq `heartbeat_interval` (default 30 s): how often nsqd sends heartbeats. The
    /// connection fails when nothing arrives for twice this long. nsqd accepts 1 s up to its
    /// `--max-heartbeat-interval` (60 s by default); below 1 s is refused by
    /// [`build`](Self::build), above nsqd's maximum by nsqd.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.identify.heartbeat_interval = Some(interval);
        self
    }

    /// Disables heartbeats (go-nsq `heartbeat_interval` = -1): nsqd sends none and never
    /// times the connection out, and the connection has no idle timeout either.
    pub fn disable_heartbeats(mut self) -> Self {
        self.identify.heartbeat_interval = None;
        self
    }

    /// go-nsq `client_id` (default: the hostname up to its first dot).
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.identify.client_id = client_id.into();
        self
    }

    /// go-nsq `hostname` (default: the OS hostname).
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.identify.hostname = hostname.into();
        self
    }

    /// go-nsq `user_agent` (default [`USER_AGENT`], `nsq-rs/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.identify.user_agent = user_agent.into();
        self
    }

    /// go-nsq `output_buffer_size`, in bytes; consumer-only, not sent unless set. nsqd accepts
    /// -1 (no buffering), 0 (its default) or 64 up to its `--max-output-buffer-size`.
    pub fn output_buffer_size(mut self, bytes: i64) -> Self {
        self.identify.output_buffer_size = Some(bytes);
        self
    }

    /// go-nsq `output_buffer_timeout`; consumer-only, not sent unless set. Zero asks for
    /// nsqd's default; nsqd accepts its `--min-output-buffer-timeout` (25 ms) up to
    /// `--max-output-buffer-timeout` (30 s). Sent in whole milliseconds.
    pub fn output_buffer_timeout(mut self, timeout: Duration) -> Self {
        self.identify.output_buffer_timeout_ms = Some(millis(timeout));
        self
    }

    /// Disables nsqd's output buffer timeout (go-nsq `output_buffer_timeout` = -1).
    pub fn disable_output_buffer_timeout(mut self) -> Self {
        self.identify.output_buffer_timeout_ms = Some(-1);
        self
    }

    /// go-nsq `msg_timeout`; consumer-only, not sent unless set. Zero asks for nsqd's
    /// default; otherwise nsqd accepts 1 s up to its `--max-msg-timeout`.
    pub fn msg_timeout(mut self, timeout: Duration) -> Self {
        self.identify.msg_timeout = Some(timeout);
        self
    }

    /// go-nsq `sample_rate`, 0 to 99 percent; consumer-only, not sent unless set.
    pub fn sample_rate(mut self, percent: u8) -> Self {
        self.identify.sample_rate = Some(percent);
        self
    }

    /// go-nsq `max_msg_size` (default 1 MiB, nsqd's default): the largest message body
    /// accepted from nsqd. Incoming frames are always capped (at this plus the message header,
    /// and never below 64 KiB), so a wrong peer cannot make the client allocate at will.
    pub fn max_msg_size(mut self, bytes: u32) -> Self {
        self.max_msg_size = bytes;
        self
    }

    /// go-nsq `auth_secret`: sent with AUTH when nsqd's IDENTIFY reply says `auth_required`,
    /// and never otherwise. It never appears in `Debug` output or in logs.
    pub fn auth_secret(mut self, secret: impl Into<String>) -> Self {
        self.auth_secret = Some(AuthSecret(secret.into()));
        self
    }

    /// Removes the AUTH secret: nsqd that requires AUTH then refuses the connection.
    pub fn clear_auth_secret(mut self) -> Self {
        self.auth_secret = None;
        self
    }

    /// go-nsq `tls_v1` with its settings in one call: replaces the TLS settings with `tls` and
    /// turns TLS on ([`enable_tls`](Self::enable_tls)). If nsqd does not grant TLS the handshake
    /// fails; it never continues in plaintext.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_v1(self, tls: TlsConfig) -> Self {
        self.edit_tls(|_| tls).enable_tls(true)
    }

    /// go-nsq `tls_v1` as a switch (off by default): ask nsqd for TLS, set up as the TLS
    /// settings say ([`TlsConfig::new`]'s defaults unless changed). Turning it off keeps the
    /// settings, and turning it on again uses them.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn enable_tls(mut self, enabled: bool) -> Self {
        self.identify.tls_v1 = enabled;
        self
    }

    /// Changes the TLS settings without turning TLS on or off, field by field
    /// (`|tls| tls.min_version(TlsVersion::Tls13)`) or wholesale (`|_| TlsConfig::new()`).
    ///
    /// ```
    /// use nsq_conn::{ConnConfig, TlsConfig, TlsVersion};
    ///
    /// let builder = ConnConfig::builder("127.0.0.1:4150")
    ///     .tls_v1(TlsConfig::new().server_name("nsqd.internal"))
    ///     .edit_tls(|tls| tls.min_version(TlsVersion::Tls13));
    /// assert!(builder.is_tls_enabled());
    /// assert!(format!("{:?}", builder.tls_config()).contains("nsqd.internal"));
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn edit_tls(mut self, edit: impl FnOnce(TlsConfig) -> TlsConfig) -> Self {
        self.tls = edit(std::mem::take(&mut self.tls));
        self
    }

    /// Whether TLS is switched on (go-nsq `tls_v1`).
    pub fn is_tls_enabled(&self) -> bool {
        self.identify.tls_v1
    }

    /// The TLS settings, used when TLS is switched on.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_config(&self) -> &TlsConfig {
        &self.tls
    }

    /// go-nsq `snappy`: ask nsqd to compress the connection with snappy. Cannot be combined
    /// with deflate.
    #[cfg(feature = "snappy")]
    #[cfg_attr(docsrs, doc(cfg(feature = "snappy")))]
    pub fn snappy(mut self, enabled: bool) -> Self {
        self.identify.snappy = enabled;
        self
    }

    /// go-nsq `deflate`: ask nsqd to compress the connection with raw deflate. Cannot be
    /// combined with snappy.
    #[cfg(feature = "deflate")]
    #[cfg_attr(docsrs, doc(cfg(feature = "deflate")))]
    pub fn deflate(mut self, enabled: bool) -> Self {
        self.identify.deflate = enabled;
        self
    }

    /// go-nsq `deflate_level` (default 6, 1 to 9): the level of the client's compressor, also
    /// asked of nsqd (which caps it at its `--max-deflate-level`).
    #[cfg(feature = "deflate")]
    #[cfg_attr(docsrs, doc(cfg(feature = "deflate")))]
    pub fn deflate_level(mut self, level: u8) -> Self {
        self.identify.deflate_level = level;
        self
    }

    /// Checks every value and builds the configuration.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first bad value: an address without a port, a zero or
    /// out-of-range timeout, a heartbeat below 1 s, snappy and deflate together, a TLS
    /// certificate without its key, a TLS file that cannot be read, and so on.
    pub fn build(self) -> Result<ConnConfig, ConfigError> {
        self.check_values()?;
        let host = parse_host(&self.address)?;
        if self.identify.snappy && self.identify.deflate {
            return Err(ConfigError::BothCompressions);
        }
        #[cfg(feature = "tls")]
        self.tls.check()?;
        #[cfg(feature = "tls")]
        let tls = if self.identify.tls_v1 {
            Some(self.tls.resolve(&host)?)
        } else {
            None
        };
        Ok(ConnConfig {
            address: self.address,
            host,
            dial_timeout: self.dial_timeout,
            handshake_timeout: self.handshake_timeout,
            write_timeout: self.write_timeout,
            local_addr: self.local_addr,
            identify: self.identify,
            max_msg_size: self.max_msg_size,
            auth_secret: self.auth_secret,
            check_tls_required: self.check_tls_required,
            #[cfg(feature = "tls")]
            tls,
        })
    }
}

/// The AUTH secret, kept out of `Debug`.
#[derive(Clone)]
struct AuthSecret(String);

impl fmt::Debug for AuthSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The OS hostname, read without platform calls: the Linux kernel's view, then
/// `/etc/hostname`, then the `HOSTNAME` variable, else `localhost`.
fn os_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .chain(std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(b: ConnConfigBuilder) -> Result<ConnConfig, ConfigError> {
        b.build()
    }

    #[test]
    fn defaults_follow_go_nsq() {
        let config = ConnConfig::builder("localhost:4150").build().unwrap();
        assert_eq!(config.dial_timeout(), Duration::from_secs(1));
        assert_eq!(config.write_timeout(), Duration::from_secs(1));
        assert_eq!(config.heartbeat_interval(), Some(Duration::from_secs(30)));
        assert_eq!(config.identify().deflate_level, 6);
        assert!(config.identify().user_agent.starts_with("nsq-rs/"));
        assert!(!config.identify().hostname.is_empty());
        assert!(!config.identify().client_id.contains('.'));
        assert_eq!(config.host(), "localhost");
        assert_eq!(config.max_frame_size(), 1024 * 1024 + 30);
        let json = String::from_utf8(config.identify().to_json()).unwrap();
        for absent in ["sample_rate", "msg_timeout", "output_buffer"] {
            assert!(!json.contains(absent), "{absent} in {json}");
        }
    }

    #[test]
    fn addresses() {
        for (address, host) in [
            ("127.0.0.1:4150", "127.0.0.1"),
            ("[::1]:4150", "::1"),
            ("nsqd.example.com:4150", "nsqd.example.com"),
            ("[fe80::1]:1", "fe80::1"),
        ] {
            assert_eq!(ConnConfig::builder(address).build().unwrap().host(), host);
        }
        for address in [
            "nsqd",
            "nsqd:",
            ":4150",
            "::1:4150",
            "[::1:4150",
            "host:99999",
        ] {
            assert!(
                matches!(
                    ConnConfig::builder(address).build(),
                    Err(ConfigError::InvalidAddress { .. })
                ),
                "{address}"
            );
        }
    }

    #[test]
    fn ranges_are_checked_before_connecting() {
        let b = || ConnConfig::builder("127.0.0.1:4150");
        let bad = [
            b().heartbeat_interval(Duration::from_millis(999)),
            b().heartbeat_interval(Duration::from_micros(999_999)),
            b().dial_timeout(Duration::ZERO),
            b().handshake_timeout(Duration::ZERO),
            b().write_timeout(Duration::from_millis(99)),
            b().write_timeout(Duration::from_secs(301)),
            b().output_buffer_size(63),
            b().output_buffer_size(-2),
            b().msg_timeout(Duration::from_millis(999)),
            b().sample_rate(100),
            b().max_msg_size(0),
            b().auth_secret(""),
        ];
        for builder in bad {
            let dbg = format!("{builder:?}");
            let err = build(builder).unwrap_err();
            assert!(
                matches!(err, ConfigError::InvalidValue { .. }),
                "{dbg}: {err}"
            );
        }
        let err = build(b().heartbeat_interval(Duration::from_millis(999))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid heartbeat_interval 999ms: expected at least 1s (or heartbeats disabled)"
        );
        for good in [
            b().heartbeat_interval(Duration::from_secs(1)),
            b().disable_heartbeats(),
            b().output_buffer_size(-1),
            b().output_buffer_size(0),
            b().output_buffer_size(64),
            b().msg_timeout(Duration::ZERO),
            b().sample_rate(99),
            b().disable_output_buffer_timeout(),
        ] {
            build(good).unwrap();
        }
    }

    #[cfg(all(feature = "snappy", feature = "deflate"))]
    #[test]
    fn compressions_are_exclusive() {
        let err = ConnConfig::builder("127.0.0.1:4150")
            .snappy(true)
            .deflate(true)
            .build()
            .unwrap_err();
        assert!(matches!(err, ConfigError::BothCompressions));
        for level in [0, 10] {
            assert!(
                ConnConfig::builder("127.0.0.1:4150")
                    .deflate(true)
                    .deflate_level(level)
                    .build()
                    .is_err()
            );
        }
    }

    #[test]
    fn secret_is_redacted() {
        let builder = ConnConfig::builder("127.0.0.1:4150").auth_secret("hunter2");
        assert!(!format!("{builder:?}").contains("hunter2"));
        let config = builder.build().unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(format!("{config:?}").contains("<redacted>"));
        assert_eq!(config.auth_secret(), Some(&b"hunter2"[..]));
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_files_are_read_when_built() {
        let err = ConnConfig::builder("127.0.0.1:4150")
            .tls_v1(crate::TlsConfig::new().root_ca_file("/nonexistent/ca.pem"))
            .build()
            .unwrap_err();
        assert!(matches!(err, ConfigError::TlsFile { .. }), "{err}");
        let config = ConnConfig::builder("127.0.0.1:4150")
            .tls_v1(crate::TlsConfig::new())
            .build()
            .unwrap();
        assert!(config.identify().tls_v1);
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_cert_and_key_are_checked_as_a_pair_at_build() {
        let b = || ConnConfig::builder("127.0.0.1:4150");
        for (builder, missing) in [
            (b().edit_tls(|t| t.cert_file("/c.pem")), "tls_key"),
            (b().edit_tls(|t| t.key_file("/k.pem")), "tls_cert"),
            (
                b().tls_v1(crate::TlsConfig::new().cert_file("/c.pem")),
                "tls_key",
            ),
        ] {
            let err = builder.build().unwrap_err();
            assert!(matches!(err, ConfigError::Conflict { .. }), "{err}");
            assert_eq!(err.option(), missing, "{err}");
            assert!(err.to_string().contains(missing), "{err}");
        }
        // Either order gives the same pair; the files are then read (and here missing).
        for builder in [
            b().edit_tls(|t| t.cert_file("/c.pem").key_file("/k.pem")),
            b().edit_tls(|t| t.key_file("/k.pem").cert_file("/c.pem")),
        ] {
            assert!(builder.check_values().is_ok());
            assert!(builder.clone().build().is_ok(), "TLS is off: no file read");
            let err = builder.enable_tls(true).build().unwrap_err();
            assert!(matches!(err, ConfigError::TlsFile { .. }), "{err}");
            assert_eq!(err.option(), "tls_cert");
        }
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_switch_and_settings_are_separate() {
        use crate::{TlsConfig, TlsVersion};
        let settings = TlsConfig::new()
            .root_ca_file("/ca.pem")
            .server_name("nsqd.internal");
        let builder = ConnConfig::builder("127.0.0.1:4150").tls_v1(settings.clone());
        let edited = builder
            .clone()
            .edit_tls(|t| t.min_version(TlsVersion::Tls13));
        assert!(edited.is_tls_enabled());
        assert_eq!(
            format!("{:?}", edited.tls_config()),
            format!("{:?}", settings.clone().min_version(TlsVersion::Tls13))
        );
        let off = edited.enable_tls(false);
        assert!(!off.is_tls_enabled());
        let config = off.clone().build().unwrap();
        assert!(!config.identify().tls_v1 && config.tls().is_none());
        let on = off.enable_tls(true);
        assert!(format!("{:?}", on.tls_config()).contains("/ca.pem"));
        assert!(matches!(on.build(), Err(ConfigError::TlsFile { .. })));
        // Settings alone do not turn TLS on.
        let settings_only =
            ConnConfig::builder("127.0.0.1:4150").edit_tls(|t| t.root_ca_file("/ca.pem"));
        assert!(!settings_only.is_tls_enabled());
        assert!(!settings_only.build().unwrap().identify().tls_v1);
    }

    #[test]
    fn errors_name_the_option() {
        let b = || ConnConfig::builder("127.0.0.1:4150");
        let cases = [
            (
                b().heartbeat_interval(Duration::from_millis(10)),
                "heartbeat_interval",
            ),
            (b().write_timeout(Duration::ZERO), "write_timeout"),
            (b().sample_rate(100), "sample_rate"),
            (ConnConfig::builder("nsqd"), "address"),
        ];
        for (builder, option) in cases {
            assert_eq!(builder.check_values().unwrap_err().option(), option);
            assert_eq!(builder.build().unwrap_err().option(), option);
        }
        assert_eq!(ConfigError::UnknownOption("nope".into()).option(), "nope");
    }
}
