//! Where a publish goes: the node the strategy picks, copies on several nodes for a fan-out,
//! or, while no node is up, the rebalancer, which holds it until one is or its deadline passes
//! (for a fan-out, a task that waits for enough nodes, until the publish's deadline). Queuing
//! never waits for a node.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::node::Node;
use super::route::{NodeSet, Route};
use super::{Pool, PoolShared, Strategy};
use crate::completion::{Responder, timed_completion};
use crate::error::{NotSentReason, PublishError, Publisher, TooFewNodes};
use crate::publish_futures::Patience;
use crate::publish_futures::Start;
use crate::publish_handle::{Publish, publish_span};
use crate::request::Payload;
use crate::tag::Tag;

impl Pool {
    /// Queues a checked request on the node the strategy picks, or, while no node is up, in the
    /// pool (waiting only for room there).
    #[inline]
    pub(crate) fn start(&self, payload: Payload, patience: Patience) -> Start<'_> {
        let shared = &self.inner.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Start::Done(Err(PublishError::Closed(Publisher::Pool)));
        }
        if !matches!(shared.config.strategy, Strategy::FanOut { .. }) {
            // The common path: one node, queued under the read lock of the node list (queuing
            // never waits), with the patience as given: every node has the pool's producer
            // configuration, so it sets the deadline the pool would.
            let nodes = shared.nodes.read().unwrap_or_else(|p| p.into_inner());
            if let Some(i) = shared.pick_in(&nodes, &NodeSet::new(), payload.topic()) {
                return nodes[i].producer.start(payload, patience);
            }
        }
        // One deadline for the publish, wherever it goes.
        let deadline = patience.deadline(Instant::now(), shared.config.producer.publish_timeout);
        if let Strategy::FanOut { copies } = shared.config.strategy {
            if let Some(nodes) = shared.pick_distinct(copies, payload.topic()) {
                let patience = deadline.map_or(Patience::Unbounded, Patience::Until);
                return start_copies(nodes, payload, patience);
            }
        }
        if shared.config.producer.fail_fast {
            // No node is up (or too few for the copies), and publishes do not wait.
            let reason = shared.no_node_reason(payload.topic());
            shared.counters.not_sent(&reason);
            return Start::Done(Err(PublishError::NotSent(reason)));
        }
        // No node is up (for a fan-out, too few): the pool holds the publish, queued, until
        // enough are or its deadline passes. Its waiting room holds one node's queue; while it
        // is full, this waits for room, as on a producer whose queue is full.
        let room = shared.gate.permits(payload.command().encoded_len());
        match shared.room.try_acquire_many(room) {
            Ok(permit) => {
                permit.forget();
                Start::Done(shared.hold(payload, deadline, room))
            }
            Err(_) => Start::Waiting(Box::pin(self.hold_when_room(payload, deadline, room))),
        }
    }

    /// The pool's waiting room is full: waits for `room` until `deadline`, then holds the
    /// publish.
    async fn hold_when_room(
        &self,
        payload: Payload,
        deadline: Option<Instant>,
        room: u32,
    ) -> Result<Publish, PublishError> {
        let shared = &self.inner.shared;
        let acquire = shared.room.acquire_many(room);
        let acquired = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, acquire).await.ok(),
            None => Some(acquire.await),
        };
        match acquired {
            Some(Ok(permit)) => {
                permit.forget();
                shared.hold(payload, deadline, room)
            }
            Some(Err(_closed)) => Err(PublishError::Closed(Publisher::Pool)),
            None => {
                let reason = match shared.config.strategy {
                    Strategy::FanOut { .. } => shared.no_node_reason(payload.topic()),
                    _ => shared.expiry_reason(),
                };
                shared.counters.not_sent(&reason);
                Err(PublishError::NotSent(reason))
            }
        }
    }
}

impl PoolShared {
    /// Why a publish to `topic` found nowhere to go: no node up, or for a fan-out fewer nodes
    /// up than the copies, with each node's state.
    pub(crate) fn no_node_reason(&self, topic: &nsq_proto::Topic) -> NotSentReason {
        let Strategy::FanOut { copies } = self.config.strategy else {
            return NotSentReason::NoNodeUp(self.all_nodes_down());
        };
        let up = self
            .nodes()
            .iter()
            .filter(|n| n.is_up() && n.takes(topic.as_str()))
            .count();
        if up == 0 {
            return NotSentReason::NoNodeUp(self.all_nodes_down());
        }
        NotSentReason::TooFewNodesUp(TooFewNodes {
            copies,
            up,
            nodes: self.all_nodes_down(),
        })
    }

    /// Holds a publish that found no node up (too few for a fan-out), which has taken `room` in
    /// the waiting room, and returns its handle.
    fn hold(
        self: &Arc<Self>,
        payload: Payload,
        deadline: Option<Instant>,
        room: u32,
    ) -> Result<Publish, PublishError> {
        match self.config.strategy {
            Strategy::FanOut { copies } => self.park_copies(copies, payload, deadline, room),
            _ => self.park(payload, deadline, room),
        }
    }

    /// Gives back `room` in the waiting room, taken by a publish that no longer waits there.
    pub(crate) fn release(&self, room: u32) {
        if room > 0 {
            self.room.add_permits(room as usize);
        }
    }

    /// A fan-out publish that found fewer than `copies` nodes up: a task waits for enough until
    /// `deadline` and queues the copies then. The handle, returned at once, resolves with the
    /// copies' outcome. Counted under `queued` until the copies are queued; a flush waits for
    /// its outcome.
    fn park_copies(
        self: &Arc<Self>,
        copies: usize,
        payload: Payload,
        deadline: Option<Instant>,
        room: u32,
    ) -> Result<Publish, PublishError> {
        if deadline.is_some_and(|d| d <= Instant::now()) {
            self.release(room);
            let reason = self.no_node_reason(payload.topic());
            self.counters.not_sent(&reason);
            return Err(PublishError::NotSent(reason));
        }
        let span = publish_span("pool", &payload);
        let (responder, completion) = timed_completion(self.counters.timer());
        self.fan_outs_waiting.fetch_add(1, Ordering::Relaxed);
        self.fan_outs_unresolved.fetch_add(1, Ordering::Relaxed);
        let shared = self.clone();
        tokio::spawn(async move {
            let queued = shared
                .wait_for_nodes(copies, payload, deadline, &responder)
                .await;
            // Queued on the nodes, or failed: it leaves the waiting room either way.
            shared.release(room);
            match queued {
                Ok(publish) => {
                    // Moved to nodes: a flush looks again, and finds them there.
                    shared.placed.fetch_add(1, Ordering::SeqCst);
                    shared.fan_outs_waiting.fetch_sub(1, Ordering::Relaxed);
                    responder.complete(publish.await);
                }
                Err(err) => {
                    shared.fan_outs_waiting.fetch_sub(1, Ordering::Relaxed);
                    if responder.is_abandoned() {
                        shared.counters.withdrawn();
                    } else {
                        shared.counters.ended(&err);
                        responder.complete(Err(err));
                    }
                }
            }
            shared.fan_outs_unresolved.fetch_sub(1, Ordering::Release);
            shared.rebalanced.notify_waiters();
        });
        Ok(Publish::new(completion, span))
    }

    /// Waits until `copies` nodes are up, then queues a copy on each; fails at `deadline`, at
    /// close, or (checked at each change of health) once the caller has withdrawn it.
    async fn wait_for_nodes(
        &self,
        copies: usize,
        payload: Payload,
        deadline: Option<Instant>,
        responder: &Responder,
    ) -> Result<Publish, PublishError> {
        let mut health = self.health.subscribe();
        loop {
            if self.closed.load(Ordering::Acquire) || responder.is_abandoned() {
                return Err(PublishError::NotSent(NotSentReason::Closed));
            }
            let patience = deadline.map_or(Patience::Unbounded, Patience::Until);
            let start = self
                .pick_distinct(copies, payload.topic())
                .map(|nodes| start_copies(nodes, payload.clone(), patience));
            if let Some(start) = start {
                return match start {
                    Start::Done(result) => result,
                    Start::Waiting(waiting) => waiting.await,
                };
            }
            let expired = async {
                match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = health.changed() => {
                    if changed.is_err() {
                        return Err(PublishError::NotSent(NotSentReason::Closed));
                    }
                }
                () = expired => {
                    let reason = self.no_node_reason(payload.topic());
                    return Err(PublishError::NotSent(reason));
                }
            }
        }
    }
}

/// Queues a copy of `payload` on each of `nodes`, each copy kept off the other copies' nodes,
/// and returns one handle for them all.
fn start_copies(nodes: Vec<Arc<Node>>, payload: Payload, patience: Patience) -> Start<'static> {
    let all: NodeSet = nodes.iter().map(|n| n.id).collect();
    let starts: Vec<(String, Start<'static>)> = nodes
        .iter()
        .map(|node| {
            let route = Route {
                avoid: all.without(node.id),
                ..Route::default()
            };
            let start = node
                .producer
                .start_tagged(payload.clone(), patience, Tag::new(route));
            (node.addr.clone(), start)
        })
        .collect();
    if starts.iter().all(|(_, s)| matches!(s, Start::Done(_))) {
        let copies = starts
            .into_iter()
            .map(|(addr, start)| match start {
                Start::Done(result) => (addr, result),
                Start::Waiting(_) => unreachable!("every copy was queued at once"),
            })
            .collect();
        return Start::Done(Ok(Publish::copies(copies)));
    }
    Start::Waiting(Box::pin(async move {
        let mut copies = Vec::with_capacity(starts.len());
        for (addr, start) in starts {
            let queued = match start {
                Start::Done(result) => result,
                Start::Waiting(waiting) => waiting.await,
            };
            copies.push((addr, queued));
        }
        Ok(Publish::copies(copies))
    }))
}
