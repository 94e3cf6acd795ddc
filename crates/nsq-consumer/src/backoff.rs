//! Consumer-wide backoff, as plain data: the level, the window, one result per window.
//!
//! A failure (a message requeued with backoff, or a `FIN`/`REQ`/`TOUCH` nsqd refused) raises the
//! level and starts a window during which every connection has RDY 0. When the window ends, one
//! connection gets RDY 1 to test; the first result after that decides: a success lowers the
//! level (backoff ends at level 0), a failure raises it, a neutral answer (requeue without
//! backoff, a dropped message) keeps it, and each of those starts the next window. Results that
//! arrive during a window are ignored, so a burst of failures counts once.

use std::time::{Duration, Instant};

use crate::config::BackoffStrategy;

/// How a message's answer counts for backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Finished.
    Success,
    /// Requeued with backoff, or nsqd refused an answer.
    Failure,
    /// Requeued without backoff, or dropped.
    Neutral,
}

/// What the caller must do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing changes.
    None,
    /// Every connection to RDY 0 until the given instant, then call
    /// [`Backoff::window_ended`].
    Wait(Instant),
    /// Backoff is over: share `max_in_flight` out again.
    Resume,
}

/// The backoff state machine.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    strategy: BackoffStrategy,
    multiplier: Duration,
    max: Duration,
    level: u32,
    /// The end of the current window, while one runs.
    window_end: Option<Instant>,
    /// A seed for full jitter.
    seed: u64,
}

impl Backoff {
    pub(crate) fn new(strategy: BackoffStrategy, multiplier: Duration, max: Duration) -> Self {
        Self {
            strategy,
            multiplier,
            max,
            level: 0,
            window_end: None,
            seed: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// The current level (0: not backing off).
    pub(crate) fn level(&self) -> u32 {
        self.level
    }

    /// A message's answer, at `now`.
    pub(crate) fn on_signal(&mut self, signal: Signal, now: Instant) -> Action {
        if self.window_end.is_some() {
            return Action::None;
        }
        let before = self.level;
        match signal {
            Signal::Success => self.level = self.level.saturating_sub(1),
            Signal::Failure => {
                // Stop raising the level once its delay would pass the maximum.
                if self.exponential(self.level + 1) <= self.max {
                    self.level += 1;
                } else if self.level == 0 {
                    self.level = 1;
                }
            }
            Signal::Neutral => {}
        }
        if self.level == 0 {
            return if before > 0 {
                Action::Resume
            } else {
                Action::None
            };
        }
        let until = now + self.delay();
        self.window_end = Some(until);
        Action::Wait(until)
    }

    /// The window has ended: one connection gets RDY 1 to test. Returns false if no window was
    /// running.
    pub(crate) fn window_ended(&mut self, now: Instant) -> bool {
        match self.window_end {
            Some(end) if end <= now => {
                self.window_end = None;
                true
            }
            _ => false,
        }
    }

    /// The end of the running window.
    pub(crate) fn window_end(&self) -> Option<Instant> {
        self.window_end
    }

    fn exponential(&self, level: u32) -> Duration {
        let factor = 1u32.checked_shl(level.min(31)).unwrap_or(u32::MAX);
        self.multiplier.saturating_mul(factor)
    }

    fn delay(&mut self) -> Duration {
        let full = self.exponential(self.level).min(self.max);
        match self.strategy {
            BackoffStrategy::Exponential => full,
            BackoffStrategy::FullJitter => {
                // xorshift: enough to spread consumers, no need for a random-number crate.
                self.seed ^= self.seed << 13;
                self.seed ^= self.seed >> 7;
                self.seed ^= self.seed << 17;
                let nanos = full.as_nanos() as u64;
                Duration::from_nanos(if nanos == 0 { 0 } else { self.seed % nanos })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff::new(
            BackoffStrategy::Exponential,
            Duration::from_secs(1),
            Duration::from_secs(10),
        )
    }

    #[test]
    fn failure_waits_then_success_resumes() {
        let t0 = Instant::now();
        let mut b = backoff();
        assert_eq!(b.on_signal(Signal::Success, t0), Action::None);
        assert_eq!(
            b.on_signal(Signal::Failure, t0),
            Action::Wait(t0 + Duration::from_secs(2))
        );
        // Ignored during the window.
        assert_eq!(b.on_signal(Signal::Failure, t0), Action::None);
        assert_eq!(b.level(), 1);
        assert!(!b.window_ended(t0 + Duration::from_secs(1)));
        assert!(b.window_ended(t0 + Duration::from_secs(2)));
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(b.on_signal(Signal::Success, t1), Action::Resume);
        assert_eq!(b.level(), 0);
        assert_eq!(b.window_end(), None);
    }

    #[test]
    fn levels_rise_to_the_cap_and_fall_one_per_window() {
        let mut now = Instant::now();
        let mut b = backoff();
        let mut delays = Vec::new();
        for _ in 0..6 {
            match b.on_signal(Signal::Failure, now) {
                Action::Wait(until) => {
                    delays.push((until - now).as_secs());
                    now = until;
                    assert!(b.window_ended(now));
                }
                other => panic!("expected a window, got {other:?}"),
            }
        }
        // 2, 4, 8, then the level stops rising: 16 s would pass the 10 s maximum.
        assert_eq!(delays, [2, 4, 8, 8, 8, 8]);
        assert_eq!(b.level(), 3);
        for expected in [2, 1] {
            assert!(matches!(b.on_signal(Signal::Success, now), Action::Wait(_)));
            assert_eq!(b.level(), expected);
            now = b.window_end().unwrap();
            assert!(b.window_ended(now));
        }
        assert_eq!(
            b.on_signal(Signal::Neutral, now),
            Action::Wait(now + Duration::from_secs(2))
        );
        now = b.window_end().unwrap();
        assert!(b.window_ended(now));
        assert_eq!(b.on_signal(Signal::Success, now), Action::Resume);
    }

    #[test]
    fn full_jitter_stays_below_the_exponential_delay() {
        let now = Instant::now();
        let mut b = Backoff::new(
            BackoffStrategy::FullJitter,
            Duration::from_millis(100),
            Duration::from_secs(60),
        );
        for _ in 0..50 {
            let Action::Wait(until) = b.on_signal(Signal::Failure, now) else {
                panic!("expected a window");
            };
            assert!(until - now <= Duration::from_millis(100 << b.level()));
            b.window_end = None;
        }
    }
}
