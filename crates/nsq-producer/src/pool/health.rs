//! Slow nodes: the pool's judgement of whether a node that is connected is slow (see
//! [`PoolConfig::slow_after`](crate::PoolConfig::slow_after)), and each node's health as the
//! pool reads it.
//!
//! A node's router measures how its nsqd answers ([`ReplyTiming`]) and asks its policy (the
//! node's [`NodePolicy`](super::failover::NodePolicy)) once its oldest request has waited
//! `slow_after`; the judgement here compares the node with the pool's other nodes. Once it has
//! a pace, and while another node is up, the node is judged slow when a request is outstanding
//! and either:
//!
//! - it has answered nothing for longer than `slow_after` and 4 times the longest it recently
//!   waited for a reply (a frozen nsqd), or
//! - its pace is `slow_factor` times the fastest node's or more, and its oldest request has
//!   waited longer than `slow_after` and `slow_factor` times the fastest node's pace (an nsqd
//!   far slower than the others).
//!
//! Then its `up` flag goes down, so that the pool picks other nodes, and its router gives what
//! it has not written (and whatever still arrives) back to the pool. Once everything written
//! has been answered the node is up again, unless it was judged far slower again shortly after
//! it last came back: then it waits a little longer each time (from 100 ms, doubling, up to
//! 2 s), so that a node that is uniformly slow takes a trickle of the traffic rather than its
//! share. A slow node comes back at once when no other node is up. The pool is consulted at
//! most every 10 ms.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::policy::{Judgement, ReplyTiming};

/// A node that has answered nothing for this many times the longest it recently went without
/// answering (and for `slow_after`) is judged frozen.
const QUIET_FACTOR: u32 = 4;

/// How often the pool is consulted while the oldest request is older than the rule's floor,
/// or while the node is slow.
pub(crate) const PEERS_EVERY: Duration = Duration::from_millis(10);

/// The first wait after a node is judged slow again soon after coming back; it doubles with
/// each such judgement, up to [`MAX_HOLD`].
const FIRST_HOLD: Duration = Duration::from_millis(100);

/// The longest a node that has answered everything is kept out of rotation.
const MAX_HOLD: Duration = Duration::from_secs(2);

/// How long a node must stay in rotation for its next judgement to count as a first one.
const FORGIVEN_AFTER: Duration = Duration::from_secs(10);

/// When a node counts as slow (see [`PoolConfig::slow_after`](crate::PoolConfig::slow_after)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlowRule {
    pub(crate) after: Duration,
    pub(crate) factor: u32,
}

/// The pool as one node sees it when its oldest request has waited long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peers {
    /// The fastest pace (wait per acknowledged request) among the nodes that are up (`None`
    /// before any has one).
    pub(crate) fastest: Option<Duration>,
    /// Whether a node other than this one is up.
    pub(crate) others_up: bool,
}

/// A node's health, written by its policy and read by the pool's routing: one atomic per node
/// on the publish path.
#[derive(Debug)]
pub(crate) struct NodeHealth {
    /// False from a lost connection or a failed attempt until the next connection, and while
    /// the node is slow.
    up: AtomicBool,
    /// Connected, but judged slow (and so not up).
    slow: AtomicBool,
    /// The moving average of nsqd's wait per reply, in nanoseconds (0: none yet).
    pace_ns: AtomicU64,
}

impl Default for NodeHealth {
    fn default() -> Self {
        Self {
            up: AtomicBool::new(true),
            slow: AtomicBool::new(false),
            pace_ns: AtomicU64::new(0),
        }
    }
}

impl NodeHealth {
    /// Whether the pool may send the node publishes (its producer's being closed aside).
    #[inline]
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Whether it is connected but judged slow.
    pub(crate) fn is_slow(&self) -> bool {
        self.slow.load(Ordering::Relaxed)
    }

    /// The moving average of nsqd's wait per reply, once there is one.
    pub(crate) fn pace(&self) -> Option<Duration> {
        match self.pace_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    pub(crate) fn set_pace(&self, pace: Duration) {
        let ns = u64::try_from(pace.as_nanos()).unwrap_or(u64::MAX);
        self.pace_ns.store(ns.max(1), Ordering::Relaxed);
    }

    pub(crate) fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Release);
    }

    pub(crate) fn set_slow(&self, slow: bool) {
        self.slow.store(slow, Ordering::Relaxed);
    }
}

/// Why a node is judged slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It has answered nothing for far longer than its silences usually last.
    Silent,
    /// Its pace is far slower than the fastest node's.
    FarSlower,
}

/// What a judgement changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Judged slow: the verdict, how long the node waited and the limit it passed.
    Slow(Verdict, Duration, Duration),
    /// Back in rotation after being slow.
    Back,
}

/// The judgement of one node over time.
#[derive(Debug, Default)]
pub(crate) struct Judge {
    /// Judged slow.
    slow: bool,
    /// Judgements of being far slower in a row, each soon after the node came back.
    strikes: u32,
    /// When the node may come back, once everything written is answered.
    hold_until: Option<Instant>,
    /// When the node last came back.
    back_at: Option<Instant>,
    /// What the pool looked like, and when it was consulted.
    peers: Option<(Peers, Instant)>,
}

impl Judge {
    /// The connection ended or a new one was made: a slow verdict ends with it (the node is
    /// down, or fresh). Returns whether the node was slow.
    pub(crate) fn clear(&mut self, now: Instant) -> bool {
        let was = self.slow;
        if was {
            self.slow = false;
            self.back_at = Some(now);
            self.hold_until = None;
        }
        self.peers = None;
        was
    }

    /// Judges the node at `now` by `rule`, reading the pool through `peers` (at most every
    /// [`PEERS_EVERY`]).
    pub(crate) fn judge(
        &mut self,
        rule: SlowRule,
        timing: &ReplyTiming,
        now: Instant,
        peers: impl FnOnce() -> Peers,
    ) -> (Judgement, Option<Change>) {
        let not_slow = |again_at| Judgement {
            slow: false,
            again_at,
        };
        if timing.closing {
            // Closing writes what is queued; nothing is handed back any more.
            let change = self.slow.then(|| self.come_back(now));
            return (not_slow(None), change);
        }
        if self.slow {
            // Back when everything written is answered and the hold is over, or at once when
            // no other node is up: then this one is the pool's best.
            let others_up = self.consult(now, peers).others_up;
            let held = self.hold_until.is_some_and(|until| until > now);
            if others_up && (held || timing.oldest_written.is_some()) {
                // Look again at the end of the hold, and meanwhile for the other nodes.
                let next = match self.hold_until {
                    Some(until) if held => until.min(now + PEERS_EVERY),
                    _ => now + PEERS_EVERY,
                };
                let judgement = Judgement {
                    slow: true,
                    again_at: Some(next),
                };
                return (judgement, None);
            }
            return (not_slow(None), Some(self.come_back(now)));
        }
        let (Some(written), Some(pace)) = (timing.oldest_written, timing.pace) else {
            return (not_slow(None), None);
        };
        let waited = now.saturating_duration_since(written);
        if waited < rule.after {
            return (not_slow(Some(written + rule.after)), None);
        }
        let peers = self.consult(now, peers);
        let silent_since = timing.last_reply.map_or(written, |r| r.max(written));
        let silent = now.saturating_duration_since(silent_since);
        let silence_limit = rule
            .after
            .max(timing.peak_wait.saturating_mul(QUIET_FACTOR));
        let far_slower = peers
            .fastest
            .is_some_and(|f| pace >= f.saturating_mul(rule.factor));
        let age_limit = rule.limit(peers.fastest);
        let verdict = if silent >= silence_limit {
            Some((Verdict::Silent, silent, silence_limit))
        } else if far_slower && waited >= age_limit {
            Some((Verdict::FarSlower, waited, age_limit))
        } else {
            None
        };
        match verdict {
            Some((verdict, waited, limit)) if peers.others_up => {
                self.become_slow(now, verdict);
                let judgement = Judgement {
                    slow: true,
                    again_at: None,
                };
                (judgement, Some(Change::Slow(verdict, waited, limit)))
            }
            _ => {
                // Not slow (yet), or no other node to take its traffic: look again later.
                let mut again = silent_since + silence_limit;
                if far_slower {
                    again = again.min(written + age_limit);
                }
                if !peers.others_up {
                    again = now + PEERS_EVERY;
                }
                (
                    not_slow(Some(again.max(now + Duration::from_millis(1)))),
                    None,
                )
            }
        }
    }

    /// What the pool looks like: read at most every [`PEERS_EVERY`].
    fn consult(&mut self, now: Instant, peers: impl FnOnce() -> Peers) -> Peers {
        if let Some((peers, at)) = self.peers {
            if now < at + PEERS_EVERY {
                return peers;
            }
        }
        let peers = peers();
        self.peers = Some((peers, now));
        peers
    }

    fn become_slow(&mut self, now: Instant, verdict: Verdict) {
        self.hold_until = None;
        if verdict == Verdict::FarSlower {
            // A node slower than the others, judged so again soon after it came back, stays out
            // a while: otherwise it would take its share at each return.
            let soon_after = self.back_at.is_some_and(|b| now < b + FORGIVEN_AFTER);
            self.strikes = if soon_after { self.strikes + 1 } else { 1 };
            self.hold_until = (self.strikes > 1).then(|| {
                let doublings = (self.strikes - 2).min(16);
                now + FIRST_HOLD.saturating_mul(1 << doublings).min(MAX_HOLD)
            });
        }
        self.slow = true;
        self.peers = None;
    }

    fn come_back(&mut self, now: Instant) -> Change {
        self.slow = false;
        self.back_at = Some(now);
        self.hold_until = None;
        Change::Back
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

    const RULE: SlowRule = SlowRule {
        after: Duration::from_millis(20),
        factor: 10,
    };

    fn peers(others_up: bool, fastest_ms: u64) -> impl FnOnce() -> Peers {
        move || Peers {
            fastest: Some(Duration::from_millis(fastest_ms)),
            others_up,
        }
    }

    /// A node with a pace of `pace_ms`, whose oldest request was written `waited_ms` ago and
    /// which has not answered since.
    fn timing(now: Instant, pace_ms: u64, waited_ms: u64) -> ReplyTiming {
        ReplyTiming {
            pace: Some(Duration::from_millis(pace_ms)),
            peak_wait: Duration::from_millis(1),
            last_reply: None,
            oldest_written: Some(now - Duration::from_millis(waited_ms)),
            closing: false,
        }
    }

    #[test]
    fn a_silent_node_is_slow_only_while_another_node_is_up() {
        let now = Instant::now();
        let silent = timing(now, 1, 50);
        let (alone, change) = Judge::default().judge(RULE, &silent, now, peers(false, 1));
        assert!(!alone.slow);
        assert_eq!(change, None);
        assert_eq!(alone.again_at, Some(now + PEERS_EVERY));

        let mut judge = Judge::default();
        let (judged, change) = judge.judge(RULE, &silent, now, peers(true, 1));
        assert!(judged.slow);
        assert!(matches!(change, Some(Change::Slow(Verdict::Silent, ..))));
    }

    #[test]
    fn a_young_request_is_not_judged_before_the_floor() {
        let now = Instant::now();
        let young = timing(now, 1, 5);
        let (judged, change) = Judge::default().judge(RULE, &young, now, || {
            panic!("the pool is not consulted before the floor")
        });
        assert!(!judged.slow);
        assert_eq!(change, None);
        assert_eq!(judged.again_at, Some(now + Duration::from_millis(15)));
    }

    #[test]
    fn a_slow_node_comes_back_once_it_has_answered_everything_or_at_close() {
        let now = Instant::now();
        let mut judge = Judge::default();
        let (judged, _) = judge.judge(RULE, &timing(now, 1, 50), now, peers(true, 1));
        assert!(judged.slow);
        // Still waiting for its oldest request: it stays out, and looks again soon.
        let (still, change) = judge.judge(RULE, &timing(now, 1, 60), now, peers(true, 1));
        assert!(still.slow);
        assert_eq!(change, None);
        assert_eq!(still.again_at, Some(now + PEERS_EVERY));
        // Everything answered: back.
        let answered = ReplyTiming {
            oldest_written: None,
            ..timing(now, 1, 0)
        };
        let (back, change) = judge.judge(RULE, &answered, now, peers(true, 1));
        assert!(!back.slow);
        assert_eq!(change, Some(Change::Back));

        let (judged, _) = judge.judge(RULE, &timing(now, 1, 50), now, peers(true, 1));
        assert!(judged.slow);
        let closing = ReplyTiming {
            closing: true,
            ..timing(now, 1, 50)
        };
        let (closed, change) = judge.judge(RULE, &closing, now, peers(true, 1));
        assert!(!closed.slow);
        assert_eq!(change, Some(Change::Back));
    }

    #[test]
    fn a_node_far_slower_again_soon_after_coming_back_is_held_out() {
        let now = Instant::now();
        // Answering (its last reply just now), but at 30 times the fastest node's pace.
        let far_slower = ReplyTiming {
            last_reply: Some(now),
            ..timing(now, 30, 40)
        };
        let answered = ReplyTiming {
            oldest_written: None,
            ..far_slower
        };
        let mut judge = Judge::default();
        for strike in 1..=2 {
            let (judged, change) = judge.judge(RULE, &far_slower, now, peers(true, 1));
            assert!(judged.slow, "strike {strike}");
            assert!(matches!(change, Some(Change::Slow(Verdict::FarSlower, ..))));
            judge.peers = None;
            let (after, _) = judge.judge(RULE, &answered, now, peers(true, 1));
            if strike == 1 {
                assert!(!after.slow, "the first judgement holds nothing back");
            } else {
                // The second, soon after it came back, holds it out although it answered all.
                assert!(after.slow);
                assert_eq!(after.again_at, Some(now + PEERS_EVERY));
                assert_eq!(judge.hold_until, Some(now + FIRST_HOLD));
            }
        }
    }
}
