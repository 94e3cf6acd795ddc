//! `FakeNsqd`: nsqd's side of one connection, scripted step by step by a test.

use std::io::{Read, Write};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use flate2::{Compress, Decompress, FlushCompress, FlushDecompress};
use nsq_proto::server::{ClientCommand, CommandDecoder, encode_error, encode_response};
use nsq_proto::{HEARTBEAT, OK, ServerError};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

/// The largest command body the fake accepts (nsqd's default `--max-body-size`).
const MAX_BODY_SIZE: u32 = 5 * 1024 * 1024;

/// nsqd's side of a connection, driven by the test one step at a time.
///
/// [`FakeNsqd::pair`] returns the client's end of an in-memory pipe and the fake. The test then
/// reads what the client sent ([`expect_magic`](Self::expect_magic),
/// [`expect_command`](Self::expect_command), ...) and answers ([`send_ok`](Self::send_ok),
/// [`send_heartbeat`](Self::send_heartbeat), [`send_raw`](Self::send_raw), ...), so a test reads
/// as the conversation it checks. Commands are parsed with nsq-proto's `server` module.
///
/// The fake can switch on snappy or deflate the way nsqd does, using the `snap` and `flate2`
/// crates' own stream formats (not the client's code), and can run TLS with rustls.
///
/// ```no_run
/// # async fn demo() {
/// use nsq_test_support::FakeNsqd;
///
/// let (client_io, mut nsqd) = FakeNsqd::pair();
/// // ... start the client's handshake on `client_io` in another task ...
/// nsqd.expect_magic().await;
/// let identify = nsqd.expect_identify().await;
/// nsqd.send_response(FakeNsqd::identify_reply(&identify).to_string().as_bytes()).await;
/// # drop(client_io);
/// # }
/// ```
pub struct FakeNsqd {
    io: Box<dyn Io>,
    decoder: CommandDecoder,
    /// Client bytes after decompression, not yet parsed.
    plain: BytesMut,
    compression: Option<PeerCompression>,
    byte_at_a_time: bool,
    /// Read at most this many bytes per read, pausing before each read.
    slow_reads: Option<(usize, Duration)>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A compression layer of the fake's own, the way nsqd starts one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeCompression {
    /// Snappy framing format.
    Snappy,
    /// Raw deflate at this level.
    Deflate(u32),
}

enum PeerCompression {
    Snappy {
        encoder: Box<snap::write::FrameEncoder<Vec<u8>>>,
        /// Framed bytes from the client, not yet decoded.
        raw: BytesMut,
        identifier_seen: bool,
    },
    Deflate {
        compress: Box<Compress>,
        decompress: Box<Decompress>,
        raw: BytesMut,
    },
}

impl FakeNsqd {
    /// An in-memory pipe with 64 KiB of buffer in each direction: the client's end and the fake.
    pub fn pair() -> (DuplexStream, Self) {
        Self::pair_with_capacity(64 * 1024)
    }

    /// As [`pair`](Self::pair), with `capacity` bytes of buffer in each direction. With 1, the
    /// client can read at most one byte per read.
    pub fn pair_with_capacity(capacity: usize) -> (DuplexStream, Self) {
        let (client, server) = tokio::io::duplex(capacity);
        (client, Self::new(server))
    }

    /// A fake over any byte stream (a TCP stream from a loopback listener, say).
    pub fn new(io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static) -> Self {
        Self {
            io: Box::new(io),
            decoder: CommandDecoder::new(MAX_BODY_SIZE),
            plain: BytesMut::new(),
            compression: None,
            byte_at_a_time: false,
            slow_reads: None,
        }
    }

    /// From now on, read at most `chunk` bytes at a time and pause for `pause` before each
    /// read: a slow reader that still makes progress. `None` reads at full speed again.
    pub fn set_slow_reads(&mut self, slow: Option<(usize, Duration)>) {
        self.slow_reads = slow;
    }

    /// From now on, write every byte separately (yielding in between), so that the client sees
    /// frames arrive in the smallest possible pieces.
    pub fn set_byte_at_a_time(&mut self, on: bool) {
        self.byte_at_a_time = on;
    }

    /// The next command from the client.
    ///
    /// # Panics
    ///
    /// If the client closes the connection first, or sends something nsqd would reject.
    pub async fn expect_command(&mut self) -> ClientCommand {
        match self.next_command().await {
            Some(command) => command,
            None => panic!("fake nsqd: the client closed the connection, a command was expected"),
        }
    }

    /// The next command, or `None` when the client closes the connection.
    ///
    /// # Panics
    ///
    /// If the client sends something nsqd would reject.
    pub async fn next_command(&mut self) -> Option<ClientCommand> {
        loop {
            match self.decoder.decode(&mut self.plain) {
                Ok(Some(command)) => return Some(command),
                Ok(None) => {}
                Err(err) => panic!("fake nsqd: the client sent an invalid command: {err}"),
            }
            let mut buf = vec![0; 64 * 1024];
            if let Some((chunk, pause)) = self.slow_reads {
                tokio::time::sleep(pause).await;
                buf.truncate(chunk.max(1));
            }
            let n = self
                .io
                .read(&mut buf)
                .await
                .expect("fake nsqd: reading from the client");
            if n == 0 {
                assert!(
                    self.plain.is_empty(),
                    "fake nsqd: the client closed the connection in the middle of a command"
                );
                return None;
            }
            self.take_input(&buf[..n]);
        }
    }

    /// Waits for the client to close the connection.
    ///
    /// # Panics
    ///
    /// If the client sends a command first.
    pub async fn expect_eof(&mut self) {
        if let Some(command) = self.next_command().await {
            panic!("fake nsqd: expected the client to close, got {command:?}");
        }
    }

    /// Reads the protocol magic.
    ///
    /// # Panics
    ///
    /// If anything else arrives.
    pub async fn expect_magic(&mut self) {
        let command = self.expect_command().await;
        assert_eq!(
            command,
            ClientCommand::Magic,
            "fake nsqd: expected the magic"
        );
    }

    /// Reads an IDENTIFY and returns its JSON body.
    ///
    /// # Panics
    ///
    /// If anything else arrives or the body is not JSON.
    pub async fn expect_identify(&mut self) -> Value {
        match self.expect_command().await {
            ClientCommand::Identify { body } => {
                serde_json::from_slice(&body).expect("fake nsqd: IDENTIFY body is JSON")
            }
            other => panic!("fake nsqd: expected IDENTIFY, got {other:?}"),
        }
    }

    /// Reads the magic and IDENTIFY and answers with nsqd 1.3.0's default reply, adjusted to
    /// what the client asked for ([`identify_reply`](Self::identify_reply)), without enabling
    /// anything. Returns the IDENTIFY body.
    pub async fn accept_plain(&mut self) -> Value {
        self.expect_magic().await;
        self.answer_identify_plainly().await
    }

    /// Reads the check a producer ends its plaintext handshake with (`NOP`, then IDENTIFY
    /// again) and answers it as an nsqd that does not require TLS: with the IDENTIFY reply.
    /// Returns the second IDENTIFY's body.
    ///
    /// # Panics
    ///
    /// If anything else arrives.
    pub async fn answer_tls_check(&mut self) -> Value {
        let command = self.expect_command().await;
        assert_eq!(
            command,
            ClientCommand::Nop,
            "fake nsqd: expected the NOP of the TLS check"
        );
        self.answer_identify_plainly().await
    }

    /// Reads an IDENTIFY and answers it as nsqd 1.3.0 with its default options, enabling
    /// nothing; returns its body.
    async fn answer_identify_plainly(&mut self) -> Value {
        let identify = self.expect_identify().await;
        let mut reply = Self::identify_reply(&identify);
        for feature in ["tls_v1", "snappy", "deflate"] {
            reply[feature] = json!(false);
        }
        self.send_response(reply.to_string().as_bytes()).await;
        identify
    }

    /// The reply nsqd 1.3.0 gives with its default options, granting whatever compression and
    /// TLS `identify` asked for (adjust the fields before sending to script other servers).
    pub fn identify_reply(identify: &Value) -> Value {
        let asked = |key: &str| identify.get(key).and_then(Value::as_bool).unwrap_or(false);
        json!({
            "max_rdy_count": 2500,
            "version": "1.3.0",
            "max_msg_timeout": 900000,
            "msg_timeout": 60000,
            "tls_v1": asked("tls_v1"),
            "deflate": asked("deflate"),
            "deflate_level": identify.get("deflate_level").and_then(Value::as_i64).unwrap_or(6).clamp(1, 6),
            "max_deflate_level": 6,
            "snappy": asked("snappy"),
            "sample_rate": 0,
            "auth_required": false,
            "output_buffer_size": 16384,
            "output_buffer_timeout": 250
        })
    }

    /// The bytes of a response frame carrying `payload`.
    pub fn response_frame(payload: &[u8]) -> BytesMut {
        let mut frame = BytesMut::new();
        encode_response(&mut frame, payload);
        frame
    }

    /// The bytes of an error frame with nsqd's `text` (`E_CODE description`).
    pub fn error_frame(text: &str) -> BytesMut {
        let mut frame = BytesMut::new();
        encode_error(
            &mut frame,
            &ServerError::parse(Bytes::copy_from_slice(text.as_bytes())),
        );
        frame
    }

    /// Sends a response frame through the current layers.
    pub async fn send_response(&mut self, payload: &[u8]) {
        let frame = Self::response_frame(payload);
        self.send_frames(&frame).await;
    }

    /// Sends `OK`.
    pub async fn send_ok(&mut self) {
        self.send_response(OK).await;
    }

    /// Sends a heartbeat.
    pub async fn send_heartbeat(&mut self) {
        self.send_response(HEARTBEAT).await;
    }

    /// Sends an error frame with nsqd's `text` (`E_CODE description`).
    pub async fn send_error(&mut self, text: &str) {
        let frame = Self::error_frame(text);
        self.send_frames(&frame).await;
    }

    /// Sends already encoded frames through the current layers (compressed if compression is
    /// on), in one write.
    pub async fn send_frames(&mut self, frames: &[u8]) {
        let bytes = self.encode(frames);
        self.send_raw(&bytes).await;
    }

    /// Encodes frames for the current layers without sending them, so that a test can join
    /// bytes from before and after an upgrade into one write.
    pub fn encode(&mut self, frames: &[u8]) -> Vec<u8> {
        match &mut self.compression {
            None => frames.to_vec(),
            Some(PeerCompression::Snappy { encoder, .. }) => {
                encoder
                    .write_all(frames)
                    .expect("snappy encoding into memory");
                encoder.flush().expect("snappy encoding into memory");
                std::mem::take(encoder.get_mut())
            }
            Some(PeerCompression::Deflate { compress, .. }) => {
                let mut out = Vec::with_capacity(frames.len() + 64);
                let mut consumed = 0;
                loop {
                    out.reserve(64 * 1024);
                    let before = compress.total_in();
                    compress
                        .compress_vec(&frames[consumed..], &mut out, FlushCompress::Sync)
                        .expect("deflate encoding into memory");
                    consumed += (compress.total_in() - before) as usize;
                    if consumed == frames.len() && out.len() < out.capacity() {
                        break out;
                    }
                }
            }
        }
    }

    /// Writes bytes as they are, bypassing compression, in one write (or byte by byte).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        if self.byte_at_a_time {
            for byte in bytes {
                self.io
                    .write_all(std::slice::from_ref(byte))
                    .await
                    .expect("fake nsqd: writing to the client");
                self.io.flush().await.expect("fake nsqd: flushing");
                tokio::task::yield_now().await;
            }
        } else {
            self.io
                .write_all(bytes)
                .await
                .expect("fake nsqd: writing to the client");
            self.io.flush().await.expect("fake nsqd: flushing");
        }
    }

    /// Starts compressing both directions from here on, as nsqd does after its IDENTIFY reply
    /// (or the `OK` after TLS). Nothing is sent; nsqd's `OK` is up to the test.
    pub fn start_compression(&mut self, compression: FakeCompression) {
        assert!(
            self.compression.is_none(),
            "fake nsqd: compression is already on"
        );
        assert!(
            self.plain.is_empty(),
            "fake nsqd: the client sent bytes before the upgrade"
        );
        self.compression = Some(match compression {
            FakeCompression::Snappy => PeerCompression::Snappy {
                encoder: Box::new(snap::write::FrameEncoder::new(Vec::new())),
                raw: BytesMut::new(),
                identifier_seen: false,
            },
            FakeCompression::Deflate(level) => PeerCompression::Deflate {
                compress: Box::new(Compress::new(flate2::Compression::new(level), false)),
                decompress: Box::new(Decompress::new(false)),
                raw: BytesMut::new(),
            },
        });
    }

    /// Runs the server side of a TLS handshake with `config`, as nsqd does after granting
    /// `tls_v1`; returns the protocol version agreed.
    ///
    /// # Panics
    ///
    /// If the handshake fails.
    pub async fn start_tls(
        &mut self,
        config: Arc<rustls::ServerConfig>,
    ) -> rustls::ProtocolVersion {
        assert!(
            self.plain.is_empty(),
            "fake nsqd: the client sent bytes before TLS"
        );
        let io = std::mem::replace(&mut self.io, Box::new(Closed));
        let stream = tokio_rustls::TlsAcceptor::from(config)
            .accept(io)
            .await
            .expect("fake nsqd: TLS handshake");
        let version = stream
            .get_ref()
            .1
            .protocol_version()
            .expect("a version after the handshake");
        self.io = Box::new(stream);
        version
    }

    /// Runs the server side of a TLS handshake and returns its error, for handshakes the
    /// client is expected to abort.
    ///
    /// # Panics
    ///
    /// If the handshake succeeds.
    pub async fn fail_tls(&mut self, config: Arc<rustls::ServerConfig>) -> std::io::Error {
        let io = std::mem::replace(&mut self.io, Box::new(Closed));
        match tokio_rustls::TlsAcceptor::from(config).accept(io).await {
            Ok(_) => panic!("fake nsqd: the TLS handshake was expected to fail"),
            Err(err) => err,
        }
    }

    fn take_input(&mut self, bytes: &[u8]) {
        match &mut self.compression {
            None => self.plain.extend_from_slice(bytes),
            Some(PeerCompression::Deflate {
                decompress, raw, ..
            }) => {
                raw.extend_from_slice(bytes);
                loop {
                    let mut out = Vec::with_capacity(64 * 1024);
                    let before = decompress.total_in();
                    decompress
                        .decompress_vec(raw, &mut out, FlushDecompress::None)
                        .expect("fake nsqd: the client's deflate stream is valid");
                    raw.advance((decompress.total_in() - before) as usize);
                    self.plain.extend_from_slice(&out);
                    if out.is_empty() {
                        break;
                    }
                }
            }
            Some(PeerCompression::Snappy {
                raw,
                identifier_seen,
                ..
            }) => {
                raw.extend_from_slice(bytes);
                // Hand snap's decoder whole chunks only, each batch starting with the stream
                // identifier (which the format allows to repeat).
                let mut end = 0;
                while raw.len() >= end + 4 {
                    let len = usize::from(raw[end + 1])
                        | usize::from(raw[end + 2]) << 8
                        | usize::from(raw[end + 3]) << 16;
                    if raw.len() < end + 4 + len {
                        break;
                    }
                    end += 4 + len;
                }
                if end == 0 {
                    return;
                }
                let chunks = raw.split_to(end);
                let mut framed = Vec::with_capacity(chunks.len() + 10);
                if !*identifier_seen {
                    assert_eq!(
                        &chunks[..10.min(chunks.len())],
                        b"\xff\x06\x00\x00sNaPpY",
                        "fake nsqd: the client's snappy stream starts with the identifier"
                    );
                    *identifier_seen = true;
                } else {
                    framed.extend_from_slice(b"\xff\x06\x00\x00sNaPpY");
                }
                framed.extend_from_slice(&chunks);
                let mut decoded = Vec::new();
                snap::read::FrameDecoder::new(&framed[..])
                    .read_to_end(&mut decoded)
                    .expect("fake nsqd: the client's snappy stream is valid");
                self.plain.extend_from_slice(&decoded);
            }
        }
    }
}

impl std::fmt::Debug for FakeNsqd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeNsqd")
            .field("buffered", &self.plain.len())
            .field("compressed", &self.compression.is_some())
            .field("byte_at_a_time", &self.byte_at_a_time)
            .finish_non_exhaustive()
    }
}

/// A placeholder stream while the real one is moved into a TLS layer.
struct Closed;

impl AsyncRead for Closed {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Closed {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Err(std::io::ErrorKind::NotConnected.into()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
