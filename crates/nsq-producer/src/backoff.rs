//! Reconnect delays: exponential with full jitter, pure arithmetic.

use std::time::Duration;

/// The cap on the backoff while someone waits for the connection: publishes are queued, or the
/// producer is a pool's node, which the pool wants back as soon as nsqd is.
pub(crate) const PROMPT_MAX: Duration = Duration::from_millis(500);

/// Exponential backoff between `min` and `max`, with jitter.
///
/// Attempt `n` (from 0) waits a random time in `[base/2, base]` where `base = min * 2^n`
/// capped at `max`, or at [`PROMPT_MAX`] (but not below `min`) when the wait is prompt. Half of
/// the delay is jittered so that many producers restarted together do not dial in lockstep,
/// while the delay still grows. The random source is an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    prompt_max: Duration,
}

impl Backoff {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        let max = max.max(min);
        Self {
            min,
            max,
            prompt_max: PROMPT_MAX.max(min).min(max),
        }
    }

    /// The delay before attempt `attempt`, given a uniform random value in `[0, 1)`; capped
    /// lower when `prompt`.
    pub(crate) fn delay(&self, attempt: u32, unit_random: f64, prompt: bool) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(31));
        let cap = if prompt { self.prompt_max } else { self.max };
        let base = self.min.saturating_mul(factor).min(cap);
        let jitter = base.mul_f64(0.5 * unit_random.clamp(0.0, 1.0));
        base / 2 + jitter
    }
}

/// A small, fast random source for jitter (xorshift64*); not for anything else.
#[derive(Debug, Clone)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn seeded(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// A uniform value in `[0, 1)`.
    pub(crate) fn next_unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        assert_eq!(b.delay(0, 0.0, false), Duration::from_millis(50));
        assert_eq!(b.delay(0, 1.0, false), Duration::from_millis(100));
        assert_eq!(b.delay(3, 1.0, false), Duration::from_millis(800));
        assert_eq!(b.delay(30, 1.0, false), Duration::from_secs(10));
        assert_eq!(b.delay(u32::MAX, 0.0, false), Duration::from_secs(5));
    }

    #[test]
    fn a_prompt_wait_is_capped_at_half_a_second() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        assert_eq!(b.delay(0, 1.0, true), Duration::from_millis(100));
        assert_eq!(b.delay(30, 1.0, true), Duration::from_millis(500));
        assert_eq!(b.delay(30, 0.0, true), Duration::from_millis(250));
        // Never below the configured minimum, never above the maximum.
        let slow = Backoff::new(Duration::from_secs(2), Duration::from_secs(10));
        assert_eq!(slow.delay(30, 1.0, true), Duration::from_secs(2));
        let fast = Backoff::new(Duration::from_millis(10), Duration::from_millis(200));
        assert_eq!(fast.delay(30, 1.0, true), Duration::from_millis(200));
    }

    #[test]
    fn jitter_stays_in_range() {
        let mut j = Jitter::seeded(42);
        for _ in 0..10_000 {
            let u = j.next_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
