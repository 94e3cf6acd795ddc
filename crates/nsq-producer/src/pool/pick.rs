//! Picking nodes: by the strategy, among the nodes that are up and take the topic.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use nsq_proto::Topic;

use super::node::Node;
use super::route::NodeSet;
use super::{PoolShared, Strategy};

impl PoolShared {
    /// The node for the next publish to `topic` among those up, taking the topic and not in
    /// `avoid`.
    pub(crate) fn pick(&self, avoid: &NodeSet, topic: &Topic) -> Option<Arc<Node>> {
        let nodes = self.nodes();
        self.pick_in(&nodes, avoid, topic).map(|i| nodes[i].clone())
    }

    /// [`pick`](Self::pick) among `nodes`: the index of the node.
    #[inline]
    pub(crate) fn pick_in(
        &self,
        nodes: &[Arc<Node>],
        avoid: &NodeSet,
        topic: &Topic,
    ) -> Option<usize> {
        let n = nodes.len();
        if n == 0 {
            return None;
        }
        let usable = |node: &Arc<Node>| {
            node.is_up() && !avoid.contains(node.id) && node.takes(topic.as_str())
        };
        match self.config.strategy {
            // One node has no turn to take.
            Strategy::RoundRobin | Strategy::FanOut { .. } if n == 1 => {
                usable(&nodes[0]).then_some(0)
            }
            Strategy::RoundRobin | Strategy::FanOut { .. } => {
                let turn = self.next.fetch_add(1, Ordering::Relaxed);
                let i = turn % n;
                if usable(&nodes[i]) {
                    return Some(i);
                }
                stand_in(n, turn, |i| usable(&nodes[i]))
            }
            Strategy::Failover { fail_back_after } => {
                let settled = self
                    .epoch
                    .elapsed()
                    .saturating_sub(fail_back_after)
                    .as_millis() as u64;
                (0..n)
                    .find(|&i| usable(&nodes[i]) && nodes[i].up_before(settled))
                    .or_else(|| (0..n).find(|&i| usable(&nodes[i])))
            }
            Strategy::LeastOutstanding => {
                let a = self.random_usable(nodes, &usable)?;
                let b = self.random_usable(nodes, &usable)?;
                let lighter = if nodes[b].producer.outstanding() < nodes[a].producer.outstanding() {
                    b
                } else {
                    a
                };
                Some(lighter)
            }
        }
    }

    /// `copies` distinct nodes that are up and take `topic`, in turn; `None` if there are not
    /// that many.
    pub(crate) fn pick_distinct(&self, copies: usize, topic: &Topic) -> Option<Vec<Arc<Node>>> {
        let mut chosen: Vec<Arc<Node>> = Vec::with_capacity(copies);
        let mut avoid = NodeSet::new();
        while chosen.len() < copies {
            let node = self.pick(&avoid, topic)?;
            avoid.insert(node.id);
            chosen.push(node);
        }
        Some(chosen)
    }

    /// A usable node, starting the search at a random place.
    fn random_usable(
        &self,
        nodes: &[Arc<Node>],
        usable: &impl Fn(&Arc<Node>) -> bool,
    ) -> Option<usize> {
        let n = nodes.len();
        let start = (self.next_random() % n as u64) as usize;
        (0..n).map(|i| (start + i) % n).find(|&i| usable(&nodes[i]))
    }

    fn next_random(&self) -> u64 {
        // xorshift64: plenty for spreading load; a lost update under a race only repeats a
        // number.
        let mut x = self.random.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.random.store(x, Ordering::Relaxed);
        x
    }
}

/// Round-robin's node for `turn` among `n` nodes when the node whose turn it is cannot take the
/// publish: one of the nodes that can (`usable`), so that its share is spread evenly over them.
///
/// Turn `turn` belongs to node `turn % n` in round `turn / n`. The stand-in is the usable node
/// at place `(round + turn % n) % usable` among the usable ones: a node that stays down has
/// its turn taken by each usable node in turn, round after round, and two nodes down in the
/// same round have different stand-ins. Giving the turn to the next node in the list instead
/// doubled that node's share. Costs a pass over the nodes, only when a node is missed.
fn stand_in(n: usize, turn: usize, usable: impl Fn(usize) -> bool) -> Option<usize> {
    let count = (0..n).filter(|&i| usable(i)).count();
    if count == 0 {
        return None;
    }
    let place = (turn / n + turn % n) % count;
    (0..n).filter(|&i| usable(i)).nth(place)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProducerConfig;
    use crate::pool::{Pool, PoolConfig};

    /// Whatever nodes are down among up to six, over whole rounds, every usable node gets the
    /// same number of turns: its own and an equal part of the others'.
    #[test]
    fn missed_turns_are_spread_evenly_over_the_usable_nodes() {
        for n in 1..=6usize {
            for down in 0u32..(1 << n) {
                let usable = |i: usize| down & (1 << i) == 0;
                let count = (0..n).filter(|&i| usable(i)).count();
                let mut taken = vec![0u64; n];
                for turn in 0..n * count.max(1) * 50 {
                    let i = turn % n;
                    let i = if usable(i) {
                        Some(i)
                    } else {
                        stand_in(n, turn, usable)
                    };
                    match i {
                        Some(i) => taken[i] += 1,
                        None => assert_eq!(count, 0, "a usable node is found when there is one"),
                    }
                }
                let shares: Vec<u64> = (0..n).filter(|&i| usable(i)).map(|i| taken[i]).collect();
                assert!(
                    shares.windows(2).all(|w| w[0] == w[1]),
                    "{n} nodes, down {down:b}: {taken:?}"
                );
                assert!((0..n).filter(|&i| !usable(i)).all(|i| taken[i] == 0));
            }
        }
    }

    /// A pool of three nodes, the second of which does not take the topic: round-robin gives the
    /// other two the same share.
    #[tokio::test]
    async fn round_robin_skips_a_node_without_doubling_the_next() {
        let addrs = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"];
        let pool = Pool::new(addrs, PoolConfig::new(ProducerConfig::default())).unwrap();
        let shared = &pool.inner.shared;
        let topic = Topic::new("spread").unwrap();
        shared.nodes()[1].set_tombstoned(vec!["spread".to_owned()]);
        let mut taken = [0u64; 3];
        for _ in 0..30_000 {
            let node = shared.pick(&NodeSet::new(), &topic).unwrap();
            taken[addrs.iter().position(|a| *a == node.addr).unwrap()] += 1;
        }
        assert_eq!(taken, [15_000, 0, 15_000]);
        pool.close_now().await;
    }
}
