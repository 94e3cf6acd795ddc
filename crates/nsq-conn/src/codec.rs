//! `NsqCodec`: the tokio-util adapter over nsq-proto's encoder and decoder.

use bytes::{Bytes, BytesMut};
use nsq_proto::{Command, DEFAULT_MAX_FRAME_SIZE, Frame, FrameDecoder};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::ConnError;

/// A tokio-util codec for the client side of the NSQ protocol.
///
/// Decoding yields nsqd's [`Frame`]s through nsq-proto's [`FrameDecoder`], so incoming frames
/// are size-capped before anything is allocated and a corrupt stream stays failed. Encoding
/// takes either a [`Command`], encoded in place, or [`Bytes`] that already hold encoded
/// commands (or the magic), appended as they are.
///
/// ```
/// use bytes::BytesMut;
/// use nsq_conn::NsqCodec;
/// use nsq_proto::{Command, Frame, Response};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = NsqCodec::new(1024);
/// let mut out = BytesMut::new();
/// codec.encode(Command::Nop, &mut out)?;
/// assert_eq!(&out[..], b"NOP\n");
///
/// let mut input = BytesMut::from(&b"\x00\x00\x00\x06\x00\x00\x00\x00OK"[..]);
/// assert_eq!(codec.decode(&mut input)?, Some(Frame::Response(Response::Ok)));
/// # Ok::<(), nsq_conn::ConnError>(())
/// ```
#[derive(Debug, Clone)]
pub struct NsqCodec {
    decoder: FrameDecoder,
}

impl NsqCodec {
    /// A codec that refuses incoming frames whose size field exceeds `max_frame_size`.
    pub fn new(max_frame_size: u32) -> Self {
        Self {
            decoder: FrameDecoder::new(max_frame_size),
        }
    }

    /// The cap on an incoming frame's size field.
    pub fn max_frame_size(&self) -> u32 {
        self.decoder.max_frame_size()
    }
}

impl Default for NsqCodec {
    /// Capped at [`DEFAULT_MAX_FRAME_SIZE`] (nsqd's default message size plus headers).
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_SIZE)
    }
}

impl Decoder for NsqCodec {
    type Item = Frame;
    type Error = ConnError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ConnError> {
        Ok(self.decoder.decode(src)?)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, ConnError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            // The peer closed in the middle of a frame; what it sent cannot be used.
            None if !src.is_empty() => Err(ConnError::Closed),
            None => Ok(None),
        }
    }
}

impl Encoder<Command<'_>> for NsqCodec {
    type Error = ConnError;

    fn encode(&mut self, command: Command<'_>, dst: &mut BytesMut) -> Result<(), ConnError> {
        Ok(command.encode(dst)?)
    }
}

impl Encoder<Bytes> for NsqCodec {
    type Error = ConnError;

    fn encode(&mut self, bytes: Bytes, dst: &mut BytesMut) -> Result<(), ConnError> {
        dst.extend_from_slice(&bytes);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use nsq_proto::{DecodeError, Response};

    use super::*;

    #[test]
    fn truncated_stream_at_eof_is_closed() {
        let mut codec = NsqCodec::default();
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x06\x00\x00"[..]);
        assert!(matches!(codec.decode_eof(&mut buf), Err(ConnError::Closed)));
        let mut empty = BytesMut::new();
        assert!(matches!(
            NsqCodec::default().decode_eof(&mut empty),
            Ok(None)
        ));
    }

    #[test]
    fn decode_errors_are_typed() {
        let mut codec = NsqCodec::new(100);
        let mut buf = BytesMut::from(&b"HTTP/1.1 400 Bad Request\r\n"[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(ConnError::Decode(DecodeError::HttpResponse))
        ));
        let mut buf = BytesMut::from(&b"\x00\x00\x00\x06\x00\x00\x00\x00OK"[..]);
        let mut codec = NsqCodec::new(100);
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            Some(Frame::Response(Response::Ok))
        );
    }

    #[test]
    fn lone_oversize_size_field_is_a_decode_error() {
        let mut codec = NsqCodec::new(100);
        let mut buf = BytesMut::from(&b"\x7f\xff\xff\xff"[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(ConnError::Decode(DecodeError::FrameTooLarge {
                size: 0x7fff_ffff,
                max: 100
            }))
        ));
    }

    #[test]
    fn raw_bytes_are_appended() {
        let mut codec = NsqCodec::default();
        let mut dst = BytesMut::new();
        codec.encode(Bytes::from_static(b"  V2"), &mut dst).unwrap();
        codec.encode(Command::Nop, &mut dst).unwrap();
        assert_eq!(&dst[..], b"  V2NOP\n");
    }
}
