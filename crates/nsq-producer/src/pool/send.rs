//! Where a publish goes: the node the strategy picks, copies on several nodes for a fan-out,
//! or, while no node is up, the rebalancer, which holds it until one is or its deadline passes
//! (a fan-out waits for enough nodes instead, until the publish's deadline).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::node::Node;
use super::{Pool, Strategy};
use crate::error::{NotSentReason, PublishError};
use crate::producer::Start;
use crate::publish::Publish;
use crate::publishing::Patience;
use crate::request::{NodeSet, Payload};

impl Pool {
    /// Queues a checked request on the node the strategy picks, or waits for a node to come up.
    #[inline]
    pub(crate) fn start(&self, payload: Payload, patience: Patience) -> Start<'_> {
        let shared = &self.inner.shared;
        if shared.closed.load(Ordering::Acquire) {
            return Start::Done(Err(PublishError::Closed));
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
            // No node is up, and publishes do not wait.
            let reason = NotSentReason::NoNodeUp(shared.all_nodes_down());
            shared.counters.not_sent(&reason);
            return Start::Done(Err(PublishError::NotSent(reason)));
        }
        if let Strategy::FanOut { copies } = shared.config.strategy {
            // The copies go out together, once enough nodes are up.
            return Start::Waiting(Box::pin(self.wait_for_nodes(copies, payload, deadline)));
        }
        // No node is up: the pool holds the publish, queued, until one is or its deadline
        // passes. Nothing waits here.
        Start::Done(shared.park(payload, deadline))
    }

    /// Fewer nodes are up than a fan-out's copies: waits for enough until `deadline`.
    async fn wait_for_nodes(
        &self,
        copies: usize,
        payload: Payload,
        deadline: Option<Instant>,
    ) -> Result<Publish, PublishError> {
        let shared = &self.inner.shared;
        let mut health = shared.health.subscribe();
        loop {
            if shared.closed.load(Ordering::Acquire) {
                return Err(PublishError::Closed);
            }
            let patience = deadline.map_or(Patience::Unbounded, Patience::Until);
            let start = shared
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
                        return Err(PublishError::Closed);
                    }
                }
                () = expired => {
                    let reason = NotSentReason::NoNodeUp(shared.all_nodes_down());
                    shared.counters.not_sent(&reason);
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
            let start =
                node.producer
                    .start_avoiding(payload.clone(), patience, all.without(node.id));
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
