//! `Connection`: a connection after its handshake, as frames in and commands out.

use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Sink, Stream};
use nsq_proto::{Command, Frame, HeartbeatMonitor, Response};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};
use tokio_util::codec::Framed;
use tracing::Instrument;

use crate::codec::NsqCodec;
use crate::config::ConnConfig;
use crate::error::ConnError;
use crate::handshake::{ConnectionInfo, Established};
use crate::transport::{BoxTransport, Meter};

/// Buffered command bytes above which [`Connection::poll_send_ready`] flushes first.
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// One connection to nsqd after a successful handshake.
///
/// It is a stream of frames in and a buffer of commands out, and it looks after itself:
///
/// - heartbeats are answered with `NOP` (flushed at once) and never handed out;
/// - when nothing at all arrives for twice the negotiated heartbeat interval, it fails with
///   [`ConnError::HeartbeatTimeout`]; with heartbeats disabled it has no idle timeout;
/// - a flush fails with [`ConnError::WriteTimeout`] only when no byte at all could be written
///   for the write timeout, so a large command on a slow link is not cut off.
///
/// # Driving it
///
/// The poll methods let one task drive reads, writes and flushes in the same loop without ever
/// waiting on a flush while replies go unread (nsqd stops reading when its replies back up, so
/// that would deadlock a long pipeline):
/// [`poll_recv`](Self::poll_recv) for frames, [`buffer_command`](Self::buffer_command) /
/// [`buffer_bytes`](Self::buffer_bytes) to queue commands (no I/O),
/// [`poll_send_ready`](Self::poll_send_ready) for back-pressure, and
/// [`poll_flush`](Self::poll_flush) to write them out. Commands accumulate in one buffer and go
/// out in as few writes as possible; with compression, each flush is one compressed batch.
/// The same operations are available as [`Stream`] and [`Sink<Bytes>`].
///
/// For simple use, [`send`](Self::send) buffers and flushes one command while still reading
/// (frames that arrive meanwhile are kept for [`recv`](Self::recv)).
///
/// After the first error every operation returns that error (the [`Stream`] yields it once and
/// then ends); frames that had already arrived are still handed out first.
#[must_use = "a connection does nothing unless it is polled"]
pub struct Connection {
    framed: Framed<BoxTransport, NsqCodec>,
    meter: Arc<Meter>,
    info: ConnectionInfo,
    span: tracing::Span,
    heartbeat: HeartbeatMonitor,
    heartbeat_timer: Pin<Box<Sleep>>,
    seen_read: u64,
    write_timeout: Duration,
    write_timer: Pin<Box<Sleep>>,
    write_timer_armed: bool,
    seen_written: u64,
    /// A NOP was buffered and is not known to be flushed yet.
    nop_unflushed: bool,
    /// Frames read while flushing, handed out before anything else.
    received: VecDeque<Frame>,
    failed: Option<ConnError>,
    /// A write failed. Writing is over, but reading goes on until nsqd's side ends (or the
    /// write timeout passes), so that replies nsqd sent before it went away are not lost.
    write_failed: Option<ConnError>,
    /// The stream has yielded the failure (it ends after that).
    failure_yielded: bool,
    /// The write half was shut down locally.
    closed: bool,
}

impl Connection {
    /// Resolves and dials the configured address (within the dial timeout), then runs the
    /// handshake (within the handshake timeout).
    ///
    /// # Errors
    ///
    /// [`ConnError::Resolve`], [`ConnError::Connect`] or [`ConnError::ConnectTimeout`] when no
    /// TCP connection could be made; any handshake error as for
    /// [`handshake`](Self::handshake).
    pub async fn connect(config: &ConnConfig) -> Result<Self, ConnError> {
        let span = tracing::info_span!("nsq_conn", addr = %config.address());
        async {
            let stream = crate::connect::dial(config).await?;
            let peer = stream.peer_addr().ok();
            let established = crate::handshake::handshake(stream, config).await?;
            let mut connection = Self::new(established, config);
            connection.info.peer_addr = peer;
            Ok(connection)
        }
        .instrument(span.clone())
        .await
        .map(|mut connection: Self| {
            connection.span = span;
            connection
        })
    }

    /// Runs the handshake over an already connected byte stream: the magic, IDENTIFY, then
    /// the upgrades nsqd grants (TLS, then snappy or deflate), then AUTH if nsqd requires it,
    /// all within the handshake timeout.
    ///
    /// # Errors
    ///
    /// [`ConnError::HandshakeTimeout`]; [`ConnError::IdentifyRejected`] or
    /// [`ConnError::AuthRejected`] with nsqd's error; [`ConnError::Negotiation`] when TLS was
    /// asked for and not granted, AUTH is required without a secret, or nsqd enabled something
    /// not asked for; [`ConnError::Tls`]; [`ConnError::Decode`] (for instance when `io` is
    /// nsqd's HTTP port); [`ConnError::Io`] and [`ConnError::Closed`].
    pub async fn handshake<IO>(io: IO, config: &ConnConfig) -> Result<Self, ConnError>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let span = tracing::info_span!("nsq_conn", addr = %config.address());
        let established = crate::handshake::handshake(io, config)
            .instrument(span.clone())
            .await?;
        let mut connection = Self::new(established, config);
        connection.span = span;
        Ok(connection)
    }

    fn new(established: Established, config: &ConnConfig) -> Self {
        let Established {
            framed,
            meter,
            info,
        } = established;
        let now = Instant::now();
        let heartbeat = HeartbeatMonitor::new(info.heartbeat_interval, now.into_std());
        let deadline = heartbeat.deadline().map_or(now, Instant::from_std);
        Self {
            framed,
            seen_read: meter.read(),
            seen_written: meter.written(),
            meter,
            info,
            span: tracing::Span::none(),
            heartbeat,
            heartbeat_timer: Box::pin(tokio::time::sleep_until(deadline)),
            write_timeout: config.write_timeout(),
            write_timer: Box::pin(tokio::time::sleep_until(now)),
            write_timer_armed: false,
            nop_unflushed: false,
            received: VecDeque::new(),
            failed: None,
            write_failed: None,
            failure_yielded: false,
            closed: false,
        }
    }

    /// What the handshake established.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// The error the connection failed with, if it has.
    pub fn error(&self) -> Option<&ConnError> {
        self.failed.as_ref()
    }

    /// Bytes buffered for writing and not yet written.
    pub fn write_buffer_len(&self) -> usize {
        self.framed.write_buffer().len()
    }

    /// Polls for the next frame from nsqd; heartbeats are answered here and never returned.
    ///
    /// Also drives the flush of a pending heartbeat answer and the heartbeat deadline, so the
    /// task that owns the connection must keep polling this.
    ///
    /// # Errors
    ///
    /// The connection's failure: [`ConnError::Closed`] when nsqd closed it,
    /// [`ConnError::HeartbeatTimeout`], [`ConnError::Decode`], [`ConnError::Io`], or whatever
    /// failed a write. Returned again on every later call.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<Frame, ConnError>> {
        if let Some(frame) = self.received.pop_front() {
            return Poll::Ready(Ok(frame));
        }
        self.poll_read_frame(cx)
    }

    /// Whether more commands may be buffered: flushes first when the buffer is above 64 KiB.
    ///
    /// # Errors
    ///
    /// The connection's failure, or a write error while flushing.
    pub fn poll_send_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        self.check_writable()?;
        if self.framed.write_buffer().len() >= WRITE_HIGH_WATER {
            return self.poll_flush(cx);
        }
        Poll::Ready(Ok(()))
    }

    /// Encodes a command into the write buffer. Nothing is written until a flush.
    ///
    /// # Errors
    ///
    /// The connection's failure, or [`ConnError::Encode`] when the command does not fit the
    /// wire format (nothing is buffered then).
    pub fn buffer_command(&mut self, command: &Command<'_>) -> Result<(), ConnError> {
        self.check_writable()?;
        command.encode(self.framed.write_buffer_mut())?;
        Ok(())
    }

    /// Appends already encoded commands to the write buffer. Nothing is written until a flush.
    ///
    /// # Errors
    ///
    /// The connection's failure.
    pub fn buffer_bytes(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        self.check_writable()?;
        self.framed.write_buffer_mut().extend_from_slice(bytes);
        Ok(())
    }

    /// Writes everything buffered and flushes every layer (ending a compressed batch).
    ///
    /// # Errors
    ///
    /// The connection's failure, a write error, or [`ConnError::WriteTimeout`] when no byte
    /// could be written for the write timeout.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        if let Some(err) = self.failed.as_ref().or(self.write_failed.as_ref()) {
            return Poll::Ready(Err(err.clone()));
        }
        match Sink::<Bytes>::poll_flush(Pin::new(&mut self.framed), cx) {
            Poll::Ready(Ok(())) => {
                self.write_timer_armed = false;
                self.nop_unflushed = false;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(self.fail_write(err, cx))),
            Poll::Pending => match self.poll_write_stall(cx) {
                Ok(()) => Poll::Pending,
                Err(err) => Poll::Ready(Err(self.fail(err))),
            },
        }
    }

    /// Flushes, then shuts down the write side. Frames nsqd still sends can be read until it
    /// closes its side.
    ///
    /// # Errors
    ///
    /// As for [`poll_flush`](Self::poll_flush).
    pub fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        if self.closed {
            return Poll::Ready(Ok(()));
        }
        if let Some(err) = self.failed.as_ref().or(self.write_failed.as_ref()) {
            return Poll::Ready(Err(err.clone()));
        }
        match Sink::<Bytes>::poll_close(Pin::new(&mut self.framed), cx) {
            Poll::Ready(Ok(())) => {
                self.closed = true;
                tracing::info!(parent: &self.span, "connection closed");
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(self.fail(err))),
            Poll::Pending => match self.poll_write_stall(cx) {
                Ok(()) => Poll::Pending,
                Err(err) => Poll::Ready(Err(self.fail(err))),
            },
        }
    }

    /// Buffers `command` and flushes it, reading meanwhile; frames that arrive are kept for
    /// [`recv`](Self::recv).
    ///
    /// # Errors
    ///
    /// As for [`buffer_command`](Self::buffer_command) and [`poll_flush`](Self::poll_flush);
    /// also a read failure that happens while flushing.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future leaves the command buffered (or partly written); the next flush
    /// writes the rest.
    pub async fn send(&mut self, command: Command<'_>) -> Result<(), ConnError> {
        self.buffer_command(&command)?;
        poll_fn(|cx| self.poll_flush_reading(cx)).await
    }

    /// The next frame from nsqd (heartbeats excluded).
    ///
    /// # Errors
    ///
    /// As for [`poll_recv`](Self::poll_recv).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a frame is either returned or stays queued.
    pub async fn recv(&mut self) -> Result<Frame, ConnError> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Flushes and shuts down the write side (see [`poll_close`](Self::poll_close)).
    ///
    /// # Errors
    ///
    /// As for [`poll_flush`](Self::poll_flush).
    pub async fn close(&mut self) -> Result<(), ConnError> {
        poll_fn(|cx| self.poll_close(cx)).await
    }

    fn check_writable(&self) -> Result<(), ConnError> {
        match (&self.failed, &self.write_failed, self.closed) {
            (Some(err), _, _) | (None, Some(err), _) => Err(err.clone()),
            (None, None, true) => Err(ConnError::Closed),
            (None, None, false) => Ok(()),
        }
    }

    /// Flushes while reading ahead, so that nsqd never blocks on replies nobody reads.
    fn poll_flush_reading(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        let flushed = self.poll_flush(cx);
        if flushed.is_pending() {
            loop {
                match self.poll_read_frame(cx) {
                    Poll::Ready(Ok(frame)) => self.received.push_back(frame),
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                    Poll::Pending => break,
                }
            }
        }
        flushed
    }

    fn poll_read_frame(&mut self, cx: &mut Context<'_>) -> Poll<Result<Frame, ConnError>> {
        if let Some(err) = &self.failed {
            return Poll::Ready(Err(err.clone()));
        }
        if self.nop_unflushed && self.write_failed.is_none() {
            // A failed NOP flush ends writing only; reading goes on (see `fail_write`).
            let _ = self.poll_flush(cx);
        }
        loop {
            match Pin::new(&mut self.framed).poll_next(cx) {
                Poll::Ready(Some(Ok(Frame::Response(Response::Heartbeat)))) => {
                    tracing::trace!(parent: &self.span, "heartbeat");
                    if let Err(err) = self.answer_heartbeat(cx) {
                        return Poll::Ready(Err(err));
                    }
                }
                Poll::Ready(Some(Ok(frame))) => return Poll::Ready(Ok(frame)),
                Poll::Ready(Some(Err(err))) => {
                    return Poll::Ready(Err(self.fail_read(err)));
                }
                Poll::Ready(None) => return Poll::Ready(Err(self.fail_read(ConnError::Closed))),
                Poll::Pending => {
                    let alive = self
                        .poll_liveness(cx)
                        .and_then(|()| self.poll_drain_limit(cx));
                    return match alive {
                        Ok(()) => Poll::Pending,
                        Err(err) => Poll::Ready(Err(self.fail(err))),
                    };
                }
            }
        }
    }

    /// Buffers a NOP and starts flushing it; the flush is driven on until it completes.
    fn answer_heartbeat(&mut self, cx: &mut Context<'_>) -> Result<(), ConnError> {
        if self.closed || self.write_failed.is_some() {
            return Ok(());
        }
        Command::Nop.encode(self.framed.write_buffer_mut())?;
        self.nop_unflushed = true;
        // A failed flush ends writing only (see `fail_write`); reading goes on.
        let _ = self.poll_flush(cx);
        Ok(())
    }

    /// Records incoming bytes and fails once nothing arrived for twice the heartbeat interval.
    fn poll_liveness(&mut self, cx: &mut Context<'_>) -> Result<(), ConnError> {
        let Some(timeout) = self.heartbeat.timeout() else {
            return Ok(());
        };
        loop {
            let read = self.meter.read();
            if read != self.seen_read {
                self.seen_read = read;
                self.heartbeat.record_activity(Instant::now().into_std());
                if let Some(deadline) = self.heartbeat.deadline() {
                    self.heartbeat_timer
                        .as_mut()
                        .reset(Instant::from_std(deadline));
                }
            }
            match self.heartbeat_timer.as_mut().poll(cx) {
                Poll::Pending => return Ok(()),
                Poll::Ready(()) if self.meter.read() != self.seen_read => continue,
                Poll::Ready(()) => {
                    tracing::warn!(parent: &self.span, silent_for = ?timeout, "heartbeat timeout");
                    return Err(ConnError::HeartbeatTimeout(timeout));
                }
            }
        }
    }

    /// Fails once bytes have been waiting for the write timeout without one being written.
    fn poll_write_stall(&mut self, cx: &mut Context<'_>) -> Result<(), ConnError> {
        loop {
            let written = self.meter.written();
            if !self.write_timer_armed || written != self.seen_written {
                self.write_timer_armed = true;
                self.seen_written = written;
                self.write_timer
                    .as_mut()
                    .reset(Instant::now() + self.write_timeout);
            }
            match self.write_timer.as_mut().poll(cx) {
                Poll::Pending => return Ok(()),
                Poll::Ready(()) if self.meter.written() != self.seen_written => continue,
                Poll::Ready(()) => {
                    tracing::warn!(parent: &self.span, timeout = ?self.write_timeout, "write stalled");
                    return Err(ConnError::WriteTimeout(self.write_timeout));
                }
            }
        }
    }

    /// A write failed, typically because nsqd closed the connection after an error frame.
    /// Writing is over; reading goes on until nsqd's side ends, so that the replies it sent
    /// first (often the error frame that explains why) are still handed out. Whatever is still
    /// unread after the write timeout is given up.
    fn fail_write(&mut self, err: ConnError, cx: &mut Context<'_>) -> ConnError {
        if self.write_failed.is_none() {
            tracing::debug!(parent: &self.span, error = %err, "write failed; reading what nsqd sent");
            self.write_failed = Some(err.clone());
            self.write_timer
                .as_mut()
                .reset(Instant::now() + self.write_timeout);
            // Make sure the reader is polled again to collect what is left.
            cx.waker().wake_by_ref();
        }
        err
    }

    /// The read side ended. After a failed write, the write error is the better explanation
    /// than the end of the stream that followed it.
    fn fail_read(&mut self, err: ConnError) -> ConnError {
        match (&err, self.write_failed.take()) {
            (ConnError::Closed | ConnError::Io(_), Some(write_err)) => self.fail(write_err),
            _ => self.fail(err),
        }
    }

    /// After a failed write, reading ends once the write timeout has passed.
    fn poll_drain_limit(&mut self, cx: &mut Context<'_>) -> Result<(), ConnError> {
        match &self.write_failed {
            Some(err) if self.write_timer.as_mut().poll(cx).is_ready() => Err(err.clone()),
            _ => Ok(()),
        }
    }

    fn fail(&mut self, err: ConnError) -> ConnError {
        if self.failed.is_none() {
            match &err {
                ConnError::Closed => {
                    tracing::info!(parent: &self.span, "nsqd closed the connection")
                }
                err => tracing::warn!(parent: &self.span, error = %err, "connection failed"),
            }
            self.failed = Some(err.clone());
        }
        err
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("info", &self.info)
            .field("write_buffer_len", &self.write_buffer_len())
            .field("received", &self.received.len())
            .field("failed", &self.failed)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// Frames from nsqd, heartbeats excluded. The last item of a connection is its error; the
/// stream ends after it.
impl Stream for Connection {
    type Item = Result<Frame, ConnError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.failure_yielded && this.received.is_empty() {
            return Poll::Ready(None);
        }
        match this.poll_recv(cx) {
            Poll::Ready(Err(err)) => {
                this.failure_yielded = true;
                Poll::Ready(Some(Err(err)))
            }
            other => other.map(Some),
        }
    }
}

/// Already encoded commands, as with [`Connection::buffer_bytes`].
impl Sink<Bytes> for Connection {
    type Error = ConnError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        self.get_mut().poll_send_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Bytes) -> Result<(), ConnError> {
        self.get_mut().buffer_bytes(&item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        self.get_mut().poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ConnError>> {
        self.get_mut().poll_close(cx)
    }
}
