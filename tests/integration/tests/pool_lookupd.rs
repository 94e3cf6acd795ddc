//! A pool that finds its nodes through a real nsqlookupd v1.3.0, with real nsqds registered
//! with it: a node that registers later gets traffic within a poll, a node that tombstones the
//! topic stops getting it, a pool whose nsqlookupd is gone keeps publishing to the nodes it
//! knows, and one whose nsqlookupd restarts (and lists no node until each nsqd registers again)
//! keeps its connected nodes.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nsq_producer::{Pool, PoolConfig};
use nsq_test_support::{Nsqd, NsqdOptions, Nsqlookupd, topic, within};

use common::{blocking, eventually, producer_config};

const POLL: Duration = Duration::from_millis(300);

fn registered(lookupd: &Nsqlookupd) -> Nsqd {
    let nsqd = Nsqd::start_with(NsqdOptions::new().lookupd(lookupd));
    blocking(|| lookupd.wait_for_nsqd(&nsqd));
    nsqd
}

fn discovering(lookupd: &Nsqlookupd) -> PoolConfig {
    PoolConfig::new(producer_config())
        .lookupd([lookupd.http_addr().to_string()])
        .lookupd_poll_interval(POLL)
}

/// Acknowledged publishes per node address.
fn acked(pool: &Pool, addr: &str) -> u64 {
    pool.nodes()
        .iter()
        .find(|n| n.addr == addr)
        .map_or(0, |n| n.stats.acked)
}

/// Three nsqd registered before the pool starts are found at once; a fourth that registers
/// later is in the pool within a poll interval (plus scheduling) and gets publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_registers_later_gets_traffic() {
    let lookupd = Nsqlookupd::start();
    let nodes: Vec<Nsqd> = (0..3).map(|_| registered(&lookupd)).collect();
    let pool = Pool::connect_lookupd(discovering(&lookupd)).await.unwrap();
    assert_eq!(pool.nodes().len(), 3);
    assert!(pool.nodes().iter().all(|n| n.discovered));
    let t = topic("discovered");
    for i in 0..30 {
        within("a publish", pool.publish(&t, format!("m{i}")))
            .await
            .unwrap();
    }
    for node in &nodes {
        assert_eq!(acked(&pool, &node.tcp_addr().to_string()), 10);
    }

    let late = registered(&lookupd);
    let late_addr = late.tcp_addr().to_string();
    let found = eventually(true, || pool.nodes().iter().any(|n| n.addr == late_addr)).await;
    assert!(found, "the late node joined the pool");
    for i in 0..40 {
        within("a publish", pool.publish(&t, format!("n{i}")))
            .await
            .unwrap();
    }
    assert_eq!(acked(&pool, &late_addr), 10, "round-robin over four nodes");
    assert_eq!(late.topic_depth("discovered"), Some(10));
    let stats = pool.close().await;
    assert_eq!(stats.acked, 70);
}

/// A topic tombstoned on one node through nsqlookupd is no longer sent there; the other node
/// takes all of it, and other topics still go to both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstoned_topic_stops_going_to_that_node() {
    let lookupd = Nsqlookupd::start();
    let nodes: Vec<Nsqd> = (0..2).map(|_| registered(&lookupd)).collect();
    let pool = Pool::connect(Vec::<String>::new(), discovering(&lookupd))
        .await
        .unwrap();
    let t = topic("tombstoned");
    for i in 0..10 {
        within("a publish", pool.publish(&t, format!("m{i}")))
            .await
            .unwrap();
    }
    blocking(|| lookupd.wait_for_topic(&nodes[0], "tombstoned"));
    blocking(|| lookupd.tombstone_topic("tombstoned", &nodes[0]));
    // Two polls: the pool has seen the tombstone.
    tokio::time::sleep(POLL * 3).await;
    let first = nodes[0].tcp_addr().to_string();
    let second = nodes[1].tcp_addr().to_string();
    let (before_first, before_second) = (acked(&pool, &first), acked(&pool, &second));
    for i in 0..20 {
        within("a publish", pool.publish(&t, format!("n{i}")))
            .await
            .unwrap();
    }
    assert_eq!(
        acked(&pool, &first),
        before_first,
        "nothing more to the tombstoned node"
    );
    assert_eq!(acked(&pool, &second), before_second + 20);
    let other = topic("other");
    for i in 0..4 {
        within("a publish", pool.publish(&other, format!("o{i}")))
            .await
            .unwrap();
    }
    assert_eq!(
        acked(&pool, &first),
        before_first + 2,
        "other topics still go there"
    );
    pool.close().await;
}

/// With nsqlookupd killed, the pool keeps the nodes it knows and goes on publishing to all of
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nsqlookupd_the_last_known_nodes_are_kept() {
    let mut lookupd = Nsqlookupd::start();
    let nodes: Vec<Nsqd> = (0..2).map(|_| registered(&lookupd)).collect();
    let pool = Pool::connect(Vec::<String>::new(), discovering(&lookupd))
        .await
        .unwrap();
    blocking(|| lookupd.stop());
    tokio::time::sleep(POLL * 4).await;
    assert_eq!(pool.nodes().len(), 2, "the last good list is kept");
    let t = topic("no_lookupd");
    for i in 0..20 {
        within("a publish", pool.publish(&t, format!("m{i}")))
            .await
            .unwrap();
    }
    for node in &nodes {
        assert_eq!(node.topic_depth("no_lookupd"), Some(10));
    }
    pool.close().await;
}

/// A node that leaves nsqlookupd (its nsqd shut down, which unregisters it) leaves the pool;
/// what it acknowledged stays in the pool's totals, and publishing goes on to the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_no_longer_listed_leaves_the_pool() {
    let lookupd = Nsqlookupd::start();
    let mut nodes: Vec<Nsqd> = (0..3).map(|_| registered(&lookupd)).collect();
    let pool = Pool::connect(Vec::<String>::new(), discovering(&lookupd))
        .await
        .unwrap();
    let t = topic("leaving");
    for i in 0..30 {
        within("a publish", pool.publish(&t, format!("m{i}")))
            .await
            .unwrap();
    }
    let leaving = nodes[2].tcp_addr().to_string();
    blocking(|| nodes[2].shutdown());
    let left = eventually(true, || pool.nodes().iter().all(|n| n.addr != leaving)).await;
    assert!(left, "the node left the pool");
    for i in 0..20 {
        within("a publish", pool.publish(&t, format!("n{i}")))
            .await
            .unwrap();
    }
    let stats = pool.close().await;
    assert_eq!(
        stats.acked, 50,
        "the departed node's acknowledgements are still counted"
    );
    assert_eq!((stats.not_sent, stats.unknown), (0, 0));
}

/// nsqlookupd restarted on the same ports while 4 tasks publish to three connected nsqd: it
/// lists no node until each nsqd registers again (at its next ping but one, 15 to 30 s later),
/// and for the 3 s watched it lists none. The pool keeps its three nodes through the empty
/// lists (they are connected and acknowledging), no publish fails, and every node keeps
/// acknowledging after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_nsqlookupd_does_not_empty_the_pool() {
    let mut lookupd = Nsqlookupd::start();
    let nodes: Vec<Nsqd> = (0..3).map(|_| registered(&lookupd)).collect();
    let mut producer = producer_config();
    producer.publish_timeout = Some(Duration::from_secs(1));
    let config = PoolConfig::new(producer)
        .lookupd([lookupd.http_addr().to_string()])
        .lookupd_poll_interval(POLL);
    let pool = Pool::connect(Vec::<String>::new(), config).await.unwrap();
    assert_eq!(pool.nodes().len(), 3);
    let t = topic("lookupd_restart");
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let tasks: Vec<_> = (0..4)
        .map(|k| {
            let (pool, t, stop, acks) = (pool.clone(), t.clone(), stop.clone(), acks.clone());
            tokio::spawn(async move {
                let mut failed = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    match pool.publish(&t, format!("t{k}m{i}")).await {
                        Ok(()) => acks.lock().unwrap().push(Instant::now()),
                        Err(err) => failed.push(err.to_string()),
                    }
                    i += 1;
                    // A steady trickle rather than a flood: the gaps between acks are what is
                    // watched.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                failed
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before: Vec<u64> = nodes
        .iter()
        .map(|n| acked(&pool, &n.tcp_addr().to_string()))
        .collect();
    let restarted = Instant::now();
    blocking(|| lookupd.restart());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let listed = lookupd.nodes().len();
    let in_pool = pool.nodes().len();
    let watched = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let mut failed = Vec::new();
    for task in tasks {
        failed.extend(within("a publishing task", task).await.unwrap());
    }
    let after: Vec<u64> = nodes
        .iter()
        .map(|n| acked(&pool, &n.tcp_addr().to_string()))
        .collect();
    // The acks from the restart to the end of the watch, with both ends.
    let mut acks = acks.lock().unwrap().clone();
    acks.retain(|&a| a >= restarted && a <= watched);
    acks.push(restarted);
    acks.push(watched);
    acks.sort();
    let longest_gap = acks.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    eprintln!(
        "across the nsqlookupd restart ({:?} watched): longest time without an ack \
         {longest_gap:?}, {} publishes failed, {in_pool} nodes in the pool",
        watched - restarted,
        failed.len()
    );
    assert_eq!(listed, 0, "nsqlookupd listed no node while watched");
    assert!(
        failed.is_empty(),
        "{} failed, the first: {}",
        failed.len(),
        failed[0]
    );
    assert_eq!(in_pool, 3, "the pool kept its nodes");
    for (b, a) in before.iter().zip(&after) {
        assert!(
            a > b,
            "every node kept acknowledging: before {before:?}, after {after:?}"
        );
    }
    pool.close().await;
}
