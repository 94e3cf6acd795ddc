//! Frames sent by nsqd (docs/protocol.md, "Frames").

use std::fmt;

use bytes::{Buf, Bytes};

use crate::error::DecodeError;
use crate::server_error::ServerError;

/// Frame type of a response frame.
pub const FRAME_TYPE_RESPONSE: i32 = 0;
/// Frame type of an error frame.
pub const FRAME_TYPE_ERROR: i32 = 1;
/// Frame type of a message frame.
pub const FRAME_TYPE_MESSAGE: i32 = 2;

/// Length of a frame header: the 4-byte size and the 4-byte frame type.
pub const FRAME_HEADER_LEN: usize = 8;
/// Length of a message header: timestamp (8), attempts (2) and id (16).
pub const MESSAGE_HEADER_LEN: usize = 26;

/// Payload of the heartbeat response frame.
pub const HEARTBEAT: &[u8] = b"_heartbeat_";
/// Payload of the response that acknowledges a command.
pub const OK: &[u8] = b"OK";
/// Payload of the reply to `CLS`.
pub const CLOSE_WAIT: &[u8] = b"CLOSE_WAIT";

/// One frame from nsqd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A response frame (type 0).
    Response(Response),
    /// An error frame (type 1).
    Error(ServerError),
    /// A message frame (type 2); only subscribed consumers receive these.
    Message(Message),
}

impl Frame {
    /// Builds a frame from its type and data, as found after the size field.
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnknownFrameType`] for a type other than 0, 1 or 2, and
    /// [`DecodeError::MalformedMessage`] for a message shorter than its header.
    pub fn from_parts(frame_type: i32, data: Bytes) -> Result<Self, DecodeError> {
        match frame_type {
            FRAME_TYPE_RESPONSE => Ok(Self::Response(Response::parse(data))),
            FRAME_TYPE_ERROR => Ok(Self::Error(ServerError::parse(data))),
            FRAME_TYPE_MESSAGE => Message::parse(data).map(Self::Message),
            other => Err(DecodeError::UnknownFrameType(other)),
        }
    }

    /// The wire frame type (0, 1 or 2).
    pub fn frame_type(&self) -> i32 {
        match self {
            Self::Response(_) => FRAME_TYPE_RESPONSE,
            Self::Error(_) => FRAME_TYPE_ERROR,
            Self::Message(_) => FRAME_TYPE_MESSAGE,
        }
    }
}

/// The payload of a response frame, classified.
///
/// Heartbeats are recognised here, once; nobody downstream compares byte strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `OK`: a command succeeded.
    Ok,
    /// `_heartbeat_`: unsolicited; answer with `NOP`.
    Heartbeat,
    /// `CLOSE_WAIT`: the reply to `CLS`.
    CloseWait,
    /// Any other payload, such as the JSON replies to IDENTIFY and AUTH.
    Other(Bytes),
}

impl Response {
    /// Classifies a response payload.
    pub fn parse(data: Bytes) -> Self {
        match &data[..] {
            OK => Self::Ok,
            HEARTBEAT => Self::Heartbeat,
            CLOSE_WAIT => Self::CloseWait,
            _ => Self::Other(data),
        }
    }

    /// The payload bytes as they appear on the wire.
    pub fn payload(&self) -> &[u8] {
        match self {
            Self::Ok => OK,
            Self::Heartbeat => HEARTBEAT,
            Self::CloseWait => CLOSE_WAIT,
            Self::Other(data) => data,
        }
    }
}

/// The 16-byte id of a message, sent back verbatim in `FIN`, `REQ` and `TOUCH`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

/// A message delivered to a consumer (frame type 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// When nsqd received the message, in nanoseconds since the Unix epoch.
    pub timestamp: i64,
    /// How many times it has been delivered, this delivery included.
    pub attempts: u16,
    /// Its id.
    pub id: MessageId,
    /// Its body, shared with the receive buffer (not copied).
    pub body: Bytes,
}

impl Message {
    /// Parses a message frame's data.
    ///
    /// # Errors
    ///
    /// [`DecodeError::MalformedMessage`] when the data is shorter than the 26-byte header.
    pub fn parse(mut data: Bytes) -> Result<Self, DecodeError> {
        if data.len() < MESSAGE_HEADER_LEN {
            return Err(DecodeError::MalformedMessage { len: data.len() });
        }
        let timestamp = data.get_i64();
        let attempts = data.get_u16();
        let mut id = [0; 16];
        data.copy_to_slice(&mut id);
        Ok(Self {
            timestamp,
            attempts,
            id: MessageId(id),
            body: data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_responses() {
        assert_eq!(Response::parse(Bytes::from_static(b"OK")), Response::Ok);
        assert_eq!(
            Response::parse(Bytes::from_static(b"_heartbeat_")),
            Response::Heartbeat
        );
        assert_eq!(
            Response::parse(Bytes::from_static(b"CLOSE_WAIT")),
            Response::CloseWait
        );
        assert_eq!(
            Response::parse(Bytes::from_static(b"OKAY")),
            Response::Other(Bytes::from_static(b"OKAY"))
        );
    }

    #[test]
    fn short_message_is_malformed() {
        assert_eq!(
            Message::parse(Bytes::from_static(&[0; 25])),
            Err(DecodeError::MalformedMessage { len: 25 })
        );
        let msg = Message::parse(Bytes::from_static(&[0; 26])).unwrap();
        assert!(msg.body.is_empty());
    }

    #[test]
    fn unknown_frame_type() {
        assert_eq!(
            Frame::from_parts(3, Bytes::new()),
            Err(DecodeError::UnknownFrameType(3))
        );
        assert_eq!(
            Frame::from_parts(-1, Bytes::new()),
            Err(DecodeError::UnknownFrameType(-1))
        );
    }
}
