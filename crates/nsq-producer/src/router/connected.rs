//! The connected phase: one poll reads replies, takes control messages, writes queued requests
//! and flushes, and keeps the deadlines of what is written and what is queued. Its deadlines
//! (requests written or queued, the batch's linger, the stall grace, the slow-node check, the
//! close) are entries of the router's timer table; each turn ends by arming the one timer for
//! the earliest.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use nsq_conn::{ConnError, Connection};
use nsq_proto::{Command, Frame};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::timers::{Timer, Timers};
use super::{Phase, Router, fail_request};
use crate::batch::Member;
use crate::error::{Lost, NotSentReason, PingFailure};
use crate::request::{Payload, Request};
use crate::transactions::{InFlight, Resolved, Violation};

/// Why the connected phase ended.
enum Exit {
    /// The connection failed; in-flight requests have an unknown outcome.
    Lost(Arc<ConnError>),
    /// nsqd rejected a request and is closing the connection.
    Rejected,
    /// nsqd sent something that cannot be matched; the connection is untrustworthy.
    Violation(Violation),
    /// The oldest request outlived its deadline and the stall grace without a reply.
    Stalled,
    /// Closing finished, or every handle is gone and nothing is outstanding.
    Finished,
}

/// How many times the router yields after waking callers, before it writes.
const YIELDS_AFTER_REPLIES: u32 = 2;

/// How long a finished connection may take to flush and shut down.
const CLOSE_FLUSH_LIMIT: Duration = Duration::from_secs(1);

/// How long a connection must last, without nsqd answering anything on it, before it counts
/// as healthy: losing a healthy connection redials at once and resets the backoff, losing one
/// that was not continues the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(5);

impl Router {
    pub(super) async fn connected(&mut self, mut conn: Box<Connection>) -> Phase {
        let started = Instant::now();
        let (exit, answered, unanswered_pings) = {
            let mut io = Io {
                conn: &mut conn,
                needs_flush: false,
                write_failed: false,
                answered: false,
                yields: YIELDS_AFTER_REPLIES,
                flushed_pings: Vec::new(),
            };
            let exit = poll_fn(|cx| {
                let exit = self.poll_connected(cx, &mut io);
                self.release_permits();
                self.settle_flushes();
                exit
            })
            .await;
            (exit, io.answered, io.flushed_pings)
        };
        for timer in Timer::CONNECTION {
            self.timers.stop(timer);
        }
        // Pings whose NOP was not flushed before the connection ended are retried on the next
        // connection.
        self.pings.extend(unanswered_pings);
        let healthy = answered || started.elapsed() >= HEALTHY_AFTER;
        match exit {
            Exit::Finished => {
                // Bounded: a peer that stopped reading must not hold the close up. A close out
                // of time (or `close_now`) drops the connection at once.
                if !self.closing_expired() {
                    // Nothing else is due any more: the router is done.
                    self.timers = Timers::default();
                    let limit = Instant::now() + CLOSE_FLUSH_LIMIT;
                    self.timers.set(Timer::Shutdown, Some(limit));
                    let (timers, wakeup) = (&self.timers, &mut self.wakeup);
                    poll_fn(|cx| match conn.poll_close(cx) {
                        Poll::Ready(_) => Poll::Ready(()),
                        Poll::Pending => wakeup.poll(timers.next(), cx),
                    })
                    .await;
                    self.timers.stop(Timer::Shutdown);
                }
                Phase::Done
            }
            Exit::Rejected => {
                tracing::info!(addr = %self.addr, "nsqd rejected a request and closes the connection; reconnecting");
                self.after_connection(None, healthy)
            }
            Exit::Violation(violation) => {
                tracing::warn!(addr = %self.addr, %violation, "protocol violation; dropping the connection");
                let cause = Arc::new(violation.into_conn_error());
                self.after_connection(Some(cause), healthy)
            }
            Exit::Stalled => {
                tracing::warn!(addr = %self.addr, "no reply within the stall grace after a publish deadline; dropping the connection");
                self.after_connection(None, healthy)
            }
            Exit::Lost(err) => {
                tracing::warn!(addr = %self.addr, error = %err, "connection to nsqd lost");
                self.after_connection(Some(err), healthy)
            }
        }
    }

    /// After a connection ends: what was in flight is unknown; what is queued waits for the
    /// next connection, dialled at once if this one was healthy, after the backoff if not.
    fn after_connection(&mut self, cause: Option<Arc<ConnError>>, healthy: bool) -> Phase {
        let counters = &self.shared.counters;
        self.transactions.fail_all(cause.clone(), |failed| {
            counters.unknown(Lost::Connection, failed);
        });
        self.give_up_reclaimed();
        self.last_error = cause;
        self.set_down(true);
        self.give_up_queued();
        self.settle_flushes();
        if self.done_without_connection() {
            return Phase::Done;
        }
        if healthy {
            self.failures = 0;
            self.retry_at(Instant::now())
        } else {
            self.retry_later()
        }
    }

    fn poll_connected(&mut self, cx: &mut Context<'_>, io: &mut Io<'_>) -> Poll<Exit> {
        let now = Instant::now();
        // 1. Replies first: they free in-flight slots and must never wait behind writes.
        let mut answered = false;
        let oldest = self.transactions.head_written();
        loop {
            match Pin::new(&mut *io.conn).poll_next(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    answered = true;
                    match self.on_reply(frame) {
                        None => io.answered = true,
                        Some(exit @ Exit::Rejected) => {
                            io.answered = true;
                            return Poll::Ready(exit);
                        }
                        Some(exit) => return Poll::Ready(exit),
                    }
                }
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Exit::Lost(Arc::new(err))),
                Poll::Ready(None) => return Poll::Ready(Exit::Lost(Arc::new(ConnError::Closed))),
                Poll::Pending => break,
            }
        }
        if let Some(oldest) = oldest {
            self.note_replies(oldest, now);
        }
        // Callers just woken by those replies often publish again at once. Letting them run
        // before writing (yielding to the scheduler `YIELDS_AFTER_REPLIES` times) puts their
        // next requests into the same write, and with batching into the same MPUB, instead of
        // one command per caller as each trickles in.
        if answered {
            io.yields = 0;
        }
        if io.yields < YIELDS_AFTER_REPLIES {
            io.yields += 1;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }

        // 2. Control: ping and close.
        while !self.control_done {
            match self.control.poll_recv(cx) {
                Poll::Ready(control) => self.on_control(control),
                Poll::Pending => break,
            }
        }

        // 3. Writes, unless writing has stopped: after a failed write only reading goes on,
        //    until the connection hands out its last reply and its error; while the policy
        //    judges nsqd slow, what is queued goes to the policy (see `timing.rs`); and while
        //    the oldest written request is past its deadline, nothing more is written (see
        //    `overdue`).
        if io.write_failed {
            return Poll::Pending;
        }
        if self.poll_slow(now) {
            self.timers.stop(Timer::Linger);
            self.take_queued(cx);
            self.give_up_queued();
        } else if self.overdue(now) {
            self.timers.stop(Timer::Linger);
            self.take_queued(cx);
        } else if let Err(err) = self.write_queued(cx, io, now) {
            return self.write_failed(cx, io, err);
        }

        // 4. Flush once the queue is drained (or the window is full): one flush per burst.
        if io.needs_flush {
            match io.conn.poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    io.needs_flush = false;
                    for ping in io.flushed_pings.drain(..) {
                        let _ = ping.send(Ok(()));
                    }
                }
                Poll::Ready(Err(err)) => return self.write_failed(cx, io, err),
                Poll::Pending => {}
            }
        }

        // 5. Deadlines: callers of requests written or queued whose time ran out, a reply that
        //    stopped coming, and the close timeout.
        self.expire_in_flight(now);
        self.expire_queued(now);
        let stall_at = self.transactions.head_overdue_at();
        let grace = self.config.stall_grace;
        self.timers.set(Timer::Stall, stall_at.map(|at| at + grace));
        let due = self.timers.expired(now);
        if due.contains(Timer::Stall) {
            return Poll::Ready(Exit::Stalled);
        }
        if due.contains(Timer::Close) {
            return Poll::Ready(Exit::Finished);
        }

        // 6. Done when nothing is left to write or to wait for.
        let drained = self.unwritten.is_empty() && self.batch.is_empty() && self.requests_done;
        let idle = drained && self.transactions.is_empty() && !io.needs_flush;
        if idle && (self.closing.is_some() || self.control_done) {
            return Poll::Ready(Exit::Finished);
        }

        // 7. Sleep until the earliest deadline. One that passed during this turn is handled in
        //    the next one, at once.
        if self.wakeup.poll(self.timers.next(), cx).is_ready() {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }

    /// Whether the oldest written request is overdue: past its deadline without a reply, and
    /// past the configured publish timeout since it was written. Its caller has been told it
    /// timed out; the reply may still come within the stall grace, or the connection is
    /// dropped. Until then nothing more is written on it: what would be written now would share
    /// that fate, while held back it goes out untouched on the next connection.
    fn overdue(&self, now: Instant) -> bool {
        self.transactions
            .head_overdue_at()
            .is_some_and(|overdue_at| overdue_at <= now)
    }

    /// Takes every request in the channel that cannot be written now, so that its deadline is
    /// watched.
    fn take_queued(&mut self, cx: &mut Context<'_>) {
        while !self.requests_done {
            match self.requests.poll_recv(cx) {
                Poll::Ready(Some(request)) => {
                    let request = self.dequeued(request);
                    self.unwritten.push(request);
                }
                Poll::Ready(None) => self.requests_done = true,
                Poll::Pending => break,
            }
        }
    }

    /// Writes a NOP for pings, then as many queued requests as the window and the connection
    /// take.
    fn write_queued(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut Io<'_>,
        now: Instant,
    ) -> Result<(), ConnError> {
        if !self.pings.is_empty() {
            match io.conn.poll_send_ready(cx) {
                Poll::Ready(Ok(())) => {
                    io.buffer(&Command::Nop)?;
                    io.flushed_pings.append(&mut self.pings);
                }
                Poll::Ready(Err(err)) => return Err(err),
                Poll::Pending => {}
            }
        }
        while self.transactions.len() + self.batch.len() < self.config.max_pipelined {
            match io.conn.poll_send_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(err)) => return Err(err),
                Poll::Pending => break,
            }
            let request = match self.unwritten.pop_front() {
                Some(request) => request,
                None if self.requests_done => break,
                None => match self.requests.poll_recv(cx) {
                    Poll::Ready(Some(request)) => self.dequeued(request),
                    Poll::Ready(None) => {
                        self.requests_done = true;
                        break;
                    }
                    Poll::Pending => break,
                },
            };
            self.write(io, request, now)?;
        }
        // What is left waits for room in the window or in the connection's buffer.
        self.take_queued(cx);
        self.poll_batch(io, now)
    }

    /// Resolves the oldest request with nsqd's reply; `Some` when the connection is finished.
    fn on_reply(&mut self, frame: Frame) -> Option<Exit> {
        // Counted before the callers are woken, so that a caller who has its result also finds
        // it in `stats()`.
        let c = &self.shared.counters;
        let resolved = self.transactions.resolve(frame, |resolved| match resolved {
            Resolved::Acked { requests, messages } => c.acked(*requests, *messages),
            Resolved::Rejected {
                requests,
                aborted,
                code,
                maybe_stored,
            } => {
                if *maybe_stored {
                    c.unknown(Lost::MpubFailed, *requests);
                } else {
                    c.rejected(code.as_str(), *requests);
                }
                c.aborted(*aborted);
            }
        });
        self.give_up_reclaimed();
        match resolved {
            Ok(Resolved::Acked { requests, .. }) => {
                self.timing.acked(requests);
                None
            }
            Ok(Resolved::Rejected { .. }) => Some(Exit::Rejected),
            Err(violation) => Some(Exit::Violation(violation)),
        }
    }

    /// A write or flush failed. nsqd often closes the connection right after answering (after
    /// a rejection it does so with unread bytes, so the close is a reset). The connection keeps
    /// handing out the replies nsqd sent before it went away, so writing stops here and the
    /// poll goes on reading: what nsqd acknowledged is reported `Ok` and a rejection as such,
    /// and only what is left when the connection ends has an unknown outcome.
    fn write_failed(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut Io<'_>,
        err: ConnError,
    ) -> Poll<Exit> {
        tracing::debug!(addr = %self.addr, error = %err, "write failed; reading nsqd's last replies");
        io.write_failed = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Writes one request, or adds it to the batch of PUBs being gathered.
    fn write(&mut self, io: &mut Io<'_>, request: Request, now: Instant) -> Result<(), ConnError> {
        self.leaves_queue(&request);
        let Request {
            payload,
            responder,
            deadline,
            index,
            tag,
            ..
        } = request;
        if deadline.is_some_and(|d| d <= now) {
            // Its caller's time ran out while it waited in the queue.
            fail_request(responder, &NotSentReason::DeadlineExpired, self.counters());
            return Ok(());
        }
        let payload = match payload {
            Payload::Pub { topic, body } if self.config.batching => {
                if !self
                    .batch
                    .accepts(&topic, body.len(), self.config.limits.max_body_size)
                {
                    self.write_batch(io)?;
                }
                let member = Member {
                    responder,
                    deadline,
                    index,
                    tag,
                };
                self.batch.push(topic, body, member);
                return Ok(());
            }
            payload => payload,
        };
        // Whatever was batched was queued before this request, so it goes first.
        self.write_batch(io)?;
        if !responder.start_write(&self.addr) {
            // The caller withdrew it before its bytes were written: it is skipped.
            self.counters().withdrawn();
            return Ok(());
        }
        let command = payload.command();
        io.buffer(&command)?;
        self.counters().wrote(1, command.encoded_len());
        let overdue_at = self.overdue_at(deadline, now);
        let messages = payload.messages();
        let mut in_flight = InFlight::single(responder, deadline, overdue_at, now, index, messages);
        if self.takes.not_executed {
            // Kept for the policy, should nsqd not execute it.
            in_flight.payload = Some(payload);
            in_flight.tag = tag;
        }
        self.transactions.push(in_flight);
        Ok(())
    }

    /// Writes the batch now, or leaves it to gather more PUBs until the linger time has passed
    /// (the [`Timer::Linger`] entry). Without linger, a batch is only what was already queued,
    /// so batching adds no latency.
    fn poll_batch(&mut self, io: &mut Io<'_>, now: Instant) -> Result<(), ConnError> {
        let Some(started) = self.batch.started() else {
            self.timers.stop(Timer::Linger);
            return Ok(());
        };
        let linger = self.config.batch_linger;
        let write_at = started + linger;
        let window_full = self.transactions.len() + self.batch.len() >= self.config.max_pipelined;
        let no_more = self.requests_done || self.closing.is_some();
        if linger.is_zero() || window_full || no_more || write_at <= now {
            self.timers.stop(Timer::Linger);
            self.write_batch(io)?;
        } else {
            self.timers.set(Timer::Linger, Some(write_at));
        }
        Ok(())
    }

    /// Writes the gathered PUBs as one command: a PUB for one, an MPUB for several.
    fn write_batch(&mut self, io: &mut Io<'_>) -> Result<(), ConnError> {
        let counters = &self.shared.counters;
        let Some(written) = self.batch.start_write(&self.addr, || counters.withdrawn()) else {
            return Ok(());
        };
        let command = written.command();
        io.buffer(&command)?;
        let requests = written.len();
        let c = &self.shared.counters;
        c.wrote(requests, command.encoded_len());
        c.batched(requests);
        let now = Instant::now();
        let patience = self.config.publish_timeout;
        let transactions = &mut self.transactions;
        let keep = self.takes.not_executed;
        written.finish(|i, member, topic, body| {
            let group = if i == 0 { requests as u32 } else { 0 };
            transactions.push(InFlight {
                payload: keep.then(|| Payload::Pub {
                    topic: topic.clone(),
                    body,
                }),
                tag: member.tag,
                responder: member.responder,
                deadline: member.deadline,
                overdue_at: overdue_at(member.deadline, now, patience),
                written: now,
                group,
                messages: 1,
                index: member.index,
            });
        });
        Ok(())
    }
}

impl Router {
    fn overdue_at(&self, deadline: Option<Instant>, written: Instant) -> Option<Instant> {
        overdue_at(deadline, written, self.config.publish_timeout)
    }
}

/// When a request written at `written` with `deadline` is overdue: at its deadline, but not
/// before the configured publish timeout (`patience`) has passed since the write, so that a
/// short deadline of one caller's own does not judge nsqd slow. Never without both: a publish
/// without a deadline waits as long as the connection lives, and without a configured timeout
/// the producer leaves nsqd's health to the heartbeats.
fn overdue_at(
    deadline: Option<Instant>,
    written: Instant,
    patience: Option<Duration>,
) -> Option<Instant> {
    match (deadline, patience) {
        (Some(deadline), Some(patience)) => Some(deadline.max(written + patience)),
        _ => None,
    }
}

/// The connection and the per-connection state of the connected phase.
struct Io<'a> {
    conn: &'a mut Connection,
    needs_flush: bool,
    /// A write failed: nothing more is written; replies are read until the connection ends.
    write_failed: bool,
    /// nsqd answered a request on this connection, so it is healthy.
    answered: bool,
    /// Turns yielded since replies last woke callers.
    yields: u32,
    flushed_pings: Vec<oneshot::Sender<Result<(), PingFailure>>>,
}

impl Io<'_> {
    /// Encodes `command` into the connection's write buffer (no I/O).
    fn buffer(&mut self, command: &Command<'_>) -> Result<(), ConnError> {
        self.conn.buffer_command(command)?;
        self.needs_flush = true;
        Ok(())
    }
}
