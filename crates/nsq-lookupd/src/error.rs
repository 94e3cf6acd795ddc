//! [`LookupdError`]: why a request to one nsqlookupd failed, naming that nsqlookupd.

use std::error::Error as StdError;
use std::time::Duration;

/// Why a request to one nsqlookupd failed. Each variant names the nsqlookupd address it was
/// given; those about a request name the request too (`GET /nodes`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LookupdError {
    /// The address is not `host:port` or `http://host:port`.
    #[error("nsqlookupd address {lookupd:?} is not usable: {reason}")]
    InvalidAddress {
        /// The address as given.
        lookupd: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made.
    #[error("nsqlookupd {lookupd} unreachable: {}", chain(.source))]
    Connect {
        /// The address as given.
        lookupd: String,
        /// The connection error.
        source: hyper_util::client::legacy::Error,
    },
    /// What answered is not an HTTP server: most likely nsqd's TCP port (nsqd answers a
    /// request it cannot read with a binary `E_BAD_PROTOCOL` frame).
    #[error(
        "{lookupd} did not answer GET {path} in HTTP: this looks like nsqd's TCP port; give \
         nsqlookupd's HTTP address (default port 4161) ({})", chain(.source)
    )]
    NotHttp {
        /// The address as given.
        lookupd: String,
        /// The request's path.
        path: &'static str,
        /// hyper's error.
        source: hyper_util::client::legacy::Error,
    },
    /// The address is nsqd's HTTP API: it answers `/ping` but not nsqlookupd's requests.
    #[error(
        "{lookupd} is an nsqd HTTP address, not nsqlookupd's: it answers /ping but GET {path} \
         with HTTP 404; give nsqlookupd's HTTP address (default port 4161)"
    )]
    NsqdHttp {
        /// The address as given.
        lookupd: String,
        /// The request nsqd did not know.
        path: &'static str,
    },
    /// The connection was made but the request failed before an answer arrived.
    #[error("GET {path} to nsqlookupd at {lookupd} failed: {}", chain(.source))]
    Request {
        /// The address as given.
        lookupd: String,
        /// The request's path.
        path: &'static str,
        /// The request error.
        source: hyper_util::client::legacy::Error,
    },
    /// No complete answer arrived in time.
    #[error("nsqlookupd at {lookupd} did not answer GET {path} within {timeout:?}")]
    TimedOut {
        /// The address as given.
        lookupd: String,
        /// The request's path.
        path: &'static str,
        /// The time allowed.
        timeout: Duration,
    },
    /// The answer's status was not 200.
    #[error("nsqlookupd at {lookupd} answered GET {path} with HTTP {status}: {body}")]
    Status {
        /// The address as given.
        lookupd: String,
        /// The request's path.
        path: &'static str,
        /// The HTTP status code.
        status: u16,
        /// The start of the body, e.g. `{"message":"NOT_FOUND"}`.
        body: String,
    },
    /// The body could not be read, or was larger than 16 MiB.
    #[error("cannot read the GET {path} answer of nsqlookupd at {lookupd}: {source}")]
    Body {
        /// The address as given.
        lookupd: String,
        /// The request's path.
        path: &'static str,
        /// The read error.
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The body was not the JSON this request expects (a node list for `/nodes`, a producer
    /// list for `/lookup`).
    #[error("nsqlookupd at {lookupd} answered GET {path} with an unexpected body: {source}")]
    Json {
        /// The address as given.
        lookupd: String,
        /// The request's path.
        path: &'static str,
        /// The parse error.
        source: serde_json::Error,
    },
}

impl LookupdError {
    /// The nsqlookupd address the failed request was given.
    pub fn lookupd(&self) -> &str {
        match self {
            Self::InvalidAddress { lookupd, .. }
            | Self::Connect { lookupd, .. }
            | Self::NotHttp { lookupd, .. }
            | Self::NsqdHttp { lookupd, .. }
            | Self::Request { lookupd, .. }
            | Self::TimedOut { lookupd, .. }
            | Self::Status { lookupd, .. }
            | Self::Body { lookupd, .. }
            | Self::Json { lookupd, .. } => lookupd,
        }
    }
}

/// An error and its causes, which hyper's own messages ("client error (Connect)") need.
fn chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
