//! What a handle sends to the router.

use std::time::Duration;

use bytes::Bytes;
use nsq_proto::{Command, PublishLimits, Topic};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::completion::Responder;
use crate::error::{PingFailure, PublishError};
use crate::stats::Stats;

/// One publish, validated by the caller and encoded by the router straight into the
/// connection's write buffer (the body is copied once).
#[derive(Debug)]
pub(crate) struct Request {
    pub(crate) payload: Payload,
    pub(crate) responder: Responder,
    pub(crate) deadline: Option<Instant>,
    /// Queue permits this request holds (its size, at least the gate's unit); returned when it
    /// leaves the queue.
    pub(crate) permits: u32,
    /// Its place in the queue, counted from 0 by the router as it takes requests out (0 until
    /// then). Requests are written and resolved in this order; `flush` waits on it.
    pub(crate) index: u64,
    /// Where a pool has sent this request, where it must not go, and how it ended on a node
    /// that did not execute it; `None` for a request no pool has moved (boxed, so that the
    /// common request stays small).
    pub(crate) route: Option<Box<Route>>,
}

/// A request's way through a pool.
#[derive(Debug, Default)]
pub(crate) struct Route {
    /// The nodes it was queued on and handed back from.
    pub(crate) tried: NodeSet,
    /// The nodes it must never be queued on: those holding the other copies of a fan-out
    /// pool's message.
    pub(crate) avoid: NodeSet,
    /// For a request written to a node that did not store it (nsqd aborted it, or failed it
    /// with a transient error), or whose outcome is unknown with `retry_unknown`: that outcome,
    /// which it ends with if it cannot be sent again.
    pub(crate) failed: Option<crate::error::PublishError>,
}

/// A pool node's identity: given once in a pool's life, never to another node, so that a
/// [`NodeSet`] stays exact however many nodes come and go.
pub(crate) type NodeId = u64;

/// A set of a pool's nodes, by [`NodeId`]: the few nodes one request was tried on or must
/// avoid. Empty (no allocation) for every request a pool has not moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NodeSet(Vec<NodeId>);

/// The empty set, for requests without a route.
static NO_NODES: NodeSet = NodeSet::new();

impl NodeSet {
    /// The empty set.
    pub(crate) const fn new() -> Self {
        Self(Vec::new())
    }

    /// Whether `node` is in the set.
    #[inline]
    pub(crate) fn contains(&self, node: NodeId) -> bool {
        !self.0.is_empty() && self.0.contains(&node)
    }

    /// Adds `node`.
    pub(crate) fn insert(&mut self, node: NodeId) {
        if !self.0.contains(&node) {
            self.0.push(node);
        }
    }

    /// The set without `node`.
    pub(crate) fn without(&self, node: NodeId) -> Self {
        Self(self.0.iter().copied().filter(|&n| n != node).collect())
    }

    /// The nodes in either set.
    pub(crate) fn union(&self, other: &Self) -> Self {
        let mut both = self.clone();
        for &node in &other.0 {
            both.insert(node);
        }
        both
    }

    /// How many nodes are in the set.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<NodeId> for NodeSet {
    fn from_iter<I: IntoIterator<Item = NodeId>>(iter: I) -> Self {
        let mut set = Self::new();
        for node in iter {
            set.insert(node);
        }
        set
    }
}

impl Request {
    /// See [`Route::tried`].
    pub(crate) fn tried(&self) -> &NodeSet {
        self.route.as_ref().map_or(&NO_NODES, |r| &r.tried)
    }

    /// See [`Route::avoid`].
    pub(crate) fn avoid(&self) -> &NodeSet {
        self.route.as_ref().map_or(&NO_NODES, |r| &r.avoid)
    }

    /// The route, made if there is none yet.
    pub(crate) fn route_mut(&mut self) -> &mut Route {
        self.route.get_or_insert_with(Box::default)
    }
}

/// Where a producer that belongs to a pool hands back requests it cannot write: when its
/// connection is lost or a connection attempt fails, what is queued goes to the pool at once,
/// to be queued on another node, instead of waiting for this one.
#[derive(Debug, Clone)]
pub(crate) struct HandBack {
    /// This node's identity in [`Route::tried`].
    pub(crate) node: NodeId,
    /// Written requests whose outcome is unknown are handed back too (at least once).
    pub(crate) retry_unknown: bool,
    pub(crate) to: tokio::sync::mpsc::UnboundedSender<Request>,
    /// The pool, for judging whether this node is slow.
    pub(crate) pool: crate::pool::PoolLink,
}

/// The command a request carries.
#[derive(Debug, Clone)]
#[allow(unnameable_types, reason = "part of the sealed `Starter`")]
pub enum Payload {
    Pub {
        topic: Topic,
        body: Bytes,
    },
    Mpub {
        topic: Topic,
        bodies: Vec<Bytes>,
    },
    Dpub {
        topic: Topic,
        delay: Duration,
        body: Bytes,
    },
}

impl Payload {
    /// How many messages it publishes.
    pub(crate) fn messages(&self) -> u32 {
        match self {
            Self::Mpub { bodies, .. } => u32::try_from(bodies.len()).unwrap_or(u32::MAX),
            Self::Pub { .. } | Self::Dpub { .. } => 1,
        }
    }
}

/// Builds requests from a caller's arguments, refusing locally what nsqd would refuse.
#[derive(Clone, Copy)]
pub(crate) struct Checks<'a>(pub(crate) &'a PublishLimits);

impl Checks<'_> {
    pub(crate) fn pub_payload(self, topic: &Topic, body: Bytes) -> Result<Payload, PublishError> {
        self.0.check_pub(&body)?;
        let topic = topic.clone();
        Ok(Payload::Pub { topic, body })
    }

    pub(crate) fn mpub_payload<I>(self, topic: &Topic, bodies: I) -> Result<Payload, PublishError>
    where
        I: IntoIterator,
        I::Item: Into<Bytes>,
    {
        let bodies: Vec<Bytes> = bodies.into_iter().map(Into::into).collect();
        self.0.check_mpub(&bodies)?;
        let topic = topic.clone();
        Ok(Payload::Mpub { topic, bodies })
    }

    pub(crate) fn dpub_payload(
        self,
        topic: &Topic,
        delay: Duration,
        body: Bytes,
    ) -> Result<Payload, PublishError> {
        self.0.check_dpub(delay, &body)?;
        let topic = topic.clone();
        Ok(Payload::Dpub { topic, delay, body })
    }
}

impl Payload {
    pub(crate) fn topic(&self) -> &Topic {
        match self {
            Self::Pub { topic, .. } | Self::Mpub { topic, .. } | Self::Dpub { topic, .. } => topic,
        }
    }

    pub(crate) fn command(&self) -> Command<'_> {
        match self {
            Self::Pub { topic, body } => Command::Pub { topic, body },
            Self::Mpub { topic, bodies } => Command::Mpub { topic, bodies },
            Self::Dpub { topic, delay, body } => Command::Dpub {
                topic,
                delay: *delay,
                body,
            },
        }
    }
}

/// Requests that are not publishes.
#[derive(Debug)]
pub(crate) enum Control {
    /// Connect if needed, then write a NOP and flush it.
    Ping(oneshot::Sender<Result<(), PingFailure>>),
    /// Write what is queued, wait for the replies (until the deadline), close.
    Close {
        reply: oneshot::Sender<Stats>,
        /// When to give up: what is queued then fails as not sent, what is in flight as
        /// unknown.
        deadline: Instant,
    },
    /// Leave a pool: hand what is queued to the pool, then close as `Close` does, waiting for
    /// the replies of what is in flight (at most the close timeout).
    Retire { reply: oneshot::Sender<Stats> },
    /// Answer once every request among the first `before` ever queued has its outcome.
    Flush {
        before: u64,
        reply: oneshot::Sender<()>,
    },
}
