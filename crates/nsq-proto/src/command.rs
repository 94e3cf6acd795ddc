//! Commands sent to nsqd (docs/protocol.md, "Commands").

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::EncodeError;
use crate::frame::MessageId;
use crate::names::{Channel, Topic};

/// The four bytes a client writes first: protocol version 2.
pub const MAGIC_V2: &[u8; 4] = b"  V2";

/// The largest body the signed 32-bit size field can announce.
const MAX_WIRE_BODY: u64 = i32::MAX as u64;

/// One command, borrowing what it carries.
///
/// [`encode`](Self::encode) appends the exact wire bytes to a buffer; bodies are copied once,
/// into that buffer. Encoding checks only what the wire itself cannot express (sizes beyond the
/// 32-bit fields); what nsqd would refuse is checked by [`PublishLimits`](crate::PublishLimits)
/// and the name types before a command is built.
///
/// ```
/// use bytes::BytesMut;
/// use nsq_proto::{Command, Topic};
///
/// let topic = Topic::new("test").unwrap();
/// let cmd = Command::Pub { topic: &topic, body: b"hello" };
/// let mut buf = BytesMut::new();
/// cmd.encode(&mut buf).unwrap();
/// assert_eq!(&buf[..], b"PUB test\n\x00\x00\x00\x05hello");
/// assert_eq!(cmd.encoded_len(), buf.len());
/// assert!(cmd.expects_response());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// `IDENTIFY` with a JSON body, e.g. from [`IdentifyConfig::to_json`](crate::IdentifyConfig::to_json).
    Identify {
        /// The JSON body.
        body: &'a [u8],
    },
    /// `AUTH` with the secret as body.
    Auth {
        /// The secret.
        secret: &'a [u8],
    },
    /// `PUB`: publish one message.
    Pub {
        /// The topic.
        topic: &'a Topic,
        /// The message body.
        body: &'a [u8],
    },
    /// `MPUB`: publish several messages in one command.
    Mpub {
        /// The topic.
        topic: &'a Topic,
        /// The message bodies.
        bodies: &'a [Bytes],
    },
    /// `DPUB`: publish one message, delivered after a delay.
    Dpub {
        /// The topic.
        topic: &'a Topic,
        /// The delay; sent in whole milliseconds, sub-millisecond parts are truncated.
        delay: Duration,
        /// The message body.
        body: &'a [u8],
    },
    /// `NOP`: the answer to a heartbeat; nsqd never replies.
    Nop,
    /// `CLS`: a consumer's request to close cleanly.
    Cls,
    /// `SUB`: subscribe to a channel.
    Sub {
        /// The topic.
        topic: &'a Topic,
        /// The channel.
        channel: &'a Channel,
    },
    /// `RDY`: how many messages the consumer is ready to receive.
    Rdy {
        /// The count.
        count: u32,
    },
    /// `FIN`: a message was processed.
    Fin {
        /// The message.
        id: &'a MessageId,
    },
    /// `REQ`: requeue a message.
    Req {
        /// The message.
        id: &'a MessageId,
        /// Delay before redelivery; sent in whole milliseconds.
        timeout: Duration,
    },
    /// `TOUCH`: reset a message's in-flight timeout.
    Touch {
        /// The message.
        id: &'a MessageId,
    },
}

impl Command<'_> {
    /// The command's name as written on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Identify { .. } => "IDENTIFY",
            Self::Auth { .. } => "AUTH",
            Self::Pub { .. } => "PUB",
            Self::Mpub { .. } => "MPUB",
            Self::Dpub { .. } => "DPUB",
            Self::Nop => "NOP",
            Self::Cls => "CLS",
            Self::Sub { .. } => "SUB",
            Self::Rdy { .. } => "RDY",
            Self::Fin { .. } => "FIN",
            Self::Req { .. } => "REQ",
            Self::Touch { .. } => "TOUCH",
        }
    }

    /// Whether nsqd answers this command with a frame when it succeeds.
    ///
    /// `NOP`, `RDY`, `FIN`, `REQ` and `TOUCH` get no reply when they succeed; a queue that matches
    /// replies to requests must not wait for one. IDENTIFY's reply may be followed by one `OK`
    /// per negotiated upgrade.
    pub fn expects_response(&self) -> bool {
        match self {
            Self::Identify { .. }
            | Self::Auth { .. }
            | Self::Pub { .. }
            | Self::Mpub { .. }
            | Self::Dpub { .. }
            | Self::Sub { .. }
            | Self::Cls => true,
            Self::Nop
            | Self::Rdy { .. }
            | Self::Fin { .. }
            | Self::Req { .. }
            | Self::Touch { .. } => false,
        }
    }

    /// The exact number of bytes [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        let line = match self {
            Self::Identify { .. } | Self::Auth { .. } | Self::Nop | Self::Cls => {
                self.name().len() + 1
            }
            Self::Pub { topic, .. } | Self::Mpub { topic, .. } => {
                self.name().len() + 1 + topic.as_str().len() + 1
            }
            Self::Dpub { topic, delay, .. } => {
                "DPUB ".len() + topic.as_str().len() + 1 + decimal_len(millis(*delay)) + 1
            }
            Self::Sub { topic, channel } => {
                "SUB ".len() + topic.as_str().len() + 1 + channel.as_str().len() + 1
            }
            Self::Rdy { count } => "RDY ".len() + decimal_len(u64::from(*count)) + 1,
            Self::Fin { .. } | Self::Touch { .. } => self.name().len() + 1 + 16 + 1,
            Self::Req { timeout, .. } => "REQ ".len() + 16 + 1 + decimal_len(millis(*timeout)) + 1,
        };
        let body = match self {
            Self::Identify { body } | Self::Pub { body, .. } | Self::Dpub { body, .. } => {
                4 + body.len()
            }
            Self::Auth { secret } => 4 + secret.len(),
            Self::Mpub { bodies, .. } => 4 + mpub_body_len(bodies) as usize,
            _ => 0,
        };
        line + body
    }

    /// Appends the command's wire bytes to `dst`.
    ///
    /// # Errors
    ///
    /// [`EncodeError`] when a size or count does not fit its 32-bit field; nothing is appended
    /// then.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.check_sizes()?;
        dst.reserve(self.encoded_len());
        match self {
            Self::Identify { body } | Self::Auth { secret: body } => {
                put_line(dst, &[self.name().as_bytes()]);
                put_body(dst, body);
            }
            Self::Pub { topic, body } => {
                put_line(dst, &[b"PUB", topic.as_str().as_bytes()]);
                put_body(dst, body);
            }
            Self::Mpub { topic, bodies } => {
                put_line(dst, &[b"MPUB", topic.as_str().as_bytes()]);
                dst.put_u32(mpub_body_len(bodies) as u32);
                dst.put_u32(bodies.len() as u32);
                for body in *bodies {
                    put_body(dst, body);
                }
            }
            Self::Dpub { topic, delay, body } => {
                let ms = millis(*delay).to_string();
                put_line(dst, &[b"DPUB", topic.as_str().as_bytes(), ms.as_bytes()]);
                put_body(dst, body);
            }
            Self::Nop | Self::Cls => put_line(dst, &[self.name().as_bytes()]),
            Self::Sub { topic, channel } => put_line(
                dst,
                &[
                    b"SUB",
                    topic.as_str().as_bytes(),
                    channel.as_str().as_bytes(),
                ],
            ),
            Self::Rdy { count } => put_line(dst, &[b"RDY", count.to_string().as_bytes()]),
            Self::Fin { id } | Self::Touch { id } => {
                put_line(dst, &[self.name().as_bytes(), id.as_bytes()]);
            }
            Self::Req { id, timeout } => {
                let ms = millis(*timeout).to_string();
                put_line(dst, &[b"REQ", id.as_bytes(), ms.as_bytes()]);
            }
        }
        Ok(())
    }

    fn check_sizes(&self) -> Result<(), EncodeError> {
        let len = match self {
            Self::Identify { body } | Self::Pub { body, .. } | Self::Dpub { body, .. } => {
                body.len() as u64
            }
            Self::Auth { secret } => secret.len() as u64,
            Self::Mpub { bodies, .. } => {
                if bodies.len() as u64 > MAX_WIRE_BODY {
                    return Err(EncodeError::TooManyMessages {
                        count: bodies.len(),
                    });
                }
                mpub_body_len(bodies)
            }
            _ => 0,
        };
        if len > MAX_WIRE_BODY {
            return Err(EncodeError::BodyTooLarge { len });
        }
        Ok(())
    }
}

/// The size field of an MPUB: the count, then each message's size and bytes.
pub(crate) fn mpub_body_len(bodies: &[Bytes]) -> u64 {
    4 + bodies.iter().map(|b| 4 + b.len() as u64).sum::<u64>()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn decimal_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

fn put_line(dst: &mut BytesMut, parts: &[&[u8]]) {
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            dst.put_u8(b' ');
        }
        dst.put_slice(part);
    }
    dst.put_u8(b'\n');
}

fn put_body(dst: &mut BytesMut, body: &[u8]) {
    dst.put_u32(body.len() as u32);
    dst.put_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(cmd: Command<'_>) -> Vec<u8> {
        let mut buf = BytesMut::new();
        cmd.encode(&mut buf).unwrap();
        assert_eq!(buf.len(), cmd.encoded_len(), "encoded_len of {cmd:?}");
        buf.to_vec()
    }

    #[test]
    fn encoded_len_is_exact_for_every_command() {
        let topic = Topic::new("t").unwrap();
        let channel = Channel::new("c#ephemeral").unwrap();
        let id = MessageId(*b"0123456789abcdef");
        let bodies = [
            Bytes::from_static(b"a"),
            Bytes::new(),
            Bytes::from(vec![7; 300]),
        ];
        for cmd in [
            Command::Identify { body: b"{}" },
            Command::Auth { secret: b"" },
            Command::Pub {
                topic: &topic,
                body: b"",
            },
            Command::Mpub {
                topic: &topic,
                bodies: &bodies,
            },
            Command::Mpub {
                topic: &topic,
                bodies: &[],
            },
            Command::Dpub {
                topic: &topic,
                delay: Duration::from_millis(0),
                body: b"x",
            },
            Command::Dpub {
                topic: &topic,
                delay: Duration::from_secs(3600),
                body: b"x",
            },
            Command::Nop,
            Command::Cls,
            Command::Sub {
                topic: &topic,
                channel: &channel,
            },
            Command::Rdy { count: 0 },
            Command::Rdy { count: u32::MAX },
            Command::Fin { id: &id },
            Command::Req {
                id: &id,
                timeout: Duration::from_micros(1999),
            },
            Command::Touch { id: &id },
        ] {
            encode(cmd);
        }
    }

    #[test]
    fn dpub_truncates_to_milliseconds() {
        let topic = Topic::new("t").unwrap();
        let cmd = Command::Dpub {
            topic: &topic,
            delay: Duration::from_micros(1999),
            body: b"x",
        };
        assert_eq!(encode(cmd), b"DPUB t 1\n\x00\x00\x00\x01x");
    }

    #[test]
    fn empty_body_still_carries_its_size() {
        let topic = Topic::new("t").unwrap();
        assert_eq!(
            encode(Command::Pub {
                topic: &topic,
                body: b""
            }),
            b"PUB t\n\x00\x00\x00\x00"
        );
    }

    #[test]
    fn replies_follow_the_spec() {
        let topic = Topic::new("t").unwrap();
        let id = MessageId([b'0'; 16]);
        assert!(
            Command::Pub {
                topic: &topic,
                body: b"x"
            }
            .expects_response()
        );
        assert!(Command::Cls.expects_response());
        assert!(!Command::Nop.expects_response());
        assert!(!Command::Rdy { count: 1 }.expects_response());
        assert!(!Command::Fin { id: &id }.expects_response());
        assert!(
            !Command::Req {
                id: &id,
                timeout: Duration::ZERO
            }
            .expects_response()
        );
        assert!(!Command::Touch { id: &id }.expects_response());
    }
}
