//! State shared by the connection tasks and the coordinator: the RDY planner, backoff, the
//! connections' inboxes and the counters.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use nsq_proto::{Channel, Topic};
use tokio::sync::{Notify, mpsc, watch};

use crate::backoff::{Action, Backoff, Signal};
use crate::config::ConsumerConfig;
use crate::inbox::{Ctrl, Input};
use crate::rdy::{ConnId, RdyPlanner};
use crate::stats::{Counters, Stats, bump};

pub(crate) struct Shared {
    pub(crate) config: ConsumerConfig,
    pub(crate) topic: Topic,
    pub(crate) channel: Channel,
    pub(crate) counters: Counters,
    state: Mutex<State>,
    /// Wakes the coordinator (a backoff window started, a stop was asked for).
    pub(crate) wake: Notify,
    /// A stop (drain) was asked for.
    pub(crate) stop: watch::Sender<bool>,
}

pub(crate) struct State {
    pub(crate) planner: RdyPlanner,
    pub(crate) backoff: Backoff,
    ctrls: HashMap<ConnId, mpsc::UnboundedSender<Input>>,
    /// Draining: RDY stays 0 whatever the planner says.
    draining: bool,
}

impl Shared {
    pub(crate) fn new(config: ConsumerConfig, topic: Topic, channel: Channel) -> Self {
        let planner = RdyPlanner::new(config.max_in_flight, config.low_rdy_idle_timeout);
        let backoff = Backoff::new(
            config.backoff_strategy,
            config.backoff_multiplier,
            config.max_backoff_duration,
        );
        Self {
            config,
            topic,
            channel,
            counters: Counters::default(),
            state: Mutex::new(State {
                planner,
                backoff,
                ctrls: HashMap::new(),
                draining: false,
            }),
            wake: Notify::new(),
            stop: watch::Sender::new(false),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain counters behind; carry on with them.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for a stop: the coordinator drains the consumer.
    ///
    /// RDY 0 and `CLS` are queued for every connection before the stop is announced, so that
    /// nothing reacting to it (a run dropping the messages it has not handed out, say) can get a
    /// requeue written first: nsqd would deliver that message straight back.
    pub(crate) fn request_stop(&self) {
        let mut state = self.lock();
        if self.is_stopping() {
            return;
        }
        state.start_drain();
        drop(state);
        self.stop.send_replace(true);
        self.wake.notify_one();
    }

    pub(crate) fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }

    pub(crate) fn stats(&self) -> Stats {
        let state = self.lock();
        self.counters.snapshot(
            state.ctrls.len(),
            state.planner.total_rdy(),
            state.backoff.level(),
        )
    }

    /// A message's answer counts for backoff; wakes the coordinator when a window starts.
    pub(crate) fn signal(&self, state: &mut State, signal: Signal, now: Instant) {
        match state.backoff.on_signal(signal, now) {
            Action::None => {}
            Action::Wait(_) => {
                bump(&self.counters.backoffs);
                tracing::warn!(
                    level = state.backoff.level(),
                    "backing off: every connection to RDY 0"
                );
                state.planner.enter_backoff();
                self.wake.notify_one();
            }
            Action::Resume => {
                tracing::info!("backoff over");
                state.planner.leave_backoff();
            }
        }
    }
}

impl State {
    /// Sends the planner's RDY changes to their connections.
    pub(crate) fn dispatch(&mut self) {
        let changes = self.planner.drain_changes();
        if self.draining {
            return;
        }
        for (conn, count) in changes {
            if let Some(tx) = self.ctrls.get(&conn) {
                let _ = tx.send(Input::Ctrl(Ctrl::Rdy(count)));
            }
        }
    }

    pub(crate) fn add(
        &mut self,
        conn: ConnId,
        max_rdy: u32,
        ctrl: mpsc::UnboundedSender<Input>,
        now: Instant,
    ) {
        if self.draining {
            let _ = ctrl.send(Input::Ctrl(Ctrl::Leave));
        }
        self.ctrls.insert(conn, ctrl);
        self.planner.add_connection(conn, max_rdy, now);
        self.dispatch();
    }

    pub(crate) fn remove(&mut self, conn: ConnId) {
        self.ctrls.remove(&conn);
        self.planner.remove_connection(conn);
        self.dispatch();
    }

    #[cfg_attr(not(feature = "lookupd"), allow(dead_code))]
    pub(crate) fn send(&self, conn: ConnId, ctrl: Ctrl) {
        if let Some(tx) = self.ctrls.get(&conn) {
            let _ = tx.send(Input::Ctrl(ctrl));
        }
    }

    /// Every connection stops taking messages.
    pub(crate) fn start_drain(&mut self) {
        self.draining = true;
        for tx in self.ctrls.values() {
            let _ = tx.send(Input::Ctrl(Ctrl::Leave));
        }
    }

    pub(crate) fn broadcast(&self, ctrl: Ctrl) {
        for tx in self.ctrls.values() {
            let _ = tx.send(Input::Ctrl(ctrl));
        }
    }
}
