//! The user-facing handle.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use nsq_proto::Topic;
use tokio::sync::{Semaphore, TryAcquireError, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::completion::{Completion, completion};
use crate::config::{ConfigError, ProducerConfig};
use crate::error::{NotSentReason, PingFailure, PublishError};
use crate::request::{Control, Payload, Request};
use crate::router::Router;
use crate::stats::{Counters, ProducerState, Stats};

/// A producer for one nsqd.
///
/// Cheap to clone: clones share one connection, one queue and one router task. See the
/// [crate documentation](crate) for the behaviour of publishes.
#[derive(Debug, Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    addr: String,
    config: Arc<ProducerConfig>,
    requests: mpsc::Sender<Request>,
    control: mpsc::Sender<Control>,
    shared: Arc<Shared>,
}

/// State shared by the handles and the router.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) counters: Counters,
    pub(crate) state: watch::Sender<ProducerState>,
    /// Bytes the queue may still take; a request holds its size in permits while queued.
    pub(crate) queue_bytes: Semaphore,
    pub(crate) closed: AtomicBool,
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
        config.validate()?;
        let addr = addr.into();
        let conn_config = config.conn_config(&addr)?;
        let config = Arc::new(config);
        let (requests, requests_rx) = mpsc::channel(config.queue_capacity);
        let (control, control_rx) = mpsc::channel(CONTROL_CAPACITY);
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            state: watch::Sender::new(ProducerState::Idle),
            queue_bytes: Semaphore::new(config.queue_capacity_bytes),
            closed: AtomicBool::new(false),
        });
        let router = Router::new(
            addr.clone(),
            conn_config,
            config.clone(),
            requests_rx,
            control_rx,
            shared.clone(),
        );
        tokio::spawn(router.run());
        Ok(Self {
            inner: Arc::new(Inner {
                addr,
                config,
                requests,
                control,
                shared,
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

    /// Publishes one message and waits for nsqd's answer.
    ///
    /// # Errors
    ///
    /// A [`PublishError`] that says whether the message may have been stored.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before the message is written withdraws it; after that, the message
    /// may still be published.
    pub async fn publish(&self, topic: &Topic, body: impl Into<Bytes>) -> Result<(), PublishError> {
        self.publish_async(topic, body).await?.await
    }

    /// Publishes several messages in one MPUB and waits for nsqd's answer, which covers them
    /// all: nsqd stores all of them or none.
    ///
    /// # Errors
    ///
    /// As [`publish`](Self::publish); also [`InvalidPublish::NoMessages`](crate::InvalidPublish::NoMessages) for an empty batch.
    pub async fn multi_publish<I>(&self, topic: &Topic, bodies: I) -> Result<(), PublishError>
    where
        I: IntoIterator,
        I::Item: Into<Bytes>,
    {
        self.multi_publish_async(topic, bodies).await?.await
    }

    /// Publishes one message that nsqd delivers after `delay`, and waits for nsqd's answer.
    ///
    /// # Errors
    ///
    /// As [`publish`](Self::publish); also [`InvalidPublish::DeferTooLong`](crate::InvalidPublish::DeferTooLong) for a delay above
    /// the configured maximum.
    pub async fn deferred_publish(
        &self,
        topic: &Topic,
        delay: Duration,
        body: impl Into<Bytes>,
    ) -> Result<(), PublishError> {
        self.deferred_publish_async(topic, delay, body).await?.await
    }

    /// Queues one message and returns once it is queued, with a [`Publish`] future for its
    /// result. No I/O happens in the caller; waiting here is backpressure (a full queue).
    ///
    /// # Errors
    ///
    /// Errors found before queuing: invalid input, a closed producer, a full queue with
    /// `fail_fast`, or the publish timeout passing while waiting for room.
    pub async fn publish_async(
        &self,
        topic: &Topic,
        body: impl Into<Bytes>,
    ) -> Result<Publish, PublishError> {
        let body = body.into();
        self.inner.config.limits.check_pub(&body)?;
        let topic = topic.clone();
        self.enqueue(Payload::Pub { topic, body }).await
    }

    /// Queues one MPUB; see [`publish_async`](Self::publish_async).
    ///
    /// # Errors
    ///
    /// As [`publish_async`](Self::publish_async).
    pub async fn multi_publish_async<I>(
        &self,
        topic: &Topic,
        bodies: I,
    ) -> Result<Publish, PublishError>
    where
        I: IntoIterator,
        I::Item: Into<Bytes>,
    {
        let bodies: Vec<Bytes> = bodies.into_iter().map(Into::into).collect();
        self.inner.config.limits.check_mpub(&bodies)?;
        let topic = topic.clone();
        self.enqueue(Payload::Mpub { topic, bodies }).await
    }

    /// Queues one DPUB; see [`publish_async`](Self::publish_async).
    ///
    /// # Errors
    ///
    /// As [`publish_async`](Self::publish_async).
    pub async fn deferred_publish_async(
        &self,
        topic: &Topic,
        delay: Duration,
        body: impl Into<Bytes>,
    ) -> Result<Publish, PublishError> {
        let body = body.into();
        self.inner.config.limits.check_dpub(delay, &body)?;
        let topic = topic.clone();
        self.enqueue(Payload::Dpub { topic, delay, body }).await
    }

    async fn enqueue(&self, payload: Payload) -> Result<Publish, PublishError> {
        let span = publish_span(&payload);
        let result = match self.try_enqueue(payload, &span) {
            Attempt::Done(result) => result,
            // The queue is full: wait for room. Boxed, so that the future of every publish
            // stays small (a large future is copied each time it moves).
            Attempt::Wait(waiting) => Box::pin(self.enqueue_waiting(waiting, &span)).await,
        };
        if let Err(err) = &result {
            record_outcome(&span, &Err(err.clone()));
        }
        result
    }

    /// Queues at once if there is room; otherwise says what to wait for.
    fn try_enqueue(&self, payload: Payload, span: &tracing::Span) -> Attempt {
        let inner = &*self.inner;
        let shared = &inner.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Attempt::Done(Err(PublishError::Closed));
        }
        let deadline = inner.config.publish_timeout.map(|t| Instant::now() + t);
        // A request larger than the whole byte budget takes all of it.
        let size = payload.command().encoded_len();
        let permits = size.min(inner.config.queue_capacity_bytes) as u32;
        let waiting = |payload, have_permits| {
            if inner.config.fail_fast {
                if have_permits {
                    shared.queue_bytes.add_permits(permits as usize);
                }
                Attempt::Done(Err(self.not_sent(NotSentReason::QueueFull)))
            } else {
                Attempt::Wait(Waiting {
                    payload,
                    deadline,
                    permits,
                    have_permits,
                })
            }
        };
        match shared.queue_bytes.try_acquire_many(permits) {
            Ok(permit) => permit.forget(),
            Err(TryAcquireError::NoPermits) => return waiting(payload, false),
            Err(TryAcquireError::Closed) => return Attempt::Done(Err(PublishError::Closed)),
        }
        match inner.requests.try_reserve() {
            Ok(place) => Attempt::Done(Ok(self.send(place, payload, deadline, permits, span))),
            Err(mpsc::error::TrySendError::Full(())) => waiting(payload, true),
            Err(mpsc::error::TrySendError::Closed(())) => {
                shared.queue_bytes.add_permits(permits as usize);
                Attempt::Done(Err(PublishError::Closed))
            }
        }
    }

    /// Waits for room in the queue, at most until the publish deadline.
    async fn enqueue_waiting(
        &self,
        waiting: Waiting,
        span: &tracing::Span,
    ) -> Result<Publish, PublishError> {
        let Waiting {
            payload,
            deadline,
            permits,
            have_permits,
        } = waiting;
        let shared = &self.inner.shared;
        if !have_permits {
            match until(deadline, shared.queue_bytes.acquire_many(permits)).await {
                Some(Ok(permit)) => permit.forget(),
                Some(Err(_closed)) => return Err(PublishError::Closed),
                None => return Err(self.not_sent(NotSentReason::DeadlineExpired)),
            }
        }
        // A place in the queue: a publisher still waiting for one is not counted as queued.
        match until(deadline, self.inner.requests.reserve()).await {
            Some(Ok(place)) => Ok(self.send(place, payload, deadline, permits, span)),
            Some(Err(_closed)) => {
                shared.queue_bytes.add_permits(permits as usize);
                Err(PublishError::Closed)
            }
            None => {
                shared.queue_bytes.add_permits(permits as usize);
                Err(self.not_sent(NotSentReason::DeadlineExpired))
            }
        }
    }

    /// Puts the request in its reserved place and returns the caller's half.
    fn send(
        &self,
        place: mpsc::Permit<'_, Request>,
        payload: Payload,
        deadline: Option<Instant>,
        permits: u32,
        span: &tracing::Span,
    ) -> Publish {
        let shared = &self.inner.shared;
        let (responder, completion) = completion();
        // Counted before the request is in the channel, where the router may take it at once.
        Counters::add(&shared.counters.queued, 1);
        place.send(Request {
            payload,
            responder,
            deadline,
            permits,
        });
        Publish {
            completion,
            span: span.clone(),
        }
    }

    fn not_sent(&self, reason: NotSentReason) -> PublishError {
        Counters::add(&self.inner.shared.counters.not_sent, 1);
        PublishError::NotSent(reason)
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

    /// Closes the producer: stops taking publishes, writes what is queued, waits for every
    /// outstanding reply (at most the configured close timeout), then closes the connection.
    ///
    /// Returns the final counters: how many requests ended in each outcome (see [`Stats`]).
    /// Closing twice is
    /// harmless; publishing after close fails with [`PublishError::Closed`] without I/O.
    pub async fn close(&self) -> Stats {
        let shared = &self.inner.shared;
        shared.closed.store(true, Ordering::Release);
        let (reply, stats) = oneshot::channel();
        if self.inner.control.send(Control::Close(reply)).await.is_ok() {
            if let Ok(stats) = stats.await {
                return stats;
            }
        }
        // The router has already finished.
        let mut state = shared.state.subscribe();
        let _ = state.wait_for(|s| *s == ProducerState::Closed).await;
        shared.counters.snapshot()
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

/// The outcome of trying to queue a request without waiting.
enum Attempt {
    Done(Result<Publish, PublishError>),
    Wait(Waiting),
}

/// A request waiting for room in the queue.
struct Waiting {
    payload: Payload,
    deadline: Option<Instant>,
    permits: u32,
    /// Its queue-byte permits are already taken; only a place in the channel is missing.
    have_permits: bool,
}

/// Room for pings and close requests; callers wait when it is full.
const CONTROL_CAPACITY: usize = 64;

/// Why [`Producer::connect`] failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Connecting failed.
    #[error(transparent)]
    Connect(#[from] PingFailure),
}

/// The result of one queued publish: resolves when nsqd answers, the connection fails, or the
/// publish timeout passes (the router enforces the deadline, so this future holds no timer).
///
/// Dropping it before the request is written withdraws the request; after that the request
/// stays on the wire and its reply is consumed and discarded.
#[must_use = "a publish's outcome is only known by awaiting it"]
#[derive(Debug)]
pub struct Publish {
    completion: Completion,
    span: tracing::Span,
}

impl Future for Publish {
    type Output = Result<(), PublishError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let result = std::task::ready!(Pin::new(&mut this.completion).poll(cx));
        record_outcome(&this.span, &result);
        Poll::Ready(result)
    }
}

/// A debug-level span for one publish request: its command, topic and size, and later its
/// outcome. Without a subscriber that wants it, this is a disabled span and costs next to
/// nothing.
fn publish_span(payload: &Payload) -> tracing::Span {
    let command = payload.command();
    tracing::debug_span!(
        "publish",
        command = command.name(),
        topic = %payload.topic(),
        bytes = command.encoded_len(),
        outcome = tracing::field::Empty,
    )
}

fn record_outcome(span: &tracing::Span, result: &Result<(), PublishError>) {
    if span.is_disabled() {
        return;
    }
    match result {
        Ok(()) => span.record("outcome", "acknowledged"),
        Err(err) => span.record("outcome", tracing::field::display(err)),
    };
    span.in_scope(|| tracing::debug!("publish resolved"));
}

/// Runs `future` until `deadline`; `None` if the deadline came first.
async fn until<F: Future>(deadline: Option<Instant>, future: F) -> Option<F::Output> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, future).await.ok(),
        None => Some(future.await),
    }
}
