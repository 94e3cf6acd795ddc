//! The pool against real nsqd v1.3.0: several nodes, spread by the strategy; a node killed
//! (SIGKILL) mid-stream and restarted, with nothing acknowledged lost and nothing stored twice
//! but what the pool reported as unknown; every node down, then one back.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use nsq_producer::{NotSentReason, Pool, PoolConfig, PublishError, Strategy};
use nsq_test_support::{Nsqd, NsqdOptions, read_until_quiet, topic, within};

use common::{Publishers, blocking, eventually, producer_config, publish_spread};

fn addrs(nodes: &[Nsqd]) -> Vec<String> {
    nodes.iter().map(|n| n.tcp_addr().to_string()).collect()
}

/// Round-robin over three nsqd: 30,000 publishes from 16 tasks land within 10 % of a third on
/// each node, and the nodes' topic depths add up to what was acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_evenly_over_three_nsqd() {
    const N: u64 = 30_000;
    const TASKS: u64 = 16;
    let nodes: Vec<Nsqd> = (0..3).map(|_| Nsqd::start()).collect();
    let config = PoolConfig::new(producer_config()).strategy(Strategy::RoundRobin);
    let pool = Pool::connect(addrs(&nodes), config).await.unwrap();
    let t = topic("spread");
    publish_spread(&pool, &t, TASKS, N).await;
    let per_node: Vec<u64> = pool.nodes().iter().map(|n| n.stats.acked).collect();
    let stats = pool.close().await;
    assert_eq!(stats.acked, N);
    for acked in &per_node {
        let share = *acked as f64 / (N as f64 / 3.0);
        assert!((0.9..=1.1).contains(&share), "per node {per_node:?}");
    }
    let mut depth = 0;
    for (node, acked) in nodes.iter().zip(&per_node) {
        depth += eventually(Some(*acked), || node.topic_depth("spread"))
            .await
            .unwrap();
    }
    assert_eq!(depth, N);
}

/// 16 tasks, each with up to 256 publishes under way, publish 300,000 messages over three
/// nsqd; the second is killed (SIGKILL) a third of the way in and restarted 5 s later, and the
/// last third waits for the restart. The killed node runs with `--mem-queue-size=0
/// --sync-every=1` (its data in memory, so that syncing every message is cheap), so what it
/// acknowledged survives the kill. Every publish resolves; none is `NotSent`, since two nodes
/// stay up; the `Unknown` ones are all on the killed node, at most a window of them. Read back
/// from every node, each acknowledged message is there once, and no message is there twice
/// unless its publish was `Unknown`. The restarted node gets traffic again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_under_sigkill_loses_and_duplicates_nothing() {
    const N: u64 = 300_000;
    const TASKS: u64 = 16;
    let durable = NsqdOptions::new()
        .mem_queue_size(0)
        .arg("--sync-every=1")
        .data_in_memory(true);
    let mut nodes = vec![Nsqd::start(), Nsqd::start_with(durable), Nsqd::start()];
    let mut config = producer_config();
    config.publish_timeout = Some(Duration::from_secs(30));
    let pool = Pool::connect(addrs(&nodes), PoolConfig::new(config))
        .await
        .unwrap();
    let t = topic("failover");
    let acked = Arc::new(AtomicU64::new(0));
    // The last third is published once the killed node is back, so that the test sees it get
    // traffic again however fast the first two thirds went.
    let (restarted, restart_seen) = tokio::sync::watch::channel(false);
    let tasks: Vec<_> = (0..TASKS)
        .map(|k| {
            let (pool, t, acked) = (pool.clone(), t.clone(), acked.clone());
            let restart_seen = restart_seen.clone();
            tokio::spawn(async move {
                // Each task keeps up to 256 publishes under way.
                futures::stream::iter((k..N).step_by(TASKS as usize))
                    .map(|i| {
                        let (pool, t, acked) = (&pool, &t, &acked);
                        let mut restart_seen = restart_seen.clone();
                        async move {
                            if i >= 2 * N / 3 {
                                let _ = restart_seen.wait_for(|r| *r).await;
                            }
                            let body = format!("m{i}");
                            let outcome = pool.publish(t, body.clone()).await;
                            if outcome.is_ok() {
                                acked.fetch_add(1, Ordering::Relaxed);
                            }
                            (body, outcome)
                        }
                    })
                    .buffer_unordered(256)
                    .collect::<Vec<_>>()
                    .await
            })
        })
        .collect();

    eventually(true, || acked.load(Ordering::Relaxed) >= N / 3).await;
    blocking(|| nodes[1].stop());
    let killed_at = acked.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before_restart = pool.nodes()[1].stats.acked;
    blocking(|| nodes[1].restart());
    restarted.send_replace(true);

    let mut outcomes = Vec::new();
    for task in tasks {
        match tokio::time::timeout(Duration::from_secs(60), task).await {
            Ok(done) => outcomes.extend(done.unwrap()),
            Err(_) => panic!("a publishing task hung; nodes: {:#?}", pool.nodes()),
        }
    }
    let node_stats: Vec<_> = pool.nodes().into_iter().map(|n| n.stats).collect();
    let stats = pool.close().await;
    let mut unknown = std::collections::HashSet::new();
    let mut acked_bodies = Vec::new();
    for (body, outcome) in &outcomes {
        match outcome {
            Ok(()) => acked_bodies.push(body.clone()),
            Err(PublishError::Unknown { .. }) => {
                unknown.insert(body.clone());
            }
            Err(PublishError::NotSent(reason)) => {
                panic!("{body} not sent while two nodes were up: {reason}")
            }
            Err(other) => panic!("{body}: unexpected {other:?}"),
        }
    }
    assert_eq!(outcomes.len() as u64, N);
    assert_eq!(stats.acked, acked_bodies.len() as u64);
    assert_eq!(
        unknown.len() as u64,
        node_stats[1].unknown,
        "every unknown outcome is on the killed node"
    );
    assert!(
        node_stats[1].unknown <= producer_config().max_pipelined as u64,
        "at most a window of requests in flight on the killed node"
    );
    assert!(
        node_stats[1].acked > before_restart,
        "the restarted node gets traffic again ({} acked before the kill at {killed_at})",
        before_restart
    );

    // Read back everything every node holds.
    let mut stored: HashMap<Bytes, u32> = HashMap::new();
    for node in &nodes {
        let bodies =
            blocking(|| read_until_quiet(node, "failover", "readback", Duration::from_secs(3)));
        for body in bodies {
            *stored.entry(body).or_default() += 1;
        }
    }
    for body in &acked_bodies {
        let copies = stored.get(body.as_bytes()).copied().unwrap_or(0);
        assert!(copies >= 1, "{body} was acknowledged and is missing");
        assert_eq!(
            copies, 1,
            "{body} was acknowledged and stored {copies} times"
        );
    }
    for (body, copies) in &stored {
        let body = String::from_utf8_lossy(body);
        assert!(
            *copies == 1 || unknown.contains(body.as_ref()),
            "{body} stored {copies} times"
        );
    }
}

/// Every node down: a publish waits for one until its deadline and fails `NotSent(NoNodeUp)`
/// naming each node's last error; with one node back within the deadline, it succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_node_down_publishes_wait_for_one_to_come_back() {
    let mut nodes: Vec<Nsqd> = (0..2).map(|_| Nsqd::start()).collect();
    let mut config = producer_config();
    config.publish_timeout = Some(Duration::from_secs(2));
    let pool = Pool::connect(addrs(&nodes), PoolConfig::new(config))
        .await
        .unwrap();
    let t = topic("all_down");
    within("a publish", pool.publish(&t, "first"))
        .await
        .unwrap();
    for node in &mut nodes {
        blocking(|| node.stop());
    }
    eventually(true, || pool.nodes().iter().all(|n| !n.up)).await;

    let failed = within("a publish with every node down", pool.publish(&t, "lost")).await;
    match failed {
        Err(PublishError::NotSent(NotSentReason::NoNodeUp(down))) => {
            assert_eq!(down.nodes().len(), 2, "{down}");
            assert!(
                down.nodes().iter().all(|n| n.last_error.is_some()),
                "{down}"
            );
        }
        other => panic!("expected NoNodeUp, got {other:?}"),
    }

    let waiting = {
        let (pool, t) = (pool.clone(), t.clone());
        tokio::spawn(async move {
            pool.publish(&t, "waits")
                .timeout(Duration::from_secs(20))
                .await
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished());
    blocking(|| nodes[1].restart());
    assert_eq!(
        within("the waiting publish", waiting).await.unwrap(),
        Ok(())
    );
    let stats = pool.close().await;
    assert_eq!(stats.acked, 2);
}

/// One of three nsqd frozen (SIGSTOP) for longer than the publish timeout while 8 tasks publish:
/// the pool drops the stalled node's connection once its oldest request is overdue, what it
/// had not written moves to the other nodes, and only requests already written to it end
/// `TimedOut` or `Unknown`. Nothing is `NotSent`, and once the node thaws it gets traffic again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_node_loses_only_what_was_written_to_it() {
    let nodes: Vec<Nsqd> = (0..3).map(|_| Nsqd::start()).collect();
    let mut config = producer_config();
    config.publish_timeout = Some(Duration::from_secs(2));
    config.stall_grace = Duration::from_millis(500);
    config.conn = config.conn.handshake_timeout(Duration::from_secs(2));
    let pool = Pool::connect(addrs(&nodes), PoolConfig::new(config))
        .await
        .unwrap();
    let t = topic("stalled");
    let frozen = nodes[1].tcp_addr().to_string();
    let publishers = Publishers::start(&pool, &t, 8);
    tokio::time::sleep(Duration::from_millis(500)).await;
    nodes[1].pause();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let up_while_frozen = pool.nodes().iter().find(|n| n.addr == frozen).map(|n| n.up);
    nodes[1].resume();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let outcomes = publishers.stop().await;
    let node = pool.nodes().into_iter().find(|n| n.addr == frozen).unwrap();
    let failed: Vec<_> = outcomes.iter().filter(|o| o.is_err()).collect();
    for outcome in &failed {
        assert!(
            matches!(
                outcome,
                Err(PublishError::TimedOut { .. } | PublishError::Unknown { .. })
            ),
            "only what was written to the frozen node fails: {outcome:?}"
        );
    }
    assert!(
        failed.len() as u64 <= node.stats.timed_out + node.stats.unknown,
        "every failure is the frozen node's"
    );
    assert!(outcomes.iter().filter(|o| o.is_ok()).count() > failed.len() * 10);
    assert_eq!(
        up_while_frozen,
        Some(false),
        "the frozen node was taken out of rotation"
    );
    let stats = pool.close().await;
    assert_eq!(stats.not_sent, 0);
    assert!(
        node.stats.reconnects >= 1,
        "the thawed node is connected again"
    );
}

/// Fan-out of 2 over three nsqd: 3,000 publishes from 8 tasks are all `Ok`, each acknowledged
/// by two distinct nodes, and read back from the three nodes every message is there exactly
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_stores_every_message_on_two_nodes() {
    const N: u64 = 3_000;
    let nodes: Vec<Nsqd> = (0..3).map(|_| Nsqd::start()).collect();
    let config = PoolConfig::new(producer_config()).strategy(Strategy::FanOut { copies: 2 });
    let pool = Pool::connect(addrs(&nodes), config).await.unwrap();
    let t = topic("fan_out");
    publish_spread(&pool, &t, 8, N).await;
    let stats = pool.close().await;
    assert_eq!(stats.acked, 2 * N, "two acknowledged copies per message");
    let mut stored: HashMap<Bytes, u32> = HashMap::new();
    for node in &nodes {
        let bodies =
            blocking(|| read_until_quiet(node, "fan_out", "readback", Duration::from_secs(2)));
        for body in bodies {
            *stored.entry(body).or_default() += 1;
        }
    }
    assert_eq!(stored.len() as u64, N);
    assert!(
        stored.values().all(|&copies| copies == 2),
        "every message on two nodes"
    );
}
