//! One connection to nsqd on tokio: the codec, the IDENTIFY handshake, TLS and compression
//! upgrades, AUTH and heartbeats.
//!
//! [`Connection::connect`] resolves and dials the address, runs the handshake (magic,
//! IDENTIFY with feature negotiation, TLS, snappy or deflate, AUTH) and returns a
//! [`Connection`]: a stream of [`Frame`](nsq_proto::Frame)s in and a buffer of commands out.
//! The protocol itself (encoding, decoding, negotiation rules) lives in `nsq-proto`; this crate
//! adds the I/O.
//!
//! It never continues in plaintext when TLS was asked for and nsqd did not grant it, never
//! drops bytes nsqd sent ahead of an upgrade, never lets a heartbeat reach the caller, and never
//! logs the AUTH secret. It does not match replies to requests, reconnect, or spawn tasks: that
//! is the producer's job, driving a [`Connection`] from its own task.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use nsq_conn::{ConnConfig, Connection};
//! use nsq_proto::{Command, Frame, Response, Topic};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ConnConfig::builder("127.0.0.1:4150")
//!     .heartbeat_interval(Duration::from_secs(10))
//!     .build()?;
//! let mut conn = Connection::connect(&config).await?;
//! println!("nsqd {:?}", conn.info().identify.version);
//!
//! let topic = Topic::new("events")?;
//! conn.send(Command::Pub { topic: &topic, body: b"hello" }).await?;
//! match conn.recv().await? {
//!     Frame::Response(Response::Ok) => println!("published"),
//!     Frame::Error(err) => println!("rejected: {err}"),
//!     other => println!("unexpected: {other:?}"),
//! }
//! conn.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Behavior
//!
//! - **Handshake.** One deadline ([`ConnConfigBuilder::handshake_timeout`]) covers everything
//!   after the TCP connect; the connect itself has the dial timeout (1 s, as in go-nsq).
//!   Upgrades happen in nsqd's order: TLS, then at most one compression, then AUTH.
//! - **Heartbeats.** Answered with `NOP` by the connection, flushed at once, never returned.
//!   Nothing at all received for twice the negotiated interval fails the connection with
//!   [`ConnError::HeartbeatTimeout`]; with heartbeats disabled there is no idle timeout.
//! - **Writes.** Commands accumulate in one buffer and are written with as few writes as
//!   possible when flushed; with deflate, each flush ends with a sync flush. The write timeout
//!   bounds a stall (no byte written), not the time a large command takes.
//! - **Errors.** [`ConnError`] is `Clone`; once a connection fails, every operation returns the
//!   same error, after any frames that had already arrived.
//!
//! # Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `tls` | yes | `TlsConfig` and `ConnConfigBuilder::tls_v1`, `enable_tls`, `edit_tls`: TLS 1.2/1.3 via tokio-rustls (ring) |
//! | `snappy` | yes | `ConnConfigBuilder::snappy`: snappy framing-format compression |
//! | `deflate` | yes | `ConnConfigBuilder::deflate` and `deflate_level`: raw deflate |
//! | `serde` | no | `by_name::deserialize`: a configuration set by name deserializes from a map of option names |
//!
//! A feature only adds API: without `snappy`, asking for snappy does not compile.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod by_name;
mod codec;
#[cfg(any(feature = "snappy", feature = "deflate"))]
mod compress;
mod config;
mod config_error;
mod connect;
mod connection;
mod error;
mod handshake;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tls")]
mod tls_pinned;
mod transport;
#[cfg(any(feature = "tls", feature = "snappy", feature = "deflate"))]
mod upgrade;

pub use codec::NsqCodec;
pub use config::{
    ConnConfig, ConnConfigBuilder, DEFAULT_DIAL_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_MAX_MSG_SIZE, DEFAULT_WRITE_TIMEOUT, SetOutcome, USER_AGENT,
};
pub use config_error::ConfigError;
pub use connection::Connection;
pub use error::ConnError;
pub use handshake::ConnectionInfo;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls::{TlsConfig, TlsVersion};

/// The examples of the crate's README, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
