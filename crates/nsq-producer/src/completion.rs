//! The one-shot hand-off of a publish result from the router to its caller.
//!
//! Each request owns one [`Slot`], shared by the router's [`Responder`] and the caller's
//! [`Completion`]. Besides the result, the slot records whether the request's bytes were
//! written, so that a caller whose deadline passes or who gives up can tell "never sent" from
//! "maybe stored" without asking the router, and the router can skip requests nobody waits for.
//!
//! Results are stored, never sent through a channel that can fill: completing never blocks the
//! router, however slow the caller: one caller that never looks at its result cannot hold up
//! the others.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;

use crate::counters::Timer;
use crate::error::{NotSentReason, PublishError};

#[derive(Debug)]
enum State {
    /// In the queue, not written.
    Queued,
    /// Written to the connection of the nsqd at this address, reply pending.
    Written(Arc<str>),
    /// The result is ready.
    Done(Result<(), PublishError>),
    /// The caller took the result.
    Taken,
    /// The caller withdrew the request before its bytes were written: skip it.
    Abandoned,
    /// As `Abandoned`, by [`Completion::cancel`]: the caller still holds its half and gets
    /// [`NotSentReason::Cancelled`].
    Cancelled,
}

#[derive(Debug)]
pub(crate) struct Slot {
    state: Mutex<State>,
    waker: AtomicWaker,
    /// Times the publish up to its result (empty without the `metrics` feature).
    timer: Timer,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half-updated (every update is a
        // single assignment), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Creates the two halves of a fresh slot, without a timer.
#[cfg(test)]
pub(crate) fn completion() -> (Responder, Completion) {
    timed_completion(Timer::none())
}

/// Creates the two halves of a fresh slot; `timer` records how long the publish took when its
/// result is delivered.
pub(crate) fn timed_completion(timer: Timer) -> (Responder, Completion) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Queued),
        waker: AtomicWaker::new(),
        timer,
    });
    (
        Responder {
            slot: Some(slot.clone()),
        },
        Completion {
            slot,
            withdraw_on_drop: false,
        },
    )
}

/// The router's half: marks the request written and completes it.
///
/// Dropping a responder that was never completed completes it anyway, as not sent if it was
/// never written and as unknown if it was, so no caller can be left waiting.
#[derive(Debug)]
pub(crate) struct Responder {
    slot: Option<Arc<Slot>>,
}

impl Responder {
    /// Marks the request as written to the nsqd at `addr`. Returns false if the caller has
    /// abandoned it, in which case it must not be written.
    pub(crate) fn start_write(&self, addr: &Arc<str>) -> bool {
        let Some(slot) = &self.slot else { return false };
        let mut state = slot.lock();
        match *state {
            State::Queued => {
                *state = State::Written(addr.clone());
                true
            }
            _ => false,
        }
    }

    /// Makes a written request queued again: nsqd did not execute it, and it may be written
    /// again (see `Reclaim`). False (and nothing changes) unless it is written and its caller
    /// still waits for it (not told it timed out).
    pub(crate) fn unwrite(&self) -> bool {
        let Some(slot) = &self.slot else { return false };
        let mut state = slot.lock();
        if matches!(*state, State::Written(_)) {
            *state = State::Queued;
            true
        } else {
            false
        }
    }

    /// Whether the caller withdrew the request before its bytes were written.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.slot
            .as_ref()
            .is_none_or(|slot| matches!(*slot.lock(), State::Abandoned | State::Cancelled))
    }

    /// Tells a caller whose request was written, and whose deadline has passed, that it timed
    /// out. The request stays outstanding: its reply still comes and is consumed by
    /// [`complete`](Self::complete), which then changes nothing. Returns whether a caller was
    /// told.
    pub(crate) fn time_out(&self) -> bool {
        let Some(slot) = &self.slot else { return false };
        {
            let mut state = slot.lock();
            let State::Written(addr) = &*state else {
                return false;
            };
            let timed_out = PublishError::TimedOut { addr: addr.clone() };
            slot.timer.record(Some(&timed_out));
            *state = State::Done(Err(timed_out));
        }
        slot.waker.wake();
        true
    }

    /// Delivers the result. A caller that has left is not an error.
    pub(crate) fn complete(mut self, result: Result<(), PublishError>) {
        if let Some(slot) = self.slot.take() {
            finish(&slot, result);
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let written = match &*slot.lock() {
                State::Written(addr) => Some(addr.clone()),
                _ => None,
            };
            let result = match written {
                Some(addr) => Err(PublishError::Unknown { addr, cause: None }),
                None => Err(PublishError::NotSent(NotSentReason::Closed)),
            };
            finish(&slot, result);
        }
    }
}

fn finish(slot: &Slot, result: Result<(), PublishError>) {
    {
        let mut state = slot.lock();
        match *state {
            State::Queued | State::Written(_) => {
                slot.timer.record(result.as_ref().err());
                *state = State::Done(result);
            }
            State::Done(_) | State::Taken | State::Abandoned | State::Cancelled => return,
        }
    }
    slot.waker.wake();
}

/// The caller's half: a future of the result.
///
/// Dropping it detaches: the request is still written and its outcome counted. With
/// [`withdraw_on_drop`](Self::withdraw_on_drop), dropping it before the bytes are written
/// withdraws the request instead, as [`cancel`](Self::cancel) does.
#[derive(Debug)]
pub(crate) struct Completion {
    slot: Arc<Slot>,
    withdraw_on_drop: bool,
}

impl Completion {
    /// Makes dropping this half withdraw the request if it is not written yet.
    pub(crate) fn withdraw_on_drop(&mut self) {
        self.withdraw_on_drop = true;
    }

    /// Withdraws the request if its bytes are not written yet; the result is then
    /// [`NotSentReason::Cancelled`]. Returns whether it did.
    pub(crate) fn cancel(&self) -> bool {
        let mut state = self.slot.lock();
        if matches!(*state, State::Queued) {
            *state = State::Cancelled;
            true
        } else {
            false
        }
    }
}

impl Future for Completion {
    type Output = Result<(), PublishError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(result) = take_done(&this.slot) {
            return Poll::Ready(result);
        }
        this.slot.waker.register(cx.waker());
        // Checked again: the result may have arrived between the first check and registering.
        match take_done(&this.slot) {
            Some(result) => Poll::Ready(result),
            None => Poll::Pending,
        }
    }
}

fn take_done(slot: &Slot) -> Option<Result<(), PublishError>> {
    let mut state = slot.lock();
    match std::mem::replace(&mut *state, State::Taken) {
        State::Done(result) => Some(result),
        State::Cancelled => Some(Err(PublishError::NotSent(NotSentReason::Cancelled))),
        other => {
            *state = other;
            None
        }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if !self.withdraw_on_drop {
            return;
        }
        let mut state = self.slot.lock();
        if matches!(*state, State::Queued) {
            *state = State::Abandoned;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    fn addr() -> Arc<str> {
        Arc::from("nsqd.test:4150")
    }

    fn poll(c: &mut Completion) -> Poll<Result<(), PublishError>> {
        Pin::new(c).poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn result_reaches_the_caller() {
        let (responder, mut completion) = super::completion();
        assert!(poll(&mut completion).is_pending());
        assert!(responder.start_write(&addr()));
        responder.complete(Ok(()));
        assert_eq!(poll(&mut completion), Poll::Ready(Ok(())));
    }

    #[test]
    fn dropped_caller_before_write_is_skipped_when_it_withdraws_on_drop() {
        let (responder, mut completion) = super::completion();
        completion.withdraw_on_drop();
        drop(completion);
        assert!(responder.is_abandoned());
        assert!(!responder.start_write(&addr()));
    }

    #[test]
    fn dropped_caller_detaches_by_default() {
        let (responder, completion) = super::completion();
        drop(completion);
        assert!(!responder.is_abandoned());
        assert!(responder.start_write(&addr()));
        responder.complete(Ok(()));
    }

    #[test]
    fn cancel_withdraws_only_before_the_write() {
        let (responder, mut completion) = super::completion();
        assert!(completion.cancel());
        assert!(!completion.cancel(), "once is enough");
        assert!(responder.is_abandoned());
        assert!(!responder.start_write(&addr()));
        assert_eq!(
            poll(&mut completion),
            Poll::Ready(Err(PublishError::NotSent(NotSentReason::Cancelled)))
        );

        let (responder, mut completion) = super::completion();
        assert!(responder.start_write(&addr()));
        assert!(!completion.cancel());
        responder.complete(Ok(()));
        assert_eq!(poll(&mut completion), Poll::Ready(Ok(())));
    }

    #[test]
    fn dropped_caller_after_write_still_lets_the_reply_be_consumed() {
        let (responder, completion) = super::completion();
        assert!(responder.start_write(&addr()));
        drop(completion);
        assert!(!responder.is_abandoned());
        responder.complete(Ok(()));
    }

    #[test]
    fn dropped_responder_never_leaves_the_caller_waiting() {
        let (responder, mut completion) = super::completion();
        drop(responder);
        assert_eq!(
            poll(&mut completion),
            Poll::Ready(Err(PublishError::NotSent(NotSentReason::Closed)))
        );
        let (responder, mut completion) = super::completion();
        assert!(responder.start_write(&addr()));
        drop(responder);
        assert_eq!(
            poll(&mut completion),
            Poll::Ready(Err(PublishError::Unknown {
                addr: addr(),
                cause: None
            }))
        );
    }

    #[test]
    fn timing_out_tells_only_a_written_request_and_keeps_it_outstanding() {
        let (responder, mut completion) = super::completion();
        assert!(
            !responder.time_out(),
            "a queued request is not timed out, it expires"
        );
        assert!(responder.start_write(&addr()));
        assert!(responder.time_out());
        assert_eq!(
            poll(&mut completion),
            Poll::Ready(Err(PublishError::TimedOut { addr: addr() }))
        );
        // The late reply changes nothing.
        responder.complete(Ok(()));
    }
}
