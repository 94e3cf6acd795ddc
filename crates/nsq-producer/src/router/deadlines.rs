//! Deadlines the router keeps for its callers, so that a pending publish holds no timer of its
//! own: requests written and waiting for a reply, and requests still queued.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

use super::{Router, fail_request};
use crate::deadline_set::earlier;

impl Router {
    /// Fails queued requests whose deadline passed and arms `expiry` for the next one; for the
    /// phases without a connection.
    pub(super) async fn sweep_expired(&mut self, expiry: &mut Pin<Box<Sleep>>) {
        poll_fn(|cx| {
            self.expire_queued(Instant::now(), expiry, cx);
            // Nothing left to watch: a timer that fired must not wake the phase again.
            if expiry.is_elapsed() {
                expiry.as_mut().reset(far_future());
            }
            Poll::Ready(())
        })
        .await;
        self.release_permits();
    }

    /// Tells the callers of written requests whose deadline passed that they timed out, and
    /// arms `timer` for the next such deadline.
    pub(super) fn expire_in_flight(
        &mut self,
        now: Instant,
        timer: &mut Pin<Box<Sleep>>,
        cx: &mut Context<'_>,
    ) {
        while let Some(deadline) = self.transactions.next_timeout() {
            if deadline > now && !poll_timer(timer, deadline, cx) {
                break;
            }
            let told = self.transactions.time_out(deadline.max(now));
            self.shared.counters.timed_out(told);
        }
    }

    /// Fails the requests taken from the channel and not written (batched or unwritten) whose
    /// deadline passed, and arms `timer` for the next such deadline.
    pub(super) fn expire_queued(
        &mut self,
        now: Instant,
        timer: &mut Pin<Box<Sleep>>,
        cx: &mut Context<'_>,
    ) {
        let reason = self.expiry_reason();
        let counters = &self.shared.counters;
        self.batch.expire(now, |responder| {
            fail_request(responder, &reason, counters);
        });
        let permits = &mut self.permits_to_release;
        self.unwritten.expire(now, |request| {
            *permits += request.permits as usize;
            fail_request(request.responder, &reason, counters);
        });
        let next = earlier(self.batch.next_deadline(), self.unwritten.next_deadline());
        if let Some(deadline) = next {
            if poll_timer(timer, deadline, cx) {
                // Passed since `now` was read: go round again with the deadline as now.
                self.expire_queued(deadline, timer, cx);
            }
        }
    }
}

/// Polls `timer` for `deadline`, moving it first if the deadline changed. True once it passed.
///
/// Deadlines mostly move later (the oldest request leaves, the next one is younger), and moving
/// a timer costs a trip through the runtime's timer wheel, so a timer set for an earlier
/// deadline is left to fire and is only then moved on; it is moved at once only when the new
/// deadline is earlier.
pub(super) fn poll_timer(
    timer: &mut Pin<Box<Sleep>>,
    deadline: Instant,
    cx: &mut Context<'_>,
) -> bool {
    if deadline < timer.deadline() {
        timer.as_mut().reset(deadline);
    }
    if timer.as_mut().poll(cx).is_pending() {
        return false;
    }
    if deadline <= timer.deadline() {
        return true;
    }
    // It fired for an earlier deadline that no longer matters: wait for this one.
    timer.as_mut().reset(deadline);
    timer.as_mut().poll(cx).is_ready()
}

/// Sleeps until `at`, or for ever when there is no deadline.
pub(super) async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A timer that has not been armed yet.
pub(super) fn unarmed() -> Pin<Box<Sleep>> {
    Box::pin(tokio::time::sleep_until(far_future()))
}

fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_secs(86_400 * 365)
}
