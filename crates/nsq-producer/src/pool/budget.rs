//! The retry budget: how many written requests a pool may send again, so that failover during
//! a broad outage cannot multiply traffic.
//!
//! A token bucket, filled by traffic that succeeds: every acknowledged request adds
//! [`RetryBudget::ratio`] of a token, time adds [`RetryBudget::per_second`] tokens a second (so
//! a quiet pool can still retry), and the bucket holds at most [`RetryBudget::max`]. Sending a
//! written request again takes one token. Requests that were never written move between nodes
//! without a token: they were never sent, so moving them adds no traffic.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How many written requests a [`Pool`](crate::Pool) may send again.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryBudget {
    /// Tokens each acknowledged request adds (0.1: at most one retry per ten successes).
    pub ratio: f64,
    /// Tokens added each second however little succeeds.
    pub per_second: f64,
    /// The most tokens the bucket holds, and what it starts with.
    pub max: f64,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            ratio: 0.1,
            per_second: 10.0,
            max: 100.0,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Bucket {
    budget: RetryBudget,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    acked: u64,
    at: Instant,
}

impl Bucket {
    pub(crate) fn new(budget: RetryBudget) -> Self {
        Self {
            budget,
            state: Mutex::new(State {
                tokens: budget.max,
                acked: 0,
                at: Instant::now(),
            }),
        }
    }

    /// Takes a token for one retry if there is one; `acked` is the pool's acknowledged total.
    pub(crate) fn try_spend(&self, acked: u64) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let elapsed: Duration = now.saturating_duration_since(state.at);
        let earned = acked.saturating_sub(state.acked) as f64 * self.budget.ratio
            + elapsed.as_secs_f64() * self.budget.per_second;
        state.tokens = (state.tokens + earned).min(self.budget.max);
        state.acked = acked;
        state.at = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn successes_and_time_refill_the_bucket() {
        let bucket = Bucket::new(RetryBudget {
            ratio: 0.5,
            per_second: 1.0,
            max: 2.0,
        });
        assert!(bucket.try_spend(0));
        assert!(bucket.try_spend(0));
        assert!(!bucket.try_spend(0), "empty");
        assert!(bucket.try_spend(2), "two acks earn a token");
        assert!(!bucket.try_spend(2));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(bucket.try_spend(2), "a second earns a token");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(bucket.try_spend(2));
        assert!(bucket.try_spend(2));
        assert!(!bucket.try_spend(2), "never more than the maximum");
    }
}
