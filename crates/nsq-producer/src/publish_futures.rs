//! The futures the publish methods return, and the per-call deadline they carry.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use nsq_proto::PublishLimits;

use crate::error::PublishError;
use crate::publish_handle::Publish;
use crate::request::Payload;

/// What the publish futures need of what they publish through (a
/// [`Producer`](crate::Producer) or a [`Pool`](crate::Pool)): its limits, to check a
/// caller's input, and the start of a checked publish. The trait cannot be named outside this
/// crate, so only this crate's types implement
/// [`GenericPublisher`](crate::GenericPublisher), which requires it.
#[allow(
    unnameable_types,
    reason = "sealed: only this crate's types implement it"
)]
pub trait Starter: Sync {
    /// The limits a publish is checked against before it is queued.
    #[doc(hidden)]
    fn limits(&self) -> &PublishLimits;

    /// Starts queuing a checked publish: queues it at once if there is room, or returns the
    /// wait for room.
    #[doc(hidden)]
    fn start(&self, payload: Payload, patience: Patience) -> Start<'_>;
}

/// How queuing a request started.
#[allow(unnameable_types, reason = "part of the sealed `Starter`")]
pub enum Start<'a> {
    /// Queued, or failed.
    Done(Result<Publish, PublishError>),
    /// Waiting for room in the queue.
    Waiting(Pin<Box<dyn Future<Output = Result<Publish, PublishError>> + Send + 'a>>),
}

/// How long one publish may take.
#[derive(Debug, Clone, Copy)]
#[allow(unnameable_types, reason = "part of the sealed `Starter`")]
pub enum Patience {
    /// [`ProducerConfig::publish_timeout`](crate::ProducerConfig::publish_timeout).
    Configured,
    /// This long from the first poll.
    For(Duration),
    /// Until this instant.
    Until(Instant),
    /// For ever.
    Unbounded,
}

impl Patience {
    /// The deadline of a publish that starts at `now`; `None` for none. A timeout too long to
    /// represent is no deadline.
    pub(crate) fn deadline(self, now: Instant, configured: Option<Duration>) -> Option<Instant> {
        match self {
            Self::Configured => configured.and_then(|t| now.checked_add(t)),
            Self::For(timeout) => now.checked_add(timeout),
            Self::Until(deadline) => Some(deadline),
            Self::Unbounded => None,
        }
    }
}

/// Queues one publish (PUB, MPUB or DPUB) and resolves to its [`Publish`] handle once it is
/// queued; returned by
/// [`GenericPublisher::publish_async`](crate::GenericPublisher::publish_async) and its siblings.
///
/// Waiting here is backpressure: a full queue. Before awaiting it, [`timeout`](Self::timeout),
/// [`deadline`](Self::deadline) or [`no_timeout`](Self::no_timeout) replaces
/// [`ProducerConfig::publish_timeout`](crate::ProducerConfig::publish_timeout) for this publish
/// alone: the deadline bounds the wait for room as well as the outcome the handle resolves to.
///
/// ```no_run
/// # async fn run(producer: nsq_producer::Producer, topic: nsq_producer::Topic) -> Result<(), nsq_producer::PublishError> {
/// use std::time::Duration;
///
/// let handle = producer
///     .publish_async(&topic, "hello")
///     .timeout(Duration::from_millis(250))
///     .await?;
/// handle.await?;
/// # Ok(())
/// # }
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Enqueuing<'a, P: Starter> {
    target: &'a P,
    stage: Stage<'a>,
}

enum Stage<'a> {
    /// Not polled yet: the checked request, or why it failed the checks.
    Start {
        payload: Result<Payload, PublishError>,
        patience: Patience,
    },
    /// Waiting for room in the queue.
    Waiting(Pin<Box<dyn Future<Output = Result<Publish, PublishError>> + Send + 'a>>),
    Done,
}

impl<'a, P: Starter> Enqueuing<'a, P> {
    pub(crate) fn new(target: &'a P, payload: Result<Payload, PublishError>) -> Self {
        Self {
            target,
            stage: Stage::Start {
                payload,
                patience: Patience::Configured,
            },
        }
    }

    /// Gives this publish `timeout`, counted from when it is first awaited, instead of the
    /// configured publish timeout.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.with(Patience::For(timeout))
    }

    /// Gives this publish a deadline of its own, instead of the configured publish timeout. A
    /// deadline already past fails it with
    /// [`NotSentReason::DeadlineExpired`](crate::NotSentReason::DeadlineExpired), unsent.
    pub fn deadline(self, deadline: impl Into<Instant>) -> Self {
        self.with(Patience::Until(deadline.into()))
    }

    /// Lets this publish wait as long as it takes, whatever the configured publish timeout.
    /// Once written, it still ends if its connection does.
    pub fn no_timeout(self) -> Self {
        self.with(Patience::Unbounded)
    }

    /// Sets the patience; once awaited, the deadline is fixed and this changes nothing.
    fn with(mut self, new: Patience) -> Self {
        if let Stage::Start { patience, .. } = &mut self.stage {
            *patience = new;
        }
        self
    }
}

impl<P: Starter> Future for Enqueuing<'_, P> {
    type Output = Result<Publish, PublishError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match std::mem::replace(&mut this.stage, Stage::Done) {
                Stage::Start { payload, patience } => {
                    let payload = match payload {
                        Ok(payload) => payload,
                        Err(err) => return Poll::Ready(Err(err)),
                    };
                    match this.target.start(payload, patience) {
                        Start::Done(result) => return Poll::Ready(result),
                        Start::Waiting(waiting) => this.stage = Stage::Waiting(waiting),
                    }
                }
                Stage::Waiting(mut waiting) => {
                    let poll = waiting.as_mut().poll(cx);
                    if poll.is_pending() {
                        this.stage = Stage::Waiting(waiting);
                    }
                    return poll;
                }
                Stage::Done => panic!("`Enqueuing` polled after it completed"),
            }
        }
    }
}

impl<P: Starter> fmt::Debug for Enqueuing<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match &self.stage {
            Stage::Start { .. } => "start",
            Stage::Waiting(_) => "waiting for room",
            Stage::Done => "done",
        };
        f.debug_struct("Enqueuing")
            .field("target", &std::any::type_name::<P>())
            .field("stage", &stage)
            .finish()
    }
}

/// Publishes (PUB, MPUB or DPUB) and resolves to nsqd's answer; returned by
/// [`GenericPublisher::publish`](crate::GenericPublisher::publish) and its siblings.
///
/// Before awaiting it, [`timeout`](Self::timeout), [`deadline`](Self::deadline) or
/// [`no_timeout`](Self::no_timeout) replaces
/// [`ProducerConfig::publish_timeout`](crate::ProducerConfig::publish_timeout) for this publish
/// alone. The deadline is kept by the producer's router like any other: it holds while the
/// publish waits for room, for a connection or for nsqd's answer, and a short one does not
/// make the router judge nsqd slow (that takes the configured timeout).
///
/// # Cancel safety
///
/// Dropping the future before the message is written withdraws it; after that, the message
/// may still be published.
///
/// ```no_run
/// # async fn run(producer: nsq_producer::Producer, topic: nsq_producer::Topic) {
/// use std::time::Duration;
///
/// match producer.publish(&topic, "hello").timeout(Duration::from_millis(250)).await {
///     Ok(()) => {}
///     Err(err) if err.is_retry_safe() => { /* not stored: publish again */ }
///     Err(err) => eprintln!("maybe stored: {err}"),
/// }
/// # }
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Publishing<'a, P: Starter> {
    stage: Outcome<'a, P>,
}

enum Outcome<'a, P: Starter> {
    Enqueuing(Enqueuing<'a, P>),
    Waiting(Publish),
    Done,
}

impl<'a, P: Starter> Publishing<'a, P> {
    /// Queues through `enqueuing`, then waits for the outcome.
    pub(crate) fn new(enqueuing: Enqueuing<'a, P>) -> Self {
        Self {
            stage: Outcome::Enqueuing(enqueuing),
        }
    }

    /// Gives this publish `timeout`, counted from when it is first awaited, instead of the
    /// configured publish timeout.
    pub fn timeout(self, timeout: Duration) -> Self {
        self.map(|e| e.timeout(timeout))
    }

    /// Gives this publish a deadline of its own, instead of the configured publish timeout. A
    /// deadline already past fails it with
    /// [`NotSentReason::DeadlineExpired`](crate::NotSentReason::DeadlineExpired), unsent.
    pub fn deadline(self, deadline: impl Into<Instant>) -> Self {
        let deadline = deadline.into();
        self.map(|e| e.deadline(deadline))
    }

    /// Lets this publish wait as long as it takes, whatever the configured publish timeout.
    /// Once written, it still ends if its connection does.
    pub fn no_timeout(self) -> Self {
        self.map(Enqueuing::no_timeout)
    }

    fn map(self, f: impl FnOnce(Enqueuing<'a, P>) -> Enqueuing<'a, P>) -> Self {
        match self.stage {
            Outcome::Enqueuing(enqueuing) => Self {
                stage: Outcome::Enqueuing(f(enqueuing)),
            },
            stage => Self { stage },
        }
    }
}

impl<P: Starter> Future for Publishing<'_, P> {
    type Output = Result<(), PublishError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            match &mut this.stage {
                Outcome::Enqueuing(enqueuing) => match Pin::new(enqueuing).poll(cx) {
                    Poll::Ready(Ok(publish)) => {
                        this.stage = Outcome::Waiting(publish.withdraw_on_drop());
                    }
                    Poll::Ready(Err(err)) => {
                        this.stage = Outcome::Done;
                        return Poll::Ready(Err(err));
                    }
                    Poll::Pending => return Poll::Pending,
                },
                Outcome::Waiting(publish) => {
                    let result = std::task::ready!(Pin::new(publish).poll(cx));
                    this.stage = Outcome::Done;
                    return Poll::Ready(result);
                }
                Outcome::Done => panic!("`Publishing` polled after it completed"),
            }
        }
    }
}

impl<P: Starter> fmt::Debug for Publishing<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.stage {
            Outcome::Enqueuing(enqueuing) => f.debug_tuple("Publishing").field(enqueuing).finish(),
            Outcome::Waiting(publish) => f.debug_tuple("Publishing").field(publish).finish(),
            Outcome::Done => f.write_str("Publishing(done)"),
        }
    }
}
