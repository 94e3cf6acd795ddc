//! How soon a node that was down is used again, against real nsqd v1.3.0: a pool's node
//! restarted after 7 s down, a lone producer whose publishes wait for an nsqd that starts 7 s
//! late, and a lone producer that is handed a publish during a long backoff wait. Each runs with
//! the default backoff (100 ms doubling up to 10 s), which by then waits 3 to 6 s between
//! dials when nothing waits for the connection; with something waiting, the wait is capped at
//! 0.5 s, so the connection comes within a second of nsqd being ready, at a few dials per second
//! while it is down.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nsq_producer::{Pool, PoolConfig, Producer, ProducerConfig};
use nsq_test_support::{Nsqd, topic, within};

use common::blocking;

/// How long nsqd is down.
const DOWN: Duration = Duration::from_secs(7);

/// How soon after nsqd is ready (answering `/ping`) the producer must be using it: the capped
/// wait (0.5 s) plus room for a loaded machine. Without the cap, the next dial after 7 s of
/// failures comes 2.5 s or more after nsqd is back.
const BACK_WITHIN: Duration = Duration::from_millis(1500);

/// At most this many dials per second while nsqd is down: the cap keeps them to 2 to 4.
const MAX_DIALS_PER_SECOND: f64 = 5.0;

/// The default backoff, whatever the test helpers use elsewhere.
fn config() -> ProducerConfig {
    let mut config = ProducerConfig::default();
    config.reconnect_backoff_min = Duration::from_millis(100);
    config.reconnect_backoff_max = Duration::from_secs(10);
    config.publish_timeout = Some(Duration::from_secs(30));
    config
}

fn dials_per_second(failures: u64, over: Duration) -> f64 {
    failures as f64 / over.as_secs_f64()
}

/// Two nsqd, 8 tasks publishing one message at a time; the second nsqd is killed (SIGKILL) and
/// restarted 7 s later. The pool dialled it at most a few times a second meanwhile, and it
/// acknowledges publishes again within 1.5 s of being ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_pool_node_gets_publishes_within_a_second() {
    let mut nodes: Vec<Nsqd> = (0..2).map(|_| Nsqd::start()).collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.tcp_addr().to_string()).collect();
    let restarted = addrs[1].clone();
    let pool = Pool::connect(addrs, PoolConfig::new(config()))
        .await
        .unwrap();
    let t = topic("restarted_node");
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..8)
        .map(|k| {
            let (pool, t, stop) = (pool.clone(), t.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    // What was in flight on the killed node ends `Unknown`.
                    let _ = pool.publish(&t, format!("t{k}m{i}")).await;
                    i += 1;
                }
            })
        })
        .collect();
    let node = |pool: &Pool| {
        pool.nodes()
            .into_iter()
            .find(|n| n.addr == restarted)
            .unwrap()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    blocking(|| nodes[1].stop());
    let killed = Instant::now();
    let failures_before = node(&pool).stats.connect_failures;
    tokio::time::sleep(DOWN).await;
    let failures = node(&pool).stats.connect_failures - failures_before;
    let down = killed.elapsed();
    blocking(|| nodes[1].restart());
    let acked = node(&pool).stats.acked;
    let back = tokio::time::timeout(BACK_WITHIN, async {
        while node(&pool).stats.acked == acked {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        within("a publishing task", task).await.unwrap();
    }
    let state = node(&pool).state;
    pool.close().await;
    assert!(
        back.is_ok(),
        "the restarted node acknowledged nothing within {BACK_WITHIN:?} of being ready: {state:?}"
    );
    assert!(
        failures >= 1,
        "the pool kept dialling the node while it was down"
    );
    assert!(
        dials_per_second(failures, down) <= MAX_DIALS_PER_SECOND,
        "{failures} dials in {down:?}"
    );
}

/// A lone producer with four publishes waiting for an nsqd that starts 7 s after them: every
/// publish is acknowledged within 1.5 s of nsqd being ready, after a few dials a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_waiting_for_a_late_nsqd_go_out_within_a_second_of_its_start() {
    let mut nsqd = Nsqd::start();
    let addr = nsqd.tcp_addr().to_string();
    blocking(|| nsqd.stop());
    let producer = Producer::new(addr, config()).unwrap();
    let t = topic("late_nsqd");
    let waiting: Vec<_> = (0..4)
        .map(|i| {
            let (producer, t) = (producer.clone(), t.clone());
            tokio::spawn(async move { producer.publish(&t, format!("m{i}")).await })
        })
        .collect();
    let started = Instant::now();
    tokio::time::sleep(DOWN).await;
    let failures = producer.stats().connect_failures;
    let down = started.elapsed();
    blocking(|| nsqd.restart());
    let outcomes = tokio::time::timeout(BACK_WITHIN, futures::future::join_all(waiting)).await;
    let state = producer.state();
    producer.close_now().await;
    let outcomes = outcomes.unwrap_or_else(|_| {
        panic!("publishes still waiting {BACK_WITHIN:?} after nsqd was ready: {state:?}")
    });
    for outcome in outcomes {
        assert_eq!(outcome.unwrap(), Ok(()));
    }
    assert!(
        dials_per_second(failures, down) <= MAX_DIALS_PER_SECOND,
        "{failures} dials in {down:?}"
    );
}

/// A lone producer whose nsqd was killed, with nothing to publish for 7 s (its backoff grows to
/// seconds); nsqd restarts, then a publish comes: it cuts the long wait short and is
/// acknowledged within 1.5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_cuts_a_long_backoff_wait_short() {
    let mut nsqd = Nsqd::start();
    let producer = Producer::connect(nsqd.tcp_addr().to_string(), config())
        .await
        .unwrap();
    let t = topic("cut_short");
    producer.publish(&t, "first").await.unwrap();
    blocking(|| nsqd.stop());
    tokio::time::sleep(DOWN).await;
    blocking(|| nsqd.restart());
    let outcome = tokio::time::timeout(BACK_WITHIN, producer.publish(&t, "second")).await;
    let state = producer.state();
    producer.close_now().await;
    match outcome {
        Ok(result) => assert_eq!(result, Ok(())),
        Err(_) => {
            panic!("the publish waited more than {BACK_WITHIN:?} after nsqd was ready: {state:?}")
        }
    }
}
