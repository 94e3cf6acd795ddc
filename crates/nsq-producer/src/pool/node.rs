//! One nsqd of a pool: its producer, and whether it is up.
//!
//! A node is up unless its producer is waiting to redial after a failure (or closed), or is
//! connected but judged slow: its router keeps a flag, so that routing reads one atomic per
//! node, and a small task watches its state to announce changes. A node that
//! has never been tried counts as up; its first publish dials it. A node that is down comes
//! back by itself: its producer keeps redialling with backoff in the background.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use tokio::sync::watch;
use tokio::time::Instant;

use super::health::NodeHealth;
use super::route::NodeId;
use crate::config::ProducerConfig;
use crate::error::NodeDown;
use crate::policy::Policy;
use crate::producer::Producer;
use crate::stats::{ProducerState, Stats};

#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) addr: String,
    /// Its identity in the pool's node sets: never given to another node of the pool.
    pub(crate) id: NodeId,
    pub(crate) producer: Producer,
    /// Its health, which its producer's policy keeps.
    pub(crate) health: Arc<NodeHealth>,
    /// Whether it was up when its state last changed (the producer's flag is the truth; this
    /// tells a change).
    up: AtomicBool,
    /// When it last came up, in milliseconds since the pool's epoch.
    up_since: AtomicU64,
    /// Found through nsqlookupd (and removed when it is no longer listed), rather than given.
    pub(crate) discovered: bool,
    /// When discovery first found it no longer listed by any nsqlookupd; `None` while listed.
    unlisted_since: Mutex<Option<Instant>>,
    /// Topics nsqlookupd lists as tombstoned on this node: none of their publishes go here.
    tombstoned: RwLock<Vec<String>>,
    any_tombstoned: AtomicBool,
}

impl Node {
    pub(crate) fn new(
        addr: String,
        id: NodeId,
        discovered: bool,
        config: ProducerConfig,
        policy: Arc<dyn Policy>,
        health: Arc<NodeHealth>,
    ) -> Result<Arc<Self>, nsq_conn::ConfigError> {
        let producer = Producer::build(addr.clone(), config, policy)?;
        Ok(Arc::new(Self {
            addr,
            id,
            producer,
            health,
            up: AtomicBool::new(true),
            up_since: AtomicU64::new(0),
            discovered,
            unlisted_since: Mutex::new(None),
            tombstoned: RwLock::new(Vec::new()),
            any_tombstoned: AtomicBool::new(false),
        }))
    }

    /// Whether publishes to `topic` may go here: nsqlookupd does not list it as tombstoned.
    #[inline]
    pub(crate) fn takes(&self, topic: &str) -> bool {
        !self.any_tombstoned.load(Ordering::Acquire) || !self.is_tombstoned(topic)
    }

    #[cold]
    fn is_tombstoned(&self, topic: &str) -> bool {
        self.tombstoned
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|t| t == topic)
    }

    /// Replaces the topics tombstoned on this node.
    #[cfg_attr(not(feature = "lookupd"), allow(dead_code))]
    pub(crate) fn set_tombstoned(&self, topics: Vec<String>) {
        let any = !topics.is_empty();
        *self.tombstoned.write().unwrap_or_else(|p| p.into_inner()) = topics;
        self.any_tombstoned.store(any, Ordering::Release);
    }

    /// Notes that nsqlookupd does not list it as of `now`, and returns since when it has not.
    #[cfg_attr(not(feature = "lookupd"), allow(dead_code))]
    pub(crate) fn unlisted_since(&self, now: Instant) -> Instant {
        let mut since = self
            .unlisted_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *since.get_or_insert(now)
    }

    /// Notes that nsqlookupd lists it; returns whether it was unlisted until now.
    #[cfg_attr(not(feature = "lookupd"), allow(dead_code))]
    pub(crate) fn listed_again(&self) -> bool {
        let mut since = self
            .unlisted_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        since.take().is_some()
    }

    /// Whether the pool may send it publishes: not closed, not between a failure and the next
    /// connection, and not slow.
    #[inline]
    pub(crate) fn is_up(&self) -> bool {
        self.health.is_up() && !self.producer.is_closed()
    }

    /// Whether it has been up since at least `since_ms` (milliseconds since the pool's epoch).
    pub(crate) fn up_before(&self, since_ms: u64) -> bool {
        self.is_up() && self.up_since.load(Ordering::Acquire) <= since_ms
    }

    /// Follows the producer's state until it closes or the node is gone, telling `changed`
    /// each time the node goes up or down. Holds the node weakly, so that a pool dropped
    /// without `close` lets its producers go.
    pub(crate) async fn watch(
        node: Weak<Self>,
        mut state: watch::Receiver<ProducerState>,
        epoch: Instant,
        changed: watch::Sender<u64>,
    ) {
        loop {
            let closed = {
                let Some(node) = node.upgrade() else { return };
                let state = state.borrow_and_update();
                // The node's policy sets its flag where its router's state changes; here only the
                // change is announced, and when the node came up noted.
                let up = node.is_up();
                if up != node.up.load(Ordering::Acquire) {
                    if up {
                        let now = epoch.elapsed().as_millis() as u64;
                        node.up_since.store(now, Ordering::Release);
                    }
                    node.up.store(up, Ordering::Release);
                    let went = if up { "up" } else { "down" };
                    tracing::info!(addr = %node.addr, "pool node went {went}");
                    changed.send_modify(|n| *n += 1);
                }
                *state == ProducerState::Closed
            };
            if closed || state.changed().await.is_err() {
                return;
            }
        }
    }

    /// Its state and why it is down, for a publish that found too few nodes up.
    pub(crate) fn down(&self) -> NodeDown {
        let state = self.producer.state();
        let last_error = match &state {
            ProducerState::Reconnecting { last_error, .. } => last_error.clone(),
            _ => None,
        };
        NodeDown {
            addr: self.addr.clone(),
            last_error,
            state,
        }
    }

    /// Its status, for [`Pool::nodes`](crate::Pool::nodes).
    pub(crate) fn status(&self) -> NodeStatus {
        NodeStatus {
            addr: self.addr.clone(),
            discovered: self.discovered,
            up: self.is_up(),
            slow: self.health.is_slow(),
            state: self.producer.state(),
            stats: self.producer.stats(),
        }
    }
}

/// One node of a [`Pool`](crate::Pool), as [`Pool::nodes`](crate::Pool::nodes) reports it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NodeStatus {
    /// Its nsqd address.
    pub addr: String,
    /// Whether it was found through nsqlookupd (and leaves the pool when no longer listed),
    /// rather than given by address.
    pub discovered: bool,
    /// Whether the pool sends it publishes: false while its producer waits to redial after a
    /// failure, and while it is slow.
    pub up: bool,
    /// Whether it is connected but judged slow (see
    /// [`PoolConfig::slow_after`](crate::PoolConfig::slow_after)): it gets no new publishes
    /// until it has answered what was written to it.
    pub slow: bool,
    /// Its producer's connection state: the attempt, last error and next attempt while it is
    /// down.
    pub state: ProducerState,
    /// Its producer's counters.
    pub stats: Stats,
}
