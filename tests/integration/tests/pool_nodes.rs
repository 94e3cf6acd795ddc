//! The pool's nodes against real nsqd v1.3.0: with one of three nodes killed, round-robin
//! gives its share to the two others alike; with every node down, `publish_async` queues at
//! once and its publish ends at its deadline.

mod common;

use std::time::{Duration, Instant};

use nsq_producer::{NotSentReason, Pool, PoolConfig, PublishError, Strategy};
use nsq_test_support::{Nsqd, topic, within};

use common::{blocking, eventually, producer_config, publish_spread, stop_and_see_down};

fn addrs(nodes: &[Nsqd]) -> Vec<String> {
    nodes.iter().map(|n| n.tcp_addr().to_string()).collect()
}

/// Round-robin over three nsqd, the second killed (SIGKILL) and seen down: 6,000 publishes from
/// 8 tasks go to the two others, which take amounts within 5 % of each other (the killed node's
/// turns used to go all to the node after it in the list, which took twice the other's share).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_a_down_nodes_share_evenly() {
    const N: u64 = 6_000;
    const TASKS: u64 = 8;
    let mut nodes: Vec<Nsqd> = (0..3).map(|_| Nsqd::start()).collect();
    let mut config = producer_config();
    // The killed node stays down: no redial succeeds, and it is retried only now and then.
    config.reconnect_backoff_min = Duration::from_secs(5);
    config.reconnect_backoff_max = Duration::from_secs(5);
    let config = PoolConfig::new(config).strategy(Strategy::RoundRobin);
    let pool = Pool::connect(addrs(&nodes), config).await.unwrap();
    let killed = nodes[1].tcp_addr().to_string();
    stop_and_see_down(&pool, &mut nodes[1]).await;

    let t = topic("spread_down");
    publish_spread(&pool, &t, TASKS, N).await;
    let survivors: Vec<u64> = pool
        .nodes()
        .iter()
        .filter(|n| n.addr != killed)
        .map(|n| n.stats.acked)
        .collect();
    eprintln!("acknowledged per survivor with one of three nodes killed: {survivors:?}");
    let stats = pool.close().await;
    assert_eq!(stats.acked, N);
    let (low, high) = (
        survivors[0].min(survivors[1]),
        survivors[0].max(survivors[1]),
    );
    assert!(
        (high - low) as f64 <= 0.05 * high as f64,
        "the survivors took {survivors:?}"
    );
}

/// Every node down: `publish_async` does not wait for a node; it queues the publish with its
/// deadline and returns, and the stats count it queued. Its publish ends `NoNodeUp` at the
/// deadline, after which it is counted not sent and a flush has nothing left to wait for. One
/// queued without a deadline ends `NotSent(Closed)` at close, counted in close's totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_async_queues_at_once_with_every_node_down() {
    queues_at_once_with_every_node_down(Strategy::RoundRobin).await;
}

/// The same for a fan-out of two, which waits for two nodes to be up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_outs_publish_async_queues_at_once_with_every_node_down() {
    queues_at_once_with_every_node_down(Strategy::FanOut { copies: 2 }).await;
}

async fn queues_at_once_with_every_node_down(strategy: Strategy) {
    const DEADLINE: Duration = Duration::from_secs(2);
    const MARGIN: Duration = Duration::from_millis(500);
    let mut nodes: Vec<Nsqd> = (0..2).map(|_| Nsqd::start()).collect();
    let mut config = producer_config();
    config.publish_timeout = Some(Duration::from_secs(30));
    let pool = Pool::connect(addrs(&nodes), PoolConfig::new(config).strategy(strategy))
        .await
        .unwrap();
    for node in &mut nodes {
        blocking(|| node.stop());
    }
    let all_down = eventually(true, || pool.nodes().iter().all(|n| !n.up)).await;
    assert!(all_down, "the pool saw both nodes go down");

    let t = topic("async_down");
    let started = Instant::now();
    let queued = within(
        "publish_async",
        pool.publish_async(&t, "x").timeout(DEADLINE),
    )
    .await;
    let returned = started.elapsed();
    eprintln!("{strategy:?}: publish_async with every node down returned after {returned:?}");
    let publish = queued.expect("queued, though no node is up");
    assert!(
        returned < MARGIN,
        "publish_async returned after {returned:?}, not at once"
    );
    assert_eq!(pool.stats().queued, 1, "counted queued");
    assert!(
        pool.flush_timeout(Duration::from_millis(200))
            .await
            .is_err(),
        "a flush waits for it"
    );

    let outcome = within("the queued publish", publish).await;
    let ended = started.elapsed();
    match outcome {
        Err(PublishError::NotSent(NotSentReason::NoNodeUp(down))) => {
            assert_eq!(down.nodes().len(), 2, "{down}");
        }
        other => panic!("expected NoNodeUp, got {other:?}"),
    }
    assert!(
        ended >= DEADLINE && ended < DEADLINE + MARGIN,
        "ended after {ended:?}, at its deadline of {DEADLINE:?}"
    );
    let stats = pool.stats();
    assert_eq!((stats.queued, stats.not_sent), (0, 1), "{stats:?}");
    within("a flush", pool.flush()).await;

    let unbounded = within("publish_async", pool.publish_async(&t, "y").no_timeout())
        .await
        .expect("queued, though no node is up");
    let stats = within("close", pool.close()).await;
    assert_eq!(
        within("the publish queued at close", unbounded).await,
        Err(PublishError::NotSent(NotSentReason::Closed))
    );
    assert_eq!((stats.queued, stats.not_sent), (0, 2), "{stats:?}");
}

/// A fan-out of two with one of its two nsqd killed: `publish_async` queues at once, and once
/// the node is restarted both copies go out: the publish is `Ok` and each node stores it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_fan_out_goes_out_when_enough_nodes_are_up() {
    let mut nodes: Vec<Nsqd> = (0..2).map(|_| Nsqd::start()).collect();
    let config = PoolConfig::new(producer_config()).strategy(Strategy::FanOut { copies: 2 });
    let pool = Pool::connect(addrs(&nodes), config).await.unwrap();
    stop_and_see_down(&pool, &mut nodes[1]).await;

    let t = topic("fan_out_waits");
    let publish = within(
        "publish_async",
        pool.publish_async(&t, "x").timeout(Duration::from_secs(20)),
    )
    .await
    .expect("queued, though one node is down");
    assert_eq!(pool.stats().queued, 1, "counted queued while it waits");
    blocking(|| nodes[1].restart());
    assert_eq!(within("the fan-out", publish).await, Ok(()));
    within("a flush", pool.flush()).await;
    let stats = pool.close().await;
    assert_eq!((stats.acked, stats.queued), (2, 0), "{stats:?}");
    for node in &nodes {
        assert_eq!(node.topic_depth("fan_out_waits"), Some(1));
    }
}
