//! Slow nodes: what a node's router reads of its pool to judge whether the node is slow (see
//! [`PoolConfig::slow_after`](crate::PoolConfig::slow_after)), and how it tells the pool.
//!
//! The judgement itself is the router's (`router/lag.rs`): it alone sees when each request was
//! written and answered. The pool supplies the comparison: the pace of the fastest node that is
//! up, and whether another node is up to take the traffic.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Shared;
use crate::producer;

/// When a node counts as slow (see [`PoolConfig::slow_after`](crate::PoolConfig::slow_after)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlowRule {
    pub(crate) after: Duration,
    pub(crate) factor: u32,
}

/// What a node's router knows of its pool. Weak, so that a pool dropped without `close` lets
/// its producers go.
#[derive(Debug, Clone)]
pub(crate) struct PoolLink {
    pub(crate) pool: Weak<Shared>,
    /// `None`: nodes are never judged slow.
    pub(crate) slow: Option<SlowRule>,
}

/// The pool as one node's router sees it when its oldest request has waited long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peers {
    /// The fastest pace (wait per acknowledged request) among the nodes that are up (`None`
    /// before any has one).
    pub(crate) fastest: Option<Duration>,
    /// Whether a node other than this one is up.
    pub(crate) others_up: bool,
}

impl PoolLink {
    /// The pool's nodes as the node whose producer state is `me` compares itself with them.
    pub(crate) fn peers(&self, me: &Arc<producer::Shared>) -> Peers {
        let mut peers = Peers {
            fastest: None,
            others_up: false,
        };
        let Some(pool) = self.pool.upgrade() else {
            return peers;
        };
        for node in pool.nodes().iter() {
            let producer = &node.producer;
            if !producer.is_up() {
                continue;
            }
            if !producer.runs_on(me) {
                peers.others_up = true;
            }
            if let Some(pace) = producer.pace() {
                peers.fastest = Some(peers.fastest.map_or(pace, |f| f.min(pace)));
            }
        }
        peers
    }

    /// Tells the pool that a node became slow or came back, as a change of its connection
    /// does: publishes waiting for a node and parked requests look again.
    pub(crate) fn changed(&self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.health.send_modify(|n| *n += 1);
        }
    }
}

impl SlowRule {
    /// The rule of `config`, if it judges nodes at all.
    pub(crate) fn of(config: &super::PoolConfig) -> Option<Self> {
        config.slow_after.map(|after| Self {
            after,
            factor: config.slow_factor.max(1),
        })
    }

    /// How long the oldest written request of a node far slower than the fastest may wait,
    /// given the fastest node's pace.
    pub(crate) fn limit(&self, fastest: Option<Duration>) -> Duration {
        fastest.map_or(self.after, |f| {
            self.after.max(f.saturating_mul(self.factor))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_the_floor_or_a_multiple_of_the_fastest_pace() {
        let rule = SlowRule {
            after: Duration::from_millis(20),
            factor: 10,
        };
        assert_eq!(rule.limit(None), Duration::from_millis(20));
        assert_eq!(
            rule.limit(Some(Duration::from_micros(300))),
            Duration::from_millis(20)
        );
        assert_eq!(
            rule.limit(Some(Duration::from_millis(15))),
            Duration::from_millis(150)
        );
    }
}
