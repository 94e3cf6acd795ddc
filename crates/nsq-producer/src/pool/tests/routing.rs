//! Where the pool sends a publish, without nsqd: which node each strategy picks (`PoolShared::pick`,
//! `PoolShared::pick_distinct`), why a publish finds nowhere to go (`PoolShared::no_node_reason`), and
//! what becomes of a publish that finds no node up (the rebalancer's waiting room). The nodes
//! are addresses nothing answers at: a closed port makes a node go down at its first attempt,
//! a listener that never accepts keeps a node up with what it was given queued.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use nsq_proto::Topic;

use super::{fail_attempt, none_up, shared};
use crate::config::ProducerConfig;
use crate::error::{NotSentReason, PublishError};
use crate::pool::node::Node;
use crate::pool::route::NodeSet;
use crate::pool::{Pool, PoolConfig, Strategy};

/// Three nodes at addresses nothing answers at: up until their first connection attempt fails.
const ADDRS: [&str; 3] = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"];

fn pool(strategy: Strategy) -> Pool {
    Pool::new(
        ADDRS,
        PoolConfig::new(ProducerConfig::default()).strategy(strategy),
    )
    .unwrap()
}

fn topic(name: &str) -> Topic {
    Topic::new(name).unwrap()
}

/// How often `pick` chose each of `nodes` (by address) over `times` calls.
fn tally(
    nodes: &[Arc<Node>],
    times: usize,
    mut pick: impl FnMut() -> Option<Arc<Node>>,
) -> Vec<u64> {
    let mut taken = vec![0u64; nodes.len()];
    for _ in 0..times {
        let node = pick().expect("a node is picked");
        taken[nodes.iter().position(|n| n.addr == node.addr).unwrap()] += 1;
    }
    taken
}

fn only(ids: impl IntoIterator<Item = u64>) -> NodeSet {
    ids.into_iter().collect()
}

/// A loopback port where nothing listens any more: a node there goes down at its first attempt.
fn closed_port() -> String {
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    free.local_addr().unwrap().to_string()
}

/// Round-robin takes the nodes in turn: consecutive picks differ, and each node gets a third.
#[tokio::test]
async fn round_robin_takes_the_nodes_in_turn() {
    let pool = pool(Strategy::RoundRobin);
    let shared = shared(&pool);
    let nodes = shared.nodes();
    let t = topic("turns");
    let mut last = None;
    for _ in 0..30 {
        let node = shared.pick(&NodeSet::new(), &t).unwrap();
        assert_ne!(Some(node.id), last, "the same node twice in a row");
        last = Some(node.id);
    }
    let taken = tally(&nodes, 3_000, || shared.pick(&NodeSet::new(), &t));
    assert_eq!(taken, [1_000, 1_000, 1_000]);
    pool.close_now().await;
}

/// Whatever the strategy, a node in the set to avoid is never picked, and avoiding every node
/// leaves none.
#[tokio::test]
async fn no_strategy_picks_a_node_it_is_told_to_avoid() {
    for strategy in [
        Strategy::RoundRobin,
        Strategy::LeastOutstanding,
        Strategy::Failover {
            fail_back_after: Duration::from_secs(60),
        },
        Strategy::FanOut { copies: 2 },
    ] {
        let pool = pool(strategy);
        let shared = shared(&pool);
        let nodes = shared.nodes();
        let t = topic("avoid");
        let avoid = only([nodes[0].id]);
        let taken = tally(&nodes, 300, || shared.pick(&avoid, &t));
        assert_eq!(taken[0], 0, "{strategy:?}: {taken:?}");
        assert_eq!(taken.iter().sum::<u64>(), 300);
        let all: NodeSet = nodes.iter().map(|n| n.id).collect();
        assert!(shared.pick(&all, &t).is_none(), "{strategy:?}");
        pool.close_now().await;
    }
}

/// Failover sends everything to the first node in the list while it is up and not avoided;
/// then to the next one.
#[tokio::test]
async fn failover_keeps_to_the_first_node_that_can_take_the_publish() {
    let pool = pool(Strategy::Failover {
        fail_back_after: Duration::from_secs(60),
    });
    let shared = shared(&pool);
    let nodes = shared.nodes();
    let t = topic("first");
    assert_eq!(
        tally(&nodes, 100, || shared.pick(&NodeSet::new(), &t)),
        [100, 0, 0]
    );
    let avoid = only([nodes[0].id]);
    assert_eq!(tally(&nodes, 100, || shared.pick(&avoid, &t)), [0, 100, 0]);
    nodes[0].set_tombstoned(vec!["first".to_owned()]);
    assert_eq!(
        tally(&nodes, 100, || shared.pick(&NodeSet::new(), &t)),
        [0, 100, 0],
        "a node tombstoned for the topic is passed over"
    );
    pool.close_now().await;
}

/// A node whose connection attempt failed is down: round-robin shares its turns evenly between
/// the other two, failover moves on to the next node, and with every node down nothing is
/// picked.
#[tokio::test]
async fn a_node_that_is_down_is_never_picked() {
    for strategy in [
        Strategy::RoundRobin,
        Strategy::Failover {
            fail_back_after: Duration::from_secs(60),
        },
    ] {
        let addrs = [
            closed_port(),
            "127.0.0.1:2".to_owned(),
            "127.0.0.1:3".to_owned(),
        ];
        let config = PoolConfig::new(ProducerConfig::default()).strategy(strategy);
        let pool = Pool::new(addrs, config).unwrap();
        let shared = shared(&pool);
        let nodes = shared.nodes();
        fail_attempt(&nodes[0]).await;
        let t = topic("down");
        let taken = tally(&nodes, 3_000, || shared.pick(&NodeSet::new(), &t));
        let expected = match strategy {
            Strategy::RoundRobin => [0, 1_500, 1_500],
            _ => [0, 3_000, 0],
        };
        assert_eq!(taken, expected, "{strategy:?}");
        pool.close_now().await;
    }
    let pool = none_up(ProducerConfig::default()).await;
    assert!(
        shared(&pool)
            .pick(&NodeSet::new(), &topic("down"))
            .is_none()
    );
    pool.close_now().await;
}

/// A node tombstoned for one topic still takes the others.
#[tokio::test]
async fn a_tombstone_keeps_a_node_out_of_one_topic_only() {
    let pool = pool(Strategy::LeastOutstanding);
    let shared = shared(&pool);
    let nodes = shared.nodes();
    nodes[1].set_tombstoned(vec!["gone".to_owned()]);
    let gone = tally(&nodes, 300, || shared.pick(&NodeSet::new(), &topic("gone")));
    assert_eq!(gone[1], 0, "{gone:?}");
    let other = tally(&nodes, 300, || {
        shared.pick(&NodeSet::new(), &topic("other"))
    });
    assert!(
        other.iter().all(|&n| n > 0),
        "every node takes another topic: {other:?}"
    );
    pool.close_now().await;
}

/// Least-outstanding picks the lighter of two nodes drawn at random: with one node holding
/// requests and the other none, the idle one is picked unless both draws fall on the busy one
/// (a quarter of the time).
#[tokio::test]
async fn least_outstanding_prefers_the_node_with_fewer_requests() {
    // Listeners that never accept: a connection waits in the backlog, the handshake is never
    // answered, and what is queued stays queued.
    let silent = [
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    ];
    let addrs: Vec<String> = silent
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect();
    let config = PoolConfig::new(ProducerConfig::default()).strategy(Strategy::LeastOutstanding);
    let pool = Pool::new(addrs, config).unwrap();
    let shared = shared(&pool);
    let nodes = shared.nodes();
    let t = topic("load");
    let mut held = Vec::new();
    for body in ["a", "b", "c"] {
        held.push(nodes[0].producer.publish_async(&t, body).await.unwrap());
    }
    let taken = tally(&nodes, 2_000, || shared.pick(&NodeSet::new(), &t));
    // Expected 1,500 and 500; the bounds are more than ten standard deviations away.
    assert!(taken[1] > 1_200 && taken[0] > 200, "{taken:?}");
    pool.close_now().await;
    drop(held);
}

/// A fan-out's copies go to distinct nodes; when fewer nodes can take the topic than there are
/// copies, there is no choice, and the reason says how many were up.
#[tokio::test]
async fn fan_out_copies_go_to_distinct_nodes_or_nowhere() {
    let addrs = [
        closed_port(),
        "127.0.0.1:2".to_owned(),
        "127.0.0.1:3".to_owned(),
    ];
    let config =
        PoolConfig::new(ProducerConfig::default()).strategy(Strategy::FanOut { copies: 2 });
    let pool = Pool::new(addrs, config).unwrap();
    let shared = shared(&pool);
    let t = topic("copies");
    for _ in 0..100 {
        let chosen = shared.pick_distinct(2, &t).unwrap();
        assert_ne!(chosen[0].id, chosen[1].id);
    }
    let nodes = shared.nodes();
    fail_attempt(&nodes[0]).await;
    for _ in 0..100 {
        let chosen = shared.pick_distinct(2, &t).unwrap();
        let mut addrs: Vec<&str> = chosen.iter().map(|n| n.addr.as_str()).collect();
        addrs.sort_unstable();
        assert_eq!(addrs, ["127.0.0.1:2", "127.0.0.1:3"]);
    }
    nodes[2].set_tombstoned(vec!["copies".to_owned()]);
    assert!(shared.pick_distinct(2, &t).is_none());
    match shared.no_node_reason(&t) {
        NotSentReason::TooFewNodesUp(too_few) => {
            assert_eq!((too_few.copies(), too_few.up()), (2, 1), "{too_few:?}");
            assert_eq!(too_few.nodes().len(), 3, "every node's state is given");
        }
        other => panic!("expected TooFewNodesUp, got {other:?}"),
    }
    pool.close_now().await;
}

/// With no node up and `fail_fast`, a publish fails at once: `NoNodeUp` naming the node, or for
/// a fan-out short of nodes, `TooFewNodesUp`.
#[tokio::test]
async fn fail_fast_with_no_node_up_fails_at_once() {
    let mut producer = ProducerConfig::default();
    producer.fail_fast = true;
    let pool = none_up(producer.clone()).await;
    let down = pool.publish_async(&topic("fast"), "x").await;
    match down {
        Err(PublishError::NotSent(NotSentReason::NoNodeUp(nodes))) => {
            assert_eq!(nodes.nodes().len(), 1);
        }
        other => panic!("expected NoNodeUp, got {other:?}"),
    }
    assert_eq!(pool.stats().not_sent, 1);
    pool.close_now().await;

    let addrs = [closed_port(), "127.0.0.1:2".to_owned()];
    let config = PoolConfig::new(producer).strategy(Strategy::FanOut { copies: 2 });
    let pool = Pool::new(addrs, config).unwrap();
    fail_attempt(&shared(&pool).nodes()[0]).await;
    match pool.publish_async(&topic("fast"), "x").await {
        Err(PublishError::NotSent(NotSentReason::TooFewNodesUp(too_few))) => {
            assert_eq!((too_few.copies(), too_few.up()), (2, 1), "{too_few:?}");
        }
        other => panic!("expected TooFewNodesUp, got {other:?}"),
    }
    pool.close_now().await;
}

/// A publish that finds no node up and whose deadline has already passed ends at once as not
/// sent, and gives back its room in the waiting room: with room for one request, the next
/// publish is held at once.
#[tokio::test]
async fn an_expired_publish_with_no_node_up_gives_its_room_back() {
    let mut producer = ProducerConfig::default();
    producer.queue_capacity = 1;
    let pool = none_up(producer).await;
    let t = topic("expired");
    let expired = pool.publish_async(&t, "late").timeout(Duration::ZERO).await;
    assert!(
        matches!(
            expired,
            Err(PublishError::NotSent(NotSentReason::NoNodeUp(_)))
        ),
        "{expired:?}"
    );
    assert_eq!(pool.stats().queued, 0);
    let held = tokio::time::timeout(
        Duration::from_secs(5),
        pool.publish_async(&t, "held").no_timeout(),
    )
    .await
    .expect("the room was given back")
    .unwrap();
    assert_eq!(pool.stats().queued, 1);
    pool.close().await;
    assert_eq!(
        held.await,
        Err(PublishError::NotSent(NotSentReason::Closed))
    );
}
