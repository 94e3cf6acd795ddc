//! The phases without a connection: idle until there is something to send, then the backoff
//! wait, the dial and the handshake. Requests queued meanwhile keep their deadlines, pings and
//! close are answered, and close never waits for a dial or a handshake it no longer needs.

use std::sync::Arc;

use nsq_conn::{ConnError, Connection};
use tokio::time::Instant;

use super::timers::Timer;
use super::{Phase, Router};
use crate::error::{NotSentReason, PingFailure};
use crate::stats::ProducerState;

impl Router {
    /// No connection and no reason to make one: wait for a request, a ping or close.
    pub(super) async fn idle(&mut self) -> Phase {
        self.set_state(ProducerState::Idle);
        loop {
            if self.finished_with_nothing_left()
                || (self.closing.is_some() && self.nothing_to_deliver())
            {
                return Phase::Done;
            }
            if !self.unwritten.is_empty() || !self.batch.is_empty() || !self.pings.is_empty() {
                return Phase::Dial { at: Instant::now() };
            }
            tokio::select! {
                request = self.requests.recv(), if !self.requests_done => self.received(request),
                control = self.control.recv(), if !self.control_done => self.on_control(control),
            }
        }
    }

    /// Waits until `at` (the [`Timer::Backoff`] entry), then dials and handshakes. Meanwhile
    /// queued requests are taken from the channel, so that their deadlines are watched, and
    /// expire at them; pings and close are taken in. Done instead when closing has nothing
    /// left to deliver or runs out of time, or when every handle is gone with nothing queued.
    pub(super) async fn dial(&mut self, at: Instant) -> Phase {
        self.timers.set(Timer::Backoff, Some(at));
        let mut connecting = None;
        loop {
            self.take_control();
            if self.done_without_connection() {
                self.timers.stop(Timer::Backoff);
                return Phase::Done;
            }
            self.sweep_expired();
            self.settle_flushes();
            if connecting.is_none() && self.timers.is_due(Timer::Backoff, Instant::now()) {
                self.timers.stop(Timer::Backoff);
                self.prompt_at = None;
                self.set_state(ProducerState::Connecting);
                let conn_config = self.conn_config.clone();
                connecting = Some(Box::pin(
                    async move { Connection::connect(&conn_config).await },
                ));
            }
            let next = self.timers.next();
            tokio::select! {
                biased;
                control = self.control.recv(), if !self.control_done => self.on_control(control),
                request = self.requests.recv(), if !self.requests_done => {
                    self.received(request);
                    // A policy that takes unwritten requests gets them rather than the redial.
                    if !self.give_up_queued() {
                        self.cut_backoff();
                    }
                }
                () = self.wakeup.until(next) => {}
                result = async { connecting.as_mut().expect("dialling").await },
                    if connecting.is_some() => return self.dialled(result),
            }
        }
    }

    /// A publish arrived during a full backoff wait: the wait ends when the prompt one would
    /// have.
    fn cut_backoff(&mut self) {
        let Some(prompt_at) = self.prompt_at.take() else {
            return;
        };
        if let Some(at) = self.timers.get(Timer::Backoff) {
            let at = at.min(prompt_at);
            self.timers.set(Timer::Backoff, Some(at));
            self.set_next_attempt(at);
        }
    }

    /// The dial and handshake ended.
    fn dialled(&mut self, result: Result<Connection, ConnError>) -> Phase {
        match result {
            Ok(conn) => {
                if self.ever_connected {
                    self.counters().reconnected();
                }
                self.ever_connected = true;
                self.last_error = None;
                self.set_down(false);
                tracing::info!(addr = %self.addr, "connected to nsqd");
                self.set_state(ProducerState::Connected);
                Phase::Connected(Box::new(conn))
            }
            Err(err) => self.dial_failed(err),
        }
    }

    /// A dial or handshake failed: pings fail with its error (and with `fail_fast`, so does
    /// everything queued); the next attempt waits for the backoff.
    fn dial_failed(&mut self, err: ConnError) -> Phase {
        let err = Arc::new(err);
        self.counters().connect_failed();
        tracing::warn!(
            addr = %self.addr,
            attempt = self.failures + 1,
            error = %err,
            "connecting to nsqd failed"
        );
        for ping in self.pings.drain(..) {
            let _ = ping.send(Err(PingFailure::Connection(err.clone())));
        }
        self.last_error = Some(err.clone());
        self.set_down(true);
        if !self.give_up_queued() && self.config.fail_fast {
            self.fail_queued(&NotSentReason::Unavailable(err));
        }
        self.retry_later()
    }

    /// After a failed attempt, or a connection that ended before it was healthy: the next dial
    /// waits for a backoff that grows with each failure in a row. The wait is capped low (see
    /// [`PROMPT_MAX`](crate::backoff::PROMPT_MAX)) while someone waits for the connection: a
    /// policy that asks for it ([`Takes::prompt_redial`](crate::policy::Takes::prompt_redial)),
    /// or publishes queued. A producer with nothing queued waits the full backoff, cut short if
    /// a publish arrives meanwhile.
    pub(super) fn retry_later(&mut self) -> Phase {
        let unit = self.jitter.next_unit();
        let now = Instant::now();
        let prompt = now + self.backoff.delay(self.failures, unit, true);
        let prompt_now = self.takes.prompt_redial
            || !self.unwritten.is_empty()
            || !self.batch.is_empty()
            || !self.pings.is_empty();
        let at = if prompt_now {
            self.prompt_at = None;
            prompt
        } else {
            let at = now + self.backoff.delay(self.failures, unit, false);
            self.prompt_at = (prompt < at).then_some(prompt);
            at
        };
        self.failures = self.failures.saturating_add(1);
        self.retry_at(at)
    }

    /// Schedules the next dial for `at`.
    pub(super) fn retry_at(&mut self, at: Instant) -> Phase {
        self.set_next_attempt(at);
        Phase::Dial { at }
    }

    /// Tells the state the next dial is at `at`.
    fn set_next_attempt(&self, at: Instant) {
        self.set_state(ProducerState::Reconnecting {
            attempt: self.failures.saturating_add(1),
            last_error: self.last_error.clone(),
            next_attempt: at.into_std(),
        });
    }
}
