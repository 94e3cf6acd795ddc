//! Queuing a publish: at once when the queue has room, else waiting for room until the
//! publish's deadline; and queuing a request that another producer's policy gave up.

use std::future::Future;
use std::sync::atomic::Ordering;

use tokio::sync::{TryAcquireError, mpsc};
use tokio::task::unconstrained;
use tokio::time::Instant;

use super::Producer;
use crate::completion::timed_completion;
use crate::counters::Timer;
use crate::error::{NotSentReason, PublishError};
use crate::publish_futures::{Patience, Start};
use crate::publish_handle::{Publish, publish_span, record_outcome};
use crate::request::{Payload, Request};
use crate::tag::Tag;

impl Producer {
    /// Starts queuing a checked request: queues it at once if there is room, or returns the
    /// wait for room.
    pub(crate) fn start(&self, payload: Payload, patience: Patience) -> Start<'static> {
        self.start_tagged(payload, patience, Tag::default())
    }

    /// [`start`](Self::start) for a request that carries `tag` for the router's policy.
    pub(crate) fn start_tagged(
        &self,
        payload: Payload,
        patience: Patience,
        tag: Tag,
    ) -> Start<'static> {
        let span = publish_span(&self.inner.addr, &payload);
        let timer = self.inner.shared.counters.timer();
        match self.try_enqueue(payload, patience, tag, &span, &timer) {
            Attempt::Done(result) => {
                if let Err(err) = &result {
                    failed_to_queue(err, &span, &timer);
                }
                Start::Done(result)
            }
            // The queue is full: wait for room. Boxed, so that the future of every publish
            // stays small (a large future is copied each time it moves).
            Attempt::Wait(waiting) => {
                let producer = self.clone();
                Start::Waiting(Box::pin(async move {
                    let result = producer.enqueue_waiting(waiting, &span, &timer).await;
                    if let Err(err) = &result {
                        failed_to_queue(err, &span, &timer);
                    }
                    result
                }))
            }
        }
    }

    /// Queues at once if there is room; otherwise says what to wait for.
    fn try_enqueue(
        &self,
        payload: Payload,
        patience: Patience,
        tag: Tag,
        span: &tracing::Span,
        timer: &Timer,
    ) -> Attempt {
        let inner = &*self.inner;
        let shared = &inner.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Attempt::Done(Err(self.closed()));
        }
        let now = Instant::now();
        let deadline = patience.deadline(now, inner.config.publish_timeout);
        if deadline.is_some_and(|d| d <= now) {
            return Attempt::Done(Err(self.not_sent(NotSentReason::DeadlineExpired)));
        }
        let permits = inner.gate.permits(payload.command().encoded_len());
        let waiting = |payload, tag, have_permits| {
            if inner.config.fail_fast {
                if have_permits {
                    shared.queue_bytes.add_permits(permits as usize);
                }
                Attempt::Done(Err(self.not_sent(NotSentReason::QueueFull)))
            } else {
                Attempt::Wait(Waiting {
                    queued: Queued {
                        payload,
                        tag,
                        deadline,
                        permits,
                    },
                    have_permits,
                })
            }
        };
        match shared.queue_bytes.try_acquire_many(permits) {
            Ok(permit) => permit.forget(),
            Err(TryAcquireError::NoPermits) => return waiting(payload, tag, false),
            Err(TryAcquireError::Closed) => return Attempt::Done(Err(self.closed())),
        }
        match inner.requests.try_reserve() {
            Ok(place) => {
                let queued = Queued {
                    payload,
                    tag,
                    deadline,
                    permits,
                };
                Attempt::Done(Ok(self.send(place, queued, span, timer)))
            }
            // Not expected: see `Gate`.
            Err(mpsc::error::TrySendError::Full(())) => waiting(payload, tag, true),
            Err(mpsc::error::TrySendError::Closed(())) => {
                shared.queue_bytes.add_permits(permits as usize);
                Attempt::Done(Err(self.closed()))
            }
        }
    }

    /// Waits for room in the queue, at most until the publish deadline.
    ///
    /// The wait is one semaphore acquisition: callers are admitted in the order they started
    /// waiting, and the router returns room for many at once. It runs outside tokio's
    /// cooperative budget, as the path that finds room at once does (it never awaits), so that
    /// a caller whose room has come goes on at its next poll. Under the budget, one task driving
    /// many waiting publishes (a `FuturesUnordered` of them) used it up after about a hundred
    /// admissions; tokio then turned each further woken publish away with a wake-up deferred to
    /// the end of the task's turn, which `FuturesUnordered` does not see as a yield, so it
    /// polled every woken publish in vain before yielding. Admissions per turn stayed at about
    /// a hundred whatever the number woken, and the publishes put off entered the queue behind
    /// later ones.
    async fn enqueue_waiting(
        &self,
        waiting: Waiting,
        span: &tracing::Span,
        timer: &Timer,
    ) -> Result<Publish, PublishError> {
        let Waiting {
            queued,
            have_permits,
        } = waiting;
        let (deadline, permits) = (queued.deadline, queued.permits);
        let shared = &self.inner.shared;
        if !have_permits {
            let room = shared.queue_bytes.acquire_many(permits);
            match unconstrained(until(deadline, room)).await {
                Some(Ok(permit)) => permit.forget(),
                Some(Err(_closed)) => return Err(self.closed()),
                None => return Err(self.not_sent(NotSentReason::DeadlineExpired)),
            }
        }
        // Holding the permits, a place in the channel is free (see `Gate`): this does not wait.
        let place = match self.inner.requests.try_reserve() {
            Ok(place) => Some(Ok(place)),
            Err(mpsc::error::TrySendError::Closed(())) => Some(Err(())),
            Err(mpsc::error::TrySendError::Full(())) => {
                let place = self.inner.requests.reserve();
                unconstrained(until(deadline, place))
                    .await
                    .map(|place| place.map_err(drop))
            }
        };
        match place {
            Some(Ok(place)) => Ok(self.send(place, queued, span, timer)),
            Some(Err(())) => {
                shared.queue_bytes.add_permits(permits as usize);
                Err(self.closed())
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
        queued: Queued,
        span: &tracing::Span,
        timer: &Timer,
    ) -> Publish {
        let Queued {
            payload,
            tag,
            deadline,
            permits,
        } = queued;
        let shared = &self.inner.shared;
        let (responder, completion) = timed_completion(timer.clone());
        // Counted before the request is in the channel, where the router may take it at once.
        shared.counters.enqueued();
        place.send(Request {
            payload,
            responder,
            deadline,
            permits,
            index: 0,
            tag,
        });
        Publish::new(completion, span.clone())
    }

    /// Queues a request that another producer's policy gave up (its caller still waits), if
    /// there is room now; gives it back if not (or if this producer is closed).
    pub(crate) fn queue_request(&self, mut request: Request) -> Result<(), Request> {
        let inner = &*self.inner;
        let shared = &inner.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Err(request);
        }
        let permits = inner.gate.permits(request.payload.command().encoded_len());
        match shared.queue_bytes.try_acquire_many(permits) {
            Ok(permit) => permit.forget(),
            Err(_) => return Err(request),
        }
        match inner.requests.try_reserve() {
            Ok(place) => {
                request.permits = permits;
                request.index = 0;
                shared.counters.enqueued();
                place.send(request);
                Ok(())
            }
            Err(_) => {
                shared.queue_bytes.add_permits(permits as usize);
                Err(request)
            }
        }
    }

    /// Whether it is closed: it takes no publishes.
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.inner.shared.closed.load(Ordering::Acquire)
    }

    /// Requests queued or in flight: what a pool balances on.
    pub(crate) fn outstanding(&self) -> u64 {
        self.inner.shared.counters.outstanding()
    }

    fn not_sent(&self, reason: NotSentReason) -> PublishError {
        self.inner.shared.counters.not_sent(&reason);
        PublishError::NotSent(reason)
    }
}

/// A request that was not queued: its span and timer record why.
fn failed_to_queue(err: &PublishError, span: &tracing::Span, timer: &Timer) {
    timer.record(Some(err));
    record_outcome(span, &Err(err.clone()));
}

/// The outcome of trying to queue a request without waiting.
enum Attempt {
    Done(Result<Publish, PublishError>),
    Wait(Waiting),
}

/// What a request is queued with, beside its caller's half.
struct Queued {
    payload: Payload,
    /// See `Request::tag`.
    tag: Tag,
    /// When its caller stops waiting (see `Request::deadline`).
    deadline: Option<Instant>,
    /// The queue permits it holds, or will once it has room.
    permits: u32,
}

/// A request waiting for room in the queue.
struct Waiting {
    queued: Queued,
    /// Its permits are already taken; only a place in the channel is missing (not expected,
    /// see [`Gate`]).
    have_permits: bool,
}

/// Runs `future` until `deadline`; `None` if the deadline came first.
async fn until<F: Future>(deadline: Option<Instant>, future: F) -> Option<F::Output> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline, future).await.ok(),
        None => Some(future.await),
    }
}
