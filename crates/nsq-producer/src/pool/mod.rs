//! A pool of nsqd: one [`Producer`] per node, publishes spread over the nodes that are up, and
//! failover that never duplicates a message.
//!
//! Each node keeps its own queue. A publish goes to one node picked by the [`Strategy`]; when a
//! node's connection is lost or cannot be made, the node hands back everything it has not
//! written, and the pool queues it on another node at once (`rebalance.rs`). Only requests that
//! were never written move, so failover cannot store a message twice; what was written to the
//! node that failed ends as it would on a lone producer (unknown, or timed out).

mod addrs;
mod budget;
mod by_name;
mod config;
#[cfg(feature = "lookupd")]
mod discover;
mod failover;
mod health;
mod node;
mod nodes;
mod pick;
mod rebalance;
mod route;
mod send;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use nsq_conn::ConfigError;
use nsq_proto::Topic;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use budget::RetryBudget;
pub use config::{PoolConfig, Strategy};
pub use node::NodeStatus;

use self::budget::Bucket;
use self::node::Node;
use crate::counters::Counters;
use crate::error::{NodeDown, NodesDown};
use crate::gate::Gate;
use crate::generic::GenericPublisher;
use crate::producer::{ConnectError, FlushTimedOut};
use crate::publish_futures::{Enqueuing, Patience, Publishing, Start, Starter};
use crate::request::{Payload, Request};
use crate::stats::{ProducerState, Stats};

/// A pool of nsqd: publishes go to the nodes that are up, and what a node that goes down has
/// not written moves to another node at once.
///
/// It has the publish API of [`Producer`](crate::Producer): a program moves from one nsqd to a
/// pool by changing how it is built. Cheap to clone: clones share the nodes.
///
/// What failover guarantees is stated precisely in the [crate documentation](crate#pools):
/// in short, a publish moves to another node only when nsqd certainly did not store it, so
/// failover never stores a message twice, and order across nodes is not kept.
#[derive(Debug, Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    shared: Arc<PoolShared>,
    rebalancer: Mutex<Option<JoinHandle<()>>>,
}

/// State shared by the pool's handles, its node watchers and the rebalancer.
#[derive(Debug)]
pub(crate) struct PoolShared {
    nodes: RwLock<Arc<[Arc<Node>]>>,
    config: PoolConfig,
    /// The next node for round-robin.
    next: AtomicUsize,
    /// State of the generator that picks nodes for `LeastOutstanding`.
    random: AtomicU64,
    epoch: Instant,
    /// Bumped each time a node goes up or down, or becomes slow or comes back.
    health: watch::Sender<u64>,
    closed: AtomicBool,
    /// Outcomes the pool decides itself: requests it holds that fail, or publishes that found
    /// no node up.
    counters: Counters,
    /// Requests the rebalancer holds, waiting for a node with room or for a node to come up,
    /// and publishes on their way to it ([`park`](PoolShared::park)).
    parked: AtomicU64,
    /// Requests the rebalancer has queued on a node, ever: a flush that sees this change looks
    /// again, since such a request may have entered a node's queue after that node's flush
    /// began.
    placed: AtomicU64,
    /// Where publishes that find no node up go, to wait in the rebalancer; dropped at close.
    park: Mutex<Option<mpsc::UnboundedSender<rebalance::Held>>>,
    /// The waiting room of publishes that found no node up (too few for a fan-out): one node's
    /// queue, sized by the same gate.
    room: tokio::sync::Semaphore,
    gate: Gate,
    /// Fan-out publishes waiting for enough nodes to be up (counted under `queued`).
    fan_outs_waiting: AtomicU64,
    /// Fan-out publishes that waited for nodes and have no outcome yet (a flush waits for
    /// them).
    fan_outs_unresolved: AtomicU64,
    /// Told each time the rebalancer has dealt with what it received or retried, so that a
    /// flush waiting for moved requests looks again.
    rebalanced: tokio::sync::Notify,
    /// Where nodes hand back requests; dropped at close, so that the rebalancer ends once the
    /// nodes have closed.
    hand_back: Mutex<Option<mpsc::UnboundedSender<Request>>>,
    /// The next node's identity in node sets: each node gets its own, never reused.
    next_id: AtomicU64,
    /// Nodes removed from the pool (no longer listed by nsqlookupd) that are still closing.
    retiring: Mutex<Vec<Arc<Node>>>,
    /// The final counters of nodes that left the pool.
    retired: Mutex<Stats>,
    /// Tokens for sending written requests again.
    budget: Bucket,
}

impl Pool {
    /// Creates a pool of the nsqd at `nsqd` (`host:port` of each TCP port), plus those that
    /// the nsqlookupds of `PoolConfig::lookupd` list, and returns at once; each node
    /// connects at its first publish.
    ///
    /// With nsqlookupd the list of addresses may be empty; to pass no address, use
    /// `Pool::new_lookupd` (feature `lookupd`): an empty array literal, `[]`, does not say what
    /// type of address it lacks, and does not compile.
    ///
    /// Addresses that lead to the same nsqd are one node: the same address twice, or
    /// `localhost:4150` beside `127.0.0.1:4150` (names that need a DNS lookup are compared as
    /// text here; [`connect`](Self::connect) resolves them).
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the configuration is invalid, when no address is given and no
    /// nsqlookupd either, or when a [`Strategy::FanOut`] asks for more copies than there are
    /// nsqd and no nsqlookupd can add more.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime: the nodes' tasks are spawned here.
    pub fn new<I>(nsqd: I, config: PoolConfig) -> Result<Self, ConfigError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        config.validate()?;
        let ignored = config.producer.ignored_options();
        if !ignored.is_empty() {
            tracing::warn!(
                options = %ignored.join(", "),
                "ignoring go-nsq options that do not apply to a pool"
            );
        }
        let addrs: Vec<String> = nsqd.into_iter().map(Into::into).collect();
        let addrs = addrs::distinct(addrs, addrs::literal);
        Self::build(addrs, config)
    }

    /// [`new`](Self::new) with addresses that lead to distinct nsqd.
    fn build(addrs: Vec<String>, config: PoolConfig) -> Result<Self, ConfigError> {
        if addrs.is_empty() && !config.discovers() {
            return Err(ConfigError::Conflict {
                option: "nsqd",
                reason: "a pool needs at least one nsqd or nsqlookupd address",
            });
        }
        if let Strategy::FanOut { copies } = config.strategy {
            // Without nsqlookupd the nodes are known now: more copies than nodes can never be
            // stored.
            if copies > addrs.len() && !config.discovers() {
                let n = addrs.len();
                return Err(ConfigError::InvalidValue {
                    option: "copies",
                    value: format!("{copies} copies over {n} distinct nsqd"),
                    expected: "at most one copy per nsqd",
                });
            }
        }
        let (hand_back, handed) = mpsc::unbounded_channel();
        let (park, parking) = mpsc::unbounded_channel();
        let gate = Gate::new(
            config.producer.queue_capacity,
            config.producer.queue_capacity_bytes,
        );
        let shared = Arc::new(PoolShared {
            nodes: RwLock::new(Arc::from(Vec::new())),
            next: AtomicUsize::new(0),
            random: AtomicU64::new(seed()),
            epoch: Instant::now(),
            health: watch::Sender::new(0),
            closed: AtomicBool::new(false),
            counters: Counters::new("pool"),
            parked: AtomicU64::new(0),
            placed: AtomicU64::new(0),
            park: Mutex::new(Some(park)),
            room: tokio::sync::Semaphore::new(gate.size()),
            gate,
            fan_outs_waiting: AtomicU64::new(0),
            fan_outs_unresolved: AtomicU64::new(0),
            rebalanced: tokio::sync::Notify::new(),
            hand_back: Mutex::new(Some(hand_back)),
            next_id: AtomicU64::new(0),
            retiring: Mutex::new(Vec::new()),
            retired: Mutex::new(Stats::default()),
            budget: Bucket::new(config.retry_budget),
            config,
        });
        for addr in addrs {
            shared.add_node(addr, false)?;
        }
        let rebalancer = tokio::spawn(rebalance::run(shared.clone(), handed, parking));
        #[cfg(feature = "lookupd")]
        if shared.config.discovers() {
            tokio::spawn(discover::run(Arc::downgrade(&shared)));
        }
        Ok(Self {
            inner: Arc::new(PoolInner {
                shared,
                rebalancer: Mutex::new(Some(rebalancer)),
            }),
        })
    }

    /// Creates a pool and connects every node before returning; succeeds when at least one
    /// node connected, so that a wrong address, TLS or AUTH setting shared by every node fails
    /// here rather than at the first publish. Addresses are resolved first, and those that
    /// lead to the same nsqd are one node.
    ///
    /// # Errors
    ///
    /// [`ConnectError`] for an invalid configuration; [`ConnectError::Lookupd`] when no node
    /// is given and no nsqlookupd answered, with each nsqlookupd's error;
    /// [`ConnectError::NoNodeConnected`] with every node's error when no node could be
    /// connected.
    pub async fn connect<I>(nsqd: I, config: PoolConfig) -> Result<Self, ConnectError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let addrs: Vec<String> = nsqd.into_iter().map(Into::into).collect();
        let resolved = addrs::resolve(&addrs).await;
        let sockets = |addr: &str| {
            resolved
                .iter()
                .find(|(a, _)| a == addr)
                .map(|(_, s)| s.clone())
                .unwrap_or_default()
        };
        let pool = Self::build(addrs::distinct(addrs.clone(), sockets), config)?;
        #[cfg(feature = "lookupd")]
        if pool.inner.shared.config.discovers() {
            let failed = discover::poll(&pool.inner.shared).await;
            let lookupds = pool.inner.shared.config.lookupd.len();
            if failed.len() == lookupds && pool.inner.shared.nodes().is_empty() {
                pool.close_now().await;
                return Err(ConnectError::Lookupd(crate::error::LookupdsFailed(
                    Arc::from(failed),
                )));
            }
        }
        let nodes = pool.inner.shared.nodes();
        if nodes.is_empty() {
            pool.close_now().await;
            return Err(ConnectError::Connect(crate::error::PingFailure::NoNode));
        }
        let pings = futures::future::join_all(nodes.iter().map(|n| n.producer.ping())).await;
        if pings.iter().any(Result::is_ok) {
            return Ok(pool);
        }
        let down: Vec<NodeDown> = nodes
            .iter()
            .zip(pings)
            .map(|(node, ping)| {
                let mut down = node.down();
                if let Err(crate::error::PingFailure::Connection(err)) = ping {
                    down.last_error = Some(err);
                }
                down
            })
            .collect();
        pool.close_now().await;
        Err(ConnectError::NoNodeConnected(NodesDown(Arc::from(down))))
    }

    /// Creates a pool of the nsqd that the nsqlookupds of [`PoolConfig::lookupd`] list, and
    /// returns at once: [`new`](Self::new) with no nsqd address. The nodes join at the first
    /// poll, which starts here.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the configuration is invalid or names no nsqlookupd.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    #[cfg(feature = "lookupd")]
    #[cfg_attr(docsrs, doc(cfg(feature = "lookupd")))]
    pub fn new_lookupd(config: PoolConfig) -> Result<Self, ConfigError> {
        Self::new(std::iter::empty::<String>(), config)
    }

    /// Creates a pool of the nsqd that the nsqlookupds of [`PoolConfig::lookupd`] list, polls
    /// them once and connects every node listed before returning: [`connect`](Self::connect)
    /// with no nsqd address.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect); also when the configuration names no nsqlookupd.
    #[cfg(feature = "lookupd")]
    #[cfg_attr(docsrs, doc(cfg(feature = "lookupd")))]
    pub async fn connect_lookupd(config: PoolConfig) -> Result<Self, ConnectError> {
        Self::connect(std::iter::empty::<String>(), config).await
    }

    /// The configuration in use.
    pub fn config(&self) -> &PoolConfig {
        &self.inner.shared.config
    }

    /// Publishes one message on a node that is up and waits for nsqd's answer; see
    /// [`GenericPublisher::publish`], which this forwards to.
    ///
    /// # Errors
    ///
    /// A [`PublishError`](crate::PublishError) that says whether the message may have been stored.
    pub fn publish(&self, topic: &Topic, body: impl Into<Bytes>) -> Publishing<'_, Self> {
        GenericPublisher::publish(self, topic, body)
    }

    /// Publishes several messages in one MPUB on a node that is up; see
    /// [`GenericPublisher::multi_publish`].
    ///
    /// # Errors
    ///
    /// As [`GenericPublisher::multi_publish`].
    pub fn multi_publish<I>(&self, topic: &Topic, bodies: I) -> Publishing<'_, Self>
    where
        I: IntoIterator,
        I::Item: Into<Bytes>,
    {
        GenericPublisher::multi_publish(self, topic, bodies)
    }

    /// Publishes one deferred message on a node that is up; see
    /// [`GenericPublisher::deferred_publish`].
    ///
    /// # Errors
    ///
    /// As [`GenericPublisher::deferred_publish`].
    pub fn deferred_publish(
        &self,
        topic: &Topic,
        delay: Duration,
        body: impl Into<Bytes>,
    ) -> Publishing<'_, Self> {
        GenericPublisher::deferred_publish(self, topic, delay, body)
    }

    /// Queues one message on a node that is up, or in the pool while none is; see
    /// [`GenericPublisher::publish_async`].
    ///
    /// # Errors
    ///
    /// As [`GenericPublisher::publish_async`].
    pub fn publish_async(&self, topic: &Topic, body: impl Into<Bytes>) -> Enqueuing<'_, Self> {
        GenericPublisher::publish_async(self, topic, body)
    }

    /// Queues one MPUB; see [`GenericPublisher::multi_publish_async`].
    ///
    /// # Errors
    ///
    /// As [`GenericPublisher::multi_publish_async`].
    pub fn multi_publish_async<I>(&self, topic: &Topic, bodies: I) -> Enqueuing<'_, Self>
    where
        I: IntoIterator,
        I::Item: Into<Bytes>,
    {
        GenericPublisher::multi_publish_async(self, topic, bodies)
    }

    /// Queues one DPUB; see [`GenericPublisher::deferred_publish_async`].
    ///
    /// # Errors
    ///
    /// As [`GenericPublisher::deferred_publish_async`].
    pub fn deferred_publish_async(
        &self,
        topic: &Topic,
        delay: Duration,
        body: impl Into<Bytes>,
    ) -> Enqueuing<'_, Self> {
        GenericPublisher::deferred_publish_async(self, topic, delay, body)
    }

    /// Waits until every publish queued before this call has its outcome, on whichever node
    /// it ended up; see [`Producer::flush`](crate::Producer::flush). Publishes that moved
    /// between nodes meanwhile are waited for too, so this may also wait for some publishes
    /// made after the call.
    pub async fn flush(&self) {
        let shared = &self.inner.shared;
        loop {
            // Registered first: a request that moves after this wakes the wait below.
            let rebalanced = shared.rebalanced.notified();
            let mut rebalanced = std::pin::pin!(rebalanced);
            rebalanced.as_mut().enable();
            let moved = shared.moves();
            let nodes = shared.all_nodes();
            futures::future::join_all(nodes.iter().map(|n| n.producer.flush())).await;
            if shared.parked.load(Ordering::SeqCst) == 0
                && shared.fan_outs_unresolved.load(Ordering::Acquire) == 0
                && shared.moves() == moved
            {
                return;
            }
            // Requests moved or are parked: look again once the rebalancer has dealt with
            // them (it retries parked ones every 10 ms), or after 10 ms should it have ended.
            let _ = tokio::time::timeout(Duration::from_millis(10), rebalanced).await;
        }
    }

    /// [`flush`](Self::flush), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`FlushTimedOut`] when some publishes have no outcome yet after `timeout`.
    pub async fn flush_timeout(&self, timeout: Duration) -> Result<(), FlushTimedOut> {
        tokio::time::timeout(timeout, self.flush())
            .await
            .map_err(|_| FlushTimedOut)
    }

    /// Closes every node (see [`Producer::close`](crate::Producer::close)) and returns the
    /// pool's totals.
    pub async fn close(&self) -> Stats {
        self.close_with(false).await
    }

    /// Closes every node without waiting (see
    /// [`Producer::close_now`](crate::Producer::close_now)) and returns the pool's totals.
    pub async fn close_now(&self) -> Stats {
        self.close_with(true).await
    }

    async fn close_with(&self, now: bool) -> Stats {
        let shared = &self.inner.shared;
        shared.closed.store(true, Ordering::Release);
        // Fan-outs waiting for nodes see the pool closed.
        shared.health.send_modify(|n| *n += 1);
        let nodes = shared.all_nodes();
        futures::future::join_all(nodes.iter().map(|n| async move {
            if now {
                n.producer.close_now().await
            } else {
                n.producer.close().await
            }
        }))
        .await;
        // The nodes are closed and have dropped their senders; with the pool's own gone, the
        // rebalancer fails what it holds and ends.
        shared.park.lock().unwrap_or_else(|p| p.into_inner()).take();
        shared
            .hand_back
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let rebalancer = self
            .inner
            .rebalancer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(rebalancer) = rebalancer {
            let _ = rebalancer.await;
        }
        // Fan-outs that waited for nodes end once their copies have.
        while shared.fan_outs_unresolved.load(Ordering::Acquire) > 0 {
            let ended = shared.rebalanced.notified();
            let _ = tokio::time::timeout(Duration::from_millis(10), ended).await;
        }
        self.stats()
    }

    /// The pool's totals: every node's counters added up, plus the requests the pool holds
    /// between nodes (under `queued`) and the outcomes it decided itself. `handed_back` counts
    /// moves between nodes; a request moved ends in one outcome, counted where it ended.
    pub fn stats(&self) -> Stats {
        self.inner.shared.totals()
    }

    /// Each node: its address, whether it is up, its connection state and its counters.
    pub fn nodes(&self) -> Vec<NodeStatus> {
        self.inner
            .shared
            .nodes()
            .iter()
            .map(|n| n.status())
            .collect()
    }

    /// The pool's state: `Connected` while any node is connected, `Closed` once closed, and
    /// otherwise the first node's state.
    pub fn state(&self) -> ProducerState {
        let shared = &self.inner.shared;
        if shared.closed.load(Ordering::Acquire) {
            return ProducerState::Closed;
        }
        let nodes = shared.nodes();
        let states: Vec<ProducerState> = nodes.iter().map(|n| n.producer.state()).collect();
        if states.contains(&ProducerState::Connected) {
            return ProducerState::Connected;
        }
        states.into_iter().next().unwrap_or(ProducerState::Idle)
    }
}

impl Starter for Pool {
    fn limits(&self) -> &nsq_proto::PublishLimits {
        &self.inner.shared.config.producer.limits
    }

    fn start(&self, payload: Payload, patience: Patience) -> Start<'_> {
        Self::start(self, payload, patience)
    }
}

impl GenericPublisher for Pool {
    fn flush(&self) -> impl std::future::Future<Output = ()> + Send + '_ {
        Self::flush(self)
    }

    fn close(&self) -> impl std::future::Future<Output = Stats> + Send + '_ {
        Self::close(self)
    }

    fn stats(&self) -> Stats {
        Self::stats(self)
    }
}

impl Drop for PoolInner {
    /// The last handle is gone without `close`: the nodes' producers are let go, so that each
    /// delivers what it holds and ends, as a lone producer does when its handles are gone.
    fn drop(&mut self) {
        let shared = &self.shared;
        if !shared.closed.load(Ordering::Acquire) {
            let total = shared.totals();
            let pending = total.queued + total.in_flight;
            if pending > 0 {
                tracing::warn!(
                    queued = total.queued,
                    in_flight = total.in_flight,
                    "the last handle of the pool was dropped with {pending} publishes queued or \
                     in flight; they are sent only while the runtime keeps running: call flush \
                     or close before exiting"
                );
            }
        }
        shared.closed.store(true, Ordering::Release);
        shared.health.send_modify(|n| *n += 1);
        *shared.nodes.write().unwrap_or_else(|p| p.into_inner()) = Arc::from(Vec::new());
        shared.park.lock().unwrap_or_else(|p| p.into_inner()).take();
        shared
            .hand_back
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

impl PoolConfig {
    /// Whether nodes are discovered through nsqlookupd.
    fn discovers(&self) -> bool {
        #[cfg(feature = "lookupd")]
        {
            !self.lookupd.is_empty()
        }
        #[cfg(not(feature = "lookupd"))]
        {
            false
        }
    }
}

pub(crate) fn seed() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_nanos() as u64) | 1
}

#[cfg(test)]
mod tests;
