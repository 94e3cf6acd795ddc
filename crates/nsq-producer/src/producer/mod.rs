//! The user-facing handle.

mod enqueue;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use nsq_conn::ConfigError;
use nsq_proto::Topic;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::config::ProducerConfig;
use crate::counters::Counters;
use crate::error::{LookupdsFailed, NodesDown, PingFailure, PublishError, Publisher};
use crate::gate::Gate;
use crate::generic::GenericPublisher;
use crate::policy::{Keep, Policy};
use crate::publish_futures::{Enqueuing, Patience, Publishing, Start, Starter};
use crate::request::{Control, Payload, Request};
use crate::router::Router;
use crate::shared::ProducerShared;
use crate::stats::{ProducerState, Stats};

/// A producer for one nsqd.
///
/// Cheap to clone: clones share one connection, one queue and one router task. See the
/// [crate documentation](crate) for the behaviour of publishes.
#[derive(Debug, Clone)]
pub struct Producer {
    inner: Arc<ProducerInner>,
}

#[derive(Debug)]
struct ProducerInner {
    addr: String,
    config: Arc<ProducerConfig>,
    requests: mpsc::Sender<Request>,
    control: mpsc::Sender<Control>,
    shared: Arc<ProducerShared>,
    gate: Gate,
    /// What a publish after close is told was closed: a node of a pool says the pool.
    publisher: Publisher,
}

impl Producer {
    /// Creates a producer for the nsqd at `addr` (`host:port` of its TCP port) and returns at
    /// once; the first publish or [`ping`](Self::ping) connects.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the configuration is invalid.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime: the router task is spawned here.
    pub fn new(addr: impl Into<String>, config: ProducerConfig) -> Result<Self, ConfigError> {
        Self::build(addr.into(), config, Arc::new(Keep))
    }

    /// A producer whose router reports what it cannot deliver to `policy` ([`Keep`] for a
    /// stand-alone one).
    pub(crate) fn build(
        addr: String,
        config: ProducerConfig,
        policy: Arc<dyn Policy>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let ignored = config.ignored_options();
        let takes = policy.takes();
        let publisher = takes.publisher;
        // A pool's nodes share one configuration: the pool warns once, not each node.
        if !ignored.is_empty() && publisher == Publisher::Producer {
            tracing::warn!(
                options = %ignored.join(", "),
                "ignoring go-nsq options that do not apply to a producer"
            );
        }
        let conn_config = config.conn_config(&addr)?;
        let config = Arc::new(config);
        let gate = Gate::new(config.queue_capacity, config.queue_capacity_bytes);
        let (requests, requests_rx) = mpsc::channel(config.queue_capacity);
        let (control, control_rx) = mpsc::channel(CONTROL_CAPACITY);
        let shared = Arc::new(ProducerShared {
            counters: Counters::new(&addr),
            state: watch::Sender::new(ProducerState::Idle),
            queue_bytes: Semaphore::new(gate.size()),
            closed: AtomicBool::new(false),
        });
        let router = Router::new(
            Arc::from(addr.as_str()),
            conn_config,
            config.clone(),
            requests_rx,
            control_rx,
            shared.clone(),
            policy,
        );
        tokio::spawn(router.run());
        Ok(Self {
            inner: Arc::new(ProducerInner {
                addr,
                config,
                requests,
                control,
                shared,
                gate,
                publisher,
            }),
        })
    }

    /// Creates a producer and connects before returning, so that a wrong address, TLS or AUTH
    /// setting fails here rather than at the first publish.
    ///
    /// # Errors
    ///
    /// [`ConnectError`] for an invalid configuration or a failed connection.
    pub async fn connect(
        addr: impl Into<String>,
        config: ProducerConfig,
    ) -> Result<Self, ConnectError> {
        let producer = Self::new(addr, config)?;
        producer.ping().await?;
        Ok(producer)
    }

    /// The address this producer publishes to.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// The configuration in use.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.config
    }

    /// Publishes one message and waits for nsqd's answer; see
    /// [`GenericPublisher::publish`], which this forwards to.
    ///
    /// # Errors
    ///
    /// A [`PublishError`](crate::PublishError) that says whether the message may have been stored.
    pub fn publish(&self, topic: &Topic, body: impl Into<Bytes>) -> Publishing<'_, Self> {
        GenericPublisher::publish(self, topic, body)
    }

    /// Publishes several messages in one MPUB; see [`GenericPublisher::multi_publish`].
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

    /// Publishes one deferred message; see [`GenericPublisher::deferred_publish`].
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

    /// Queues one message; see [`GenericPublisher::publish_async`].
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

    /// Connects if needed, then writes a `NOP` and flushes it.
    ///
    /// Success proves that a handshake with nsqd completed on the current connection, that the
    /// connection has not missed its heartbeat deadline, and that the NOP reached the socket.
    /// nsqd never answers NOP, so it does not prove that nsqd read it; a publish is the only
    /// true round trip.
    ///
    /// # Errors
    ///
    /// [`PingFailure`] with the connection error, or when the producer is closed.
    pub async fn ping(&self) -> Result<(), PingFailure> {
        if self.inner.shared.closed.load(Ordering::Acquire) {
            return Err(PingFailure::Closed);
        }
        let (reply, result) = oneshot::channel();
        if self.inner.control.send(Control::Ping(reply)).await.is_err() {
            return Err(PingFailure::Closed);
        }
        result.await.unwrap_or(Err(PingFailure::Closed))
    }

    /// Waits until every publish queued before this call has its outcome: acknowledged,
    /// rejected, not sent, unknown or withdrawn. Publishes queued during the wait are not waited
    /// for. With fire-and-forget publishing (dropped [`Publish`](crate::Publish) handles), this is the one
    /// wait: then [`stats`](Self::stats) tells how they ended.
    ///
    /// It waits as long as those publishes take, which their deadlines bound
    /// ([`ProducerConfig::publish_timeout`], plus the stall grace for one already written);
    /// [`flush_timeout`](Self::flush_timeout) bounds the wait itself. On a closed producer it
    /// returns at once: closing resolved everything.
    pub async fn flush(&self) {
        let shared = &self.inner.shared;
        let before = shared.counters.accepted();
        let (reply, done) = oneshot::channel();
        let flush = Control::Flush { before, reply };
        if self.inner.control.send(flush).await.is_ok() {
            // An error means the router finished, which settles every request.
            let _ = done.await;
        }
    }

    /// [`flush`](Self::flush), giving up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`FlushTimedOut`] when some of the publishes have no outcome yet after `timeout`; they
    /// go on, and [`stats`](Self::stats) shows where they stand.
    pub async fn flush_timeout(&self, timeout: Duration) -> Result<(), FlushTimedOut> {
        tokio::time::timeout(timeout, self.flush())
            .await
            .map_err(|_| FlushTimedOut)
    }

    /// Closes the producer: stops taking publishes, writes what is queued, waits for every
    /// outstanding reply (at most the configured close timeout), then closes the connection.
    ///
    /// Returns the final counters: how many requests ended in each outcome (see [`Stats`]).
    /// Closing twice is harmless; publishing after close fails with [`PublishError::Closed`]
    /// without I/O.
    pub async fn close(&self) -> Stats {
        let timeout = self.inner.config.close_timeout;
        self.close_by(Instant::now() + timeout).await
    }

    /// Closes the producer without waiting: what is still queued fails at once as not sent
    /// ([`NotSentReason::Closed`](crate::NotSentReason::Closed)), what is written and unanswered as unknown, and the
    /// connection is dropped. For a service that must exit now, say while nsqd is down. A
    /// [`close`](Self::close) under way ends at once too.
    pub async fn close_now(&self) -> Stats {
        self.close_by(Instant::now()).await
    }

    /// Gives what is queued to the router's policy, then closes, waiting for what is in flight
    /// (at most the close timeout).
    pub(crate) async fn retire(&self) -> Stats {
        let shared = &self.inner.shared;
        shared.closed.store(true, Ordering::Release);
        let (reply, stats) = oneshot::channel();
        if self
            .inner
            .control
            .send(Control::Retire { reply })
            .await
            .is_ok()
        {
            if let Ok(stats) = stats.await {
                return stats;
            }
        }
        let mut state = shared.state.subscribe();
        let _ = state.wait_for(|s| *s == ProducerState::Closed).await;
        shared.counters.snapshot()
    }

    async fn close_by(&self, deadline: Instant) -> Stats {
        let shared = &self.inner.shared;
        shared.closed.store(true, Ordering::Release);
        let (reply, stats) = oneshot::channel();
        let close = Control::Close { reply, deadline };
        if self.inner.control.send(close).await.is_ok() {
            if let Ok(stats) = stats.await {
                return stats;
            }
        }
        // The router has already finished.
        let mut state = shared.state.subscribe();
        let _ = state.wait_for(|s| *s == ProducerState::Closed).await;
        shared.counters.snapshot()
    }

    /// The error of a publish made after close.
    pub(crate) fn closed(&self) -> PublishError {
        PublishError::Closed(self.inner.publisher)
    }

    /// The connection state now.
    pub fn state(&self) -> ProducerState {
        self.inner.shared.state.borrow().clone()
    }

    /// A receiver that sees every change of [`state`](Self::state).
    pub fn watch_state(&self) -> watch::Receiver<ProducerState> {
        self.inner.shared.state.subscribe()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.inner.shared.counters.snapshot()
    }
}

impl Drop for ProducerInner {
    /// The last handle is gone. The router goes on with what is queued and in flight, but only
    /// while the runtime runs: a program that returns from `main` now loses it, so say how
    /// much there is. A pool's node leaves that to the pool.
    fn drop(&mut self) {
        if self.publisher != Publisher::Producer || self.shared.closed.load(Ordering::Acquire) {
            return;
        }
        let stats = self.shared.counters.snapshot();
        let pending = stats.queued + stats.in_flight;
        if pending > 0 {
            tracing::warn!(
                addr = %self.addr,
                queued = stats.queued,
                in_flight = stats.in_flight,
                "the last handle of the producer was dropped with {pending} publishes queued or \
                 in flight; they are sent only while the runtime keeps running: call flush or \
                 close before exiting"
            );
        }
    }
}

impl Starter for Producer {
    fn limits(&self) -> &nsq_proto::PublishLimits {
        &self.inner.config.limits
    }

    fn start(&self, payload: Payload, patience: Patience) -> Start<'_> {
        Self::start(self, payload, patience)
    }
}

impl GenericPublisher for Producer {
    fn flush(&self) -> impl Future<Output = ()> + Send + '_ {
        Self::flush(self)
    }

    fn close(&self) -> impl Future<Output = Stats> + Send + '_ {
        Self::close(self)
    }

    fn stats(&self) -> Stats {
        Self::stats(self)
    }
}

/// Room for pings and close requests; callers wait when it is full.
const CONTROL_CAPACITY: usize = 64;

/// [`Producer::flush_timeout`] ran out before every publish had its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("flush timed out: some publishes have no outcome yet")]
pub struct FlushTimedOut;

/// Why [`Producer::connect`] or [`Pool::connect`](crate::Pool::connect) failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Connecting failed.
    #[error(transparent)]
    Connect(#[from] PingFailure),
    /// No node of a pool could be connected: each node's error.
    #[error("no nsqd of the pool could be connected: {0}")]
    NoNodeConnected(NodesDown),
    /// A pool has no node given by address, and no nsqlookupd answered: each nsqlookupd's
    /// error.
    #[error("no nsqlookupd answered: {0}")]
    Lookupd(LookupdsFailed),
}
