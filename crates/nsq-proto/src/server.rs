//! nsqd's side of the protocol: parse commands, encode frames.
//!
//! Enabled by the `server` feature. It exists for scripted fake peers, property tests and
//! fuzzing; it is not a server. Parsing follows nsqd's rules closely enough to round-trip
//! everything [`Command`](crate::Command) encodes and to reject what nsqd rejects at the framing
//! level.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::command::MAGIC_V2;
use crate::frame::{
    FRAME_TYPE_ERROR, FRAME_TYPE_MESSAGE, FRAME_TYPE_RESPONSE, Frame, Message, MessageId,
};
use crate::server_error::ServerError;

/// The longest command line nsqd reads, newline included.
pub const MAX_LINE_LEN: usize = 16384;

/// A command as nsqd receives it. Names are kept as sent, unchecked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCommand {
    /// The `  V2` magic.
    Magic,
    /// `IDENTIFY` and its JSON body.
    Identify {
        /// The body.
        body: Bytes,
    },
    /// `AUTH` and its secret.
    Auth {
        /// The secret.
        secret: Bytes,
    },
    /// `PUB`.
    Pub {
        /// The topic as sent.
        topic: String,
        /// The body.
        body: Bytes,
    },
    /// `MPUB`.
    Mpub {
        /// The topic as sent.
        topic: String,
        /// The bodies.
        bodies: Vec<Bytes>,
    },
    /// `DPUB`.
    Dpub {
        /// The topic as sent.
        topic: String,
        /// The delay in milliseconds.
        defer_ms: u64,
        /// The body.
        body: Bytes,
    },
    /// `NOP`.
    Nop,
    /// `CLS`.
    Cls,
    /// `SUB`.
    Sub {
        /// The topic as sent.
        topic: String,
        /// The channel as sent.
        channel: String,
    },
    /// `RDY`.
    Rdy {
        /// The count (1 when omitted, as in nsqd).
        count: u64,
    },
    /// `FIN`.
    Fin {
        /// The message id.
        id: MessageId,
    },
    /// `REQ`.
    Req {
        /// The message id.
        id: MessageId,
        /// The timeout in milliseconds.
        timeout_ms: u64,
    },
    /// `TOUCH`.
    Touch {
        /// The message id.
        id: MessageId,
    },
}

/// A client stream that nsqd would reject; each of these closes nsqd's connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The first four bytes were not `  V2` (nsqd: `E_BAD_PROTOCOL`).
    #[error("bad protocol magic {0:?}")]
    BadMagic([u8; 4]),
    /// A command name nsqd does not know (nsqd: `E_INVALID invalid command NAME`).
    #[error("invalid command {0}")]
    InvalidCommand(String),
    /// A line longer than nsqd's 16 KiB buffer (nsqd drops the connection).
    #[error("command line longer than {MAX_LINE_LEN} bytes")]
    LineTooLong,
    /// Missing or malformed parameters.
    #[error("{command} has invalid parameters")]
    InvalidParameters {
        /// The command.
        command: &'static str,
    },
    /// A negative size, a body above the parser's cap, or an MPUB whose contents disagree with
    /// its size.
    #[error("{command} has an invalid body size {size}")]
    InvalidBodySize {
        /// The command.
        command: &'static str,
        /// The size as read.
        size: i64,
    },
}

/// Parses the client's byte stream incrementally: the magic first, then commands.
///
/// Like [`FrameDecoder`](crate::FrameDecoder), it consumes nothing until a whole command is
/// available, caps what it will buffer, and stays failed after an error.
#[derive(Debug, Clone)]
pub struct CommandDecoder {
    max_body_size: u32,
    magic_seen: bool,
    failed: Option<ParseError>,
}

impl CommandDecoder {
    /// A decoder that expects the magic first and refuses bodies above `max_body_size`.
    pub fn new(max_body_size: u32) -> Self {
        Self {
            max_body_size,
            magic_seen: false,
            failed: None,
        }
    }

    /// A decoder for a stream whose magic was already read.
    pub fn after_magic(max_body_size: u32) -> Self {
        Self {
            magic_seen: true,
            ..Self::new(max_body_size)
        }
    }

    /// Decodes the next command from `src`, if it is complete.
    ///
    /// # Errors
    ///
    /// A [`ParseError`] when nsqd would reject the stream; the same error on every later call.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<ClientCommand>, ParseError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let result = self.decode_inner(src);
        if let Err(err) = &result {
            self.failed = Some(err.clone());
        }
        result
    }

    fn decode_inner(&mut self, src: &mut BytesMut) -> Result<Option<ClientCommand>, ParseError> {
        if !self.magic_seen {
            if src.len() < 4 {
                return Ok(None);
            }
            let magic = [src[0], src[1], src[2], src[3]];
            if &magic != MAGIC_V2 {
                return Err(ParseError::BadMagic(magic));
            }
            src.advance(4);
            self.magic_seen = true;
            return Ok(Some(ClientCommand::Magic));
        }
        let Some(newline) = src.iter().position(|&b| b == b'\n') else {
            if src.len() >= MAX_LINE_LEN {
                return Err(ParseError::LineTooLong);
            }
            return Ok(None);
        };
        if newline + 1 > MAX_LINE_LEN {
            return Err(ParseError::LineTooLong);
        }
        let mut line = &src[..newline];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        let line = String::from_utf8_lossy(line).into_owned();
        let mut params = line.split(' ');
        let name = params.next().unwrap_or_default().to_owned();
        let params: Vec<&str> = params.collect();
        let body_start = newline + 1;

        let (command, consumed) = match name.as_str() {
            "NOP" => (ClientCommand::Nop, 0),
            "CLS" => (ClientCommand::Cls, 0),
            "IDENTIFY" | "AUTH" | "PUB" | "DPUB" => {
                let command: &'static str = match name.as_str() {
                    "IDENTIFY" => "IDENTIFY",
                    "AUTH" => "AUTH",
                    "PUB" => "PUB",
                    _ => "DPUB",
                };
                let Some((body, consumed)) = self.sized(command, &src[body_start..])? else {
                    return Ok(None);
                };
                let cmd = match command {
                    "IDENTIFY" => ClientCommand::Identify { body },
                    "AUTH" => ClientCommand::Auth { secret: body },
                    "PUB" => ClientCommand::Pub {
                        topic: param(&params, 0, "PUB")?.to_owned(),
                        body,
                    },
                    _ => ClientCommand::Dpub {
                        topic: param(&params, 0, "DPUB")?.to_owned(),
                        defer_ms: number(param(&params, 1, "DPUB")?, "DPUB")?,
                        body,
                    },
                };
                (cmd, consumed)
            }
            "MPUB" => {
                let topic = param(&params, 0, "MPUB")?.to_owned();
                let Some((mut block, consumed)) = self.sized("MPUB", &src[body_start..])? else {
                    return Ok(None);
                };
                let bodies = parse_mpub(&mut block)?;
                (ClientCommand::Mpub { topic, bodies }, consumed)
            }
            "SUB" => (
                ClientCommand::Sub {
                    topic: param(&params, 0, "SUB")?.to_owned(),
                    channel: param(&params, 1, "SUB")?.to_owned(),
                },
                0,
            ),
            "RDY" => {
                let count = match params.first() {
                    Some(count) => number(count, "RDY")?,
                    None => 1,
                };
                (ClientCommand::Rdy { count }, 0)
            }
            "FIN" => (
                ClientCommand::Fin {
                    id: message_id(&params, "FIN")?,
                },
                0,
            ),
            "TOUCH" => (
                ClientCommand::Touch {
                    id: message_id(&params, "TOUCH")?,
                },
                0,
            ),
            "REQ" => (
                ClientCommand::Req {
                    id: message_id(&params, "REQ")?,
                    timeout_ms: number(param(&params, 1, "REQ")?, "REQ")?,
                },
                0,
            ),
            _ => return Err(ParseError::InvalidCommand(name)),
        };
        src.advance(body_start + consumed);
        Ok(Some(command))
    }

    /// Reads a 4-byte size and that many bytes from `rest`, or `None` if incomplete.
    fn sized(
        &self,
        command: &'static str,
        rest: &[u8],
    ) -> Result<Option<(Bytes, usize)>, ParseError> {
        if rest.len() < 4 {
            return Ok(None);
        }
        let size = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if size < 0 || size as u32 > self.max_body_size {
            return Err(ParseError::InvalidBodySize {
                command,
                size: size.into(),
            });
        }
        let size = size as usize;
        if rest.len() < 4 + size {
            return Ok(None);
        }
        Ok(Some((Bytes::copy_from_slice(&rest[4..4 + size]), 4 + size)))
    }
}

fn parse_mpub(block: &mut Bytes) -> Result<Vec<Bytes>, ParseError> {
    let bad = |size: i64| ParseError::InvalidBodySize {
        command: "MPUB",
        size,
    };
    if block.len() < 4 {
        return Err(bad(block.len() as i64));
    }
    let count = block.get_u32() as usize;
    let mut bodies = Vec::with_capacity(count.min(block.len() / 4));
    for _ in 0..count {
        if block.len() < 4 {
            return Err(bad(block.len() as i64));
        }
        let len = block.get_u32() as usize;
        if block.len() < len {
            return Err(bad(len as i64));
        }
        bodies.push(block.split_to(len));
    }
    if !block.is_empty() {
        return Err(bad(block.len() as i64));
    }
    Ok(bodies)
}

fn param<'p>(
    params: &[&'p str],
    index: usize,
    command: &'static str,
) -> Result<&'p str, ParseError> {
    params
        .get(index)
        .copied()
        .ok_or(ParseError::InvalidParameters { command })
}

fn number(text: &str, command: &'static str) -> Result<u64, ParseError> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::InvalidParameters { command });
    }
    // nsqd parses an empty parameter as 0 and wraps on overflow.
    Ok(text.bytes().fold(0u64, |n, b| {
        n.wrapping_mul(10).wrapping_add(u64::from(b - b'0'))
    }))
}

fn message_id(params: &[&str], command: &'static str) -> Result<MessageId, ParseError> {
    let id = param(params, 0, command)?.as_bytes();
    let id: [u8; 16] = id
        .try_into()
        .map_err(|_| ParseError::InvalidParameters { command })?;
    Ok(MessageId(id))
}

/// Appends a frame with the given type and data.
pub fn encode_frame(dst: &mut BytesMut, frame_type: i32, data: &[u8]) {
    dst.reserve(8 + data.len());
    dst.put_u32(4 + data.len() as u32);
    dst.put_i32(frame_type);
    dst.put_slice(data);
}

/// Appends a response frame carrying `payload` (e.g. `b"OK"` or IDENTIFY's JSON).
pub fn encode_response(dst: &mut BytesMut, payload: &[u8]) {
    encode_frame(dst, FRAME_TYPE_RESPONSE, payload);
}

/// Appends an error frame.
pub fn encode_error(dst: &mut BytesMut, error: &ServerError) {
    encode_frame(dst, FRAME_TYPE_ERROR, error.payload());
}

/// Appends a message frame.
pub fn encode_message(dst: &mut BytesMut, message: &Message) {
    dst.reserve(8 + 26 + message.body.len());
    dst.put_u32(4 + 26 + message.body.len() as u32);
    dst.put_i32(FRAME_TYPE_MESSAGE);
    dst.put_i64(message.timestamp);
    dst.put_u16(message.attempts);
    dst.put_slice(message.id.as_bytes());
    dst.put_slice(&message.body);
}

/// Appends any decoded frame, so that decoding it again gives the same frame.
pub fn encode(dst: &mut BytesMut, frame: &Frame) {
    match frame {
        Frame::Response(response) => encode_response(dst, response.payload()),
        Frame::Error(error) => encode_error(dst, error),
        Frame::Message(message) => encode_message(dst, message),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Command, Topic};

    #[test]
    fn parses_magic_then_publish() {
        let topic = Topic::new("t").unwrap();
        let mut buf = BytesMut::from(&MAGIC_V2[..]);
        Command::Dpub {
            topic: &topic,
            delay: Duration::from_millis(1500),
            body: b"x",
        }
        .encode(&mut buf)
        .unwrap();
        let mut dec = CommandDecoder::new(1024);
        assert_eq!(dec.decode(&mut buf), Ok(Some(ClientCommand::Magic)));
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Some(ClientCommand::Dpub {
                topic: "t".into(),
                defer_ms: 1500,
                body: Bytes::from_static(b"x")
            }))
        );
        assert_eq!(dec.decode(&mut buf), Ok(None));
    }

    #[test]
    fn rejects_like_nsqd() {
        let mut dec = CommandDecoder::new(1024);
        assert_eq!(
            dec.decode(&mut BytesMut::from(&b"  V1"[..])),
            Err(ParseError::BadMagic(*b"  V1"))
        );
        let mut dec = CommandDecoder::after_magic(1024);
        assert_eq!(
            dec.decode(&mut BytesMut::from(&b"ASDF\n"[..])),
            Err(ParseError::InvalidCommand("ASDF".into()))
        );
        let mut dec = CommandDecoder::after_magic(10);
        assert!(matches!(
            dec.decode(&mut BytesMut::from(&b"PUB t\n\x00\x00\x00\x0b"[..])),
            Err(ParseError::InvalidBodySize {
                command: "PUB",
                size: 11
            })
        ));
        let mut dec = CommandDecoder::after_magic(10);
        assert_eq!(
            dec.decode(&mut BytesMut::from(vec![b'x'; MAX_LINE_LEN].as_slice())),
            Err(ParseError::LineTooLong)
        );
    }

    #[test]
    fn line_quirks() {
        let mut dec = CommandDecoder::after_magic(1024);
        let mut buf = BytesMut::from(&b"NOP extra\r\nRDY\nRDY \n"[..]);
        assert_eq!(dec.decode(&mut buf), Ok(Some(ClientCommand::Nop)));
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Some(ClientCommand::Rdy { count: 1 }))
        );
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Some(ClientCommand::Rdy { count: 0 }))
        );
    }
}
