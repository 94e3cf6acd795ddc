//! The pool's nodes: the list, adding and removing nodes, which are down, and the totals of
//! their counters.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use nsq_conn::ConfigError;

use super::node::Node;
use super::route::NodeSet;
use super::{PoolShared, failover, health};
use crate::error::{NodeDown, NodesDown, NotSentReason};
use crate::stats::Stats;

impl PoolShared {
    pub(crate) fn nodes(&self) -> Arc<[Arc<Node>]> {
        self.nodes.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The pool's totals; see [`Pool::stats`].
    pub(super) fn totals(&self) -> Stats {
        let mut total = self.counters.snapshot();
        total.queued += self.parked.load(Ordering::Relaxed);
        total.queued += self.fan_outs_waiting.load(Ordering::Relaxed);
        add(
            &mut total,
            &self.retired.lock().unwrap_or_else(|p| p.into_inner()),
        );
        for node in self.all_nodes().iter() {
            add(&mut total, &node.producer.stats());
        }
        total
    }

    /// The nodes in the pool and those leaving it.
    pub(super) fn all_nodes(&self) -> Vec<Arc<Node>> {
        let mut all: Vec<Arc<Node>> = self.nodes().iter().cloned().collect();
        all.extend(
            self.retiring
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned(),
        );
        all
    }

    /// Adds a node for the nsqd at `addr`, unless the pool has one, and starts following its
    /// health. Returns the node, or `None` once the pool is closed.
    pub(crate) fn add_node(
        self: &Arc<Self>,
        addr: String,
        discovered: bool,
    ) -> Result<Option<Arc<Node>>, ConfigError> {
        let hand_back = self
            .hand_back
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(hand_back) = hand_back else {
            return Ok(None);
        };
        let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = nodes.iter().find(|n| n.addr == addr) {
            return Ok(Some(existing.clone()));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let producer = self.config.producer.clone();
        let retry_unknown = self.config.retry_unknown;
        let health = Arc::new(health::NodeHealth::default());
        let policy = failover::NodePolicy {
            addr: addr.clone(),
            node: id,
            retry_unknown,
            to: hand_back,
            pool: Arc::downgrade(self),
            rule: health::SlowRule::of(&self.config),
            health: health.clone(),
            judge: Mutex::default(),
        };
        let node = Node::new(addr, id, discovered, producer, Arc::new(policy), health)?;
        let state = node.producer.watch_state();
        let watch = Node::watch(
            Arc::downgrade(&node),
            state,
            self.epoch,
            self.health.clone(),
        );
        tokio::spawn(watch);
        let mut list: Vec<Arc<Node>> = nodes.iter().cloned().collect();
        list.push(node.clone());
        *nodes = Arc::from(list);
        drop(nodes);
        self.health.send_modify(|n| *n += 1);
        Ok(Some(node))
    }

    /// Takes the node at `addr` out of the pool: no publish goes to it any more, what it has
    /// not written moves to other nodes, and it closes once what is in flight is answered. Its
    /// final counters stay in the pool's totals.
    #[cfg_attr(not(feature = "lookupd"), allow(dead_code))]
    pub(crate) fn remove_node(self: &Arc<Self>, addr: &str) {
        let removed = {
            let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
            let (gone, kept): (Vec<Arc<Node>>, Vec<Arc<Node>>) =
                nodes.iter().cloned().partition(|n| n.addr == addr);
            *nodes = Arc::from(kept);
            gone
        };
        for node in removed {
            tracing::info!(addr = %node.addr, "removing a node from the pool");
            self.retiring
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(node.clone());
            let shared = self.clone();
            tokio::spawn(async move {
                let stats = node.producer.retire().await;
                shared
                    .retiring
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .retain(|n| !Arc::ptr_eq(n, &node));
                add(
                    &mut shared.retired.lock().unwrap_or_else(|p| p.into_inner()),
                    &stats,
                );
            });
        }
        self.health.send_modify(|n| *n += 1);
    }

    #[cfg_attr(not(feature = "lookupd"), allow(dead_code))]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Takes a token to send a written request again.
    pub(crate) fn may_resend(&self) -> bool {
        let acked = self
            .all_nodes()
            .iter()
            .map(|n| n.producer.stats().acked)
            .sum();
        self.budget.try_spend(acked)
    }

    /// Requests moved so far: handed back by nodes, and queued on nodes by the rebalancer.
    pub(super) fn moves(&self) -> u64 {
        let handed_back: u64 = self
            .all_nodes()
            .iter()
            .map(|n| n.producer.stats().handed_back)
            .sum();
        handed_back + self.placed.load(Ordering::SeqCst)
    }

    /// The nodes in `which` that are down, with their last errors.
    pub(crate) fn nodes_down(&self, which: &NodeSet) -> NodesDown {
        self.nodes_down_where(|n| which.contains(n.id))
    }

    /// Every node of the pool, with its last error: for a publish that found no node up.
    pub(crate) fn all_nodes_down(&self) -> NodesDown {
        self.nodes_down_where(|_| true)
    }

    fn nodes_down_where(&self, which: impl Fn(&Node) -> bool) -> NodesDown {
        let down: Vec<NodeDown> = self
            .nodes()
            .iter()
            .filter(|n| which(n))
            .map(|n| n.down())
            .collect();
        NodesDown(Arc::from(down))
    }

    /// Why a request the pool holds failed at its deadline.
    pub(crate) fn expiry_reason(&self) -> NotSentReason {
        if self.nodes().iter().any(|n| n.is_up()) {
            NotSentReason::DeadlineExpired
        } else {
            NotSentReason::NoNodeUp(self.all_nodes_down())
        }
    }
}

/// Adds a node's counters to the pool's totals.
fn add(total: &mut Stats, node: &Stats) {
    total.queued += node.queued;
    total.in_flight += node.in_flight;
    total.acked += node.acked;
    total.acked_messages += node.acked_messages;
    for (code, n) in &node.rejected {
        *total.rejected.entry(code.clone()).or_default() += n;
    }
    total.not_sent += node.not_sent;
    total.unknown += node.unknown;
    total.withdrawn += node.withdrawn;
    total.handed_back += node.handed_back;
    total.timed_out += node.timed_out;
    total.reconnects += node.reconnects;
    total.connect_failures += node.connect_failures;
    total.bytes_written += node.bytes_written;
}
