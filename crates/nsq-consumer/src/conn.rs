//! One connection's task: subscribe, read messages without ever waiting on the application,
//! write answers and RDY counts, and leave cleanly.
//!
//! The task never awaits anything but its own connection and channels: messages go to an
//! unbounded channel (bounded in practice by RDY: nsqd sends no more than the RDY count
//! unanswered), so heartbeats are answered however slow the handlers are.

use std::collections::HashSet;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use nsq_conn::{ConnError, Connection};
use nsq_proto::{Command, ErrorCode, Frame, MessageId, Response, ServerError};
use tokio::sync::mpsc;

use crate::backoff::Signal;
use crate::inbox::{Answer, AnswerKind, Ctrl, Input};
use crate::message::{Link, Message};
use crate::rdy::ConnId;
use crate::shared::Shared;
use crate::stats::Event;

/// How many frames or answers one pass handles before the others get a turn.
const BATCH: usize = 256;

/// Why a connection ended.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The connection itself failed: dial, handshake, I/O, heartbeats, a malformed frame.
    #[error(transparent)]
    Conn(#[from] ConnError),
    /// nsqd refused the subscription.
    #[error("nsqd refused SUB: {0}")]
    Subscribe(ServerError),
    /// nsqd sent an error that closes the connection.
    #[error("nsqd closed the connection with {0}")]
    Fatal(ServerError),
    /// The address does not make a valid connection configuration.
    #[error(transparent)]
    Config(#[from] nsq_conn::ConfigError),
    /// nsqd answered something other than `OK` to SUB.
    #[error("nsqd answered SUB with an unexpected frame")]
    UnexpectedReply,
}

/// Where messages go.
#[derive(Clone)]
pub(crate) struct Outlets {
    pub(crate) messages: async_channel::Sender<Message>,
    /// Messages past `max_attempts`, when a give-up hook is set.
    pub(crate) give_up: Option<mpsc::UnboundedSender<Message>>,
}

/// Dials, runs the handshake and subscribes.
pub(crate) async fn subscribe(
    shared: &Shared,
    address: &str,
) -> Result<Connection, ConnectionError> {
    let config = shared.config.conn_config(address)?;
    let mut conn = Connection::connect(&config).await?;
    conn.send(Command::Sub {
        topic: &shared.topic,
        channel: &shared.channel,
    })
    .await?;
    match conn.recv().await? {
        Frame::Response(Response::Ok) => Ok(conn),
        Frame::Error(err) => Err(ConnectionError::Subscribe(err)),
        _ => Err(ConnectionError::UnexpectedReply),
    }
}

/// A subscribed connection and its channels.
pub(crate) struct ConnTask {
    conn: Connection,
    id: ConnId,
    link: Arc<Link>,
    /// Answers and orders, in the order they were sent.
    inbox: mpsc::UnboundedReceiver<Input>,
    shared: Arc<Shared>,
    outlets: Outlets,
    /// Messages delivered and not yet answered.
    outstanding: HashSet<MessageId>,
    /// `CLS` was sent: close once nothing is outstanding.
    leaving: bool,
    /// nsqd confirmed the `CLS`.
    close_wait: bool,
    /// Everything outstanding was requeued at the drain's deadline.
    requeued_all: bool,
    /// nsqd closed its side while we were leaving with nothing outstanding.
    peer_closed: bool,
    #[cfg(feature = "metrics")]
    meter: crate::metrics::Meter,
}

impl ConnTask {
    /// Registers the connection with the planner and runs it until it closes or fails.
    /// Returns the failure, if any; the connection is unregistered either way.
    pub(crate) async fn run(
        shared: Arc<Shared>,
        conn: Connection,
        id: ConnId,
        address: Arc<str>,
        outlets: Outlets,
    ) -> Result<(), ConnectionError> {
        let (inbox_tx, inbox) = mpsc::unbounded_channel();
        let max_rdy = u32::try_from(conn.info().identify.max_rdy_count.max(1)).unwrap_or(u32::MAX);
        #[cfg(feature = "metrics")]
        let meter =
            crate::metrics::Meter::new(&address, shared.topic.as_str(), shared.channel.as_str());
        let link = Arc::new(Link {
            addr: address,
            inbox: inbox_tx.clone(),
        });
        shared.lock().add(id, max_rdy, inbox_tx, Instant::now());
        let mut task = Self {
            conn,
            id,
            link,
            inbox,
            shared,
            outlets,
            outstanding: HashSet::new(),
            leaving: false,
            close_wait: false,
            requeued_all: false,
            peer_closed: false,
            #[cfg(feature = "metrics")]
            meter,
        };
        task.count(Event::Connect, 1);
        let result = poll_fn(|cx| task.poll_run(cx)).await;
        task.finish(result.is_ok());
        result
    }

    fn count(&self, event: Event, n: u64) {
        self.shared.counters.add(event, n);
        #[cfg(feature = "metrics")]
        self.meter.count(event, n);
    }

    fn finish(&mut self, clean: bool) {
        self.shared.lock().remove(self.id);
        self.count(Event::Disconnect, 1);
        #[cfg(feature = "metrics")]
        self.meter.closed();
        let lost = self.outstanding.len() as u64;
        if lost > 0 {
            self.count(Event::LostWithConnection, lost);
            tracing::warn!(
                nsqd = %self.link.addr,
                lost,
                clean,
                "connection ended with messages unanswered; nsqd redelivers them after its msg_timeout"
            );
        }
        // Answers sent from now on find a closed channel and report `Disconnected`.
        self.inbox.close();
    }

    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnectionError>> {
        loop {
            let mut progress = false;
            progress |= self.poll_inbox(cx)?;
            if self.conn.write_buffer_len() > 0 {
                if let Poll::Ready(result) = self.conn.poll_flush(cx) {
                    result?;
                }
            }
            progress |= self.poll_frames(cx)?;
            #[cfg(feature = "metrics")]
            if progress {
                self.meter.in_flight(self.outstanding.len());
            }
            if self.peer_closed {
                return Poll::Ready(Ok(()));
            }
            // Leaving, close once nsqd confirmed the CLS (a message it sent before that is still
            // taken and answered) or once everything was requeued, and nothing is unanswered.
            if self.leaving
                && (self.close_wait || self.requeued_all)
                && self.outstanding.is_empty()
                && self.conn.write_buffer_len() == 0
            {
                return match self.conn.poll_close(cx) {
                    Poll::Ready(result) => Poll::Ready(result.map_err(Into::into)),
                    Poll::Pending => Poll::Pending,
                };
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// Handles what the inbox holds, up to a batch, in the order it was sent.
    fn poll_inbox(&mut self, cx: &mut Context<'_>) -> Result<bool, ConnectionError> {
        let mut done = 0u32;
        let mut signals = Vec::new();
        let mut handled = 0;
        while handled < BATCH {
            let Poll::Ready(Some(input)) = self.inbox.poll_recv(cx) else {
                break;
            };
            handled += 1;
            match input {
                Input::Ctrl(ctrl) => self.obey(ctrl)?,
                Input::Answer(answer) => {
                    if let Some(signal) = self.write_answer(answer)? {
                        done += 1;
                        signals.push(signal);
                    }
                }
            }
        }
        if done > 0 {
            let now = Instant::now();
            let shared = Arc::clone(&self.shared);
            let mut state = shared.lock();
            for _ in 0..done {
                state.planner.message_done(self.id, now);
            }
            for signal in signals {
                shared.signal(&mut state, signal, now);
            }
            state.dispatch();
        }
        Ok(handled > 0)
    }

    /// Carries out an order of the planner or the coordinator.
    fn obey(&mut self, ctrl: Ctrl) -> Result<(), ConnectionError> {
        match ctrl {
            Ctrl::Rdy(count) => {
                if !self.leaving {
                    self.conn.buffer_command(&Command::Rdy { count })?;
                    #[cfg(feature = "metrics")]
                    self.meter.rdy(count);
                }
            }
            Ctrl::Leave => {
                if !self.leaving {
                    self.leaving = true;
                    self.conn.buffer_command(&Command::Rdy { count: 0 })?;
                    self.conn.buffer_command(&Command::Cls)?;
                }
            }
            Ctrl::RequeueAll => {
                self.leaving = true;
                self.requeued_all = true;
                let n = self.outstanding.len() as u64;
                for id in self.outstanding.drain() {
                    self.conn.buffer_command(&Command::Req {
                        id: &id,
                        timeout: Duration::ZERO,
                    })?;
                }
                self.count(Event::Requeued, n);
                self.count(Event::RequeuedByDrain, n);
            }
        }
        Ok(())
    }

    /// Writes one answer; returns its backoff signal if it answered an outstanding message.
    fn write_answer(&mut self, answer: Answer) -> Result<Option<Signal>, ConnectionError> {
        if answer.kind == AnswerKind::Touch {
            if self.outstanding.contains(&answer.id) {
                self.conn
                    .buffer_command(&Command::Touch { id: &answer.id })?;
                self.count(Event::Touched, 1);
            } else {
                self.count(Event::LateAnswer, 1);
            }
            return Ok(None);
        }
        if !self.outstanding.remove(&answer.id) {
            self.count(Event::LateAnswer, 1);
            return Ok(None);
        }
        let signal = match answer.kind {
            AnswerKind::Finish | AnswerKind::GiveUp => {
                self.conn.buffer_command(&Command::Fin { id: &answer.id })?;
                if answer.kind == AnswerKind::GiveUp {
                    self.count(Event::GivenUp, 1);
                    Signal::Neutral
                } else {
                    self.count(Event::Finished, 1);
                    Signal::Success
                }
            }
            AnswerKind::Requeue { delay, backoff } => {
                let delay = delay.unwrap_or_else(|| self.default_delay(answer.attempts));
                self.conn.buffer_command(&Command::Req {
                    id: &answer.id,
                    timeout: delay,
                })?;
                self.count(Event::Requeued, 1);
                if backoff {
                    Signal::Failure
                } else {
                    Signal::Neutral
                }
            }
            AnswerKind::Dropped => {
                self.conn.buffer_command(&Command::Req {
                    id: &answer.id,
                    timeout: Duration::ZERO,
                })?;
                self.count(Event::Requeued, 1);
                self.count(Event::Dropped, 1);
                Signal::Neutral
            }
            AnswerKind::Touch => unreachable!("handled above"),
        };
        Ok(Some(signal))
    }

    /// go-nsq's default: `default_requeue_delay × attempts`, capped at `max_requeue_delay`.
    fn default_delay(&self, attempts: u16) -> Duration {
        let config = &self.shared.config;
        config
            .default_requeue_delay
            .saturating_mul(u32::from(attempts.max(1)))
            .min(config.max_requeue_delay)
    }

    fn poll_frames(&mut self, cx: &mut Context<'_>) -> Result<bool, ConnectionError> {
        let mut messages = Vec::new();
        let mut progress = false;
        for _ in 0..BATCH {
            let frame = match self.conn.poll_recv(cx) {
                Poll::Pending => break,
                Poll::Ready(Err(ConnError::Closed))
                    if self.leaving && self.outstanding.is_empty() =>
                {
                    // nsqd closed its side after our CLS and every answer was written.
                    self.peer_closed = true;
                    return Ok(progress);
                }
                Poll::Ready(frame) => frame?,
            };
            progress = true;
            match frame {
                Frame::Message(message) => messages.push(message),
                Frame::Response(Response::CloseWait) => self.close_wait = true,
                Frame::Response(_) => {}
                Frame::Error(err) => self.server_error(err)?,
            }
        }
        if !messages.is_empty() {
            self.deliver(messages);
        }
        Ok(progress)
    }

    fn server_error(&mut self, err: ServerError) -> Result<(), ConnectionError> {
        let event = match err.code() {
            ErrorCode::FinFailed => Event::FinFailed,
            ErrorCode::ReqFailed => Event::ReqFailed,
            ErrorCode::TouchFailed => Event::TouchFailed,
            _ if err.is_fatal() => return Err(ConnectionError::Fatal(err)),
            _ => {
                tracing::warn!(nsqd = %self.link.addr, error = %err, "nsqd reported an error");
                return Ok(());
            }
        };
        self.count(event, 1);
        tracing::warn!(nsqd = %self.link.addr, error = %err, "nsqd refused an answer");
        // The message had timed out in nsqd: handling is too slow, which is what backoff is
        // for.
        let shared = Arc::clone(&self.shared);
        let mut state = shared.lock();
        shared.signal(&mut state, Signal::Failure, Instant::now());
        state.dispatch();
        Ok(())
    }

    fn deliver(&mut self, messages: Vec<nsq_proto::Message>) {
        let now = Instant::now();
        let max_attempts = self.shared.config.max_attempts;
        let mut give_ups = Vec::new();
        // An id still outstanding is delivered again: nsqd timed the earlier delivery out
        // (msg_timeout passed without an answer). That delivery no longer counts in flight.
        let mut timed_out = 0u32;
        for message in &messages {
            if !self.outstanding.insert(message.id) {
                timed_out += 1;
            }
        }
        {
            let mut state = self.shared.lock();
            for _ in 0..messages.len() {
                state.planner.message_received(self.id, now);
            }
            for _ in 0..timed_out {
                state.planner.message_done(self.id, now);
            }
            state.dispatch();
        }
        self.count(Event::Received, messages.len() as u64);
        if timed_out > 0 {
            self.count(Event::TimedOut, u64::from(timed_out));
            tracing::warn!(
                nsqd = %self.link.addr,
                timed_out,
                "messages delivered again after nsqd's msg_timeout passed unanswered"
            );
        }
        for message in messages {
            let message = Message::new(message, Arc::clone(&self.link));
            if max_attempts > 0 && message.attempts() > max_attempts {
                give_ups.push(message);
                continue;
            }
            // A closed outlet drops the message, which requeues it.
            let _ = self.outlets.messages.try_send(message);
        }
        for message in give_ups {
            match &self.outlets.give_up {
                Some(hook) => {
                    let _ = hook.send(message);
                }
                None => {
                    tracing::warn!(
                        nsqd = %message.nsqd(),
                        id = %message.id(),
                        attempts = message.attempts(),
                        "giving up on a message after max_attempts: finishing it unhandled"
                    );
                    let _ = message.give_up();
                }
            }
        }
    }
}
