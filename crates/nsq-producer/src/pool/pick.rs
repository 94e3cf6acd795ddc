//! Picking nodes: by the strategy, among the nodes that are up and take the topic.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use nsq_proto::Topic;

use super::node::Node;
use super::{Shared, Strategy};

impl Shared {
    /// The node for the next publish to `topic` among those up, taking the topic and not in
    /// `avoid` (node bits).
    pub(crate) fn pick(&self, avoid: u64, topic: &Topic) -> Option<Arc<Node>> {
        let nodes = self.nodes();
        self.pick_in(&nodes, avoid, topic).map(|i| nodes[i].clone())
    }

    /// [`pick`](Self::pick) among `nodes`: the index of the node.
    #[inline]
    pub(crate) fn pick_in(&self, nodes: &[Arc<Node>], avoid: u64, topic: &Topic) -> Option<usize> {
        let n = nodes.len();
        if n == 0 {
            return None;
        }
        let usable =
            |node: &Arc<Node>| node.is_up() && node.bit & avoid == 0 && node.takes(topic.as_str());
        match self.config.strategy {
            // One node has no turn to take.
            Strategy::RoundRobin | Strategy::FanOut { .. } if n == 1 => {
                usable(&nodes[0]).then_some(0)
            }
            Strategy::RoundRobin | Strategy::FanOut { .. } => {
                let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
                (start..n).chain(0..start).find(|&i| usable(&nodes[i]))
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
        let mut avoid = 0;
        while chosen.len() < copies {
            let node = self.pick(avoid, topic)?;
            avoid |= node.bit;
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
