//! Liveness arithmetic for heartbeats; the caller owns the clock (docs/protocol.md,
//! "Heartbeats").

use std::time::{Duration, Instant};

/// Tracks when a connection must be declared dead because nothing arrived.
///
/// nsqd sends a heartbeat every interval whatever else it sends, so on a healthy connection
/// bytes arrive at least once per interval. The connection is declared dead when nothing at all
/// arrived for twice the interval. With heartbeats disabled there is no deadline.
///
/// ```
/// use std::time::{Duration, Instant};
/// use nsq_proto::HeartbeatMonitor;
///
/// let start = Instant::now();
/// let mut monitor = HeartbeatMonitor::new(Some(Duration::from_secs(1)), start);
/// assert_eq!(monitor.deadline(), Some(start + Duration::from_secs(2)));
/// monitor.record_activity(start + Duration::from_millis(900));
/// assert!(!monitor.is_expired(start + Duration::from_millis(2500)));
/// assert!(monitor.is_expired(start + Duration::from_millis(2900)));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct HeartbeatMonitor {
    timeout: Option<Duration>,
    last_activity: Instant,
}

impl HeartbeatMonitor {
    /// A monitor for the negotiated `interval` (`None`: heartbeats disabled), starting at `now`.
    pub fn new(interval: Option<Duration>, now: Instant) -> Self {
        Self {
            timeout: interval.map(|i| i.saturating_mul(2)),
            last_activity: now,
        }
    }

    /// Something arrived from the peer at `now`.
    pub fn record_activity(&mut self, now: Instant) {
        self.last_activity = self.last_activity.max(now);
    }

    /// The instant after which the connection counts as dead, if heartbeats are on.
    pub fn deadline(&self) -> Option<Instant> {
        self.timeout.map(|t| self.last_activity + t)
    }

    /// Whether the deadline has passed at `now`.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.deadline().is_some_and(|d| now >= d)
    }

    /// How long silence is tolerated, if heartbeats are on.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_never_expires() {
        let now = Instant::now();
        let monitor = HeartbeatMonitor::new(None, now);
        assert_eq!(monitor.deadline(), None);
        assert!(!monitor.is_expired(now + Duration::from_secs(86_400)));
    }

    #[test]
    fn activity_moves_the_deadline_forward_only() {
        let now = Instant::now();
        let mut monitor = HeartbeatMonitor::new(Some(Duration::from_secs(1)), now);
        monitor.record_activity(now + Duration::from_secs(5));
        monitor.record_activity(now + Duration::from_secs(1));
        assert_eq!(monitor.deadline(), Some(now + Duration::from_secs(7)));
    }
}
