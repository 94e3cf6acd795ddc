//! The router task: the single owner of the connection and of the transaction FIFO.
//!
//! The shape is go-nsq's: requests arrive over a channel, the router writes each command and
//! appends its transaction to a FIFO in the same step, pops the head when nsqd answers, and
//! finishes that caller's transaction. What differs is in the details: the channel is bounded,
//! results are stored rather than sent (a slow caller cannot stall the router), reading,
//! writing and flushing happen in one poll so a long pipeline never deadlocks, a rejection
//! aborts only what nsqd will not execute, and a lost connection is redialled in the background
//! while unwritten requests wait in the queue.
//!
//! The router runs through phases, one file each: [`dial`] (waiting for a connection: the
//! backoff wait, the dial and the handshake) and [`connected`] (the poll loop that reads,
//! writes and flushes). Every deadline the phases keep is an entry of one table
//! ([`timers`]), and the router sleeps on one timer moved to its earliest entry;
//! [`deadlines`] handles the callers' deadlines when they fall due. This file holds what the
//! phases share: the queue's bookkeeping, control messages and closing.

mod connected;
mod deadlines;
mod dial;
mod timers;
mod timing;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use nsq_conn::{ConnConfig, ConnError, Connection};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::backoff::{Backoff, Jitter};
use crate::batch::Batch;
use crate::completion::Responder;
use crate::config::ProducerConfig;
use crate::counters::Counters;
use crate::error::{Lost, NotSentReason, PingFailure, PublishError};
use crate::policy::{Health, Policy, Takes};
use crate::request::{Control, Payload, Request};
use crate::shared::ProducerShared;
use crate::stats::{ProducerState, Stats};
use crate::transactions::{Reclaim, Transactions};
use crate::unwritten::Unwritten;
use timers::{Timer, Timers, Wakeup};

pub(crate) struct Router {
    addr: Arc<str>,
    conn_config: ConnConfig,
    config: Arc<ProducerConfig>,
    requests: mpsc::Receiver<Request>,
    control: mpsc::Receiver<Control>,
    shared: Arc<ProducerShared>,
    transactions: Transactions,
    backoff: Backoff,
    jitter: Jitter,
    /// Requests taken from the channel but not written yet; written first. They still hold
    /// their queue permits.
    unwritten: Unwritten,
    /// PUBs taken from the queue to go out together as one MPUB; written before `unwritten`.
    batch: Batch,
    /// Queue-byte permits of requests that left the queue (written or failed), returned to
    /// publishers together.
    permits_to_release: usize,
    ever_connected: bool,
    /// Connection attempts that failed in a row since the last healthy connection (a
    /// connection that ended before it was healthy counts as one). Sets the backoff.
    failures: u32,
    /// Why the last connection attempt failed or the last connection ended; `None` while
    /// connected. Requests that expire waiting for a connection report it.
    last_error: Option<Arc<ConnError>>,
    pings: Vec<oneshot::Sender<Result<(), PingFailure>>>,
    /// Requests taken from the channel so far: the next one's `index`.
    taken: u64,
    /// Flushes waiting for every request below their index to have its outcome.
    flushes: Vec<(u64, oneshot::Sender<()>)>,
    closing: Option<Closing>,
    /// What it cannot deliver is reported to this.
    policy: Arc<dyn Policy>,
    /// What the policy takes, asked once.
    takes: Takes,
    /// Between a failure (a lost connection, a failed attempt) and the next connection: when
    /// the policy takes unwritten requests, every request that arrives goes to it at once.
    down: bool,
    /// During a full backoff wait (nothing was queued): when the prompt wait would have ended,
    /// for a publish that arrives meanwhile.
    prompt_at: Option<Instant>,
    /// Every deadline the router keeps: what is due next.
    timers: Timers,
    /// The one timer the router sleeps on, moved to the earliest entry of `timers`.
    wakeup: Wakeup,
    /// How nsqd has been answering, for a policy that judges whether it is slow.
    timing: timing::Timing,
    /// The policy judged nsqd slow: nothing more is written, and what is queued goes to it.
    slow: bool,
    /// Requests channel closed and drained (every handle dropped, or close).
    requests_done: bool,
    control_done: bool,
    /// Every request has its outcome and the router is done: dropping it loses nothing.
    finished: bool,
}

/// A close under way; its deadline is the [`Timer::Close`] entry.
struct Closing {
    replies: Vec<oneshot::Sender<Stats>>,
}

enum Phase {
    /// Not connected and never asked to be.
    Idle,
    /// Connect, not before `at`.
    Dial {
        at: Instant,
    },
    Connected(Box<Connection>),
    Done,
}

impl Router {
    pub(crate) fn new(
        addr: Arc<str>,
        conn_config: ConnConfig,
        config: Arc<ProducerConfig>,
        requests: mpsc::Receiver<Request>,
        control: mpsc::Receiver<Control>,
        shared: Arc<ProducerShared>,
        policy: Arc<dyn Policy>,
    ) -> Self {
        let takes = policy.takes();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let seed = now.as_nanos() as u64 ^ (Arc::as_ptr(&shared) as u64);
        Self {
            backoff: Backoff::new(config.reconnect_backoff_min, config.reconnect_backoff_max),
            transactions: Transactions::new(
                addr.clone(),
                takes.not_executed.then_some(Reclaim {
                    unknown: takes.unknown,
                }),
            ),
            addr,
            conn_config,
            config,
            requests,
            control,
            shared,
            jitter: Jitter::seeded(seed),
            unwritten: Unwritten::default(),
            batch: Batch::default(),
            permits_to_release: 0,
            ever_connected: false,
            failures: 0,
            last_error: None,
            pings: Vec::new(),
            taken: 0,
            flushes: Vec::new(),
            closing: None,
            policy,
            takes,
            down: false,
            timing: timing::Timing::default(),
            slow: false,
            prompt_at: None,
            timers: Timers::default(),
            wakeup: Wakeup::default(),
            requests_done: false,
            control_done: false,
            finished: false,
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
                Phase::Dial { at } => self.dial(at).await,
                Phase::Connected(conn) => self.connected(conn).await,
                Phase::Done => break,
            };
        }
        self.shut_down();
    }

    /// Bookkeeping for a request taken from the channel: it gets its place in the queue.
    fn dequeued(&mut self, mut request: Request) -> Request {
        self.counters().dequeued();
        request.index = self.taken;
        self.taken += 1;
        request
    }

    /// Bookkeeping for a request leaving the queue, written or failed: its queue bytes are
    /// returned to publishers by [`release_permits`](Self::release_permits), once per loop turn
    /// rather than once per request.
    fn leaves_queue(&mut self, request: &Request) {
        self.permits_to_release += request.permits as usize;
    }

    /// The queue index below which every request has its outcome. Requests are taken, written
    /// and answered in queue order, so the oldest one not settled is the first of: what is in
    /// flight, then the batch, then the unwritten requests, then the channel.
    fn settled_below(&self) -> u64 {
        self.transactions
            .first_index()
            .or_else(|| self.batch.first_index())
            .or_else(|| self.unwritten.first_index())
            .unwrap_or(self.taken)
    }

    /// Answers the flushes whose requests all have their outcome.
    fn settle_flushes(&mut self) {
        if self.flushes.is_empty() {
            return;
        }
        let settled = self.settled_below();
        let mut i = 0;
        while i < self.flushes.len() {
            if self.flushes[i].0 <= settled {
                let (_, reply) = self.flushes.swap_remove(i);
                let _ = reply.send(());
            } else {
                i += 1;
            }
        }
    }

    /// Takes `request`, which a `recv` returned, and whatever else the channel holds now.
    fn received(&mut self, request: Option<Request>) {
        match request {
            Some(request) => {
                let request = self.dequeued(request);
                self.unwritten.push(request);
                self.take_available();
            }
            None => self.requests_done = true,
        }
    }

    /// Takes every request the channel holds now, without waiting, so that their deadlines
    /// are watched.
    fn take_available(&mut self) {
        while !self.requests_done {
            match self.requests.try_recv() {
                Ok(request) => {
                    let request = self.dequeued(request);
                    self.unwritten.push(request);
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => self.requests_done = true,
            }
        }
        self.record_held();
    }

    /// Publishes how many requests the router holds unwritten, for `stats().queued`.
    fn record_held(&self) {
        let held = self.unwritten.len() as u64 + self.batch.len() as u64;
        self.counters().set_held(held);
    }

    /// Returns the queue bytes of requests that left the queue to publishers, and updates how
    /// many the router holds.
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
            Some(Control::Close { reply, deadline }) => self.begin_close(reply, deadline),
            Some(Control::Retire { reply }) => {
                self.set_down(true);
                self.give_up_queued();
                let deadline = Instant::now() + self.config.close_timeout;
                self.begin_close(reply, deadline);
            }
            Some(Control::Flush { before, reply }) => {
                self.flushes.push((before, reply));
                self.settle_flushes();
            }
            None => self.control_done = true,
        }
    }

    /// Handles the control messages already sent, without waiting for more.
    fn take_control(&mut self) {
        while !self.control_done {
            match self.control.try_recv() {
                Ok(control) => self.on_control(Some(control)),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => self.on_control(None),
            }
        }
    }

    /// Starts closing, or joins a close under way; the earlier deadline wins.
    fn begin_close(&mut self, reply: oneshot::Sender<Stats>, deadline: Instant) {
        match &mut self.closing {
            Some(closing) => {
                closing.replies.push(reply);
                let earlier = self
                    .timers
                    .get(Timer::Close)
                    .map_or(deadline, |d| d.min(deadline));
                self.timers.set(Timer::Close, Some(earlier));
            }
            None => {
                tracing::info!(addr = %self.addr, "closing producer");
                // No new requests; those already queued are still written.
                self.requests.close();
                self.closing = Some(Closing {
                    replies: vec![reply],
                });
                self.timers.set(Timer::Close, Some(deadline));
            }
        }
    }

    /// Closing, and its deadline has passed.
    fn closing_expired(&self) -> bool {
        self.closing.is_some() && self.timers.is_due(Timer::Close, Instant::now())
    }

    /// Nothing queued, nothing unwritten and nothing in flight.
    fn nothing_to_deliver(&mut self) -> bool {
        if !self.unwritten.is_empty() || !self.batch.is_empty() || !self.transactions.is_empty() {
            return false;
        }
        // Skip requests whose callers are gone; stop at the first live one.
        let found = loop {
            match self.requests.try_recv() {
                Ok(request) => {
                    let request = self.dequeued(request);
                    if !request.responder.is_abandoned() {
                        self.unwritten.push(request);
                        break true;
                    }
                    self.leaves_queue(&request);
                    self.counters().withdrawn();
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
            && self.unwritten.is_empty()
            && self.batch.is_empty()
            && self.transactions.is_empty()
    }

    /// Without a connection: whether the router is done, because closing has nothing left to
    /// deliver or ran out of time, or because every handle is gone and nothing is queued.
    fn done_without_connection(&mut self) -> bool {
        self.closing_expired()
            || (self.closing.is_some() && self.nothing_to_deliver())
            || self.finished_with_nothing_left()
    }

    /// Why a request that was never written failed at its deadline: nsqd's unavailability when
    /// the last attempt to reach it failed, else plain expiry.
    fn expiry_reason(&self) -> NotSentReason {
        match &self.last_error {
            Some(err) => NotSentReason::Unavailable(err.clone()),
            None => NotSentReason::DeadlineExpired,
        }
    }

    /// Fails the batch, the unwritten requests and everything in the channel.
    fn fail_queued(&mut self, reason: &NotSentReason) {
        let counters = &self.shared.counters;
        for member in self.batch.drain_members() {
            fail_request(member.responder, reason, counters);
        }
        for request in self.unwritten.drain() {
            self.permits_to_release += request.permits as usize;
            fail_request(request.responder, reason, counters);
        }
        while let Ok(request) = self.requests.try_recv() {
            let request = self.dequeued(request);
            self.leaves_queue(&request);
            fail_request(request.responder, reason, self.counters());
        }
        self.release_permits();
    }

    /// When the policy takes unwritten requests, nsqd is unreachable or slow, and the router
    /// is not closing: gives every queued request (batched, unwritten, in the channel) to the
    /// policy. Returns whether it did.
    fn give_up_queued(&mut self) -> bool {
        if !self.takes.unwritten || (!self.down && !self.slow) || self.closing.is_some() {
            return false;
        }
        let mut queued: Vec<Request> = Vec::new();
        for (topic, body, member) in self.batch.drain_requests() {
            queued.push(Request {
                payload: Payload::Pub { topic, body },
                responder: member.responder,
                deadline: member.deadline,
                // Its permits were returned when it joined the batch.
                permits: 0,
                index: member.index,
                tag: member.tag,
            });
        }
        queued.extend(self.unwritten.drain());
        while let Ok(request) = self.requests.try_recv() {
            queued.push(self.dequeued(request));
        }
        let given = queued.len();
        for request in queued {
            self.leaves_queue(&request);
            if request.responder.is_abandoned() {
                self.counters().withdrawn();
                continue;
            }
            match self.policy.never_written(request) {
                Ok(()) => self.counters().handed_back(),
                // The policy cannot take it: nowhere else to go.
                Err(returned) => {
                    fail_request(returned.responder, &NotSentReason::Closed, self.counters());
                }
            }
        }
        if given > 0 {
            tracing::debug!(addr = %self.addr, requests = given, "gave queued requests up to the policy");
        }
        self.release_permits();
        true
    }

    /// Gives the written requests nsqd did not execute (or, when the policy takes those too,
    /// whose outcome is unknown) to the policy.
    fn give_up_reclaimed(&mut self) {
        let reclaimed = self.transactions.take_reclaimed();
        if reclaimed.is_empty() {
            return;
        }
        self.counters().handed_back_written(reclaimed.len());
        tracing::debug!(addr = %self.addr, requests = reclaimed.len(), "gave written requests nsqd did not execute up to the policy");
        let requests = reclaimed
            .into_iter()
            .filter_map(|reclaimed| {
                let in_flight = reclaimed.request;
                let request = Request {
                    payload: in_flight.payload?,
                    responder: in_flight.responder,
                    deadline: in_flight.deadline,
                    permits: 0,
                    index: 0,
                    tag: in_flight.tag,
                };
                Some((request, reclaimed.outcome))
            })
            .collect();
        self.policy.not_executed(requests);
    }

    /// Marks nsqd unreachable (after a lost connection or a failed attempt) or reachable again
    /// (connected), and tells the policy. Either ends a slow judgement.
    fn set_down(&mut self, down: bool) {
        self.slow = false;
        self.down = down;
        self.policy
            .health(if down { Health::Down } else { Health::Up });
    }

    fn shut_down(&mut self) {
        self.requests.close();
        let counters = &self.shared.counters;
        self.transactions
            .fail_all(None, |failed| counters.unknown(Lost::Closed, failed));
        // When the policy takes unknown outcomes, what was in flight goes to it.
        self.give_up_reclaimed();
        self.fail_queued(&NotSentReason::Closed);
        self.shared.closed.store(true, Ordering::Release);
        // Closed: a slow judgement ends with the connection.
        self.set_down(true);
        self.set_state(ProducerState::Closed);
        for ping in self.pings.drain(..) {
            let _ = ping.send(Err(PingFailure::Closed));
        }
        // Every request has its outcome now.
        for (_, reply) in self.flushes.drain(..) {
            let _ = reply.send(());
        }
        self.control.close();
        while let Ok(control) = self.control.try_recv() {
            match control {
                Control::Ping(reply) => {
                    let _ = reply.send(Err(PingFailure::Closed));
                }
                Control::Flush { reply, .. } => {
                    let _ = reply.send(());
                }
                Control::Close { reply, .. } | Control::Retire { reply } => self
                    .closing
                    .get_or_insert_with(|| Closing {
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
        self.finished = true;
    }
}

impl Drop for Router {
    /// The task was dropped before it finished: the runtime is shutting down (a program
    /// returning from `main` without `flush` or `close`). Its callers are told (a dropped
    /// request ends not sent, or unknown if written), but no one may be waiting: say how many
    /// publishes end this way.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let written = self.transactions.len();
        let unsent = self.batch.len() + self.unwritten.len() + self.requests.len();
        if written + unsent > 0 {
            tracing::warn!(
                addr = %self.addr,
                unsent,
                written,
                "the producer's task was dropped (the runtime shut down) with {} publishes \
                 unanswered: {unsent} not sent, {written} written with no reply (outcome \
                 unknown); flush or close the producer before the runtime ends",
                written + unsent
            );
        }
    }
}

/// Completes a request that was never written and counts it, unless its caller withdrew it.
fn fail_request(responder: Responder, reason: &NotSentReason, counters: &Counters) {
    if responder.is_abandoned() {
        counters.withdrawn();
        return;
    }
    counters.not_sent(reason);
    responder.complete(Err(PublishError::NotSent(reason.clone())));
}
