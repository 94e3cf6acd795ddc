//! The pool's node bookkeeping, without nsqd: node identities over many additions, the waiting
//! room of publishes that found no node up, and which nodes discovery keeps when nsqlookupd
//! stops listing them.

use std::sync::Arc;
use std::time::Duration;

use nsq_proto::Topic;

use super::node::Node;
use super::route::NodeSet;
use super::{Pool, PoolConfig, PoolShared, Strategy};
use crate::config::ProducerConfig;
use crate::error::{NotSentReason, PublishError};

// Node choice, no-node reasons and the waiting room, through `PoolShared::pick` and the publish API.
mod routing;

fn shared(pool: &Pool) -> &Arc<PoolShared> {
    &pool.inner.shared
}

/// A node added and removed 1,000 times beside two others: each time it is in the pool, the
/// three have distinct identities, a fan-out of three finds three distinct nodes, and a set of
/// the three names exactly them. (Identities used to be one bit of 64 by slot, so the 63rd
/// addition shared the first node's bit and the fan-out found only two nodes.)
#[tokio::test]
async fn node_sets_stay_exact_over_a_thousand_additions() {
    let config =
        PoolConfig::new(ProducerConfig::default()).strategy(Strategy::FanOut { copies: 3 });
    // Three to start with: a fan-out of three over fewer given nsqd is refused.
    let pool = Pool::new(["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"], config).unwrap();
    let shared = shared(&pool);
    shared.remove_node("127.0.0.1:3");
    let topic = Topic::new("churn").unwrap();
    for round in 0..1_000 {
        let added = shared
            .add_node("127.0.0.1:3".to_owned(), true)
            .unwrap()
            .unwrap();
        let nodes = shared.nodes();
        let ids: NodeSet = nodes.iter().map(|n| n.id).collect();
        assert_eq!(ids.len(), 3, "round {round}: distinct identities");
        let chosen = shared
            .pick_distinct(3, &topic)
            .unwrap_or_else(|| panic!("round {round}: three distinct nodes for the fan-out"));
        let mut addrs: Vec<&str> = chosen.iter().map(|n| n.addr.as_str()).collect();
        addrs.sort_unstable();
        assert_eq!(addrs, ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]);
        let only_added: NodeSet = [added.id].into_iter().collect();
        let named = shared.nodes_down(&only_added);
        assert_eq!(named.nodes().len(), 1, "round {round}");
        assert_eq!(named.nodes()[0].addr, "127.0.0.1:3");
        shared.remove_node("127.0.0.1:3");
    }
    assert_eq!(shared.nodes().len(), 2);
    pool.close_now().await;
}

/// A pool of one node on a closed port, after its failed attempt: no node is up.
async fn none_up(producer: ProducerConfig) -> Pool {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = free.local_addr().unwrap().to_string();
    drop(free);
    let pool = Pool::new([refused], PoolConfig::new(producer)).unwrap();
    fail_attempt(&shared(&pool).nodes()[0]).await;
    pool
}

/// Pings `node`, which nothing listens for, and waits until it is marked down.
async fn fail_attempt(node: &Node) {
    assert!(node.producer.ping().await.is_err(), "nothing listens there");
    let down = async {
        while node.is_up() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), down)
        .await
        .expect("the node is down after its failed attempt");
}

/// With no node up, the pool holds publishes in a waiting room of one node's queue (here two
/// requests): two are queued at once, the third waits for room, and gets it when the first
/// ends at its deadline. Close ends the others, counted not sent.
#[tokio::test]
async fn the_waiting_room_holds_one_nodes_queue() {
    let mut producer = ProducerConfig::default();
    producer.queue_capacity = 2;
    let pool = none_up(producer).await;
    let topic = Topic::new("room").unwrap();
    let first = pool
        .publish_async(&topic, "a")
        .timeout(Duration::from_millis(300))
        .await
        .unwrap();
    let second = pool.publish_async(&topic, "b").no_timeout().await.unwrap();
    let third = pool
        .publish_async(&topic, "c")
        .timeout(Duration::from_secs(10));
    let mut third = std::pin::pin!(third);
    assert!(
        tokio::time::timeout(Duration::from_millis(100), third.as_mut())
            .await
            .is_err(),
        "the third waits for room"
    );
    assert_eq!(pool.stats().queued, 2);
    assert!(matches!(
        first.await,
        Err(PublishError::NotSent(NotSentReason::NoNodeUp(_)))
    ));
    let third = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("room once the first ended")
        .unwrap();
    assert_eq!(pool.stats().queued, 2);
    let stats = pool.close().await;
    assert_eq!((stats.queued, stats.not_sent), (0, 3), "{stats:?}");
    for publish in [second, third] {
        assert_eq!(
            publish.await,
            Err(PublishError::NotSent(NotSentReason::Closed))
        );
    }
}

#[cfg(feature = "lookupd")]
mod discovery {
    use tokio::time::Instant;

    use super::*;
    use crate::pool::discover::{Listed, reconcile};

    const GRACE: Duration = Duration::from_secs(60);

    /// A pool that discovers its nodes; its nsqlookupd (an address nothing answers at) is only
    /// there to make it one, discovery is driven by the test through `reconcile`.
    fn discovering() -> Pool {
        let config = PoolConfig::new(ProducerConfig::default())
            .lookupd(["127.0.0.1:1"])
            .lookupd_poll_interval(Duration::from_secs(3600))
            .lookupd_grace_period(GRACE);
        Pool::new(Vec::<String>::new(), config).unwrap()
    }

    fn listed(addrs: &[&str]) -> Vec<Listed> {
        addrs
            .iter()
            .map(|a| Listed {
                addr: (*a).to_owned(),
                tombstoned: Vec::new(),
            })
            .collect()
    }

    fn addrs(pool: &Pool) -> Vec<String> {
        let mut addrs: Vec<String> = pool.nodes().into_iter().map(|n| n.addr).collect();
        addrs.sort();
        addrs
    }

    /// An empty list, then one with a single node (an nsqlookupd that restarted, then heard
    /// from one nsqd): the nodes that are up stay until they have gone unlisted for the grace
    /// period. A node listed again before then starts over; the others leave at the grace
    /// period.
    #[tokio::test]
    async fn nodes_that_are_up_stay_for_the_grace_period() {
        let pool = discovering();
        let all = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"];
        let start = Instant::now();
        reconcile(shared(&pool), &listed(&all), start);
        assert_eq!(addrs(&pool), all);

        reconcile(shared(&pool), &[], start + Duration::from_secs(1));
        assert_eq!(
            addrs(&pool),
            all,
            "an empty list removes no node that is up"
        );
        reconcile(
            shared(&pool),
            &listed(&all[..1]),
            start + Duration::from_secs(30),
        );
        assert_eq!(addrs(&pool), all, "nor does a shorter one");
        reconcile(
            shared(&pool),
            &listed(&all[..1]),
            start + Duration::from_secs(60),
        );
        assert_eq!(
            addrs(&pool),
            all,
            "59 s unlisted: still within the grace period"
        );
        reconcile(shared(&pool), &[], start + Duration::from_secs(61));
        assert_eq!(
            addrs(&pool),
            all[..1],
            "the nodes unlisted for the grace period left; the one listed again stays"
        );
        reconcile(shared(&pool), &[], start + Duration::from_secs(120));
        assert_eq!(addrs(&pool), all[..1], "it starts over when listed again");
        reconcile(shared(&pool), &[], start + Duration::from_secs(121));
        assert!(addrs(&pool).is_empty());
        pool.close_now().await;
    }

    /// A node no longer listed whose connection attempt failed (it is down) leaves at once.
    #[tokio::test]
    async fn a_node_that_is_down_leaves_at_once() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let refused = free.local_addr().unwrap().to_string();
        drop(free);
        let pool = discovering();
        let start = Instant::now();
        reconcile(shared(&pool), &listed(&[&refused, "127.0.0.1:2"]), start);
        let node = shared(&pool).nodes()[0].clone();
        assert_eq!(node.addr, refused);
        fail_attempt(&node).await;
        reconcile(shared(&pool), &[], start + Duration::from_secs(1));
        assert_eq!(addrs(&pool), ["127.0.0.1:2"]);
        pool.close_now().await;
    }
}
