//! Incremental decoding of nsqd's frame stream.

use bytes::{Buf, BytesMut};

use crate::error::DecodeError;
use crate::frame::{FRAME_HEADER_LEN, Frame};

/// The default cap on one frame's size field: nsqd's default `--max-msg-size` (1 MiB) plus the
/// message header and the frame type, which fits the largest message nsqd sends by default and
/// every response and error frame.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 1024 * 1024 + 26 + 4;

/// The size field a frame decoder reads when the peer answers in HTTP (`HTTP` as a u32).
const HTTP_MAGIC: u32 = u32::from_be_bytes(*b"HTTP");

/// Length of a frame's size field, the first part of its header.
const SIZE_LEN: usize = 4;

/// Decodes frames from bytes as they arrive, in any chunking.
///
/// It follows the tokio-util `Decoder` contract: [`decode`](Self::decode) returns `Ok(None)`
/// when more bytes are needed (and reserves room for the rest of the current frame), and
/// consumes exactly one frame's bytes when it returns one. Bodies are split off the buffer, not
/// copied.
///
/// The size a header announces is checked against the maximum as soon as its 4 bytes have
/// arrived, before the frame type and before anything is reserved: a hostile or mistaken peer
/// cannot make it allocate, and a bad size field fails even when nothing follows it. After the
/// first error the decoder stays failed and returns that error on every call.
///
/// ```
/// use bytes::BytesMut;
/// use nsq_proto::{Frame, FrameDecoder, Response};
///
/// let mut decoder = FrameDecoder::new(1024);
/// let mut buf = BytesMut::from(&b"\x00\x00\x00\x06\x00\x00"[..]);
/// assert_eq!(decoder.decode(&mut buf), Ok(None));
/// buf.extend_from_slice(b"\x00\x00OK");
/// assert_eq!(decoder.decode(&mut buf), Ok(Some(Frame::Response(Response::Ok))));
/// assert!(buf.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame_size: u32,
    state: State,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Waiting for an 8-byte header; its size field is checked once its 4 bytes are here.
    Header,
    /// Header read; waiting for `len` bytes of frame data.
    Data { frame_type: i32, len: usize },
    /// The stream is corrupt.
    Failed(DecodeError),
}

impl FrameDecoder {
    /// A decoder that refuses frames whose size field exceeds `max_frame_size`.
    ///
    /// The size field counts the 4-byte frame type and the data, as on the wire.
    pub fn new(max_frame_size: u32) -> Self {
        Self {
            max_frame_size,
            state: State::Header,
        }
    }

    /// The configured maximum size field.
    pub fn max_frame_size(&self) -> u32 {
        self.max_frame_size
    }

    /// The error the decoder failed with, if it has.
    pub fn error(&self) -> Option<&DecodeError> {
        match &self.state {
            State::Failed(err) => Some(err),
            _ => None,
        }
    }

    /// Decodes the next frame from `src`, if it is complete.
    ///
    /// # Errors
    ///
    /// A [`DecodeError`] when the stream is corrupt; the same error is returned by every later
    /// call.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if let State::Failed(err) = &self.state {
            return Err(err.clone());
        }
        match self.decode_inner(src) {
            Err(err) => {
                self.state = State::Failed(err.clone());
                Err(err)
            }
            ok => ok,
        }
    }

    fn decode_inner(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, DecodeError> {
        if self.state == State::Header {
            // The size field is checked as soon as it is complete: a peer that sends only a
            // bad size field (and then nothing) fails now, not when more bytes come.
            if src.len() < SIZE_LEN {
                return Ok(None);
            }
            let size = u32::from_be_bytes([src[0], src[1], src[2], src[3]]);
            self.check_size(size)?;
            if src.len() < FRAME_HEADER_LEN {
                return Ok(None);
            }
            src.advance(SIZE_LEN);
            let frame_type = src.get_i32();
            // Checked before waiting for the data, so garbage fails fast.
            if !(0..=2).contains(&frame_type) {
                return Err(DecodeError::UnknownFrameType(frame_type));
            }
            self.state = State::Data {
                frame_type,
                len: size as usize - 4,
            };
        }
        let State::Data { frame_type, len } = self.state else {
            unreachable!("state is Data after the header was read");
        };
        if src.len() < len {
            reserve_exact(src, len);
            return Ok(None);
        }
        let data = src.split_to(len).freeze();
        self.state = State::Header;
        Frame::from_parts(frame_type, data).map(Some)
    }

    /// Refuses a size field that is `HTTP`, too small to hold the frame type, or above the
    /// maximum.
    fn check_size(&self, size: u32) -> Result<(), DecodeError> {
        if size == HTTP_MAGIC {
            return Err(DecodeError::HttpResponse);
        }
        if size < 4 {
            return Err(DecodeError::FrameTooSmall { size });
        }
        if size > self.max_frame_size {
            return Err(DecodeError::FrameTooLarge {
                size,
                max: self.max_frame_size,
            });
        }
        Ok(())
    }
}

/// The smallest buffer [`FrameDecoder`] grows for a partial frame, so that the reads that complete it also take
/// the frames behind it: a buffer of exactly one small frame's size would cost a read per
/// frame for as long as the connection lives.
pub const READ_AHEAD: usize = 64 * 1024;

/// Makes room for `total` bytes in `src` without over-allocating.
///
/// `BytesMut::reserve` may double the allocation, which would let a peer announcing a frame of
/// the maximum size make the decoder hold up to twice its cap. Growing into a buffer of the
/// frame's size (or [`READ_AHEAD`], whichever is larger) keeps the allocation within the cap
/// plus a constant.
fn reserve_exact(src: &mut BytesMut, total: usize) {
    if src.capacity() >= total {
        return;
    }
    // When no frame handed out still points into the allocation, room at its front is reused
    // without allocating (and without growing it).
    if src.try_reclaim(total - src.len()) {
        return;
    }
    let mut grown = BytesMut::with_capacity(total.max(READ_AHEAD));
    grown.extend_from_slice(src);
    *src = grown;
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::{ErrorCode, Message, MessageId, Response};

    fn decode_all(decoder: &mut FrameDecoder, bytes: &[u8]) -> Result<Vec<Frame>, DecodeError> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(frame) = decoder.decode(&mut buf)? {
            out.push(frame);
        }
        Ok(out)
    }

    #[test]
    fn decodes_each_frame_type() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"\x00\x00\x00\x06\x00\x00\x00\x00OK");
        bytes.extend_from_slice(b"\x00\x00\x00\x0f\x00\x00\x00\x00_heartbeat_");
        bytes.extend_from_slice(b"\x00\x00\x00\x12\x00\x00\x00\x01E_BAD_PROTOCOL");
        bytes.extend_from_slice(
            b"\x00\x00\x00\x20\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x01\x00\x010123456789abcdefhi",
        );
        let frames = decode_all(&mut FrameDecoder::default(), &bytes).unwrap();
        assert_eq!(frames.len(), 4);
        assert_eq!(frames[0], Frame::Response(Response::Ok));
        assert_eq!(frames[1], Frame::Response(Response::Heartbeat));
        let Frame::Error(err) = &frames[2] else {
            panic!("expected an error frame")
        };
        assert_eq!(err.code(), &ErrorCode::BadProtocol);
        assert_eq!(
            frames[3],
            Frame::Message(Message {
                timestamp: 1,
                attempts: 1,
                id: MessageId(*b"0123456789abcdef"),
                body: Bytes::from_static(b"hi"),
            })
        );
    }

    #[test]
    fn http_port_is_recognised() {
        let mut decoder = FrameDecoder::new(u32::MAX);
        let err = decode_all(&mut decoder, b"HTTP/1.1 400 Bad Request\r\n").unwrap_err();
        assert_eq!(err, DecodeError::HttpResponse);
        assert!(err.to_string().contains("unexpected HTTP response"));
    }

    #[test]
    fn size_below_four_is_refused() {
        for size in 0..4u8 {
            let mut decoder = FrameDecoder::default();
            let err = decode_all(&mut decoder, &[0, 0, 0, size, 0, 0, 0, 0]).unwrap_err();
            assert_eq!(err, DecodeError::FrameTooSmall { size: size.into() });
        }
    }

    #[test]
    fn oversized_frame_is_refused_without_reserving() {
        let mut decoder = FrameDecoder::new(100);
        let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0][..]);
        let cap = buf.capacity();
        assert_eq!(
            decoder.decode(&mut buf),
            Err(DecodeError::FrameTooLarge {
                size: 0x7fff_ffff,
                max: 100
            })
        );
        assert_eq!(buf.capacity(), cap);
    }

    #[test]
    fn lone_oversize_size_field_is_refused_at_once() {
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::from(&[0x7f, 0xff, 0xff, 0xff][..]);
        let cap = buf.capacity();
        let err = decoder.decode(&mut buf).unwrap_err();
        assert_eq!(
            err,
            DecodeError::FrameTooLarge {
                size: 0x7fff_ffff,
                max: DEFAULT_MAX_FRAME_SIZE
            }
        );
        assert!(err.to_string().contains("exceeds the maximum"), "{err}");
        assert_eq!(buf.capacity(), cap, "nothing is reserved");
        assert_eq!(buf.len(), 4, "nothing is consumed");
    }

    #[test]
    fn lone_http_size_field_is_recognised_at_once() {
        let mut decoder = FrameDecoder::new(u32::MAX);
        let mut buf = BytesMut::from(&b"HTTP"[..]);
        assert_eq!(decoder.decode(&mut buf), Err(DecodeError::HttpResponse));
    }

    #[test]
    fn lone_small_size_field_is_refused_at_once() {
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::from(&[0, 0, 0, 3][..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Err(DecodeError::FrameTooSmall { size: 3 })
        );
    }

    #[test]
    fn valid_header_split_across_reads_waits() {
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::new();
        // Byte by byte through the size field and the frame type: each call waits.
        for byte in [0, 0, 0, 6, 0, 0, 0] {
            buf.extend_from_slice(&[byte]);
            assert_eq!(decoder.decode(&mut buf), Ok(None));
        }
        assert_eq!(buf.len(), 7, "a partial header is not consumed");
        buf.extend_from_slice(b"\x00O");
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        buf.extend_from_slice(b"K");
        assert_eq!(
            decoder.decode(&mut buf),
            Ok(Some(Frame::Response(Response::Ok)))
        );
        assert!(buf.is_empty());
        assert_eq!(decoder.error(), None);
    }

    #[test]
    fn errors_are_sticky() {
        let mut decoder = FrameDecoder::default();
        let err = decode_all(&mut decoder, b"\x00\x00\x00\x04\x00\x00\x00\x07").unwrap_err();
        assert_eq!(err, DecodeError::UnknownFrameType(7));
        let mut good = BytesMut::from(&b"\x00\x00\x00\x06\x00\x00\x00\x00OK"[..]);
        assert_eq!(decoder.decode(&mut good), Err(err.clone()));
        assert_eq!(decoder.error(), Some(&err));
        assert_eq!(good.len(), 10, "a failed decoder consumes nothing");
    }

    #[test]
    fn reservation_never_exceeds_the_cap() {
        // Regression: `BytesMut::reserve` doubled the buffer for a frame whose size field was
        // within the cap. A frame above the read-ahead size gets a buffer of exactly its size.
        let size = READ_AHEAD as u32 + 99;
        let mut decoder = FrameDecoder::new(size + 1);
        let mut buf = BytesMut::with_capacity(64);
        buf.extend_from_slice(&size.to_be_bytes());
        buf.extend_from_slice(&[0, 0, 0, 0, b'x']);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert_eq!(buf.capacity(), READ_AHEAD + 95);
        assert_eq!(&buf[..], b"x");
        buf.extend_from_slice(&vec![b'y'; READ_AHEAD + 94]);
        assert_eq!(buf.capacity(), READ_AHEAD + 95);
        let Ok(Some(Frame::Response(Response::Other(data)))) = decoder.decode(&mut buf) else {
            panic!("expected the response frame");
        };
        assert_eq!(data.len(), READ_AHEAD + 95);
        assert_eq!(data[0], b'x');
    }

    #[test]
    fn a_small_partial_frame_leaves_room_for_the_frames_behind_it() {
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::with_capacity(16);
        buf.extend_from_slice(&[0, 0, 0, 99, 0, 0, 0, 0, b'x']);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert_eq!(buf.capacity(), READ_AHEAD);
    }

    #[test]
    fn partial_frame_reserves_the_rest() {
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0, 0, 0x10, 0x04, 0, 0, 0, 0]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert!(buf.capacity() >= 0x1000);
    }
}
