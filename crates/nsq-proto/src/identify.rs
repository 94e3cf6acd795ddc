//! IDENTIFY as data: the request body, the reply, and the upgrades they agree on
//! (docs/protocol.md, "Starting a connection").

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::NegotiationError;
use crate::frame::Response;

/// The default heartbeat interval nsqd uses and go-nsq asks for.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
/// The deflate level go-nsq asks for by default.
pub const DEFAULT_DEFLATE_LEVEL: u8 = 6;

/// What the client tells nsqd about itself and asks it to enable.
///
/// Feature negotiation is always requested. Consumer-only fields (`sample_rate`, `msg_timeout`,
/// the output buffer) are sent only when set: a bad value for one of them fails a producer's
/// handshake for nothing.
///
/// ```
/// use nsq_proto::IdentifyConfig;
///
/// let config = IdentifyConfig::new("app01", "app01.example.com", "nsq-rs/0.1.0");
/// let json = String::from_utf8(config.to_json()).unwrap();
/// assert!(json.contains(r#""feature_negotiation":true"#));
/// assert!(json.contains(r#""heartbeat_interval":30000"#));
/// assert!(!json.contains("sample_rate"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifyConfig {
    /// Shown in nsqd's stats; go-nsq uses the short hostname.
    pub client_id: String,
    /// The client's hostname.
    pub hostname: String,
    /// `<library>/<version>`.
    pub user_agent: String,
    /// How often nsqd sends heartbeats; `None` disables them (and nsqd's idle timeout). nsqd
    /// accepts 1 s up to its `--max-heartbeat-interval` (60 s by default).
    pub heartbeat_interval: Option<Duration>,
    /// Ask for TLS.
    pub tls_v1: bool,
    /// Ask for snappy compression.
    pub snappy: bool,
    /// Ask for deflate compression.
    pub deflate: bool,
    /// The deflate level asked of nsqd (and used by the client's own compressor); sent only with
    /// `deflate`.
    pub deflate_level: u8,
    /// Consumer output buffer size in bytes (nsqd: `-1` disables buffering, `0` is the default,
    /// otherwise 64 up to `--max-output-buffer-size`). Not sent when `None`.
    pub output_buffer_size: Option<i64>,
    /// Consumer output buffer timeout in milliseconds (nsqd: `-1` disables, `0` is the default,
    /// otherwise 25 up to 30000). Not sent when `None`.
    pub output_buffer_timeout_ms: Option<i64>,
    /// Consumer sample rate in percent, 0 to 99. Not sent when `None`.
    pub sample_rate: Option<u8>,
    /// Consumer in-flight timeout. Not sent when `None`.
    pub msg_timeout: Option<Duration>,
}

impl IdentifyConfig {
    /// A request with the given identity, 30 s heartbeats, and nothing else asked for.
    pub fn new(
        client_id: impl Into<String>,
        hostname: impl Into<String>,
        user_agent: impl Into<String>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            hostname: hostname.into(),
            user_agent: user_agent.into(),
            heartbeat_interval: Some(DEFAULT_HEARTBEAT_INTERVAL),
            tls_v1: false,
            snappy: false,
            deflate: false,
            deflate_level: DEFAULT_DEFLATE_LEVEL,
            output_buffer_size: None,
            output_buffer_timeout_ms: None,
            sample_rate: None,
            msg_timeout: None,
        }
    }

    /// The JSON body of the IDENTIFY command.
    pub fn to_json(&self) -> Vec<u8> {
        let wire = IdentifyBody {
            client_id: &self.client_id,
            hostname: &self.hostname,
            user_agent: &self.user_agent,
            feature_negotiation: true,
            heartbeat_interval: self
                .heartbeat_interval
                .map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            tls_v1: self.tls_v1,
            snappy: self.snappy,
            deflate: self.deflate,
            deflate_level: self.deflate.then_some(self.deflate_level),
            output_buffer_size: self.output_buffer_size,
            output_buffer_timeout: self.output_buffer_timeout_ms,
            sample_rate: self.sample_rate,
            msg_timeout: self
                .msg_timeout
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        };
        serde_json::to_vec(&wire).expect("strings, integers and booleans always serialise")
    }
}

#[derive(Serialize)]
struct IdentifyBody<'a> {
    client_id: &'a str,
    hostname: &'a str,
    user_agent: &'a str,
    feature_negotiation: bool,
    heartbeat_interval: i64,
    tls_v1: bool,
    snappy: bool,
    deflate: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    deflate_level: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_buffer_size: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_buffer_timeout: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sample_rate: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    msg_timeout: Option<u64>,
}

/// nsqd's reply to IDENTIFY.
///
/// Unknown fields are ignored and missing ones take their defaults, as the protocol asks of
/// clients. A plain `OK` reply (no feature negotiation) yields [`IdentifyResponse::plain`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct IdentifyResponse {
    /// Whether the reply was JSON, i.e. the server negotiates features.
    #[serde(skip)]
    pub negotiated: bool,
    /// The largest RDY count a consumer may send.
    pub max_rdy_count: i64,
    /// nsqd's version, e.g. `1.3.0`.
    pub version: Option<String>,
    /// The largest msg_timeout a client may ask for, in ms.
    pub max_msg_timeout: i64,
    /// This client's effective msg_timeout, in ms.
    pub msg_timeout: i64,
    /// TLS starts now.
    pub tls_v1: bool,
    /// Deflate starts now (after TLS, if any).
    pub deflate: bool,
    /// The level nsqd's compressor uses.
    pub deflate_level: i64,
    /// nsqd's `--max-deflate-level`.
    pub max_deflate_level: i64,
    /// Snappy starts now (after TLS, if any).
    pub snappy: bool,
    /// The effective sample rate.
    pub sample_rate: i64,
    /// The client must AUTH before publishing.
    pub auth_required: bool,
    /// The effective output buffer size.
    pub output_buffer_size: i64,
    /// The effective output buffer timeout, in ms.
    pub output_buffer_timeout: i64,
}

impl Default for IdentifyResponse {
    fn default() -> Self {
        Self::plain()
    }
}

impl IdentifyResponse {
    /// What a server that answers `OK` (no feature negotiation) implies: nothing enabled, and
    /// the protocol's default `max_rdy_count` of 2500.
    pub fn plain() -> Self {
        Self {
            negotiated: false,
            max_rdy_count: 2500,
            version: None,
            max_msg_timeout: 0,
            msg_timeout: 0,
            tls_v1: false,
            deflate: false,
            deflate_level: 0,
            max_deflate_level: 0,
            snappy: false,
            sample_rate: 0,
            auth_required: false,
            output_buffer_size: 0,
            output_buffer_timeout: 0,
        }
    }

    /// Interprets the response frame that answered IDENTIFY.
    ///
    /// # Errors
    ///
    /// [`NegotiationError::MalformedResponse`] when it is neither `OK` nor a JSON object.
    pub fn from_response(response: &Response) -> Result<Self, NegotiationError> {
        match response {
            Response::Ok => Ok(Self::plain()),
            other => Self::parse(other.payload()),
        }
    }

    /// Parses a JSON reply.
    ///
    /// # Errors
    ///
    /// [`NegotiationError::MalformedResponse`] when `json` is not a JSON object of the expected
    /// shape.
    pub fn parse(json: &[u8]) -> Result<Self, NegotiationError> {
        if json.first() != Some(&b'{') {
            return Err(NegotiationError::MalformedResponse(snippet(json)));
        }
        let mut response: Self = serde_json::from_slice(json)
            .map_err(|e| NegotiationError::MalformedResponse(e.to_string()))?;
        response.negotiated = true;
        Ok(response)
    }
}

/// nsqd's reply to a successful AUTH.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct AuthResponse {
    /// The identity the auth service returned.
    pub identity: String,
    /// A URL describing the identity.
    pub identity_url: String,
    /// How many authorisations the identity has.
    pub permission_count: i64,
}

impl AuthResponse {
    /// Parses the JSON reply to AUTH.
    ///
    /// # Errors
    ///
    /// [`NegotiationError::MalformedAuthResponse`] when it is not a JSON object.
    pub fn parse(json: &[u8]) -> Result<Self, NegotiationError> {
        if json.first() != Some(&b'{') {
            return Err(NegotiationError::MalformedAuthResponse(snippet(json)));
        }
        serde_json::from_slice(json)
            .map_err(|e| NegotiationError::MalformedAuthResponse(e.to_string()))
    }
}

/// A compression layer for the whole connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Snappy framing format.
    Snappy,
    /// Raw deflate; `level` is the client's own compressor level.
    Deflate {
        /// 1 (fastest) to 9 (smallest).
        level: u8,
    },
}

/// One step of the connection set-up after the IDENTIFY reply, in the order they must happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Upgrade {
    /// Start TLS; nsqd then sends `OK` through TLS.
    Tls,
    /// Start compressing; nsqd then sends `OK` through the compressed stream.
    Compress(Compression),
    /// Send AUTH with the secret; nsqd replies with the identity JSON.
    Auth,
}

/// The upgrades both sides agreed on.
///
/// ```
/// use nsq_proto::{Compression, IdentifyConfig, IdentifyResponse, Upgrade, UpgradePlan};
///
/// let mut request = IdentifyConfig::new("c", "h", "ua");
/// request.tls_v1 = true;
/// request.snappy = true;
/// let reply = IdentifyResponse::parse(br#"{"tls_v1":true,"snappy":true,"auth_required":true}"#).unwrap();
/// let plan = UpgradePlan::negotiate(&request, &reply, true).unwrap();
/// assert_eq!(
///     plan.steps().collect::<Vec<_>>(),
///     [Upgrade::Tls, Upgrade::Compress(Compression::Snappy), Upgrade::Auth]
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UpgradePlan {
    /// TLS first.
    pub tls: bool,
    /// Then at most one compression.
    pub compression: Option<Compression>,
    /// Then AUTH.
    pub auth: bool,
}

impl UpgradePlan {
    /// Decides the upgrades from what was asked and what nsqd answered.
    ///
    /// Compression that was asked for but not granted is simply absent (nsqd may run with
    /// `--snappy=false`); TLS that was asked for but not granted is an error, never a silent
    /// plaintext connection.
    ///
    /// # Errors
    ///
    /// A [`NegotiationError`] when nsqd enabled something not asked for, enabled both
    /// compressions, refused TLS, or requires AUTH while `have_auth_secret` is false.
    pub fn negotiate(
        request: &IdentifyConfig,
        response: &IdentifyResponse,
        have_auth_secret: bool,
    ) -> Result<Self, NegotiationError> {
        if response.tls_v1 && !request.tls_v1 {
            return Err(NegotiationError::NotRequested("TLS"));
        }
        if response.snappy && !request.snappy {
            return Err(NegotiationError::NotRequested("snappy"));
        }
        if response.deflate && !request.deflate {
            return Err(NegotiationError::NotRequested("deflate"));
        }
        if response.snappy && response.deflate {
            return Err(NegotiationError::BothCompressions);
        }
        if request.tls_v1 && !response.tls_v1 {
            return Err(NegotiationError::TlsNotGranted);
        }
        if response.auth_required && !have_auth_secret {
            return Err(NegotiationError::AuthSecretMissing);
        }
        let compression = if response.snappy {
            Some(Compression::Snappy)
        } else if response.deflate {
            Some(Compression::Deflate {
                level: request.deflate_level,
            })
        } else {
            None
        };
        Ok(Self {
            tls: response.tls_v1,
            compression,
            auth: response.auth_required,
        })
    }

    /// The steps in the order they must be carried out: TLS, compression, AUTH.
    pub fn steps(&self) -> impl Iterator<Item = Upgrade> + use<> {
        let tls = self.tls.then_some(Upgrade::Tls);
        let compress = self.compression.map(Upgrade::Compress);
        let auth = self.auth.then_some(Upgrade::Auth);
        tls.into_iter().chain(compress).chain(auth)
    }
}

fn snippet(bytes: &[u8]) -> String {
    let end = bytes.len().min(64);
    let mut text = String::from_utf8_lossy(&bytes[..end]).into_owned();
    if bytes.len() > end {
        text.push_str("...");
    }
    if text.is_empty() {
        text.push_str("(empty)");
    }
    text
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    const DEFAULT_REPLY: &[u8] = br#"{"max_rdy_count":2500,"version":"1.3.0","max_msg_timeout":900000,"msg_timeout":60000,"tls_v1":false,"deflate":false,"deflate_level":6,"max_deflate_level":6,"snappy":false,"sample_rate":0,"auth_required":false,"output_buffer_size":16384,"output_buffer_timeout":250,"topology_region":"","topology_zone":""}"#;

    fn request() -> IdentifyConfig {
        IdentifyConfig::new("c", "h", "ua")
    }

    #[test]
    fn parses_nsqd_default_reply() {
        let reply = IdentifyResponse::parse(DEFAULT_REPLY).unwrap();
        assert!(reply.negotiated);
        assert_eq!(reply.version.as_deref(), Some("1.3.0"));
        assert_eq!(reply.max_rdy_count, 2500);
        assert_eq!(reply.msg_timeout, 60000);
        assert_eq!(reply.output_buffer_size, 16384);
        assert!(!reply.auth_required);
        let plan = UpgradePlan::negotiate(&request(), &reply, false).unwrap();
        assert_eq!(plan.steps().count(), 0);
    }

    #[test]
    fn plain_ok_means_no_negotiation() {
        let reply = IdentifyResponse::from_response(&Response::Ok).unwrap();
        assert!(!reply.negotiated);
        assert_eq!(reply.max_rdy_count, 2500);
    }

    #[test]
    fn malformed_replies_are_errors() {
        for bad in [&b""[..], b"E", b"[1]", b"{\"tls_v1\":\"yes\"}", b"{"] {
            assert!(
                IdentifyResponse::from_response(&Response::Other(Bytes::copy_from_slice(bad)))
                    .is_err(),
                "{bad:?}"
            );
        }
        assert!(IdentifyResponse::from_response(&Response::Heartbeat).is_err());
    }

    #[test]
    fn negotiation_table() {
        struct Case {
            tls: bool,
            snappy: bool,
            deflate: bool,
            reply: &'static str,
            secret: bool,
            expect: Result<Vec<Upgrade>, NegotiationError>,
        }
        let deflate6 = Upgrade::Compress(Compression::Deflate { level: 6 });
        let cases = [
            Case {
                tls: false,
                snappy: false,
                deflate: false,
                reply: "{}",
                secret: false,
                expect: Ok(vec![]),
            },
            Case {
                tls: true,
                snappy: false,
                deflate: false,
                reply: r#"{"tls_v1":true}"#,
                secret: false,
                expect: Ok(vec![Upgrade::Tls]),
            },
            Case {
                tls: true,
                snappy: false,
                deflate: false,
                reply: r#"{"tls_v1":false}"#,
                secret: false,
                expect: Err(NegotiationError::TlsNotGranted),
            },
            Case {
                tls: false,
                snappy: false,
                deflate: false,
                reply: r#"{"tls_v1":true}"#,
                secret: false,
                expect: Err(NegotiationError::NotRequested("TLS")),
            },
            Case {
                tls: false,
                snappy: false,
                deflate: false,
                reply: r#"{"snappy":true}"#,
                secret: false,
                expect: Err(NegotiationError::NotRequested("snappy")),
            },
            Case {
                tls: false,
                snappy: false,
                deflate: false,
                reply: r#"{"deflate":true}"#,
                secret: false,
                expect: Err(NegotiationError::NotRequested("deflate")),
            },
            Case {
                tls: false,
                snappy: true,
                deflate: true,
                reply: r#"{"snappy":true,"deflate":true}"#,
                secret: false,
                expect: Err(NegotiationError::BothCompressions),
            },
            Case {
                tls: false,
                snappy: true,
                deflate: false,
                reply: r#"{"snappy":false}"#,
                secret: false,
                expect: Ok(vec![]),
            },
            Case {
                tls: true,
                snappy: false,
                deflate: true,
                reply: r#"{"tls_v1":true,"deflate":true}"#,
                secret: false,
                expect: Ok(vec![Upgrade::Tls, deflate6]),
            },
            Case {
                tls: false,
                snappy: false,
                deflate: false,
                reply: r#"{"auth_required":true}"#,
                secret: false,
                expect: Err(NegotiationError::AuthSecretMissing),
            },
            Case {
                tls: true,
                snappy: true,
                deflate: false,
                reply: r#"{"tls_v1":true,"snappy":true,"auth_required":true}"#,
                secret: true,
                expect: Ok(vec![
                    Upgrade::Tls,
                    Upgrade::Compress(Compression::Snappy),
                    Upgrade::Auth,
                ]),
            },
        ];
        for (i, case) in cases.into_iter().enumerate() {
            let mut req = request();
            req.tls_v1 = case.tls;
            req.snappy = case.snappy;
            req.deflate = case.deflate;
            let reply = IdentifyResponse::parse(case.reply.as_bytes()).unwrap();
            let got = UpgradePlan::negotiate(&req, &reply, case.secret)
                .map(|p| p.steps().collect::<Vec<_>>());
            assert_eq!(got, case.expect, "case {i}");
        }
    }

    #[test]
    fn identify_body_omits_unset_consumer_fields() {
        let mut req = request();
        let json: serde_json::Value = serde_json::from_slice(&req.to_json()).unwrap();
        for absent in [
            "sample_rate",
            "msg_timeout",
            "output_buffer_size",
            "output_buffer_timeout",
            "deflate_level",
        ] {
            assert!(json.get(absent).is_none(), "{absent}");
        }
        assert_eq!(json["heartbeat_interval"], 30000);
        req.heartbeat_interval = None;
        req.deflate = true;
        req.deflate_level = 9;
        req.msg_timeout = Some(Duration::from_secs(2));
        let json: serde_json::Value = serde_json::from_slice(&req.to_json()).unwrap();
        assert_eq!(json["heartbeat_interval"], -1);
        assert_eq!(json["deflate_level"], 9);
        assert_eq!(json["msg_timeout"], 2000);
    }

    #[test]
    fn auth_reply() {
        let auth = AuthResponse::parse(
            br#"{"identity":"alice","identity_url":"http://x/alice","permission_count":1}"#,
        )
        .unwrap();
        assert_eq!(auth.identity, "alice");
        assert_eq!(auth.permission_count, 1);
        assert!(AuthResponse::parse(b"OK").is_err());
    }
}
