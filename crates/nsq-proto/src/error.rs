//! Error types of the protocol layer.

use std::time::Duration;

/// A frame stream from nsqd could not be decoded.
///
/// Once a [`FrameDecoder`](crate::FrameDecoder) has returned one of these it returns the same
/// error for ever after: a length-prefixed stream cannot be resynchronised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The first four bytes were `HTTP`: the peer is nsqd's HTTP port, not its TCP port.
    #[error(
        "unexpected HTTP response: this is nsqd's HTTP port, connect to its TCP port (default 4150)"
    )]
    HttpResponse,
    /// The announced frame is larger than the configured maximum.
    #[error("frame of {size} bytes exceeds the maximum of {max}")]
    FrameTooLarge {
        /// The size the header announced (frame type and data).
        size: u32,
        /// The configured maximum.
        max: u32,
    },
    /// The announced size cannot even hold the frame type.
    #[error("frame size {size} is smaller than the minimum of 4")]
    FrameTooSmall {
        /// The size the header announced.
        size: u32,
    },
    /// A frame type other than response (0), error (1) or message (2).
    #[error("unknown frame type {0}")]
    UnknownFrameType(i32),
    /// A message frame shorter than its 26-byte header.
    #[error("message frame of {len} bytes is shorter than the 26-byte message header")]
    MalformedMessage {
        /// Length of the frame data.
        len: usize,
    },
}

/// A command cannot be represented on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A body (or an MPUB's total body) is longer than the signed 32-bit size field allows.
    #[error("body of {len} bytes does not fit the 32-bit size field")]
    BodyTooLarge {
        /// The length that did not fit.
        len: u64,
    },
    /// An MPUB has more messages than the 32-bit count field allows.
    #[error("{count} messages do not fit the 32-bit count field")]
    TooManyMessages {
        /// The number of messages.
        count: usize,
    },
}

/// Whether an [`InvalidName`] was meant as a topic or a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameKind {
    /// A topic name.
    Topic,
    /// A channel name.
    Channel,
}

/// Which of nsqd's naming rules a name breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidNameReason {
    /// The name (or the part before `#ephemeral`) is empty.
    Empty,
    /// The name is longer than 64 bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The name holds a character outside `[.a-zA-Z0-9_-]`.
    InvalidChar {
        /// The first offending character.
        ch: char,
        /// Its byte offset.
        index: usize,
    },
}

/// A topic or channel name that nsqd would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {} name {:?}: {}", kind_str(.kind), .name, reason_str(.reason))]
pub struct InvalidName {
    kind: NameKind,
    name: String,
    reason: InvalidNameReason,
}

impl InvalidName {
    pub(crate) fn new(kind: NameKind, name: String, reason: InvalidNameReason) -> Self {
        Self { kind, name, reason }
    }

    /// Whether a topic or a channel name was refused.
    pub fn kind(&self) -> NameKind {
        self.kind
    }

    /// The refused name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rule it breaks.
    pub fn reason(&self) -> &InvalidNameReason {
        &self.reason
    }
}

fn kind_str(kind: &NameKind) -> &'static str {
    match kind {
        NameKind::Topic => "topic",
        NameKind::Channel => "channel",
    }
}

fn reason_str(reason: &InvalidNameReason) -> String {
    match reason {
        InvalidNameReason::Empty => "it is empty".to_owned(),
        InvalidNameReason::TooLong { len } => {
            format!("it is {len} bytes long, the maximum is 64")
        }
        InvalidNameReason::InvalidChar { ch, index } => {
            format!("character {ch:?} at byte {index} is not allowed")
        }
    }
}

/// A publish that nsqd would refuse, found before anything is sent.
///
/// nsqd answers every invalid publish with a fatal error and closes the connection, failing every
/// other request pipelined on it, so these checks run before a request is queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidPublish {
    /// A PUB or DPUB with an empty body (nsqd: `E_BAD_MESSAGE ... invalid message body size 0`).
    #[error("message body is empty")]
    EmptyBody,
    /// An MPUB without messages (nsqd: `E_BAD_BODY MPUB invalid message count 0`).
    #[error("multi-publish has no messages")]
    NoMessages,
    /// One message of an MPUB is empty.
    #[error("message {index} of the multi-publish is empty")]
    EmptyMessage {
        /// Its position in the batch, from 0.
        index: usize,
    },
    /// A message is larger than the per-message limit (nsqd `--max-msg-size`).
    #[error("message{} of {size} bytes exceeds the limit of {max}", .index.map(|i| format!(" {i}")).unwrap_or_default())]
    MessageTooLarge {
        /// Its position in an MPUB, `None` for PUB and DPUB.
        index: Option<usize>,
        /// Its size in bytes.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// An MPUB body is larger than the limit (nsqd `--max-body-size`).
    #[error("multi-publish body of {size} bytes exceeds the limit of {max}")]
    BatchTooLarge {
        /// The MPUB body size: 4 + the sum of (4 + message length).
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A DPUB delay above the limit (nsqd `--max-req-timeout`).
    #[error("defer of {delay:?} exceeds the limit of {max:?}")]
    DeferTooLong {
        /// The requested delay.
        delay: Duration,
        /// The limit.
        max: Duration,
    },
}

/// The IDENTIFY reply or the upgrades it asks for are not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// The IDENTIFY reply was neither `OK` nor a JSON object.
    #[error("IDENTIFY reply is neither OK nor a JSON object: {0}")]
    MalformedResponse(String),
    /// The server turned on a feature the client did not ask for.
    #[error("server enabled {0} although it was not requested")]
    NotRequested(&'static str),
    /// The server enabled snappy and deflate at once.
    #[error("server enabled both snappy and deflate compression")]
    BothCompressions,
    /// TLS was requested but the server did not grant it; continuing in plaintext would be a
    /// silent downgrade.
    #[error(
        "TLS was requested but the server did not enable it (is nsqd started with --tls-cert and --tls-key?)"
    )]
    TlsNotGranted,
    /// The server requires AUTH and no secret is configured.
    #[error("server requires AUTH but no auth secret is configured")]
    AuthSecretMissing,
    /// The AUTH reply was not the expected JSON object.
    #[error("AUTH reply is not a valid JSON object: {0}")]
    MalformedAuthResponse(String),
}
