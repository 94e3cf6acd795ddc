//! The router task: the single owner of the connection and of the transaction FIFO.
//!
//! The shape is go-nsq's: requests arrive over a channel, the router writes each command and
//! appends its transaction to a FIFO in the same step, pops the head when nsqd answers, and
//! finishes that caller's transaction. What differs is in the details: the channel is bounded,
//! results are stored rather than sent (a slow caller cannot stall the router), reading,
//! writing and flushing happen in one poll so a long pipeline never deadlocks, a rejection
//! aborts only what nsqd will not execute, and a lost connection is redialled in the background
//! while unwritten requests wait in the queue.

use std::future::poll_fn;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use futures::Stream;
use nsq_conn::{ConnConfig, ConnError, Connection};
use nsq_proto::{Command, Frame};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Sleep};

use crate::backoff::{Backoff, Jitter};
use crate::batch::Batch;
use crate::completion::Responder;
use crate::config::ProducerConfig;
use crate::error::{NotSentReason, PingFailure, PublishError};
use crate::producer::Shared;
use crate::request::{Control, Payload, Request};
use crate::stats::{Counters, ProducerState, Stats};
use crate::transactions::{InFlight, Resolved, Transactions, Violation};

pub(crate) struct Router {
    addr: String,
    conn_config: ConnConfig,
    config: Arc<ProducerConfig>,
    requests: mpsc::Receiver<Request>,
    control: mpsc::Receiver<Control>,
    shared: Arc<Shared>,
    transactions: Transactions,
    backoff: Backoff,
    jitter: Jitter,
    /// A request taken from the queue but not written yet; written first.
    carry: Option<Request>,
    /// PUBs taken from the queue to go out together as one MPUB; written before `carry`.
    batch: Batch,
    /// Queue-byte permits of requests that left the queue, returned to publishers together.
    permits_to_release: usize,
    ever_connected: bool,
    /// Earliest time the next dial may start.
    not_before: Option<Instant>,
    pings: Vec<oneshot::Sender<Result<(), PingFailure>>>,
    closing: Option<Closing>,
    /// Requests channel closed and drained (every handle dropped, or close).
    requests_done: bool,
    control_done: bool,
}

struct Closing {
    deadline: Instant,
    replies: Vec<oneshot::Sender<Stats>>,
}

enum Phase {
    Idle,
    Dial { attempt: u32, at: Instant },
    Connected(Box<Connection>),
    Done,
}

/// Why the connected phase ended.
enum Exit {
    /// The connection failed; in-flight requests have an unknown outcome.
    Lost(Arc<ConnError>),
    /// nsqd rejected a request and is closing the connection.
    Rejected,
    /// nsqd sent something that cannot be matched; the connection is untrustworthy.
    Violation(Violation),
    /// The oldest request outlived its deadline without a reply.
    Stalled,
    /// Closing finished, or every handle is gone and nothing is outstanding.
    Finished,
}

impl Router {
    pub(crate) fn new(
        addr: String,
        conn_config: ConnConfig,
        config: Arc<ProducerConfig>,
        requests: mpsc::Receiver<Request>,
        control: mpsc::Receiver<Control>,
        shared: Arc<Shared>,
    ) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let seed = now.as_nanos() as u64 ^ (Arc::as_ptr(&shared) as u64);
        Self {
            backoff: Backoff::new(config.reconnect_backoff_min, config.reconnect_backoff_max),
            addr,
            conn_config,
            config,
            requests,
            control,
            shared,
            transactions: Transactions::default(),
            jitter: Jitter::seeded(seed),
            carry: None,
            batch: Batch::default(),
            permits_to_release: 0,
            ever_connected: false,
            not_before: None,
            pings: Vec::new(),
            closing: None,
            requests_done: false,
            control_done: false,
        }
    }

    fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    fn set_state(&self, state: ProducerState) {
        self.shared.state.send_replace(state);
    }

    pub(crate) async fn run(mut self) {
        let mut phase = Phase::Idle;
        loop {
            phase = match phase {
                Phase::Idle => self.idle().await,
                Phase::Dial { attempt, at } => self.dial(attempt, at).await,
                Phase::Connected(conn) => self.connected(conn).await,
                Phase::Done => break,
            };
        }
        self.shut_down();
    }

    /// No connection and no reason to make one: wait for a request, a ping or close.
    async fn idle(&mut self) -> Phase {
        self.set_state(ProducerState::Idle);
        loop {
            if self.finished_with_nothing_left() {
                return Phase::Done;
            }
            // Closing with nothing queued ends here; with requests queued it dials to deliver
            // them (the check carries the first live one).
            if self.closing.is_some() && self.nothing_to_deliver() {
                return Phase::Done;
            }
            if self.carry.is_some() || !self.batch.is_empty() || !self.pings.is_empty() {
                let at = self.not_before.unwrap_or_else(Instant::now);
                return Phase::Dial { attempt: 0, at };
            }
            tokio::select! {
                request = self.requests.recv(), if !self.requests_done => match request {
                    Some(request) => {
                        self.carry = Some(self.dequeued(request));
                        self.release_permits();
                    }
                    None => self.requests_done = true,
                },
                control = self.control.recv(), if !self.control_done => self.on_control(control),
            }
        }
    }

    /// Waits until `at`, then dials. Close and ping are handled while waiting.
    async fn dial(&mut self, attempt: u32, at: Instant) -> Phase {
        if self.ever_connected {
            self.set_state(ProducerState::Reconnecting {
                attempt,
                next_attempt: at.into_std(),
            });
        }
        let mut wait = pin!(tokio::time::sleep_until(at));
        let mut expiry = Box::pin(tokio::time::sleep_until(far_future()));
        loop {
            if self.closing_expired() || (self.closing.is_some() && self.nothing_to_deliver()) {
                return Phase::Done;
            }
            // Requests waiting for the connection still expire at their deadlines.
            self.sweep_expired(&mut expiry).await;
            let close_at = self.close_deadline();
            tokio::select! {
                () = &mut wait => break,
                control = self.control.recv(), if !self.control_done => self.on_control(control),
                request = self.requests.recv(), if self.carry.is_none() && !self.requests_done => {
                    match request {
                        Some(request) => {
                            self.carry = Some(self.dequeued(request));
                            self.release_permits();
                        }
                        None => self.requests_done = true,
                    }
                }
                () = &mut expiry => {}
                () = sleep_until_opt(close_at) => {}
            }
        }
        self.set_state(ProducerState::Connecting);
        let conn_config = self.conn_config.clone();
        let mut connect = pin!(Connection::connect(&conn_config));
        let result = loop {
            self.sweep_expired(&mut expiry).await;
            let close_at = self.close_deadline();
            tokio::select! {
                result = &mut connect => break result,
                control = self.control.recv(), if !self.control_done => self.on_control(control),
                () = &mut expiry => {}
                () = sleep_until_opt(close_at) => return Phase::Done,
            }
        };
        match result {
            Ok(conn) => {
                if self.ever_connected {
                    Counters::add(&self.counters().reconnects, 1);
                }
                self.ever_connected = true;
                self.not_before = None;
                tracing::info!(addr = %self.addr, "connected to nsqd");
                self.set_state(ProducerState::Connected);
                Phase::Connected(Box::new(conn))
            }
            Err(err) => {
                let err = Arc::new(err);
                tracing::warn!(addr = %self.addr, attempt, error = %err, "connecting to nsqd failed");
                for ping in self.pings.drain(..) {
                    let _ = ping.send(Err(PingFailure::Connection(err.clone())));
                }
                let delay = self.backoff.delay(attempt, self.jitter.next_unit());
                let next = Instant::now() + delay;
                if self.ever_connected {
                    Phase::Dial {
                        attempt: attempt.saturating_add(1),
                        at: next,
                    }
                } else {
                    // Never connected: the address or configuration may be wrong, so the
                    // requests waiting now fail at once rather than at their deadlines.
                    self.fail_queued(&NotSentReason::Unavailable(err));
                    self.not_before = Some(next);
                    Phase::Idle
                }
            }
        }
    }

    async fn connected(&mut self, mut conn: Box<Connection>) -> Phase {
        let (exit, unanswered_pings) = {
            let mut io = Io {
                conn: &mut conn,
                needs_flush: false,
                write_failed: false,
                yields: YIELDS_AFTER_REPLIES,
                flushed_pings: Vec::new(),
                stall: Box::pin(tokio::time::sleep_until(far_future())),
                close_timer: Box::pin(tokio::time::sleep_until(far_future())),
                linger: Box::pin(tokio::time::sleep_until(far_future())),
                timeout: Box::pin(tokio::time::sleep_until(far_future())),
                expiry: Box::pin(tokio::time::sleep_until(far_future())),
            };
            let exit = poll_fn(|cx| {
                let exit = self.poll_connected(cx, &mut io);
                self.release_permits();
                exit
            })
            .await;
            (exit, io.flushed_pings)
        };
        // Pings whose NOP was not flushed before the connection ended are retried on the next
        // connection.
        self.pings.extend(unanswered_pings);
        match exit {
            Exit::Finished => {
                // Bounded: a peer that stopped reading must not hold the close up.
                let close = poll_fn(|cx| conn.poll_close(cx));
                let _ = tokio::time::timeout(CLOSE_FLUSH_LIMIT, close).await;
                Phase::Done
            }
            Exit::Rejected => {
                tracing::info!(addr = %self.addr, "nsqd rejected a request and closes the connection; reconnecting");
                self.after_connection(None)
            }
            Exit::Violation(violation) => {
                tracing::warn!(addr = %self.addr, %violation, "protocol violation; dropping the connection");
                let cause = Arc::new(violation.into_conn_error());
                self.after_connection(Some(cause))
            }
            Exit::Stalled => {
                tracing::warn!(addr = %self.addr, "no reply before the publish deadline; dropping the connection");
                self.after_connection(None)
            }
            Exit::Lost(err) => {
                tracing::warn!(addr = %self.addr, error = %err, "connection to nsqd lost");
                self.after_connection(Some(err))
            }
        }
    }

    /// After a connection ends: what was in flight is unknown; what is queued waits.
    fn after_connection(&mut self, cause: Option<Arc<ConnError>>) -> Phase {
        let counters = &self.shared.counters;
        self.transactions.fail_all(cause, |failed| {
            Counters::add(&counters.unknown, failed as u64);
            Counters::sub(&counters.in_flight, failed as u64);
        });
        if self.closing.is_some() && self.nothing_to_deliver() {
            return Phase::Done;
        }
        if self.finished_with_nothing_left() {
            return Phase::Done;
        }
        Phase::Dial {
            attempt: 0,
            at: Instant::now(),
        }
    }

    fn poll_connected(&mut self, cx: &mut Context<'_>, io: &mut Io<'_>) -> Poll<Exit> {
        let now = Instant::now();
        // 1. Replies first: they free in-flight slots and must never wait behind writes.
        let mut answered = false;
        loop {
            match Pin::new(&mut *io.conn).poll_next(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    answered = true;
                    if let Some(exit) = self.on_reply(frame) {
                        return Poll::Ready(exit);
                    }
                }
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Exit::Lost(Arc::new(err))),
                Poll::Ready(None) => return Poll::Ready(Exit::Lost(Arc::new(ConnError::Closed))),
                Poll::Pending => break,
            }
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

        // 3. Writes: a NOP for pings, then as many queued requests as the window and the
        //    connection take. After a failed write only reading goes on, until the connection
        //    hands out its last reply and its error.
        if io.write_failed {
            return Poll::Pending;
        }
        if !self.pings.is_empty() {
            match io.conn.poll_send_ready(cx) {
                Poll::Ready(Ok(())) => {
                    if let Err(err) = io.buffer(&Command::Nop) {
                        return self.write_failed(cx, io, err);
                    }
                    io.flushed_pings.append(&mut self.pings);
                }
                Poll::Ready(Err(err)) => return self.write_failed(cx, io, err),
                Poll::Pending => {}
            }
        }
        while self.transactions.len() + self.batch.len() < self.config.max_in_flight {
            match io.conn.poll_send_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(err)) => return self.write_failed(cx, io, err),
                Poll::Pending => break,
            }
            let request = match self.carry.take() {
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
            if let Err(err) = self.write(io, request, now) {
                return self.write_failed(cx, io, err);
            }
        }

        if let Err(err) = self.poll_batch(cx, io) {
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
        self.expire_in_flight(now, &mut io.timeout, cx);
        self.expire_queued(now, &mut io.expiry, cx);
        if let Some(deadline) = self.transactions.head_deadline() {
            if poll_timer(&mut io.stall, deadline + self.config.stall_grace, cx) {
                return Poll::Ready(Exit::Stalled);
            }
        }
        if let Some(closing) = &self.closing {
            if poll_timer(&mut io.close_timer, closing.deadline, cx) {
                return Poll::Ready(Exit::Finished);
            }
        }

        // 6. Done when nothing is left to write or to wait for.
        let drained = self.carry.is_none() && self.batch.is_empty() && self.requests_done;
        let idle = drained && self.transactions.is_empty() && !io.needs_flush;
        if idle && (self.closing.is_some() || self.control_done) {
            return Poll::Ready(Exit::Finished);
        }
        Poll::Pending
    }

    /// Resolves the oldest request with nsqd's reply; `Some` when the connection is finished.
    fn on_reply(&mut self, frame: Frame) -> Option<Exit> {
        // Counted before the callers are woken, so that a caller who has its result also finds
        // it in `stats()`.
        let c = &self.shared.counters;
        let resolved = self.transactions.resolve(frame, |resolved| match resolved {
            Resolved::Acked { requests } => {
                Counters::add(&c.acked, *requests as u64);
                Counters::sub(&c.in_flight, *requests as u64);
            }
            Resolved::Rejected {
                requests,
                aborted,
                code,
                maybe_stored,
            } => {
                if *maybe_stored {
                    Counters::add(&c.unknown, *requests as u64);
                } else {
                    c.reject(code.as_str(), *requests as u64);
                }
                Counters::sub(&c.in_flight, (requests + aborted) as u64);
                Counters::add(&c.not_sent, *aborted as u64);
            }
        });
        match resolved {
            Ok(Resolved::Acked { .. }) => None,
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
        let Request {
            payload,
            responder,
            deadline,
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
                self.batch.push(topic, body, responder, deadline);
                return Ok(());
            }
            payload => payload,
        };
        // Whatever was batched was queued before this request, so it goes first.
        self.write_batch(io)?;
        if !responder.start_write() {
            // The caller left before its bytes were written: it is skipped.
            return Ok(());
        }
        let command = payload.command();
        io.buffer(&command)?;
        let c = self.counters();
        Counters::add(&c.bytes_written, command.encoded_len() as u64);
        Counters::add(&c.in_flight, 1);
        self.transactions
            .push(InFlight::single(responder, deadline));
        Ok(())
    }

    /// Fails queued requests whose deadline passed and arms `expiry` for the next one; for the
    /// phases without a connection.
    async fn sweep_expired(&mut self, expiry: &mut Pin<Box<Sleep>>) {
        poll_fn(|cx| {
            self.expire_queued(Instant::now(), expiry, cx);
            Poll::Ready(())
        })
        .await;
        self.release_permits();
    }

    /// Tells the callers of written requests whose deadline passed that they timed out, and
    /// arms `timer` for the next such deadline.
    fn expire_in_flight(
        &mut self,
        now: Instant,
        timer: &mut Pin<Box<Sleep>>,
        cx: &mut Context<'_>,
    ) {
        while let Some(deadline) = self.transactions.next_timeout() {
            if deadline > now && !poll_timer(timer, deadline, cx) {
                break;
            }
            let told = self.transactions.time_out(deadline.max(now));
            Counters::add(&self.shared.counters.timed_out, told as u64);
        }
    }

    /// Fails the queued requests (batched, carried, then from the channel, oldest first) whose
    /// deadline passed, and arms `timer` for the next one. Requests are queued in deadline order,
    /// so watching the oldest is enough.
    fn expire_queued(&mut self, now: Instant, timer: &mut Pin<Box<Sleep>>, cx: &mut Context<'_>) {
        loop {
            let counters = &self.shared.counters;
            self.batch.expire(now, |responder| {
                fail_request(responder, &NotSentReason::DeadlineExpired, counters);
            });
            if let Some(request) = self.carry.take_if(|r| r.deadline.is_some_and(|d| d <= now)) {
                fail_request(
                    request.responder,
                    &NotSentReason::DeadlineExpired,
                    self.counters(),
                );
                if let Ok(next) = self.requests.try_recv() {
                    self.carry = Some(self.dequeued(next));
                    // Taken outside the write loop: make sure a turn comes to write it.
                    cx.waker().wake_by_ref();
                }
                continue;
            }
            let next = self
                .batch
                .first_deadline()
                .into_iter()
                .chain(self.carry.as_ref().and_then(|r| r.deadline))
                .min();
            match next {
                Some(deadline) if poll_timer(timer, deadline, cx) => {
                    // Passed since `now` was read: go round again with the deadline as now.
                    return self.expire_queued(deadline, timer, cx);
                }
                _ => return,
            }
        }
    }

    /// Writes the batch now, or leaves it to gather more PUBs until the linger time has passed.
    /// Without linger, a batch is only what was already queued, so batching adds no latency.
    fn poll_batch(&mut self, cx: &mut Context<'_>, io: &mut Io<'_>) -> Result<(), ConnError> {
        let Some(started) = self.batch.started() else {
            return Ok(());
        };
        let linger = self.config.batch_linger;
        let window_full = self.transactions.len() + self.batch.len() >= self.config.max_in_flight;
        let no_more = self.requests_done || self.closing.is_some();
        if linger.is_zero()
            || window_full
            || no_more
            || poll_timer(&mut io.linger, started + linger, cx)
        {
            self.write_batch(io)?;
        }
        Ok(())
    }

    /// Writes the gathered PUBs as one command: a PUB for one, an MPUB for several.
    fn write_batch(&mut self, io: &mut Io<'_>) -> Result<(), ConnError> {
        let Some(written) = self.batch.start_write() else {
            return Ok(());
        };
        let command = written.command();
        io.buffer(&command)?;
        let len = command.encoded_len() as u64;
        let requests = written.len();
        let c = &self.shared.counters;
        Counters::add(&c.bytes_written, len);
        Counters::add(&c.in_flight, requests as u64);
        let transactions = &mut self.transactions;
        written.finish(|i, responder, deadline| {
            let group = if i == 0 { requests as u32 } else { 0 };
            transactions.push(InFlight {
                responder,
                deadline,
                group,
            });
        });
        Ok(())
    }

    /// Bookkeeping for a request leaving the channel. Its queue bytes are returned to
    /// publishers by [`release_permits`](Self::release_permits), once per loop turn rather
    /// than once per request.
    fn dequeued(&mut self, request: Request) -> Request {
        Counters::sub(&self.counters().queued, 1);
        self.permits_to_release += request.permits as usize;
        request
    }

    /// Publishes how many requests the router holds unwritten, for `stats().queued`.
    fn record_held(&self) {
        let held = u64::from(self.carry.is_some()) + self.batch.len() as u64;
        self.shared.counters.held.store(held, Ordering::Relaxed);
    }

    /// Returns the queue bytes of requests that left the channel to publishers, and updates
    /// how many the router holds.
    fn release_permits(&mut self) {
        if self.permits_to_release > 0 {
            self.shared
                .queue_bytes
                .add_permits(std::mem::take(&mut self.permits_to_release));
        }
        self.record_held();
    }

    fn on_control(&mut self, control: Option<Control>) {
        match control {
            Some(Control::Ping(reply)) => self.pings.push(reply),
            Some(Control::Close(reply)) => self.begin_close(reply),
            None => self.control_done = true,
        }
    }

    fn begin_close(&mut self, reply: oneshot::Sender<Stats>) {
        match &mut self.closing {
            Some(closing) => closing.replies.push(reply),
            None => {
                tracing::info!(addr = %self.addr, "closing producer");
                // No new requests; those already queued are still written.
                self.requests.close();
                self.closing = Some(Closing {
                    deadline: Instant::now() + self.config.close_timeout,
                    replies: vec![reply],
                });
            }
        }
    }

    fn close_deadline(&self) -> Option<Instant> {
        self.closing.as_ref().map(|c| c.deadline)
    }

    fn closing_expired(&self) -> bool {
        self.closing
            .as_ref()
            .is_some_and(|c| Instant::now() >= c.deadline)
    }

    /// Nothing queued, nothing carried and nothing in flight.
    fn nothing_to_deliver(&mut self) -> bool {
        if self.carry.is_some() || !self.batch.is_empty() || !self.transactions.is_empty() {
            return false;
        }
        // Skip requests whose callers are gone; stop at the first live one.
        let found = loop {
            match self.requests.try_recv() {
                Ok(request) => {
                    let request = self.dequeued(request);
                    if !request.responder.is_abandoned() {
                        self.carry = Some(request);
                        break true;
                    }
                }
                Err(_) => break false,
            }
        };
        self.release_permits();
        !found
    }

    /// Every handle is gone and nothing is outstanding: the task can end.
    fn finished_with_nothing_left(&mut self) -> bool {
        self.requests_done
            && self.control_done
            && self.carry.is_none()
            && self.batch.is_empty()
            && self.transactions.is_empty()
    }

    /// Fails the carried request and everything in the channel.
    fn fail_queued(&mut self, reason: &NotSentReason) {
        for (responder, _) in self.batch.drain_members() {
            fail_request(responder, reason, self.counters());
        }
        if let Some(request) = self.carry.take() {
            fail_request(request.responder, reason, self.counters());
        }
        while let Ok(request) = self.requests.try_recv() {
            let request = self.dequeued(request);
            fail_request(request.responder, reason, self.counters());
        }
        self.release_permits();
    }

    fn shut_down(&mut self) {
        self.requests.close();
        let counters = &self.shared.counters;
        self.transactions.fail_all(None, |failed| {
            Counters::add(&counters.unknown, failed as u64);
            Counters::sub(&counters.in_flight, failed as u64);
        });
        self.fail_queued(&NotSentReason::Closed);
        self.shared.closed.store(true, Ordering::Release);
        self.set_state(ProducerState::Closed);
        for ping in self.pings.drain(..) {
            let _ = ping.send(Err(PingFailure::Closed));
        }
        self.control.close();
        while let Ok(control) = self.control.try_recv() {
            match control {
                Control::Ping(reply) => {
                    let _ = reply.send(Err(PingFailure::Closed));
                }
                Control::Close(reply) => self
                    .closing
                    .get_or_insert_with(|| Closing {
                        deadline: Instant::now(),
                        replies: Vec::new(),
                    })
                    .replies
                    .push(reply),
            }
        }
        let stats = self.counters().snapshot();
        if let Some(closing) = self.closing.take() {
            for reply in closing.replies {
                let _ = reply.send(stats.clone());
            }
        }
        tracing::info!(addr = %self.addr, "producer closed");
    }
}

/// Completes a request that was never written and counts it, unless its caller is gone.
fn fail_request(responder: Responder, reason: &NotSentReason, counters: &Counters) {
    if responder.is_abandoned() {
        return;
    }
    Counters::add(&counters.not_sent, 1);
    responder.complete(Err(PublishError::NotSent(reason.clone())));
}

struct Io<'a> {
    conn: &'a mut Connection,
    needs_flush: bool,
    /// A write failed: nothing more is written; replies are read until the connection ends.
    write_failed: bool,
    /// Turns yielded since replies last woke callers.
    yields: u32,
    flushed_pings: Vec<oneshot::Sender<Result<(), PingFailure>>>,
    /// The oldest request's deadline plus the stall grace.
    stall: Pin<Box<Sleep>>,
    close_timer: Pin<Box<Sleep>>,
    /// When a lingering batch must be written.
    linger: Pin<Box<Sleep>>,
    /// The next deadline of a written request.
    timeout: Pin<Box<Sleep>>,
    /// The next deadline of a queued request.
    expiry: Pin<Box<Sleep>>,
}

impl Io<'_> {
    /// Encodes `command` into the connection's write buffer (no I/O).
    fn buffer(&mut self, command: &Command<'_>) -> Result<(), ConnError> {
        self.conn.buffer_command(command)?;
        self.needs_flush = true;
        Ok(())
    }
}

/// Polls `timer` for `deadline`, moving it first if the deadline changed. True once it passed.
///
/// Deadlines mostly move later (the oldest request leaves, the next one is younger), and moving
/// a timer costs a trip through the runtime's timer wheel, so a timer set for an earlier
/// deadline is left to fire and is only then moved on; it is moved at once only when the new
/// deadline is earlier.
fn poll_timer(timer: &mut Pin<Box<Sleep>>, deadline: Instant, cx: &mut Context<'_>) -> bool {
    if deadline < timer.deadline() {
        timer.as_mut().reset(deadline);
    }
    if timer.as_mut().poll(cx).is_pending() {
        return false;
    }
    if deadline <= timer.deadline() {
        return true;
    }
    // It fired for an earlier deadline that no longer matters: wait for this one.
    timer.as_mut().reset(deadline);
    timer.as_mut().poll(cx).is_ready()
}

/// Sleeps until `at`, or for ever when there is no deadline.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How many times the router yields after waking callers, before it writes.
const YIELDS_AFTER_REPLIES: u32 = 2;

/// How long a finished connection may take to flush and shut down.
const CLOSE_FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_secs(86_400 * 365)
}
