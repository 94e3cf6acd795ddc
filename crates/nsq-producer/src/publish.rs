//! The caller's handle of one queued publish, and its tracing span.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::completion::Completion;
use crate::error::PublishError;
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
    completion: Completion,
    span: tracing::Span,
}

impl Publish {
    pub(crate) fn new(completion: Completion, span: tracing::Span) -> Self {
        Self { completion, span }
    }

    /// Withdraws the message if it has not been written to nsqd yet, and says whether it did.
    /// A withdrawn publish resolves to [`NotSentReason::Cancelled`](crate::NotSentReason::Cancelled) and is counted in
    /// [`Stats::withdrawn`](crate::Stats::withdrawn). Once written, a message cannot be withdrawn: this returns `false`
    /// and the publish resolves with nsqd's answer as usual.
    pub fn cancel(&self) -> bool {
        self.completion.cancel()
    }

    /// Makes dropping this handle withdraw the message if it is not written yet, for the
    /// publish methods that await the outcome themselves: dropping *their* future is the
    /// caller's way to cancel.
    pub(crate) fn withdraw_on_drop(mut self) -> Self {
        self.completion.withdraw_on_drop();
        self
    }
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
