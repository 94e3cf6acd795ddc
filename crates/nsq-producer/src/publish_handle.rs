//! The caller's handle of one queued publish, and its tracing span.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::completion::Completion;
use crate::error::{Copies, PublishError};
use crate::request::Payload;

/// The result of one queued publish: resolves when nsqd answers, the connection fails, or the
/// publish timeout passes (the router enforces the deadline, so this future holds no timer).
///
/// Like a task handle, it detaches when dropped: the message is still sent, and its outcome is
/// only counted in [`Stats`](crate::Stats). [`cancel`](Self::cancel) withdraws a message that is not written
/// yet.
#[must_use = "dropping a Publish does not withdraw the message; await it for the outcome, or \
              call cancel() to withdraw it"]
#[derive(Debug)]
pub struct Publish {
    handle: Handle,
    span: tracing::Span,
}

#[derive(Debug)]
enum Handle {
    One(Completion),
    /// The copies a fan-out pool sent to several nodes: each node's address, its completion,
    /// and its outcome once known.
    Copies(Vec<NodeCopy>),
}

/// One copy of a fan-out's message: the node it went to and how it ended there.
#[derive(Debug)]
struct NodeCopy {
    addr: String,
    /// `None` for a copy that could not be queued.
    completion: Option<Completion>,
    outcome: Option<Result<(), PublishError>>,
}

impl Publish {
    pub(crate) fn new(completion: Completion, span: tracing::Span) -> Self {
        Self {
            handle: Handle::One(completion),
            span,
        }
    }

    /// One handle for the copies of a message on several nodes (`addr` and that node's
    /// handle): it resolves `Ok` when every copy is acknowledged, else to
    /// [`PublishError::Copies`] with each node's outcome.
    pub(crate) fn copies(copies: Vec<(String, Result<Self, PublishError>)>) -> Self {
        let mut span = tracing::Span::none();
        let mut handles = Vec::with_capacity(copies.len());
        for (addr, queued) in copies {
            match queued {
                Ok(publish) => {
                    if span.is_none() {
                        span = publish.span.clone();
                    }
                    match publish.handle {
                        Handle::One(completion) => handles.push(NodeCopy {
                            addr,
                            completion: Some(completion),
                            outcome: None,
                        }),
                        Handle::Copies(copies) => handles.extend(copies),
                    }
                }
                Err(err) => handles.push(NodeCopy {
                    addr,
                    completion: None,
                    outcome: Some(Err(err)),
                }),
            }
        }
        Self {
            handle: Handle::Copies(handles),
            span,
        }
    }

    /// Withdraws the message if it has not been written to nsqd yet, and says whether it did.
    /// A withdrawn publish resolves to [`NotSentReason::Cancelled`](crate::NotSentReason::Cancelled) and is counted in
    /// [`Stats::withdrawn`](crate::Stats::withdrawn). Once written, a message cannot be withdrawn: this returns `false`
    /// and the publish resolves with nsqd's answer as usual. For copies on several nodes (a
    /// fan-out pool), each copy not yet written is withdrawn, and this says whether all were.
    pub fn cancel(&self) -> bool {
        match &self.handle {
            Handle::One(completion) => completion.cancel(),
            Handle::Copies(copies) => {
                // Every copy is withdrawn that can be, not only up to the first that cannot.
                let mut all = true;
                for copy in copies {
                    all &= copy.completion.as_ref().is_none_or(Completion::cancel);
                }
                all
            }
        }
    }

    /// Makes dropping this handle withdraw the message if it is not written yet, for the
    /// publish methods that await the outcome themselves: dropping *their* future is the
    /// caller's way to cancel.
    pub(crate) fn withdraw_on_drop(mut self) -> Self {
        match &mut self.handle {
            Handle::One(completion) => completion.withdraw_on_drop(),
            Handle::Copies(copies) => {
                for completion in copies.iter_mut().filter_map(|c| c.completion.as_mut()) {
                    completion.withdraw_on_drop();
                }
            }
        }
        self
    }
}

impl Future for Publish {
    type Output = Result<(), PublishError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let result = match &mut this.handle {
            Handle::One(completion) => std::task::ready!(Pin::new(completion).poll(cx)),
            Handle::Copies(copies) => {
                let mut pending = false;
                for copy in copies.iter_mut().filter(|c| c.outcome.is_none()) {
                    let Some(completion) = copy.completion.as_mut() else {
                        continue;
                    };
                    match Pin::new(completion).poll(cx) {
                        Poll::Ready(outcome) => copy.outcome = Some(outcome),
                        Poll::Pending => pending = true,
                    }
                }
                if pending {
                    return Poll::Pending;
                }
                let outcomes: Vec<(String, Result<(), PublishError>)> = copies
                    .iter_mut()
                    .map(|c| (c.addr.clone(), c.outcome.take().unwrap_or(Ok(()))))
                    .collect();
                if outcomes.iter().all(|(_, r)| r.is_ok()) {
                    Ok(())
                } else {
                    Err(PublishError::Copies(Copies(outcomes.into())))
                }
            }
        };
        record_outcome(&this.span, &result);
        Poll::Ready(result)
    }
}

/// A debug-level span for one publish request: the producer's address, the command, topic and
/// size, and later the outcome. Without a subscriber that wants it, this is a disabled span and
/// costs next to nothing.
pub(crate) fn publish_span(addr: &str, payload: &Payload) -> tracing::Span {
    let command = payload.command();
    tracing::debug_span!(
        "publish",
        addr,
        command = command.name(),
        topic = %payload.topic(),
        bytes = command.encoded_len(),
        outcome = tracing::field::Empty,
    )
}

pub(crate) fn record_outcome(span: &tracing::Span, result: &Result<(), PublishError>) {
    if span.is_disabled() {
        return;
    }
    match result {
        Ok(()) => span.record("outcome", "acknowledged"),
        Err(err) => span.record("outcome", tracing::field::display(err)),
    };
    span.in_scope(|| tracing::debug!("publish resolved"));
}
