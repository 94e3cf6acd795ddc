//! `ConnError`: everything that can end a connection or stop it from being made.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use nsq_proto::{DecodeError, EncodeError, Frame, NegotiationError, ServerError};

/// Why a connection to nsqd could not be made, or why it ended.
///
/// It is `Clone` (I/O errors are kept behind an [`Arc`]) because one failure is usually handed
/// to every request that was waiting on the connection.
///
/// `Display` includes the detail of the cause (nsqd's text, the TLS alert, the decode error), so
/// logging the error alone says what went wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    /// The address could not be resolved, or resolved to no usable address.
    #[error("could not resolve {address}: {source}")]
    Resolve {
        /// The configured address.
        address: String,
        /// What the resolver said.
        source: Arc<io::Error>,
    },
    /// The TCP connection was refused or failed (the last address tried is reported).
    #[error("could not connect to {address}: {source}")]
    Connect {
        /// The resolved address that was tried last.
        address: SocketAddr,
        /// The error from `connect`.
        source: Arc<io::Error>,
    },
    /// Resolving and connecting took longer than the dial timeout.
    #[error("connecting to {address} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The configured address.
        address: String,
        /// The dial timeout.
        timeout: Duration,
    },
    /// The handshake (magic, IDENTIFY, upgrades, AUTH) did not finish within the handshake
    /// timeout.
    #[error("handshake with nsqd timed out after {0:?}")]
    HandshakeTimeout(Duration),
    /// Reading from or writing to the connection failed (a corrupt snappy or deflate stream
    /// included).
    #[error("I/O error on the nsqd connection: {0}")]
    Io(Arc<io::Error>),
    /// The TLS handshake failed (an untrusted certificate, a name mismatch, a refused client
    /// certificate...).
    #[error("TLS handshake with nsqd failed: {}", describe_tls(.0))]
    Tls(Arc<io::Error>),
    /// nsqd sent bytes between its IDENTIFY reply and the start of TLS; they cannot be
    /// plaintext meant for the client, nor ciphertext meant for the TLS layer.
    #[error("nsqd sent {len} unexpected bytes before the TLS handshake")]
    BytesBeforeTls {
        /// How many bytes were waiting.
        len: usize,
    },
    /// The IDENTIFY reply or the upgrades it grants are not acceptable (TLS not granted,
    /// AUTH required without a secret, a feature enabled that was not asked for...).
    #[error(transparent)]
    Negotiation(NegotiationError),
    /// nsqd answered IDENTIFY, or an upgrade, with an error frame.
    #[error("nsqd rejected IDENTIFY: {0}")]
    IdentifyRejected(ServerError),
    /// The server refused the protocol magic (`E_BAD_PROTOCOL`): it does not speak nsqd's
    /// protocol V2, so the address is probably not an nsqd TCP port.
    #[error(
        "the server at {address} rejected the protocol magic ({error}): is it the TCP port of an nsqd?"
    )]
    ProtocolRejected {
        /// The configured address.
        address: String,
        /// The server's error.
        error: ServerError,
    },
    /// nsqd requires TLS (`--tls-required`) and the connection did not ask for it: nsqd
    /// refuses every command but IDENTIFY.
    #[error("nsqd at {address} requires TLS: set tls_v1")]
    TlsRequired {
        /// The configured address.
        address: String,
        /// nsqd's refusal.
        error: ServerError,
    },
    /// nsqd answered AUTH with an error frame.
    #[error("nsqd rejected AUTH: {0}")]
    AuthRejected(ServerError),
    /// Nothing at all arrived from nsqd for twice the negotiated heartbeat interval.
    #[error("nothing received from nsqd for {0:?} (twice the heartbeat interval)")]
    HeartbeatTimeout(Duration),
    /// Bytes were waiting to be written and none could be written for the write timeout.
    #[error("no bytes could be written to nsqd for {0:?}")]
    WriteTimeout(Duration),
    /// The frame stream from nsqd is corrupt, or it is not nsqd's TCP port at all.
    #[error(transparent)]
    Decode(DecodeError),
    /// A command could not be encoded.
    #[error(transparent)]
    Encode(EncodeError),
    /// A frame arrived that does not fit the state of the conversation.
    #[error("expected {expected} from nsqd, got {frame:?}")]
    UnexpectedFrame {
        /// What was expected.
        expected: &'static str,
        /// What arrived.
        frame: Frame,
    },
    /// nsqd closed the connection, or it was closed locally.
    #[error("the nsqd connection is closed")]
    Closed,
}

impl ConnError {
    /// nsqd's error frame, for [`IdentifyRejected`](Self::IdentifyRejected),
    /// [`AuthRejected`](Self::AuthRejected), [`ProtocolRejected`](Self::ProtocolRejected) and
    /// [`TlsRequired`](Self::TlsRequired).
    pub fn server_error(&self) -> Option<&ServerError> {
        match self {
            Self::IdentifyRejected(err)
            | Self::AuthRejected(err)
            | Self::ProtocolRejected { error: err, .. }
            | Self::TlsRequired { error: err, .. } => Some(err),
            _ => None,
        }
    }

    /// Whether a timeout (dial, handshake, heartbeat or write) ended the connection.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Self::ConnectTimeout { .. }
                | Self::HandshakeTimeout(_)
                | Self::HeartbeatTimeout(_)
                | Self::WriteTimeout(_)
        )
    }
}

impl From<io::Error> for ConnError {
    fn from(err: io::Error) -> Self {
        Self::Io(Arc::new(err))
    }
}

impl From<DecodeError> for ConnError {
    fn from(err: DecodeError) -> Self {
        Self::Decode(err)
    }
}

impl From<EncodeError> for ConnError {
    fn from(err: EncodeError) -> Self {
        Self::Encode(err)
    }
}

impl From<NegotiationError> for ConnError {
    fn from(err: NegotiationError) -> Self {
        Self::Negotiation(err)
    }
}

/// A TLS failure in words: what is wrong with nsqd's certificate and what to do about it, or
/// the TLS library's own message for the rest.
fn describe_tls(error: &io::Error) -> String {
    #[cfg(feature = "tls")]
    {
        use rustls::CertificateError as C;
        let certificate = error
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
            .and_then(|e| match e {
                rustls::Error::InvalidCertificate(c) => Some(c),
                _ => None,
            });
        let advice = match certificate {
            Some(C::UnknownIssuer) => Some(
                "nsqd's certificate is not signed by a trusted CA: give tls_root_ca_file the CA \
                 that signed it (or, if it is self-signed, the certificate itself)",
            ),
            Some(C::NotValidForName | C::NotValidForNameContext { .. }) => Some(
                "nsqd's certificate is not valid for the host connected to: connect by a name \
                 the certificate lists",
            ),
            Some(C::Expired | C::ExpiredContext { .. }) => Some("nsqd's certificate has expired"),
            Some(C::NotValidYet | C::NotValidYetContext { .. }) => {
                Some("nsqd's certificate is not valid yet (check the clocks)")
            }
            Some(C::Other(other)) if format!("{other:?}").contains("CaUsedAsEndEntity") => Some(
                "nsqd presents a CA certificate as its own: give that certificate itself as \
                 tls_root_ca_file, or give nsqd a certificate signed by the CA",
            ),
            _ => None,
        };
        if let Some(advice) = advice {
            return advice.to_owned();
        }
    }
    error.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_clone_send_sync() {
        fn assert_traits<T: Clone + Send + Sync + std::error::Error + 'static>() {}
        assert_traits::<ConnError>();
    }

    #[test]
    fn display_carries_the_cause() {
        let err = ConnError::IdentifyRejected(ServerError::parse(bytes::Bytes::from_static(
            b"E_BAD_BODY IDENTIFY heartbeat interval (999) is invalid",
        )));
        assert_eq!(
            err.to_string(),
            "nsqd rejected IDENTIFY: E_BAD_BODY IDENTIFY heartbeat interval (999) is invalid"
        );
        assert!(err.server_error().is_some());
        let err = ConnError::Decode(DecodeError::HttpResponse);
        assert!(err.to_string().contains("HTTP port"));
        assert!(ConnError::HeartbeatTimeout(Duration::from_secs(2)).is_timeout());
    }
}
