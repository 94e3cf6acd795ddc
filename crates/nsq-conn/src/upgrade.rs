//! Replacing the byte stream under a `Framed` without losing a byte: TLS and compression.

#[cfg(any(feature = "snappy", feature = "deflate"))]
pub(crate) use rewind::Rewind;

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Framed, FramedParts};

use crate::codec::NsqCodec;
use crate::error::ConnError;
use crate::transport::BoxTransport;

/// Starts TLS under the codec.
///
/// nsqd sends nothing between its IDENTIFY reply and the client's ClientHello, so bytes already
/// buffered here are a protocol error: they would be fed to TLS as ciphertext.
#[cfg(feature = "tls")]
pub(crate) async fn start_tls(
    framed: Framed<BoxTransport, NsqCodec>,
    tls: &crate::tls::ResolvedTls,
) -> Result<Framed<BoxTransport, NsqCodec>, ConnError> {
    use std::sync::Arc;

    let parts = framed.into_parts();
    if !parts.read_buf.is_empty() {
        return Err(ConnError::BytesBeforeTls {
            len: parts.read_buf.len(),
        });
    }
    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
    let stream = connector
        .connect(tls.server_name.clone(), parts.io)
        .await
        .map_err(|err| ConnError::Tls(Arc::new(err)))?;
    let (_, session) = stream.get_ref();
    tracing::info!(
        version = ?session.protocol_version(),
        cipher_suite = ?session.negotiated_cipher_suite().map(|s| s.suite()),
        "TLS established"
    );
    Ok(reassemble(
        Box::new(stream),
        parts.codec,
        BytesMut::new(),
        parts.write_buf,
    ))
}

/// Starts a compression layer under the codec, carrying buffered bytes into it.
#[cfg(any(feature = "snappy", feature = "deflate"))]
pub(crate) fn start_compression(
    framed: Framed<BoxTransport, NsqCodec>,
    compression: nsq_proto::Compression,
) -> Result<Framed<BoxTransport, NsqCodec>, ConnError> {
    use nsq_proto::{Compression, NegotiationError};

    let parts = framed.into_parts();
    let carried = parts.read_buf.len();
    let io = Rewind::new(parts.read_buf.freeze(), parts.io);
    let io: BoxTransport = match compression {
        #[cfg(feature = "snappy")]
        Compression::Snappy => Box::new(crate::compress::snappy::SnappyStream::new(io)),
        #[cfg(feature = "deflate")]
        Compression::Deflate { level } => {
            Box::new(crate::compress::deflate::DeflateStream::new(io, level))
        }
        #[allow(unreachable_patterns)]
        _ => return Err(NegotiationError::NotRequested("compression").into()),
    };
    tracing::info!(?compression, carried_bytes = carried, "compression enabled");
    Ok(reassemble(
        io,
        parts.codec,
        BytesMut::new(),
        parts.write_buf,
    ))
}

fn reassemble(
    io: BoxTransport,
    codec: NsqCodec,
    read_buf: BytesMut,
    write_buf: BytesMut,
) -> Framed<BoxTransport, NsqCodec> {
    let mut parts = FramedParts::new::<Bytes>(io, codec);
    parts.read_buf = read_buf;
    parts.write_buf = write_buf;
    Framed::from_parts(parts)
}

#[cfg(any(feature = "snappy", feature = "deflate"))]
mod rewind {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use bytes::{Buf, Bytes};
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    /// A stream that first yields `prefix`, then whatever `inner` yields; writes go to `inner`.
    ///
    /// When a compression layer starts, nsqd has usually already sent its first compressed bytes
    /// (the `OK` that confirms the upgrade), and they may sit in the old layer's read buffer. They
    /// belong to the new layer, so they are put in front of its input instead of being dropped.
    #[derive(Debug)]
    pub(crate) struct Rewind<T> {
        prefix: Bytes,
        inner: T,
    }

    impl<T> Rewind<T> {
        pub(crate) fn new(prefix: Bytes, inner: T) -> Self {
            Self { prefix, inner }
        }
    }

    impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            if !self.prefix.is_empty() {
                let n = self.prefix.len().min(buf.remaining());
                buf.put_slice(&self.prefix[..n]);
                self.prefix.advance(n);
                return Poll::Ready(Ok(()));
            }
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.inner).poll_write(cx, buf)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    #[cfg(test)]
    mod tests {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        use super::*;

        #[tokio::test]
        async fn rewind_yields_prefix_then_inner() {
            let (client, mut server) = tokio::io::duplex(64);
            let mut rewind = Rewind::new(Bytes::from_static(b"abc"), client);
            server.write_all(b"def").await.unwrap();
            drop(server);
            let mut out = Vec::new();
            rewind.read_to_end(&mut out).await.unwrap();
            assert_eq!(out, b"abcdef");
        }
    }
}
