//! Snappy framing format in both directions, on top of the `snap` crate's raw block codec.
//!
//! Each direction is one stream that starts with the stream identifier chunk. Data travels in
//! chunks of at most 64 KiB of uncompressed data, each carrying a masked CRC-32C of that data;
//! a chunk whose compressed form saves too little is sent uncompressed. Chunk boundaries have
//! nothing to do with NSQ frames.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{Pending, invalid_data, poll_fill};

/// The chunk that starts every stream: type `0xff`, length 6, `sNaPpY`.
const STREAM_IDENTIFIER: &[u8] = b"\xff\x06\x00\x00sNaPpY";
const CHUNK_COMPRESSED: u8 = 0x00;
const CHUNK_UNCOMPRESSED: u8 = 0x01;
const CHUNK_PADDING: u8 = 0xfe;
const CHUNK_STREAM_IDENTIFIER: u8 = 0xff;
/// The most uncompressed data one chunk may carry.
const MAX_BLOCK: usize = 65536;
/// Chunk header: type and 24-bit little-endian length.
const HEADER_LEN: usize = 4;
/// Data chunks start with the masked CRC.
const CRC_LEN: usize = 4;

/// A snappy-framing layer over `T`.
pub(crate) struct SnappyStream<T> {
    inner: T,
    encoder: snap::raw::Encoder,
    scratch: Vec<u8>,
    pending: Pending,
    identifier_sent: bool,
    decoder: snap::raw::Decoder,
    /// Framed bytes read from the inner stream.
    input: BytesMut,
    /// Decoded bytes not yet handed out.
    plain: BytesMut,
    identifier_seen: bool,
    /// Bytes of a skippable chunk still to discard.
    skip: usize,
    read_eof: bool,
}

impl<T> SnappyStream<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self {
            inner,
            encoder: snap::raw::Encoder::new(),
            scratch: Vec::new(),
            pending: Pending::default(),
            identifier_sent: false,
            decoder: snap::raw::Decoder::new(),
            input: BytesMut::new(),
            plain: BytesMut::new(),
            identifier_seen: false,
            skip: 0,
            read_eof: false,
        }
    }

    /// Appends one data chunk for `block` (at most [`MAX_BLOCK`] bytes) to the pending output.
    fn write_chunk(&mut self, block: &[u8]) -> io::Result<()> {
        self.scratch
            .resize(snap::raw::max_compress_len(block.len()), 0);
        let compressed_len = self
            .encoder
            .compress(block, &mut self.scratch)
            .map_err(|err| invalid_data(format!("snappy: {err}")))?;
        // The format's rule of thumb: compress only if it saves at least 12.5%.
        let (kind, data) = if compressed_len >= block.len() - block.len() / 8 {
            (CHUNK_UNCOMPRESSED, block)
        } else {
            (CHUNK_COMPRESSED, &self.scratch[..compressed_len])
        };
        let out = self.pending.buf_mut();
        if !self.identifier_sent {
            out.extend_from_slice(STREAM_IDENTIFIER);
            self.identifier_sent = true;
        }
        let len = (CRC_LEN + data.len()) as u32;
        out.push(kind);
        out.extend_from_slice(&len.to_le_bytes()[..3]);
        out.extend_from_slice(&masked_crc32c(block).to_le_bytes());
        out.extend_from_slice(data);
        Ok(())
    }

    /// Decodes the next chunk from `input` into `plain`; `false` when more input is needed.
    fn read_chunk(&mut self) -> io::Result<bool> {
        if self.skip > 0 {
            let n = self.skip.min(self.input.len());
            self.input.advance(n);
            self.skip -= n;
            return Ok(n > 0);
        }
        if self.input.len() < HEADER_LEN {
            return Ok(false);
        }
        let kind = self.input[0];
        let len = usize::from(self.input[1])
            | usize::from(self.input[2]) << 8
            | usize::from(self.input[3]) << 16;
        if !self.identifier_seen && kind != CHUNK_STREAM_IDENTIFIER {
            return Err(invalid_data(
                "snappy: the stream does not start with the stream identifier",
            ));
        }
        match kind {
            CHUNK_STREAM_IDENTIFIER => {
                if len != STREAM_IDENTIFIER.len() - HEADER_LEN {
                    return Err(invalid_data("snappy: bad stream identifier length"));
                }
                if self.input.len() < STREAM_IDENTIFIER.len() {
                    return Ok(false);
                }
                if &self.input[..STREAM_IDENTIFIER.len()] != STREAM_IDENTIFIER {
                    return Err(invalid_data("snappy: bad stream identifier"));
                }
                self.input.advance(STREAM_IDENTIFIER.len());
                self.identifier_seen = true;
            }
            CHUNK_COMPRESSED | CHUNK_UNCOMPRESSED => {
                let max = CRC_LEN
                    + if kind == CHUNK_COMPRESSED {
                        snap::raw::max_compress_len(MAX_BLOCK)
                    } else {
                        MAX_BLOCK
                    };
                if !(CRC_LEN..=max).contains(&len) {
                    return Err(invalid_data(format!(
                        "snappy: data chunk of {len} bytes (allowed {CRC_LEN} to {max})"
                    )));
                }
                if self.input.len() < HEADER_LEN + len {
                    self.input.reserve(HEADER_LEN + len - self.input.len());
                    return Ok(false);
                }
                let mut chunk = self.input.split_to(HEADER_LEN + len);
                chunk.advance(HEADER_LEN);
                let crc = chunk.get_u32_le();
                if kind == CHUNK_COMPRESSED {
                    let n = snap::raw::decompress_len(&chunk)
                        .map_err(|err| invalid_data(format!("snappy: {err}")))?;
                    if n > MAX_BLOCK {
                        return Err(invalid_data(format!(
                            "snappy: chunk decompresses to {n} bytes, more than {MAX_BLOCK}"
                        )));
                    }
                    self.plain.clear();
                    self.plain.resize(n, 0);
                    self.decoder
                        .decompress(&chunk, &mut self.plain)
                        .map_err(|err| invalid_data(format!("snappy: {err}")))?;
                } else {
                    self.plain = chunk;
                }
                if masked_crc32c(&self.plain) != crc {
                    self.plain.clear();
                    return Err(invalid_data("snappy: checksum mismatch"));
                }
            }
            0x02..=0x7f => {
                return Err(invalid_data(format!(
                    "snappy: reserved unskippable chunk type {kind:#04x}"
                )));
            }
            // Padding and the reserved skippable types carry nothing.
            _ => {
                debug_assert!(kind == CHUNK_PADDING || (0x80..=0xfd).contains(&kind));
                self.input.advance(HEADER_LEN);
                self.skip = len;
            }
        }
        Ok(true)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SnappyStream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.plain.is_empty() {
                let n = this.plain.len().min(buf.remaining());
                buf.put_slice(&this.plain[..n]);
                this.plain.advance(n);
                return Poll::Ready(Ok(()));
            }
            if buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if this.read_chunk()? {
                continue;
            }
            if this.read_eof {
                // A chunk cut short by the end of the stream is simply the end.
                return Poll::Ready(Ok(()));
            }
            if ready!(poll_fill(&mut this.inner, cx, &mut this.input))? == 0 {
                this.read_eof = true;
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SnappyStream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(this.pending.poll_make_room(&mut this.inner, cx))?;
        let block = &buf[..buf.len().min(MAX_BLOCK)];
        this.write_chunk(block)?;
        Poll::Ready(Ok(block.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.pending.poll_drain(&mut this.inner, cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.pending.poll_drain(&mut this.inner, cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// CRC-32C (Castagnoli), reflected, as the framing format uses.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        crc ^= u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        crc = CRC_TABLES[3][(crc & 0xff) as usize]
            ^ CRC_TABLES[2][((crc >> 8) & 0xff) as usize]
            ^ CRC_TABLES[1][((crc >> 16) & 0xff) as usize]
            ^ CRC_TABLES[0][(crc >> 24) as usize];
    }
    for &b in chunks.remainder() {
        crc = CRC_TABLES[0][((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// The checksum as stored in a chunk: rotated right by 15 and offset, so that data containing
/// its own CRC does not checksum trivially.
fn masked_crc32c(data: &[u8]) -> u32 {
    crc32c(data).rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Slicing-by-4 tables for the reflected Castagnoli polynomial.
static CRC_TABLES: [[u32; 256]; 4] = crc_tables();

const fn crc_tables() -> [[u32; 256]; 4] {
    const POLY: u32 = 0x82f6_3b78;
    let mut tables = [[0u32; 256]; 4];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        tables[0][i] = crc;
        i += 1;
    }
    let mut t = 1;
    while t < 4 {
        let mut i = 0;
        while i < 256 {
            let prev = tables[t - 1][i];
            tables[t][i] = (prev >> 8) ^ tables[0][(prev & 0xff) as usize];
            i += 1;
        }
        t += 1;
    }
    tables
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const OK_FRAME: &[u8] = b"\x00\x00\x00\x06\x00\x00\x00\x00OK";

    #[test]
    fn crc_vectors() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(OK_FRAME), 0x56a7_1654);
        assert_eq!(masked_crc32c(OK_FRAME), 0xcf2b_9826);
        assert_eq!(crc32c(b"PUB test\n\x00\x00\x00\x05hello"), 0x7362_a281);
        assert_eq!(
            masked_crc32c(b"PUB test\n\x00\x00\x00\x05hello"),
            0xe785_d19d
        );
        for len in 0..20 {
            let data: Vec<u8> = (0..len).collect();
            let bytewise = data.iter().fold(!0u32, |crc, &b| {
                CRC_TABLES[0][((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8)
            });
            assert_eq!(crc32c(&data), !bytewise, "length {len}");
        }
    }

    /// The bytes nsqd 1.3.0 sent after granting snappy, and its next reply (captured).
    #[tokio::test]
    async fn decodes_nsqd_vectors() {
        let (client, mut server) = tokio::io::duplex(1024);
        let mut stream = SnappyStream::new(client);
        server
            .write_all(&unhex(
                "ff060000734e61507059 010e0000 26982bcf 00000006000000004f4b",
            ))
            .await
            .unwrap();
        server
            .write_all(&unhex("010e000026982bcf00000006000000004f4b"))
            .await
            .unwrap();
        let mut frame = [0; 10];
        stream.read_exact(&mut frame).await.unwrap();
        assert_eq!(frame, OK_FRAME);
        stream.read_exact(&mut frame).await.unwrap();
        assert_eq!(frame, OK_FRAME);
    }

    /// `PUB test hello` as the identifier and one uncompressed chunk, bytes that nsqd 1.3.0
    /// accepted.
    #[tokio::test]
    async fn encodes_the_spec_vector() {
        let (client, mut server) = tokio::io::duplex(1024);
        let mut stream = SnappyStream::new(client);
        stream
            .write_all(b"PUB test\n\x00\x00\x00\x05hello")
            .await
            .unwrap();
        stream.flush().await.unwrap();
        let mut wire = [0; 36];
        server.read_exact(&mut wire).await.unwrap();
        assert_eq!(
            wire[..],
            unhex("ff060000734e61507059 01160000 9dd185e7 50554220746573740a0000000568656c6c6f")
        );
    }

    #[tokio::test]
    async fn interoperates_with_the_snap_frame_codec() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i / 7) as u8).collect();
        // Ours to theirs.
        let (client, mut server) = tokio::io::duplex(1 << 22);
        let mut stream = SnappyStream::new(client);
        stream.write_all(&data).await.unwrap();
        stream.flush().await.unwrap();
        drop(stream);
        let mut wire = Vec::new();
        server.read_to_end(&mut wire).await.unwrap();
        assert!(
            wire.len() < data.len() / 2,
            "compressible data is compressed"
        );
        let mut plain = Vec::new();
        snap::read::FrameDecoder::new(&wire[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert!(plain == data);
        // Theirs to ours, one byte at a time.
        let mut encoder = snap::write::FrameEncoder::new(Vec::new());
        encoder.write_all(&data).unwrap();
        let wire = encoder.into_inner().unwrap();
        let (client, mut server) = tokio::io::duplex(1);
        let mut stream = SnappyStream::new(client);
        let feed = tokio::spawn(async move { server.write_all(&wire).await.unwrap() });
        let mut got = vec![0; data.len()];
        stream.read_exact(&mut got).await.unwrap();
        assert!(got == data);
        feed.await.unwrap();
    }

    #[test]
    fn refuses_corrupt_streams() {
        let cases: [(&str, &[u8]); 4] = [
            ("no identifier", b"\x01\x06\x00\x00abcdef"),
            ("unskippable", b"\xff\x06\x00\x00sNaPpY\x02\x01\x00\x00x"),
            (
                "bad crc",
                b"\xff\x06\x00\x00sNaPpY\x01\x05\x00\x00\x00\x00\x00\x00x",
            ),
            ("oversized", b"\xff\x06\x00\x00sNaPpY\x01\xff\xff\xff"),
        ];
        for (name, bytes) in cases {
            let mut stream = SnappyStream::new(tokio::io::empty());
            stream.input.extend_from_slice(bytes);
            let result = (|| {
                while stream.read_chunk()? {}
                Ok::<_, io::Error>(())
            })();
            assert!(result.is_err(), "{name}");
        }
        // Padding is skipped.
        let mut stream = SnappyStream::new(tokio::io::empty());
        stream
            .input
            .extend_from_slice(b"\xff\x06\x00\x00sNaPpY\xfe\x03\x00\x00abc");
        while stream.read_chunk().unwrap() {}
        assert!(stream.input.is_empty() && stream.plain.is_empty());
    }
}
