//! Raw deflate (RFC 1951, no zlib or gzip wrapper, 32 KiB window) in both directions.
//!
//! One stream per direction for the life of the connection, never finished. Every flush ends
//! with a sync flush (the empty stored block `00 00 ff ff`): nsqd acts on nothing before it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{Pending, invalid_data, poll_fill};

/// Input compressed per write call, so one call's output stays bounded.
const MAX_INPUT_PER_WRITE: usize = 64 * 1024;
/// Spare room kept in the output buffer before each compressor call.
const OUTPUT_RESERVE: usize = 32 * 1024;

/// A raw-deflate layer over `T`.
pub(crate) struct DeflateStream<T> {
    inner: T,
    compress: Compress,
    pending: Pending,
    /// Input went into the compressor since the last sync flush.
    unflushed: bool,
    decompress: Decompress,
    input: BytesMut,
    read_eof: bool,
}

impl<T> DeflateStream<T> {
    /// A layer whose compressor runs at `level` (1 to 9).
    pub(crate) fn new(inner: T, level: u8) -> Self {
        Self {
            inner,
            compress: Compress::new(Compression::new(u32::from(level)), false),
            pending: Pending::default(),
            unflushed: false,
            decompress: Decompress::new(false),
            input: BytesMut::new(),
            read_eof: false,
        }
    }

    /// Ends the current batch with a sync flush, appending to the pending output.
    fn sync_flush(&mut self) -> io::Result<()> {
        if !self.unflushed {
            return Ok(());
        }
        let out = self.pending.buf_mut();
        loop {
            out.reserve(OUTPUT_RESERVE);
            self.compress
                .compress_vec(&[], out, FlushCompress::Sync)
                .map_err(|err| invalid_data(format!("deflate: {err}")))?;
            // The compressor stops early only when the output is full.
            if out.len() < out.capacity() {
                break;
            }
        }
        self.unflushed = false;
        Ok(())
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for DeflateStream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            // Also called with no new input: the inflater may hold output from earlier input.
            let (in_before, out_before) = (this.decompress.total_in(), this.decompress.total_out());
            let status = this
                .decompress
                .decompress(
                    &this.input,
                    buf.initialize_unfilled(),
                    FlushDecompress::None,
                )
                .map_err(|err| invalid_data(format!("deflate: {err}")))?;
            let consumed = (this.decompress.total_in() - in_before) as usize;
            let produced = (this.decompress.total_out() - out_before) as usize;
            this.input.advance(consumed);
            buf.advance(produced);
            if produced > 0 || status == Status::StreamEnd {
                // A finished stream reads as end of file once its output is delivered.
                return Poll::Ready(Ok(()));
            }
            if consumed > 0 {
                continue;
            }
            if this.read_eof {
                return Poll::Ready(Ok(()));
            }
            if ready!(poll_fill(&mut this.inner, cx, &mut this.input))? == 0 {
                this.read_eof = true;
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for DeflateStream<T> {
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
        let input = &buf[..buf.len().min(MAX_INPUT_PER_WRITE)];
        let out = this.pending.buf_mut();
        let start = this.compress.total_in();
        loop {
            let consumed = (this.compress.total_in() - start) as usize;
            if consumed == input.len() {
                break;
            }
            if out.capacity() - out.len() < OUTPUT_RESERVE / 2 {
                out.reserve(OUTPUT_RESERVE);
            }
            this.compress
                .compress_vec(&input[consumed..], out, FlushCompress::None)
                .map_err(|err| invalid_data(format!("deflate: {err}")))?;
        }
        this.unflushed = true;
        Poll::Ready(Ok(input.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.sync_flush()?;
        ready!(this.pending.poll_drain(&mut this.inner, cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.sync_flush()?;
        ready!(this.pending.poll_drain(&mut this.inner, cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
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

    /// nsqd 1.3.0's first bytes after granting deflate (captured), then its next reply, which only
    /// inflates as a continuation of the first.
    #[tokio::test]
    async fn decodes_nsqd_vectors_across_reads() {
        let (client, mut server) = tokio::io::duplex(1024);
        let mut stream = DeflateStream::new(client, 6);
        server
            .write_all(&unhex("6260606063606060f0f706000000ffff000000ffff"))
            .await
            .unwrap();
        let mut frame = [0; 10];
        stream.read_exact(&mut frame).await.unwrap();
        assert_eq!(frame, OK_FRAME);
        server.write_all(&unhex("42b000000000ffff")).await.unwrap();
        stream.read_exact(&mut frame).await.unwrap();
        assert_eq!(frame, OK_FRAME);
    }

    #[tokio::test]
    async fn every_flush_ends_with_a_sync_marker() {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let mut stream = DeflateStream::new(client, 6);
        stream
            .write_all(b"PUB test\n\x00\x00\x00\x05hello")
            .await
            .unwrap();
        stream.flush().await.unwrap();
        let mut wire = vec![0; 4096];
        let n = server.read(&mut wire).await.unwrap();
        assert!(
            wire[..n].ends_with(&[0, 0, 0xff, 0xff]),
            "{:x?}",
            &wire[..n]
        );
        let mut inflater = Decompress::new(false);
        let mut plain = Vec::with_capacity(100);
        inflater
            .decompress_vec(&wire[..n], &mut plain, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(plain, b"PUB test\n\x00\x00\x00\x05hello");
        // A flush with nothing new writes nothing.
        stream.flush().await.unwrap();
        drop(stream);
        assert_eq!(server.read(&mut wire).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn large_writes_round_trip_through_a_small_pipe() {
        for level in [1, 9] {
            let (a, b) = tokio::io::duplex(4096);
            let mut writer = DeflateStream::new(a, level);
            let mut reader = DeflateStream::new(b, level);
            let data: Vec<u8> = (0..3_000_000u32)
                .map(|i| (i % 251) as u8 ^ (i >> 13) as u8)
                .collect();
            let expected = data.clone();
            let write = tokio::spawn(async move {
                writer.write_all(&data).await.unwrap();
                writer.flush().await.unwrap();
                writer
            });
            let mut got = vec![0; expected.len()];
            reader.read_exact(&mut got).await.unwrap();
            assert!(got == expected, "level {level}");
            write.await.unwrap();
        }
    }
}
