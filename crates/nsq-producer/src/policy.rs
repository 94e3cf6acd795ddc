//! What a router does with what it cannot deliver: the policy it is given when it is built.
//!
//! The router reports to its policy, and to nothing above it: requests it will not write
//! (queued while its nsqd is unreachable or slow), written requests that nsqd certainly did not
//! execute, its nsqd's health, and the timing of nsqd's replies. A lone producer's policy,
//! [`Keep`], takes nothing: requests stay queued for the next connection and every written
//! request ends on its connection. A pool gives each of its nodes a policy of its own that
//! moves such requests to other nodes.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{PublishError, Publisher};
use crate::request::Request;

/// What a policy takes from its router, asked once when the router is built so that the
/// router's paths test a flag rather than call the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Takes {
    /// Requests not written yet while its nsqd is unreachable (from a failure to the next
    /// connection) or slow, and every request that arrives meanwhile: see
    /// [`Policy::never_written`]. Without it they wait for the next connection.
    pub(crate) unwritten: bool,
    /// Written requests nsqd certainly did not execute (aborted behind a rejection, or failed
    /// for a transient reason): see [`Policy::not_executed`]. The router then keeps each
    /// written request's command until its reply.
    pub(crate) not_executed: bool,
    /// With `not_executed`: written requests whose outcome is unknown too (the connection
    /// ended before their reply, or nsqd stored part of an MPUB).
    pub(crate) unknown: bool,
    /// Whether someone waits for the connection whatever is queued: the router then redials
    /// after a failure with the short backoff, as it does while publishes are queued.
    pub(crate) prompt_redial: bool,
    /// After this long without a reply to the oldest written request, the router asks
    /// [`Policy::judge`] whether its nsqd is slow; `None`: never. It also measures the timing
    /// of replies for it ([`ReplyTiming`]).
    pub(crate) judge_after: Option<Duration>,
    /// What a publish made after close is told was closed.
    pub(crate) publisher: Publisher,
}

/// The health of a router's nsqd, as the router reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    /// Connected (and not slow).
    Up,
    /// Between a failure (a lost connection, a failed attempt) and the next connection, or
    /// leaving for good.
    Down,
}

/// How nsqd has been answering, measured by the router from the replies it reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ReplyTiming {
    /// The moving average of the wait per acknowledged request (`None` before there is one).
    pub(crate) pace: Option<Duration>,
    /// The longest recent wait for replies while requests were outstanding (a peak that halves
    /// every second).
    pub(crate) peak_wait: Duration,
    /// When the last reply came.
    pub(crate) last_reply: Option<Instant>,
    /// When the oldest unanswered request was written; `None` when none is outstanding.
    pub(crate) oldest_written: Option<Instant>,
    /// Whether the router is closing: it then writes what is queued whatever its nsqd's speed.
    pub(crate) closing: bool,
}

/// A policy's judgement of whether its router's nsqd is slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Judgement {
    /// Slow: the router writes nothing more and gives up what is queued
    /// ([`Policy::never_written`]) until a judgement says otherwise.
    pub(crate) slow: bool,
    /// When to ask again if nothing else happens first; `None`: at the next event.
    pub(crate) again_at: Option<Instant>,
}

/// What a router does with what it cannot deliver; see the [module](self).
pub(crate) trait Policy: fmt::Debug + Send + Sync {
    /// What the policy takes; asked once.
    fn takes(&self) -> Takes;

    /// A request the router will not write (see [`Takes::unwritten`]); its caller still
    /// waits. `Err` gives it back when the policy cannot take it: the router then fails it as
    /// not sent ([`NotSentReason::Closed`](crate::NotSentReason::Closed)).
    fn never_written(&self, request: Request) -> Result<(), Request>;

    /// Written requests that nsqd certainly did not execute, or (with [`Takes::unknown`]) whose
    /// outcome is unknown; each is queued again (its caller still waits) and comes with the
    /// outcome it ends with if it is not sent again. Each request carries its command.
    fn not_executed(&self, requests: Vec<(Request, PublishError)>);

    /// The health of the router's nsqd changed.
    fn health(&self, health: Health);

    /// A new moving average of the wait per acknowledged request (see [`ReplyTiming::pace`]).
    fn paced(&self, pace: Duration);

    /// Whether the router's nsqd is slow now, at `now`: asked while the policy's last judgement
    /// was slow, and while the oldest written request has waited [`Takes::judge_after`] or
    /// more.
    fn judge(&self, timing: &ReplyTiming, now: Instant) -> Judgement;
}

/// A lone producer's policy: it takes nothing, so requests wait for the next connection and
/// written requests end on their connection.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Keep;

impl Policy for Keep {
    fn takes(&self) -> Takes {
        Takes {
            unwritten: false,
            not_executed: false,
            unknown: false,
            prompt_redial: false,
            judge_after: None,
            publisher: Publisher::Producer,
        }
    }

    fn never_written(&self, request: Request) -> Result<(), Request> {
        Err(request)
    }

    fn not_executed(&self, requests: Vec<(Request, PublishError)>) {
        for (request, outcome) in requests {
            request.responder.complete(Err(outcome));
        }
    }

    fn health(&self, _: Health) {}

    fn paced(&self, _: Duration) {}

    fn judge(&self, _: &ReplyTiming, _: Instant) -> Judgement {
        Judgement {
            slow: false,
            again_at: None,
        }
    }
}
