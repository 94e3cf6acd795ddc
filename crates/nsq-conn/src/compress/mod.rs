//! Compression layers: each wraps the whole byte stream in both directions, below the codec,
//! because nsqd compresses the connection, not individual frames.
//!
//! Both layers follow the same rules: a write compresses at once (so memory stays bounded and
//! no command waits in the compressor), output that the inner stream cannot take yet is kept
//! and pushes back on further writes, and `poll_flush` ends the batch so nsqd can act on it.

#[cfg(feature = "deflate")]
pub(crate) mod deflate;
#[cfg(feature = "snappy")]
pub(crate) mod snappy;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Compressed output above which a layer stops taking input until the inner stream drains.
const OUTPUT_HIGH_WATER: usize = 64 * 1024;

/// How much compressed input a layer reads from the inner stream at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Compressed bytes waiting for the inner stream.
#[derive(Debug, Default)]
struct Pending {
    buf: Vec<u8>,
    pos: usize,
}

impl Pending {
    fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Room to append to, with already-written bytes dropped first.
    fn buf_mut(&mut self) -> &mut Vec<u8> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        &mut self.buf
    }

    /// Writes as much as the inner stream takes; `Ready(Ok)` once everything is written.
    fn poll_drain<T: AsyncWrite + Unpin>(
        &mut self,
        inner: &mut T,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while self.pos < self.buf.len() {
            match Pin::new(&mut *inner).poll_write(cx, &self.buf[self.pos..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => self.pos += n,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.buf.clear();
        self.pos = 0;
        Poll::Ready(Ok(()))
    }

    /// Drains what it can; `Pending` only while the backlog is above the high-water mark.
    fn poll_make_room<T: AsyncWrite + Unpin>(
        &mut self,
        inner: &mut T,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        match self.poll_drain(inner, cx) {
            Poll::Ready(result) => Poll::Ready(result),
            Poll::Pending if self.len() >= OUTPUT_HIGH_WATER => Poll::Pending,
            Poll::Pending => Poll::Ready(Ok(())),
        }
    }
}

/// Reads up to [`READ_CHUNK`] more bytes from `inner` onto the end of `input`; `Ok(0)` at
/// end of stream.
fn poll_fill<T: AsyncRead + Unpin>(
    inner: &mut T,
    cx: &mut Context<'_>,
    input: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    let start = input.len();
    input.resize(start + READ_CHUNK, 0);
    let mut buf = ReadBuf::new(&mut input[start..]);
    let result = Pin::new(inner).poll_read(cx, &mut buf);
    let n = buf.filled().len();
    input.truncate(start + n);
    match result {
        Poll::Ready(Ok(())) => Poll::Ready(Ok(n)),
        Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
        Poll::Pending => Poll::Pending,
    }
}

fn invalid_data(message: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
