//! A sans-IO implementation of the NSQ TCP protocol (version 2).
//!
//! `nsq-proto` turns commands into bytes and bytes into frames, checks topic and channel names,
//! validates publishes against nsqd's limits and negotiates IDENTIFY, all as plain data.
//!
//! It opens no sockets, spawns nothing, reads no clock and logs nothing. Encoding appends to a
//! caller's [`BytesMut`](bytes::BytesMut); decoding consumes from one; time arrives as an
//! argument. It therefore works under any runtime, or none: `examples/blocking_publish.rs`
//! publishes with `std::net::TcpStream` alone.
//!
//! # Example
//!
//! ```
//! use bytes::BytesMut;
//! use nsq_proto::{Command, Frame, FrameDecoder, PublishLimits, Response, Topic, MAGIC_V2};
//!
//! let topic = Topic::new("events")?;
//! let body = b"hello";
//! PublishLimits::default().check_pub(body)?;
//!
//! let mut out = BytesMut::new();
//! out.extend_from_slice(MAGIC_V2);
//! Command::Pub { topic: &topic, body }.encode(&mut out)?;
//! // ... write `out` to nsqd's TCP port, read its reply into `input` ...
//! let mut input = BytesMut::from(&b"\x00\x00\x00\x06\x00\x00\x00\x00OK"[..]);
//!
//! let mut decoder = FrameDecoder::default();
//! assert_eq!(decoder.decode(&mut input)?, Some(Frame::Response(Response::Ok)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! | feature | adds |
//! |---|---|
//! | `server` | the [`server`] module: nsqd's side (command parsing, frame encoding) for fake peers, tests and fuzzing |
//!
//! The repository's `docs/protocol.md` summarises the wire format and how nsqd behaves: frames,
//! commands, limits, error codes and which errors close the connection.
// Without the feature the module does not exist, so the link in the table points at docs.rs,
// which documents the crate with every feature.
#![cfg_attr(
    not(feature = "server"),
    doc = "\n\n[`server`]: https://docs.rs/nsq-proto/latest/nsq_proto/server/index.html"
)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod command;
mod decoder;
mod error;
mod frame;
mod heartbeat;
mod identify;
mod names;
mod server_error;
mod validate;

#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub mod server;

pub use command::{Command, MAGIC_V2};
pub use decoder::{DEFAULT_MAX_FRAME_SIZE, FrameDecoder, READ_AHEAD};
pub use error::{
    DecodeError, EncodeError, InvalidName, InvalidNameReason, InvalidPublish, NameKind,
    NegotiationError,
};
pub use frame::{
    CLOSE_WAIT, FRAME_HEADER_LEN, FRAME_TYPE_ERROR, FRAME_TYPE_MESSAGE, FRAME_TYPE_RESPONSE, Frame,
    HEARTBEAT, MESSAGE_HEADER_LEN, Message, MessageId, OK, Response,
};
pub use heartbeat::HeartbeatMonitor;
pub use identify::{
    AuthResponse, Compression, DEFAULT_DEFLATE_LEVEL, DEFAULT_HEARTBEAT_INTERVAL, IdentifyConfig,
    IdentifyResponse, Upgrade, UpgradePlan,
};
pub use names::{Channel, EPHEMERAL_SUFFIX, MAX_NAME_LEN, Topic, is_valid_name};
pub use server_error::{ErrorCode, ServerError};
pub use validate::{DEFAULT_MAX_BODY_SIZE, DEFAULT_MAX_DEFER, DEFAULT_MAX_MSG_SIZE, PublishLimits};

/// The examples of the crate's README, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
