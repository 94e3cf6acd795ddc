//! Collecting outcomes: the publishes handed over together are awaited together, in order.
//!
//! One future per group of publishes rather than per publish: answers come back in about the
//! order the publishes were written, so the group is walked from its first unanswered publish,
//! and only that one's waker is registered. A group resolves once all its publishes have.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use nsq_producer::{Publish, PublishError};

use crate::input::Msgs;

/// The outcomes of a group of publishes, with their messages.
#[derive(Debug, Default)]
pub(crate) struct Outcomes {
    handles: Vec<(Publish, Msgs)>,
    /// The outcomes of the first `results.len()` handles.
    results: Vec<Result<(), PublishError>>,
}

impl Outcomes {
    /// Adds a publish handed over.
    pub(crate) fn push(&mut self, handle: Publish, msgs: Msgs) {
        self.handles.push((handle, msgs));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }
}

impl Future for Outcomes {
    type Output = Vec<(Result<(), PublishError>, Msgs)>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        while let Some((handle, _)) = this.handles.get_mut(this.results.len()) {
            match Pin::new(handle).poll(cx) {
                Poll::Ready(result) => this.results.push(result),
                Poll::Pending => return Poll::Pending,
            }
        }
        let results = std::mem::take(&mut this.results);
        let handles = std::mem::take(&mut this.handles);
        Poll::Ready(
            results
                .into_iter()
                .zip(handles.into_iter().map(|(_, msgs)| msgs))
                .collect(),
        )
    }
}
