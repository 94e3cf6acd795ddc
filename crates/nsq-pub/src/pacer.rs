//! Pacing: `--rate` as a schedule of when each message may go.

use std::time::Duration;

use tokio::time::Instant;

/// Spaces messages out to at most `rate` per second, with a burst of a tenth of a second's
/// worth: by any time t after the start, at most `rate * t + burst` messages have been let
/// through.
pub(crate) struct Pacer {
    rate: u64,
    burst: u64,
    start: Instant,
    let_through: u64,
}

impl Pacer {
    /// A pacer starting now; a `rate` of 0 lets everything through at once.
    pub(crate) fn new(rate: u64) -> Self {
        Self {
            rate,
            burst: (rate / 10).max(1),
            start: Instant::now(),
            let_through: 0,
        }
    }

    /// When the next message may go; `None` without a rate.
    pub(crate) fn next(&mut self) -> Option<Instant> {
        if self.rate == 0 {
            return None;
        }
        self.let_through += 1;
        let ahead = self.let_through.saturating_sub(self.burst);
        Some(self.start + Duration::from_secs_f64(ahead as f64 / self.rate as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pacer_lets_through_at_most_rate_times_elapsed_plus_the_burst() {
        let mut pacer = Pacer::new(100);
        let start = pacer.start;
        let mut times = Vec::new();
        for _ in 0..500 {
            let at = pacer.next().unwrap();
            tokio::time::sleep_until(at).await;
            times.push(Instant::now() - start);
        }
        for (i, t) in times.iter().enumerate() {
            let allowed = 100.0 * t.as_secs_f64() + 10.0;
            assert!((i + 1) as f64 <= allowed + 1e-6, "message {i} at {t:?}");
        }
        // Not slower than asked either: 500 messages at 100/s take under 5 s.
        assert!(*times.last().unwrap() < Duration::from_secs(5));
        assert!(Pacer::new(0).next().is_none());
    }
}
