//! The handshake: magic, IDENTIFY, the agreed upgrades in order, AUTH (docs/protocol.md,
//! "Starting a connection").
//!
//! Plain sequential async code over one `Framed`; each upgrade swaps the stream underneath it
//! (see `upgrade.rs`) and keeps the codec and every buffered byte.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use nsq_proto::{
    AuthResponse, Command, ErrorCode, Frame, IdentifyResponse, MAGIC_V2, Response, Upgrade,
    UpgradePlan,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;

use crate::codec::NsqCodec;
use crate::config::ConnConfig;
use crate::error::ConnError;
use crate::transport::{BoxTransport, Meter, Metered};

/// What the handshake established.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// nsqd's IDENTIFY reply (its version, `max_rdy_count`, `msg_timeout`, ...).
    pub identify: IdentifyResponse,
    /// The upgrades in effect: TLS, compression, AUTH.
    pub upgrades: UpgradePlan,
    /// nsqd's AUTH reply, when AUTH was required.
    pub auth: Option<AuthResponse>,
    /// The negotiated heartbeat interval; `None` when heartbeats are disabled.
    pub heartbeat_interval: Option<Duration>,
    /// nsqd's address, for TCP connections.
    pub peer_addr: Option<SocketAddr>,
}

impl ConnectionInfo {
    pub(crate) fn new(
        identify: IdentifyResponse,
        upgrades: UpgradePlan,
        auth: Option<AuthResponse>,
        heartbeat_interval: Option<Duration>,
    ) -> Self {
        Self {
            identify,
            upgrades,
            auth,
            heartbeat_interval,
            peer_addr: None,
        }
    }
}

/// A stream after a successful handshake, from which `Connection` is built.
pub(crate) struct Established {
    /// The stream with every upgrade in place and the bytes read past the handshake.
    pub(crate) framed: Framed<BoxTransport, NsqCodec>,
    /// Counts the bytes read and written underneath the upgrades.
    pub(crate) meter: Arc<Meter>,
    /// What was agreed.
    pub(crate) info: ConnectionInfo,
}

/// Runs the whole handshake over `io` within the configured handshake timeout.
pub(crate) async fn handshake<IO>(io: IO, config: &ConnConfig) -> Result<Established, ConnError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let timeout = config.handshake_timeout();
    match tokio::time::timeout(timeout, run(io, config)).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(?timeout, "handshake timed out");
            Err(ConnError::HandshakeTimeout(timeout))
        }
    }
}

async fn run<IO>(io: IO, config: &ConnConfig) -> Result<Established, ConnError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let meter = Arc::new(Meter::default());
    let io: BoxTransport = Box::new(Metered::new(io, meter.clone()));
    let mut hs = Handshake {
        framed: Framed::new(io, NsqCodec::new(config.max_frame_size())),
        heartbeats: 0,
    };

    // One write for both, as nsqd reads them back to back.
    hs.framed.feed(Bytes::from_static(MAGIC_V2)).await?;
    let body = config.identify().to_json();
    hs.framed.send(Command::Identify { body: &body }).await?;

    let identify = match hs.read().await? {
        Frame::Response(response) => IdentifyResponse::from_response(&response)?,
        // nsqd answers a magic it does not know with this, before reading IDENTIFY.
        Frame::Error(err) if err.code() == &ErrorCode::BadProtocol => {
            tracing::warn!(error = %err, "protocol magic rejected");
            return Err(ConnError::ProtocolRejected {
                address: config.address().to_owned(),
                error: err,
            });
        }
        Frame::Error(err) => {
            tracing::warn!(error = %err, "IDENTIFY rejected");
            return Err(ConnError::IdentifyRejected(err));
        }
        frame => return Err(unexpected("the IDENTIFY reply", frame)),
    };
    tracing::debug!(?identify, "IDENTIFY reply");
    let upgrades = UpgradePlan::negotiate(config.identify(), &identify, config.has_auth_secret())?;

    let mut auth = None;
    for step in upgrades.steps() {
        match step {
            Upgrade::Tls => {
                #[cfg(feature = "tls")]
                {
                    let tls = config
                        .tls()
                        .ok_or(nsq_proto::NegotiationError::NotRequested("TLS"))?;
                    hs.framed = crate::upgrade::start_tls(hs.framed, tls).await?;
                    hs.expect_ok("the OK after TLS")
                        .await
                        .map_err(late_tls_failure)?;
                }
                #[cfg(not(feature = "tls"))]
                return Err(nsq_proto::NegotiationError::NotRequested("TLS").into());
            }
            Upgrade::Compress(compression) => {
                #[cfg(any(feature = "snappy", feature = "deflate"))]
                {
                    hs.framed = crate::upgrade::start_compression(hs.framed, compression)?;
                    hs.expect_ok("the OK after compression").await?;
                }
                #[cfg(not(any(feature = "snappy", feature = "deflate")))]
                {
                    let _ = compression;
                    return Err(nsq_proto::NegotiationError::NotRequested("compression").into());
                }
            }
            Upgrade::Auth => {
                auth = Some(hs.auth(config).await.map_err(|e| tls_required(e, config))?);
            }
        }
    }
    if config.checks_tls_required() && !upgrades.tls {
        hs.check_tls_not_required(config).await?;
    }

    // A heartbeat that came in during the handshake is answered now that commands are allowed.
    if hs.heartbeats > 0 {
        hs.framed.send(Command::Nop).await?;
    }
    tracing::debug!("handshake complete");
    Ok(Established {
        framed: hs.framed,
        meter,
        info: ConnectionInfo::new(identify, upgrades, auth, config.heartbeat_interval()),
    })
}

struct Handshake {
    framed: Framed<BoxTransport, NsqCodec>,
    /// Heartbeats seen so far; they are answered once the handshake is over.
    heartbeats: usize,
}

impl Handshake {
    /// The next frame that is not a heartbeat.
    async fn read(&mut self) -> Result<Frame, ConnError> {
        loop {
            match self.framed.next().await {
                Some(Ok(Frame::Response(Response::Heartbeat))) => self.heartbeats += 1,
                Some(result) => return result,
                None => return Err(ConnError::Closed),
            }
        }
    }

    /// Writes `NOP` and IDENTIFY again (asking for no upgrade) and reads the reply: nsqd
    /// started with `--tls-required` refuses the `NOP` (and closes the connection), any other
    /// nsqd answers the IDENTIFY, which it takes any number of times before a SUB.
    async fn check_tls_not_required(&mut self, config: &ConnConfig) -> Result<(), ConnError> {
        let mut again = config.identify().clone();
        again.tls_v1 = false;
        again.snappy = false;
        again.deflate = false;
        let body = again.to_json();
        self.framed.feed(Command::Nop).await?;
        self.framed.send(Command::Identify { body: &body }).await?;
        match self.read().await? {
            Frame::Response(_) => Ok(()),
            Frame::Error(err) => Err(tls_required(ConnError::IdentifyRejected(err), config)),
            frame => Err(unexpected("the reply to the second IDENTIFY", frame)),
        }
    }

    /// Reads the `OK` nsqd sends through a new layer.
    #[cfg(any(feature = "tls", feature = "snappy", feature = "deflate"))]
    async fn expect_ok(&mut self, expected: &'static str) -> Result<(), ConnError> {
        match self.read().await? {
            Frame::Response(Response::Ok) => Ok(()),
            // nsqd reports a failed upgrade as E_IDENTIFY_FAILED.
            Frame::Error(err) => Err(ConnError::IdentifyRejected(err)),
            frame => Err(unexpected(expected, frame)),
        }
    }

    async fn auth(&mut self, config: &ConnConfig) -> Result<AuthResponse, ConnError> {
        let secret = config
            .auth_secret()
            .ok_or(nsq_proto::NegotiationError::AuthSecretMissing)?;
        self.framed.send(Command::Auth { secret }).await?;
        match self.read().await? {
            Frame::Response(Response::Other(json)) => {
                let auth = AuthResponse::parse(&json)?;
                tracing::info!(
                    identity = %auth.identity,
                    identity_url = %auth.identity_url,
                    permission_count = auth.permission_count,
                    "authenticated"
                );
                Ok(auth)
            }
            Frame::Error(err) => {
                tracing::warn!(error = %err, "AUTH rejected");
                Err(ConnError::AuthRejected(err))
            }
            frame => Err(unexpected("the AUTH reply", frame)),
        }
    }
}

/// With TLS 1.3 the client's side of the handshake ends before nsqd has checked the client
/// certificate; a refusal arrives as an alert on the first read. That is still a TLS failure.
#[cfg(feature = "tls")]
fn late_tls_failure(err: ConnError) -> ConnError {
    match err {
        ConnError::Io(io) if io.get_ref().is_some_and(|e| e.is::<rustls::Error>()) => {
            ConnError::Tls(io)
        }
        other => other,
    }
}

/// nsqd's refusal of a command before TLS (`E_INVALID cannot NOP in current state (TLS
/// required)`) as [`ConnError::TlsRequired`]; any other error as it is.
fn tls_required(err: ConnError, config: &ConnConfig) -> ConnError {
    match err.server_error() {
        Some(refusal)
            if refusal.code() == &ErrorCode::Invalid
                && refusal.to_string().contains("TLS required") =>
        {
            tracing::warn!(error = %refusal, "nsqd requires TLS");
            ConnError::TlsRequired {
                address: config.address().to_owned(),
                error: refusal.clone(),
            }
        }
        _ => err,
    }
}

fn unexpected(expected: &'static str, frame: Frame) -> ConnError {
    ConnError::UnexpectedFrame { expected, frame }
}
