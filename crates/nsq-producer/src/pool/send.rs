//! Where a publish goes: the node the strategy picks, copies on several nodes for a fan-out,
//! or, while no node is up, a wait for one until the publish's deadline.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::node::Node;
use super::{Pool, Strategy};
use crate::error::{NotSentReason, PublishError, Publisher, TooFewNodes};
use crate::producer::Start;
use crate::publish::Publish;
use crate::publishing::Patience;
use crate::request::Payload;

impl Pool {
    /// Queues a checked request on the node the strategy picks, or waits for a node to come up.
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
            if let Some(i) = shared.pick_in(&nodes, 0, payload.topic()) {
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
        Start::Waiting(Box::pin(self.wait_for_a_node(payload, deadline)))
    }

    /// No node is up: waits for one until `deadline`.
    async fn wait_for_a_node(
        &self,
        payload: Payload,
        deadline: Option<Instant>,
    ) -> Result<Publish, PublishError> {
        let shared = &self.inner.shared;
        let mut health = shared.health.subscribe();
        loop {
            if shared.closed.load(Ordering::Acquire) {
                return Err(PublishError::Closed(Publisher::Pool));
            }
            let patience = deadline.map_or(Patience::Unbounded, Patience::Until);
            let start = match shared.config.strategy {
                Strategy::FanOut { copies } => shared
                    .pick_distinct(copies, payload.topic())
                    .map(|nodes| start_copies(nodes, payload.clone(), patience)),
                _ => shared
                    .pick(0, payload.topic())
                    .map(|node| node.producer.start(payload.clone(), patience)),
            };
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
                        return Err(PublishError::Closed(Publisher::Pool));
                    }
                }
                () = expired => {
                    let reason = shared.no_node_reason(payload.topic());
                    shared.counters.not_sent(&reason);
                    return Err(PublishError::NotSent(reason));
                }
            }
        }
    }
}

impl super::Shared {
    /// Why a publish to `topic` found nowhere to go: no node up, or for a fan-out fewer nodes
    /// up than the copies, with each node's state.
    pub(crate) fn no_node_reason(&self, topic: &nsq_proto::Topic) -> NotSentReason {
        let Strategy::FanOut { copies } = self.config.strategy else {
            return NotSentReason::NoNodeUp(self.nodes_down(u64::MAX));
        };
        let up = self
            .nodes()
            .iter()
            .filter(|n| n.is_up() && n.takes(topic.as_str()))
            .count();
        if up == 0 {
            return NotSentReason::NoNodeUp(self.nodes_down(u64::MAX));
        }
        NotSentReason::TooFewNodesUp(TooFewNodes {
            copies,
            up,
            nodes: self.nodes_down(u64::MAX),
        })
    }
}

/// Queues a copy of `payload` on each of `nodes`, each copy kept off the other copies' nodes,
/// and returns one handle for them all.
fn start_copies(nodes: Vec<Arc<Node>>, payload: Payload, patience: Patience) -> Start<'static> {
    let all = nodes.iter().fold(0, |bits, n| bits | n.bit);
    let starts: Vec<(String, Start<'static>)> = nodes
        .iter()
        .map(|node| {
            let start = node
                .producer
                .start_avoiding(payload.clone(), patience, all & !node.bit);
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
