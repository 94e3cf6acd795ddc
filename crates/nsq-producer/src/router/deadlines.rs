//! Deadlines the router keeps for its callers, so that a pending publish holds no timer of its
//! own: requests written and waiting for a reply, and requests still queued. Each FIFO keeps
//! its requests' deadlines; these handlers fail or time out what is due and put the FIFO's
//! next deadline in the timer table (see `timers.rs`).

use tokio::time::Instant;

use super::timers::Timer;
use super::{Router, fail_request};
use crate::deadline_set::earlier;

impl Router {
    /// Fails queued requests whose deadline passed and returns their queue bytes; for the
    /// phases without a connection.
    pub(super) fn sweep_expired(&mut self) {
        self.expire_queued(Instant::now());
        self.release_permits();
    }

    /// Tells the callers of written requests whose deadline passed by `now` that they timed
    /// out, and sets [`Timer::InFlight`] to the next such deadline.
    pub(super) fn expire_in_flight(&mut self, now: Instant) {
        loop {
            match self.transactions.next_timeout() {
                Some(deadline) if deadline <= now => {
                    let told = self.transactions.time_out(now);
                    self.shared.counters.timed_out(told);
                }
                next => {
                    self.timers.set(Timer::InFlight, next);
                    return;
                }
            }
        }
    }

    /// Fails the requests taken from the channel and not written (batched or unwritten) whose
    /// deadline passed by `now`, and sets [`Timer::Queued`] to the next such deadline.
    pub(super) fn expire_queued(&mut self, now: Instant) {
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
        self.timers.set(Timer::Queued, next);
    }
}
