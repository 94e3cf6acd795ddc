//! The consumer's own task: which nsqd to be connected to, dialling and redialling them,
//! RDY ticks, backoff windows, discovery, and the drain.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::{Instant, Sleep};

use crate::conn::{ConnTask, ConnectionError, Outlets, subscribe};
use crate::error::{ConsumerError, NodeError};
use crate::inbox::Ctrl;
use crate::rdy::ConnId;
use crate::shared::Shared;
use crate::stats::DrainReport;

#[cfg(feature = "lookupd")]
use crate::discovery::{Discovery, Found};

/// How long connections may take to write their last answers and close after the drain's
/// deadline, before they are abandoned.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// How a node's task ended.
struct Exit {
    address: String,
    id: ConnId,
    was_up: bool,
    result: Result<(), ConnectionError>,
}

/// A node's task reports that it subscribed.
struct Up {
    address: String,
    id: ConnId,
}

#[derive(Debug)]
struct Node {
    /// Given by address: kept whatever nsqlookupd says.
    direct: bool,
    /// nsqlookupd wants it (or it is direct).
    wanted: bool,
    /// The running task (dialling or connected) and its connection id.
    task: Option<(ConnId, AbortHandle, bool)>,
    /// When to dial again.
    retry_at: Option<Instant>,
    /// Consecutive failed dials.
    failures: u32,
}

pub(crate) struct Coordinator {
    shared: Arc<Shared>,
    outlets: Outlets,
    nodes: BTreeMap<String, Node>,
    tasks: JoinSet<Exit>,
    ups: mpsc::UnboundedReceiver<Up>,
    ups_tx: mpsc::UnboundedSender<Up>,
    next_id: u64,
    report: watch::Sender<Option<DrainReport>>,
    #[cfg(feature = "lookupd")]
    discovery: Option<Discovery>,
}

#[cfg(feature = "lookupd")]
type Polling = BoxFuture<'static, (Discovery, Found)>;
#[cfg(not(feature = "lookupd"))]
type Polling = BoxFuture<'static, ()>;

impl Coordinator {
    pub(crate) fn new(
        shared: Arc<Shared>,
        outlets: Outlets,
        nsqd: &[String],
        report: watch::Sender<Option<DrainReport>>,
        #[cfg(feature = "lookupd")] discovery: Option<Discovery>,
    ) -> Self {
        let (ups_tx, ups) = mpsc::unbounded_channel();
        let nodes = nsqd
            .iter()
            .map(|a| {
                let node = Node {
                    direct: true,
                    wanted: true,
                    task: None,
                    retry_at: None,
                    failures: 0,
                };
                (a.clone(), node)
            })
            .collect();
        Self {
            shared,
            outlets,
            nodes,
            tasks: JoinSet::new(),
            ups,
            ups_tx,
            next_id: 0,
            report,
            #[cfg(feature = "lookupd")]
            discovery,
        }
    }

    /// Connects to the direct nodes and polls nsqlookupd once, reports whether the consumer
    /// could start, then runs until stopped and drained.
    pub(crate) async fn run(mut self, ready: oneshot::Sender<Result<(), ConsumerError>>) {
        match self.start().await {
            Ok(()) => {
                let _ = ready.send(Ok(()));
            }
            Err(err) => {
                let _ = ready.send(Err(err));
                self.shared.request_stop();
                self.drain().await;
                return;
            }
        }
        self.serve().await;
        self.drain().await;
    }

    async fn start(&mut self) -> Result<(), ConsumerError> {
        #[cfg(feature = "lookupd")]
        if let Some(mut discovery) = self.discovery.take() {
            let mut found = discovery.poll().await;
            if let Some(i) = found.errors.iter().position(Discovery::is_wrong_address) {
                let source = found.errors.swap_remove(i);
                return Err(ConsumerError::Lookupd {
                    address: source.lookupd().to_owned(),
                    source: Box::new(source),
                });
            }
            self.discovered(found);
            self.discovery = Some(discovery);
        }
        let addresses: Vec<String> = self.nodes.keys().cloned().collect();
        for address in &addresses {
            self.dial(address);
        }
        // Wait for every direct node to subscribe or fail once.
        let mut failures = Vec::new();
        let mut pending: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.direct)
            .map(|(a, _)| a.clone())
            .collect();
        let mut any_up = false;
        while !pending.is_empty() {
            tokio::select! {
                Some(up) = self.ups.recv() => {
                    any_up = true;
                    pending.retain(|a| *a != up.address);
                    self.up(up);
                }
                Some(joined) = self.tasks.join_next() => {
                    let Ok(exit) = joined else { continue };
                    pending.retain(|a| *a != exit.address);
                    if let Err(error) = &exit.result {
                        if !exit.was_up {
                            failures.push(NodeError { address: exit.address.clone(), error: error.clone() });
                        }
                    }
                    self.exited(exit);
                }
            }
        }
        #[cfg(feature = "lookupd")]
        let has_discovery = self.discovery.is_some();
        #[cfg(not(feature = "lookupd"))]
        let has_discovery = false;
        if !any_up && !has_discovery && !failures.is_empty() {
            return Err(ConsumerError::NoNodeConnected(failures));
        }
        for failure in &failures {
            tracing::warn!(nsqd = %failure.address, error = %failure.error, "could not subscribe; retrying");
        }
        Ok(())
    }

    /// The main loop, until a stop is asked for.
    async fn serve(&mut self) {
        let config = &self.shared.config;
        let tick_every = config.rdy_redistribute_interval;
        let mut next_tick = Instant::now() + tick_every;
        let mut polling: Option<Polling> = None;
        #[cfg(feature = "lookupd")]
        let mut next_poll = self
            .discovery
            .as_mut()
            .map(|d| Instant::now() + d.next_delay());
        #[cfg(not(feature = "lookupd"))]
        let next_poll: Option<Instant> = None;
        let mut sleep: Pin<Box<Sleep>> = Box::pin(tokio::time::sleep_until(next_tick));
        loop {
            if self.shared.is_stopping() {
                return;
            }
            let now = Instant::now();
            if now >= next_tick {
                next_tick = now + tick_every;
                let mut state = self.shared.lock();
                state.planner.tick(now.into_std());
                state.dispatch();
            }
            {
                let mut state = self.shared.lock();
                if state.backoff.window_ended(now.into_std()) {
                    state.planner.start_backoff_test();
                    state.dispatch();
                }
            }
            #[cfg(feature = "lookupd")]
            if next_poll.is_some_and(|t| now >= t) && polling.is_none() {
                if let Some(mut discovery) = self.discovery.take() {
                    next_poll = None;
                    polling = Some(Box::pin(async move {
                        let found = discovery.poll().await;
                        (discovery, found)
                    }));
                }
            }
            self.redial_due(now);
            let mut wake_at = next_tick;
            if let Some(end) = self.shared.lock().backoff.window_end() {
                wake_at = wake_at.min(Instant::from_std(end));
            }
            if let Some(t) = next_poll {
                wake_at = wake_at.min(t);
            }
            if let Some(t) = self.nodes.values().filter_map(|n| n.retry_at).min() {
                wake_at = wake_at.min(t);
            }
            sleep.as_mut().reset(wake_at);
            tokio::select! {
                () = &mut sleep => {}
                () = self.shared.wake.notified() => {}
                Some(up) = self.ups.recv() => self.up(up),
                Some(joined) = self.tasks.join_next() => {
                    if let Ok(exit) = joined {
                        self.exited(exit);
                    }
                }
                polled = async { polling.as_mut().expect("guarded").await }, if polling.is_some() => {
                    polling = None;
                    #[cfg(feature = "lookupd")]
                    {
                        let (mut discovery, found) = polled;
                        next_poll = Some(Instant::now() + discovery.next_delay());
                        self.discovery = Some(discovery);
                        self.discovered(found);
                    }
                    #[cfg(not(feature = "lookupd"))]
                    let () = polled;
                }
            }
        }
    }

    #[cfg(feature = "lookupd")]
    fn discovered(&mut self, found: Found) {
        for err in &found.errors {
            tracing::warn!(lookupd = err.lookupd(), error = %err, "polling nsqlookupd failed");
        }
        if !found.errors.is_empty() && found.wanted.is_empty() {
            // Every nsqlookupd failed (or none lists anything): change nothing.
            if found.errors.len() == self.discovery.as_ref().map_or(0, |d| d.len()) {
                return;
            }
        }
        for node in self.nodes.values_mut() {
            if !node.direct {
                node.wanted = false;
            }
        }
        for address in found.wanted {
            let node = self.nodes.entry(address.clone()).or_insert_with(|| {
                tracing::info!(nsqd = %address, "nsqlookupd lists a new nsqd");
                Node {
                    direct: false,
                    wanted: true,
                    task: None,
                    retry_at: Some(Instant::now()),
                    failures: 0,
                }
            });
            node.wanted = true;
        }
        let leaving: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| !n.wanted)
            .map(|(a, _)| a.clone())
            .collect();
        for address in leaving {
            tracing::info!(nsqd = %address, "no nsqlookupd lists the nsqd any more: leaving it");
            let node = self.nodes.remove(&address).expect("listed");
            if let Some((id, abort, up)) = node.task {
                if up {
                    self.shared.lock().send(id, Ctrl::Leave);
                } else {
                    abort.abort();
                }
            }
        }
    }

    fn redial_due(&mut self, now: Instant) {
        let due: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.task.is_none() && n.retry_at.is_some_and(|t| t <= now))
            .map(|(a, _)| a.clone())
            .collect();
        for address in due {
            self.dial(&address);
        }
    }

    fn dial(&mut self, address: &str) {
        let Some(node) = self.nodes.get_mut(address) else {
            return;
        };
        self.next_id += 1;
        let id = ConnId(self.next_id);
        let shared = Arc::clone(&self.shared);
        let outlets = self.outlets.clone();
        let ups = self.ups_tx.clone();
        let address = address.to_owned();
        node.retry_at = None;
        let abort = self.tasks.spawn(async move {
            match subscribe(&shared, &address).await {
                Err(error) => Exit {
                    address,
                    id,
                    was_up: false,
                    result: Err(error),
                },
                Ok(conn) => {
                    let _ = ups.send(Up {
                        address: address.clone(),
                        id,
                    });
                    let result =
                        ConnTask::run(shared, conn, id, Arc::from(address.as_str()), outlets).await;
                    Exit {
                        address,
                        id,
                        was_up: true,
                        result,
                    }
                }
            }
        });
        node.task = Some((id, abort, false));
    }

    fn up(&mut self, up: Up) {
        if let Some(node) = self.nodes.get_mut(&up.address) {
            if let Some((id, _, is_up)) = &mut node.task {
                if *id == up.id {
                    *is_up = true;
                    node.failures = 0;
                    tracing::info!(nsqd = %up.address, "subscribed");
                }
            }
        }
    }

    fn exited(&mut self, exit: Exit) {
        let config = &self.shared.config;
        match &exit.result {
            Ok(()) => tracing::info!(nsqd = %exit.address, "connection closed"),
            Err(error) if exit.was_up => {
                tracing::warn!(nsqd = %exit.address, %error, "connection lost")
            }
            Err(error) => tracing::warn!(nsqd = %exit.address, %error, "could not subscribe"),
        }
        let Some(node) = self.nodes.get_mut(&exit.address) else {
            return;
        };
        if node.task.as_ref().is_none_or(|(id, _, _)| *id != exit.id) {
            return;
        }
        node.task = None;
        if !node.wanted {
            return;
        }
        if exit.was_up {
            node.failures = 0;
        }
        let shift = node.failures.min(16);
        node.failures += 1;
        let delay = config
            .reconnect_backoff_min
            .saturating_mul(1 << shift)
            .min(config.reconnect_backoff_max);
        node.retry_at = Some(Instant::now() + delay);
    }

    /// Stops taking messages, waits for the answers until the drain's deadline, requeues what
    /// is left, closes, and publishes the report.
    async fn drain(&mut self) {
        let deadline = Instant::now() + self.shared.config.drain_timeout;
        self.shared.lock().start_drain();
        for node in self.nodes.values_mut() {
            node.retry_at = None;
            if let Some((_, abort, false)) = &node.task {
                abort.abort();
            }
        }
        let mut within_deadline = true;
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(Ok(exit))) => self.exited(exit),
                Ok(_) => {}
                Err(_) => {
                    within_deadline = false;
                    break;
                }
            }
        }
        if !within_deadline {
            self.shared.lock().broadcast(Ctrl::RequeueAll);
            let grace = Instant::now() + CLOSE_GRACE;
            while !self.tasks.is_empty() {
                match tokio::time::timeout_at(grace, self.tasks.join_next()).await {
                    Ok(_) => {}
                    Err(_) => {
                        self.tasks.abort_all();
                        while self.tasks.join_next().await.is_some() {}
                    }
                }
            }
        }
        let stats = self.shared.stats();
        let report = DrainReport::from_stats(&stats, within_deadline);
        tracing::info!(%report, "consumer drained");
        self.report.send_replace(Some(report));
    }
}
