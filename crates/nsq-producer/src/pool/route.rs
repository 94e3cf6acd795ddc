//! A request's way through a pool: the nodes it was tried on, those it must avoid, and how it
//! ended on a node that did not execute it. The pool keeps it in the request's
//! [`Tag`](crate::tag::Tag), which the routers carry without reading.

use crate::error::PublishError;
use crate::request::Request;

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
    pub(crate) failed: Option<PublishError>,
}

/// A pool node's identity: given once in a pool's life, never to another node, so that a
/// [`NodeSet`] stays exact however many nodes come and go.
pub(crate) type NodeId = u64;

/// A set of a pool's nodes, by [`NodeId`]: the few nodes one request was tried on or must
/// avoid. Empty (no allocation) for every request a pool has not moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct NodeSet(Vec<NodeId>);

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

/// The route of `request`, empty when the pool never moved it.
pub(crate) fn route(request: &Request) -> Option<&Route> {
    request.tag.get::<Route>()
}

/// The empty set, for requests without a route.
static NO_NODES: NodeSet = NodeSet::new();

/// The nodes `request` was queued on and handed back from.
pub(crate) fn tried(request: &Request) -> &NodeSet {
    route(request).map_or(&NO_NODES, |r| &r.tried)
}

/// The nodes `request` must never be queued on.
pub(crate) fn avoid(request: &Request) -> &NodeSet {
    route(request).map_or(&NO_NODES, |r| &r.avoid)
}

/// The route of `request`, made if there is none yet.
pub(crate) fn route_mut(request: &mut Request) -> &mut Route {
    request.tag.get_mut::<Route>()
}

/// Whether `request` was written to a node that did not execute it.
pub(crate) fn was_written(request: &Request) -> bool {
    route(request).is_some_and(|r| r.failed.is_some())
}

/// Takes the outcome `request` had on a node that did not execute it.
pub(crate) fn take_failed(request: &mut Request) -> Option<PublishError> {
    request.tag.get_mut::<Route>().failed.take()
}
