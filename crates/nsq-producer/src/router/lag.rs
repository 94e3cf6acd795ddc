//! A pool's node that is connected but slow: nsqd stopped answering (frozen, stuck on its
//! disk) or answers far more slowly than the pool's other nodes.
//!
//! The router measures, from the replies it reads, two things about its nsqd:
//!
//! - its *pace*: the time spent waiting for replies (each wait from the later of the previous
//!   reply and the oldest outstanding request's write) per request acknowledged, over windows
//!   of 250 ms, averaged over about a second. Alone, a request waits its round trip; under a
//!   deep pipeline the pace is the time between acknowledgements. The pool compares the paces
//!   of its nodes.
//! - the longest it recently waited for a reply while requests were outstanding (a peak that
//!   halves every second), which says how long this nsqd's silences usually last.
//!
//! Once it has a pace, and while another node is up, the node is judged slow when a request is
//! outstanding and either:
//!
//! - it has answered nothing for longer than `slow_after` and 4 times that peak (a frozen
//!   nsqd), or
//! - its pace is `slow_factor` times the fastest node's or more, and its oldest request has
//!   waited longer than `slow_after` and `slow_factor` times the fastest node's pace (an nsqd
//!   far slower than the others).
//!
//! Then its `up` flag goes down, so that the pool picks other nodes, and what it has not
//! written (and whatever still arrives) is handed back. Nothing more is written; what was
//! written waits for its reply, its callers told `TimedOut` at their deadlines as on any
//! connection, and a connection that stops answering altogether is still dropped after the
//! stall grace. Once everything written has been answered the node is up again, unless it was
//! judged far slower again shortly after it last came back: then it waits a little longer each
//! time (from 100 ms, doubling, up to 2 s), so that a node that is uniformly slow takes a
//! trickle of the traffic rather than its share. A slow node comes back at once when no other
//! node is up.
//!
//! The cost on the connected path is a few additions per poll turn that reads replies, one
//! comparison per poll turn (the oldest request's age against `slow_after`) and a timer that
//! fires about once per `slow_after` while requests are in flight; the pool is consulted (at
//! most every 10 ms) only once the oldest request has waited longer than `slow_after`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::Router;
use super::timers::Timer;
use crate::pool::{Peers, PoolLink};

/// The pace is measured over windows of this length (at least: a window ends at a reply).
const PACE_WINDOW: Duration = Duration::from_millis(250);

/// The weight of a window in the moving average of the pace: about a second of history.
const WINDOW_WEIGHT: f64 = 1.0 / 4.0;

/// A node that has answered nothing for this many times the longest it recently went without
/// answering (and for `slow_after`) is judged frozen.
const QUIET_FACTOR: u32 = 4;

/// How often the pool is consulted while the oldest request is older than the rule's floor,
/// or while the node is slow.
const PEERS_EVERY: Duration = Duration::from_millis(10);

/// The first wait after a node is judged slow again soon after coming back; it doubles with
/// each such judgement, up to [`MAX_HOLD`].
const FIRST_HOLD: Duration = Duration::from_millis(100);

/// The longest a node that has answered everything is kept out of rotation.
const MAX_HOLD: Duration = Duration::from_secs(2);

/// How long a node must stay in rotation for its next judgement to count as a first one.
const FORGIVEN_AFTER: Duration = Duration::from_secs(10);

/// Why a node is judged slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// It has answered nothing for far longer than its silences usually last.
    Silent,
    /// Its pace is far slower than the fastest node's.
    FarSlower,
}

/// The slow-node state of one router.
#[derive(Debug, Default)]
pub(super) struct Lag {
    /// The moving average of the wait per acknowledged request, in seconds (0: none yet): over
    /// each window, the time spent waiting for replies (from the later of the previous replies
    /// and the oldest request's write) over the requests they acknowledged. Alone, a request
    /// waits its round trip; under a deep pipeline, this is the time between acknowledgements.
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
    /// Judged slow: no writes, everything queued handed back.
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

impl Lag {
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
}

impl Router {
    fn pool_link(&self) -> Option<&PoolLink> {
        self.hand_back.as_ref().map(|h| &h.pool)
    }

    /// Whether the node is judged slow.
    pub(super) fn is_slow(&self) -> bool {
        self.lag.slow
    }

    /// Takes in the acknowledgements read in one turn at `now`, the oldest of them for a
    /// request written at `oldest`: the wait for them, from the later of the previous replies
    /// and that write.
    pub(super) fn note_replies(&mut self, oldest: Instant, now: Instant) {
        let lag = &mut self.lag;
        let requests = std::mem::take(&mut lag.turn_acked);
        if requests == 0 || self.hand_back.is_none() {
            return;
        }
        let since = lag.last_reply.map_or(oldest, |r| r.max(oldest));
        let waited = now.saturating_duration_since(since).as_secs_f64();
        lag.window_wait += waited;
        lag.window_acked += u64::from(requests);
        let window_start = *lag.window_start.get_or_insert(now);
        if now >= window_start + PACE_WINDOW {
            let pace = lag.window_wait / lag.window_acked as f64;
            lag.pace = if lag.pace == 0.0 {
                pace.max(1e-9)
            } else {
                lag.pace + (pace - lag.pace) * WINDOW_WEIGHT
            };
            lag.window_wait = 0.0;
            lag.window_acked = 0;
            lag.window_start = Some(now);
            let ns = (lag.pace * 1e9) as u64;
            self.shared.pace_ns.store(ns.max(1), Ordering::Relaxed);
        }
        let peak = lag.peak_wait(now);
        if waited >= peak
            || lag
                .peak_at
                .is_some_and(|at| now >= at + Duration::from_millis(100))
        {
            lag.peak_wait = waited.max(peak);
            lag.peak_at = Some(now);
        }
        lag.last_reply = Some(now);
    }

    /// Judges the node at `now`: whether it is slow, for this turn. Sets [`Timer::Slow`] to the
    /// moment the judgement may change without any other event.
    pub(super) fn poll_slow(&mut self, now: Instant) -> bool {
        self.timers.stop(Timer::Slow);
        let Some(rule) = self.pool_link().and_then(|p| p.slow) else {
            return false;
        };
        if self.closing.is_some() {
            // Closing writes what is queued; nothing is handed back any more.
            if self.lag.slow {
                self.come_back(now);
            }
            return false;
        }
        if self.lag.slow {
            // Back when everything written is answered and the hold is over, or at once when
            // no other node is up: then this one is the pool's best.
            let others_up = self.consult(now).others_up;
            let held = self.lag.hold_until.is_some_and(|until| until > now);
            if others_up && (held || !self.transactions.is_empty()) {
                // Look again at the end of the hold, and meanwhile for the other nodes.
                let next = match self.lag.hold_until {
                    Some(until) if held => until.min(now + PEERS_EVERY),
                    _ => now + PEERS_EVERY,
                };
                self.timers.set(Timer::Slow, Some(next));
                return true;
            }
            self.come_back(now);
            return false;
        }
        let Some(written) = self.transactions.head_written() else {
            return false;
        };
        if self.lag.pace == 0.0 {
            // Nothing to compare with yet.
            return false;
        }
        let waited = now.saturating_duration_since(written);
        if waited < rule.after {
            self.timers.set(Timer::Slow, Some(written + rule.after));
            return false;
        }
        let peers = self.consult(now);
        let silent_since = self.lag.last_reply.map_or(written, |r| r.max(written));
        let silent = now.saturating_duration_since(silent_since);
        let peak = Duration::from_secs_f64(self.lag.peak_wait(now));
        let silence_limit = rule.after.max(peak.saturating_mul(QUIET_FACTOR));
        let pace = Duration::from_secs_f64(self.lag.pace);
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
                self.become_slow(now, verdict, waited, limit);
                true
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
                let again = again.max(now + Duration::from_millis(1));
                self.timers.set(Timer::Slow, Some(again));
                false
            }
        }
    }

    /// What the pool looks like: read at most every [`PEERS_EVERY`].
    fn consult(&mut self, now: Instant) -> Peers {
        if let Some((peers, at)) = self.lag.peers {
            if now < at + PEERS_EVERY {
                return peers;
            }
        }
        let peers = self.pool_link().map_or(
            Peers {
                fastest: None,
                others_up: false,
            },
            |link| link.peers(&self.shared),
        );
        self.lag.peers = Some((peers, now));
        peers
    }

    fn become_slow(&mut self, now: Instant, verdict: Verdict, waited: Duration, limit: Duration) {
        let lag = &mut self.lag;
        lag.hold_until = None;
        if verdict == Verdict::FarSlower {
            // A node slower than the others, judged so again soon after it came back, stays out
            // a while: otherwise it would take its share at each return.
            let soon_after = lag.back_at.is_some_and(|b| now < b + FORGIVEN_AFTER);
            lag.strikes = if soon_after { lag.strikes + 1 } else { 1 };
            lag.hold_until = (lag.strikes > 1).then(|| {
                let doublings = (lag.strikes - 2).min(16);
                now + FIRST_HOLD.saturating_mul(1 << doublings).min(MAX_HOLD)
            });
        }
        let why = match verdict {
            Verdict::Silent => "has answered nothing",
            Verdict::FarSlower => "answers far more slowly than the fastest node",
        };
        lag.slow = true;
        lag.peers = None;
        self.shared.slow.store(true, Ordering::Relaxed);
        self.shared.up.store(false, Ordering::Release);
        tracing::warn!(
            addr = %self.addr,
            waited_ms = waited.as_millis() as u64,
            limit_ms = limit.as_millis() as u64,
            "pool node is slow: it {why}; no new publishes go to it until it has answered what was written to it"
        );
        if let Some(link) = self.pool_link() {
            link.changed();
        }
        self.hand_back_queued();
    }

    /// Back in rotation after being slow.
    fn come_back(&mut self, now: Instant) {
        self.lag.slow = false;
        self.lag.back_at = Some(now);
        self.lag.hold_until = None;
        self.shared.slow.store(false, Ordering::Relaxed);
        self.shared.up.store(!self.down, Ordering::Release);
        tracing::info!(addr = %self.addr, "pool node answered what was written to it; publishes go to it again");
        if let Some(link) = self.pool_link() {
            link.changed();
        }
    }

    /// The connection ended or a new one was made: a slow verdict ends with it (the node is
    /// down, or fresh).
    pub(super) fn clear_slow(&mut self) {
        if self.lag.slow {
            self.lag.slow = false;
            self.lag.back_at = Some(Instant::now());
            self.lag.hold_until = None;
            self.shared.slow.store(false, Ordering::Relaxed);
        }
        self.lag.peers = None;
    }
}
