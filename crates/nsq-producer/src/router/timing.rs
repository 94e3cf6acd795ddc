//! The timing of nsqd's replies, for a policy that judges whether nsqd is slow (see
//! [`Takes::judge_after`](crate::policy::Takes::judge_after)).
//!
//! The router measures, from the replies it reads, two things about its nsqd:
//!
//! - its *pace*: the time spent waiting for replies (each wait from the later of the previous
//!   reply and the oldest outstanding request's write) per request acknowledged, over windows
//!   of 250 ms, averaged over about a second. Alone, a request waits its round trip; under a
//!   deep pipeline the pace is the time between acknowledgements. Each new average goes to the
//!   policy ([`Policy::paced`](crate::policy::Policy::paced)).
//! - the longest it recently waited for a reply while requests were outstanding (a peak that
//!   halves every second), which says how long this nsqd's silences usually last.
//!
//! The judgement is the policy's: the router asks it
//! ([`Policy::judge`](crate::policy::Policy::judge)) once the oldest
//! written request has waited `judge_after`, and while the last judgement was slow. While nsqd
//! is judged slow, nothing more is written and what is queued goes to the policy; what was
//! written waits for its reply, its callers told `TimedOut` at their deadlines as on any
//! connection, and a connection that stops answering altogether is still dropped after the
//! stall grace.
//!
//! The cost on the connected path is a few additions per poll turn that reads replies and one
//! comparison per poll turn (the oldest request's age against `judge_after`); a router whose
//! policy judges nothing measures nothing.

use std::time::Duration;

use tokio::time::Instant;

use super::Router;
use super::timers::Timer;
use crate::policy::ReplyTiming;

/// The pace is measured over windows of this length (at least: a window ends at a reply).
const PACE_WINDOW: Duration = Duration::from_millis(250);

/// The weight of a window in the moving average of the pace: about a second of history.
const WINDOW_WEIGHT: f64 = 1.0 / 4.0;

/// How nsqd has been answering.
#[derive(Debug, Default)]
pub(super) struct Timing {
    /// The moving average of the wait per acknowledged request, in seconds (0: none yet): over
    /// each window, the time spent waiting for replies (from the later of the previous replies
    /// and the oldest request's write) over the requests they acknowledged.
    pace: f64,
    /// The current window: its start, its waits and its acknowledged requests.
    window_start: Option<Instant>,
    window_wait: f64,
    window_acked: u64,
    /// Requests acknowledged in the current turn.
    turn_acked: u32,
    /// The longest recent wait for replies, in seconds, as of `peak_at`; it halves every second.
    peak_wait: f64,
    peak_at: Option<Instant>,
    /// When the last reply came.
    last_reply: Option<Instant>,
}

impl Timing {
    /// Counts `requests` acknowledged in this turn.
    pub(super) fn acked(&mut self, requests: usize) {
        self.turn_acked = self
            .turn_acked
            .saturating_add(u32::try_from(requests).unwrap_or(u32::MAX));
    }

    /// The peak wait for a reply, decayed to `now`.
    fn peak_wait(&self, now: Instant) -> f64 {
        let Some(at) = self.peak_at else { return 0.0 };
        let age = now.saturating_duration_since(at).as_secs_f64();
        self.peak_wait * 0.5f64.powf(age)
    }

    /// Takes in the acknowledgements read in one turn at `now`, the oldest of them for a
    /// request written at `oldest`. Returns the new average pace when a window ended.
    fn note_replies(&mut self, oldest: Instant, now: Instant) -> Option<Duration> {
        let requests = std::mem::take(&mut self.turn_acked);
        if requests == 0 {
            return None;
        }
        let since = self.last_reply.map_or(oldest, |r| r.max(oldest));
        let waited = now.saturating_duration_since(since).as_secs_f64();
        self.window_wait += waited;
        self.window_acked += u64::from(requests);
        let window_start = *self.window_start.get_or_insert(now);
        let mut paced = None;
        if now >= window_start + PACE_WINDOW {
            let pace = self.window_wait / self.window_acked as f64;
            self.pace = if self.pace == 0.0 {
                pace.max(1e-9)
            } else {
                self.pace + (pace - self.pace) * WINDOW_WEIGHT
            };
            self.window_wait = 0.0;
            self.window_acked = 0;
            self.window_start = Some(now);
            paced = Some(Duration::from_nanos(((self.pace * 1e9) as u64).max(1)));
        }
        let peak = self.peak_wait(now);
        if waited >= peak
            || self
                .peak_at
                .is_some_and(|at| now >= at + Duration::from_millis(100))
        {
            self.peak_wait = waited.max(peak);
            self.peak_at = Some(now);
        }
        self.last_reply = Some(now);
        paced
    }
}

impl Router {
    /// Takes in the acknowledgements read in one turn at `now`, the oldest of them for a
    /// request written at `oldest`: the wait for them, from the later of the previous replies
    /// and that write.
    pub(super) fn note_replies(&mut self, oldest: Instant, now: Instant) {
        if self.takes.judge_after.is_none() {
            self.timing.turn_acked = 0;
            return;
        }
        if let Some(pace) = self.timing.note_replies(oldest, now) {
            self.policy.paced(pace);
        }
    }

    /// Whether nsqd is slow at `now`, for this turn: asks the policy when it may be. Sets
    /// [`Timer::Slow`] to the moment the judgement may change without any other event.
    pub(super) fn poll_slow(&mut self, now: Instant) -> bool {
        self.timers.stop(Timer::Slow);
        let Some(after) = self.takes.judge_after else {
            return false;
        };
        let written = self.transactions.head_written();
        if !self.slow {
            if self.closing.is_some() {
                // Closing writes what is queued whatever nsqd's speed.
                return false;
            }
            let Some(written) = written else {
                return false;
            };
            if self.timing.pace == 0.0 {
                // Nothing to compare with yet.
                return false;
            }
            if now.saturating_duration_since(written) < after {
                self.timers.set(Timer::Slow, Some(written + after));
                return false;
            }
        }
        let timing = ReplyTiming {
            pace: (self.timing.pace > 0.0).then(|| Duration::from_secs_f64(self.timing.pace)),
            peak_wait: Duration::from_secs_f64(self.timing.peak_wait(now)),
            last_reply: self.timing.last_reply,
            oldest_written: written,
            closing: self.closing.is_some(),
        };
        let judgement = self.policy.judge(&timing, now);
        self.timers.set(Timer::Slow, judgement.again_at);
        let became_slow = judgement.slow && !self.slow;
        self.slow = judgement.slow;
        if became_slow {
            self.give_up_queued();
        }
        judgement.slow
    }
}
