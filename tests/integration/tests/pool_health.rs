//! Slow nodes against real nsqd v1.3.0: a node frozen (SIGSTOP) while callers keep many
//! publishes under way stops getting publishes once its oldest request has waited past the
//! pool's limit, and only what was written to it fails; a node that answers 100 times more
//! slowly than the others (through a delaying proxy) gets only a trickle of the traffic.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use nsq_producer::{Pool, PoolConfig, PublishError};
use nsq_test_support::{DelayProxy, Nsqd, topic, within};

use common::{Publishers, eventually, producer_config};

/// One publish: when it started and ended, relative to the test's start, and its outcome.
struct Outcome {
    started: Duration,
    took: Duration,
    result: Result<(), PublishError>,
}

/// One of three nsqd frozen (SIGSTOP) for 3 s while 16 tasks each keep up to 64 publishes
/// under way, with a publish timeout of 2 s and at most 256 requests written and unanswered per
/// node. Once the frozen node is judged slow (it has answered nothing for 20 ms, by default, and
/// far longer than its silences usually last), it gets no new publishes and hands back what it
/// has not written: only the requests written to it stay stuck until their deadline, and the
/// other two nodes keep acknowledging throughout the freeze. Only requests written to the frozen
/// node fail, as `TimedOut` or `Unknown`; no publish waits much past its deadline; the node is
/// out of rotation while frozen and gets traffic again once thawed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_gets_no_new_publishes_and_only_what_it_was_written_fails() {
    const TASKS: usize = 16;
    const WINDOW: usize = 64;
    const SLICE: Duration = Duration::from_millis(250);
    let nodes: Vec<Nsqd> = (0..3).map(|_| Nsqd::start()).collect();
    let mut config = producer_config();
    config.publish_timeout = Some(Duration::from_secs(2));
    config.stall_grace = Duration::from_millis(500);
    config.max_pipelined = 256;
    config.conn = config.conn.handshake_timeout(Duration::from_secs(2));
    let addrs: Vec<String> = nodes.iter().map(|n| n.tcp_addr().to_string()).collect();
    let pool = Pool::connect(addrs, PoolConfig::new(config)).await.unwrap();
    let frozen = nodes[1].tcp_addr().to_string();
    let t = topic("frozen");
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    // Acknowledgements per slice of 250 ms since the start.
    let acks: Arc<Vec<AtomicU64>> = Arc::new((0..80).map(|_| AtomicU64::new(0)).collect());
    let tasks: Vec<_> = (0..TASKS)
        .map(|k| {
            let (pool, t, stop, acks) = (pool.clone(), t.clone(), stop.clone(), acks.clone());
            tokio::spawn(async move {
                futures::stream::iter(0..)
                    .take_while(|_| std::future::ready(!stop.load(Ordering::Relaxed)))
                    .map(|i| {
                        let (pool, t, acks) = (&pool, &t, &acks);
                        async move {
                            let started = start.elapsed();
                            let result = pool.publish(t, format!("t{k}m{i}")).await;
                            if result.is_ok() {
                                let slice =
                                    (start.elapsed().as_millis() / SLICE.as_millis()) as usize;
                                if let Some(n) = acks.get(slice) {
                                    n.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            Outcome {
                                started,
                                took: start.elapsed() - started,
                                result,
                            }
                        }
                    })
                    .buffer_unordered(WINDOW)
                    .collect::<Vec<_>>()
                    .await
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(500)).await;
    let acked_before = pool.stats().acked;
    assert!(
        acked_before > 0,
        "publishes are acknowledged before the freeze"
    );
    nodes[1].pause();
    let frozen_at = start.elapsed();
    let mut seen_out = false;
    while start.elapsed() < frozen_at + Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let node = pool.nodes().into_iter().find(|n| n.addr == frozen).unwrap();
        if start.elapsed() > frozen_at + Duration::from_millis(500) {
            seen_out |= !node.up;
        }
    }
    let thawed_at = start.elapsed();
    nodes[1].resume();
    let acked_at_thaw = pool.nodes().into_iter().find(|n| n.addr == frozen).unwrap();
    // The thawed node gets publishes again.
    eventually(true, || {
        let node = pool.nodes().into_iter().find(|n| n.addr == frozen).unwrap();
        node.stats.acked > acked_at_thaw.stats.acked
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(within("a publishing task", task).await.unwrap());
    }
    let node = pool.nodes().into_iter().find(|n| n.addr == frozen).unwrap();
    let stats = pool.close().await;

    assert!(seen_out, "the frozen node was taken out of rotation");
    // The other nodes keep acknowledging: no slice of the freeze from 0.5 s on is without.
    let first = ((frozen_at + Duration::from_millis(500)).as_millis() / SLICE.as_millis()) as usize;
    let last = (thawed_at.as_millis() / SLICE.as_millis()) as usize;
    let per_slice: Vec<u64> = acks.iter().map(|n| n.load(Ordering::Relaxed)).collect();
    for slice in first..last {
        assert!(
            per_slice[slice] > 0,
            "nothing acknowledged {:?} after the freeze; per 250 ms: {:?}",
            SLICE * slice as u32 - frozen_at,
            &per_slice[..=last]
        );
    }
    let window = frozen_at + Duration::from_millis(500)..thawed_at;
    let mut in_window = 0;
    let mut failed = 0u64;
    for outcome in &outcomes {
        assert!(
            outcome.took < Duration::from_secs(2) + Duration::from_millis(1500),
            "a publish begun at {:?} took {:?}, well past its 2 s deadline",
            outcome.started,
            outcome.took
        );
        if let Err(err) = &outcome.result {
            failed += 1;
            assert!(
                matches!(
                    err,
                    PublishError::TimedOut { .. } | PublishError::Unknown { .. }
                ),
                "only what was written to the frozen node fails: {err:?}"
            );
        }
        if window.contains(&outcome.started) {
            in_window += 1;
            assert!(
                outcome.result.is_ok(),
                "a publish begun {:?} after the freeze, while the node was frozen, failed: {:?}",
                outcome.started - frozen_at,
                outcome.result
            );
        }
    }
    assert!(
        in_window > 0,
        "publishes were made while the node was frozen"
    );
    assert!(
        failed <= node.stats.timed_out + node.stats.unknown,
        "every failure is the frozen node's ({failed} failed; node: {:?})",
        node.stats
    );
    assert_eq!(stats.not_sent, 0);
}

/// Three nsqd, the third behind a proxy that delays its replies by 100 ms (100 times the
/// others' latency on loopback, or more); 16 tasks publish one message at a time for 3 s. The slow node
/// is judged slow, and gets a small share of the publishes instead of its third; every
/// publish is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_a_hundred_times_slower_gets_only_a_trickle() {
    let nodes: Vec<Nsqd> = (0..3).map(|_| Nsqd::start()).collect();
    let proxy = DelayProxy::start(nodes[2].tcp_addr(), Duration::from_millis(100));
    let slow = proxy.addr().to_string();
    let addrs = vec![
        nodes[0].tcp_addr().to_string(),
        nodes[1].tcp_addr().to_string(),
        slow.clone(),
    ];
    let mut config = producer_config();
    config.publish_timeout = Some(Duration::from_secs(2));
    let pool = Pool::connect(addrs, PoolConfig::new(config)).await.unwrap();
    let t = topic("slow_node");
    let publishers = Publishers::start(&pool, &t, 16);
    let mut seen_slow = false;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        seen_slow |= pool.nodes().iter().any(|n| n.addr == slow && n.slow);
    }
    let outcomes = publishers.stop().await;
    let nodes_after = pool.nodes();
    let stats = pool.close().await;
    for outcome in &outcomes {
        assert_eq!(outcome, &Ok(()), "every publish is acknowledged");
    }
    let slow_acked = nodes_after
        .iter()
        .find(|n| n.addr == slow)
        .map(|n| n.stats.acked)
        .unwrap();
    assert!(seen_slow, "the slow node was judged slow");
    assert!(
        slow_acked * 10 < stats.acked,
        "the slow node took {slow_acked} of {} publishes, not a trickle",
        stats.acked
    );
    drop(proxy);
}

/// One of three nsqd frozen (SIGSTOP) for 0.5 s, less than the publish timeout, while 8 tasks
/// publish one message at a time: the node is reported slow while frozen, and once thawed it
/// answers what was written to it and gets publishes again on the same connection. Every
/// publish is acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_briefly_frozen_node_comes_back_when_it_answers() {
    let nodes: Vec<Nsqd> = (0..3).map(|_| Nsqd::start()).collect();
    let mut config = producer_config();
    config.publish_timeout = Some(Duration::from_secs(5));
    let addrs: Vec<String> = nodes.iter().map(|n| n.tcp_addr().to_string()).collect();
    let pool = Pool::connect(addrs, PoolConfig::new(config)).await.unwrap();
    let frozen = nodes[1].tcp_addr().to_string();
    let t = topic("brief_freeze");
    let publishers = Publishers::start(&pool, &t, 8);
    let node = |pool: &Pool| pool.nodes().into_iter().find(|n| n.addr == frozen).unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    nodes[1].pause();
    let frozen_at = Instant::now();
    let mut seen_slow = false;
    while frozen_at.elapsed() < Duration::from_millis(500) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        seen_slow |= node(&pool).slow;
    }
    nodes[1].resume();
    let at_thaw = node(&pool).stats.acked;
    eventually(true, || {
        let node = node(&pool);
        node.up && node.stats.acked > at_thaw + 100
    })
    .await;
    let outcomes = publishers.stop().await;
    let after = node(&pool);
    pool.close().await;
    assert!(seen_slow, "the frozen node was reported slow");
    assert!(
        outcomes.iter().all(Result::is_ok),
        "every publish is acknowledged"
    );
    assert_eq!(
        after.stats.reconnects, 0,
        "the node came back on the same connection"
    );
}
