//! nsq-producer against a real nsqd v1.3.0 that goes away and comes back, and a graceful close
//! with a full queue (scenarios 34 and 45 in docs/testing.md, and the restart stress test).

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use nsq_producer::{Producer, ProducerState, PublishError};
use nsq_test_support::{Nsqd, read_exactly, topic, within};

use common::{blocking, eventually, producer_config};

/// Records every state the producer's watch shows.
fn record_states(producer: &Producer) -> Arc<Mutex<Vec<ProducerState>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut watch = producer.watch_state();
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let state = watch.borrow_and_update().clone();
            record.lock().unwrap().push(state);
            if watch.changed().await.is_err() {
                break;
            }
        }
    });
    seen
}

/// Scenario 34: publish, then nsqd is killed. The producer notices and starts reconnecting;
/// publishes made while nsqd is down wait in the queue (they are never written to a dead
/// connection) and succeed once nsqd is back, without any action from the caller. Each resolves
/// within the publish timeout. The state watch shows `Reconnecting` and then `Connected`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s34_nsqd_restart() {
    const WHILE_DOWN: usize = 5;
    let mut nsqd = Nsqd::start();
    let mut config = producer_config();
    let publish_timeout = Duration::from_secs(20);
    config.publish_timeout = Some(publish_timeout);
    let producer = Producer::new(nsqd.tcp_addr().to_string(), config).unwrap();
    let states = record_states(&producer);
    let t = topic("s34_restart");

    within("publish", producer.publish(&t, "before"))
        .await
        .unwrap();
    blocking(|| nsqd.stop());
    let mut watch = producer.watch_state();
    within(
        "noticing nsqd is gone",
        watch.wait_for(|s| matches!(s, ProducerState::Reconnecting { .. })),
    )
    .await
    .expect("producer alive");

    let mut down = Vec::new();
    for i in 0..WHILE_DOWN {
        let producer = producer.clone();
        let t = t.clone();
        down.push(tokio::spawn(async move {
            let publish = producer.publish(&t, format!("while down {i}"));
            tokio::time::timeout(publish_timeout + Duration::from_secs(5), publish).await
        }));
    }
    let queued = eventually(WHILE_DOWN as u64, || producer.stats().queued).await;
    assert_eq!(queued, WHILE_DOWN as u64, "the publishes wait in the queue");
    assert_eq!(
        producer.stats().in_flight,
        0,
        "nothing is written while nsqd is down"
    );

    blocking(|| nsqd.restart());
    let mut stored = 0;
    for task in down {
        let result = task
            .await
            .expect("task")
            .expect("a publish resolves within its timeout");
        match result {
            Ok(()) => stored += 1,
            Err(PublishError::NotSent(reason)) => eprintln!("not sent while down: {reason}"),
            Err(err) => panic!("a publish queued while nsqd was down ended with {err:?}"),
        }
    }
    within("publish after the restart", producer.publish(&t, "after"))
        .await
        .expect("publishing resumes without user action");
    stored += 1;

    assert_eq!(producer.state(), ProducerState::Connected);
    let stats = producer.stats();
    assert_eq!(stats.reconnects, 1);
    assert_eq!(stats.unknown, 0);
    // SIGKILL lost "before" with nsqd's memory; everything acknowledged since is there.
    assert_eq!(nsqd.topic_depth("s34_restart"), Some(stored));
    within("close", producer.close()).await;

    let seen = states.lock().unwrap().clone();
    let reconnecting = seen
        .iter()
        .position(|s| matches!(s, ProducerState::Reconnecting { .. }))
        .unwrap_or_else(|| panic!("no Reconnecting state in {seen:?}"));
    assert!(
        seen[reconnecting..].contains(&ProducerState::Connected),
        "Connected after Reconnecting: {seen:?}"
    );
}

/// Scenario 45, "Close drains": 2000 `publish_async` on a fresh producer (most are still
/// queued when close is called), then `close()`: every one is acknowledged and nsqd holds all
/// 2000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s45_close_drains() {
    const COUNT: usize = 2000;
    let nsqd = Nsqd::start();
    nsqd.create_channel("s45_close", "ch");
    let producer = Producer::new(nsqd.tcp_addr().to_string(), producer_config()).unwrap();
    let t = topic("s45_close");
    let bodies: Vec<Bytes> = (0..COUNT)
        .map(|i| Bytes::from(format!("s45 {i}")))
        .collect();
    let mut pending = Vec::with_capacity(COUNT);
    for body in &bodies {
        pending.push(
            within("publish_async", producer.publish_async(&t, body.clone()))
                .await
                .expect("queued"),
        );
    }
    let stats = within("close", producer.close()).await;
    assert_eq!(producer.state(), ProducerState::Closed);
    for (i, publish) in pending.into_iter().enumerate() {
        assert_eq!(within("result", publish).await, Ok(()), "publish {i}");
    }
    assert_eq!(stats.acked, COUNT as u64);
    assert_eq!(stats.queued, 0);
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.not_sent, 0);
    assert_eq!(stats.unknown, 0);
    assert_eq!(stats.rejected_total(), 0);
    assert_eq!(nsqd.topic_message_count("s45_close"), Some(COUNT as u64));
    let read: HashSet<Bytes> = blocking(|| read_exactly(&nsqd, "s45_close", "ch", COUNT))
        .into_iter()
        .collect();
    assert_eq!(read, bodies.into_iter().collect());
}

/// What one publish ended as, for the restart stress test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Acknowledged: must be stored.
    Acked,
    /// Written, outcome unknown: may be stored.
    Unknown,
    /// Certainly not stored.
    NotStored,
}

/// nsqd is restarted three times on the same port while eight tasks publish without pause, each
/// with eight publishes in flight. Every publish resolves (each is awaited with a timeout); publishing resumes after each
/// restart without user action; and what nsqd holds at the end lies between what was
/// acknowledged and what was acknowledged or unknown, message by message.
///
/// nsqd is stopped with `shutdown()` (SIGTERM), not `stop()` (SIGKILL): on SIGTERM it closes
/// the client connections first and then writes its in-memory queues to disk, so every message
/// it acknowledged survives the restart and the comparison can be exact. A SIGKILL would lose
/// the in-memory messages; `--mem-queue-size=0` would not save them either, since nsqd's disk
/// queue only persists its read/write positions every `--sync-every` messages or
/// `--sync-timeout`, and on start-up skips whatever lies past the last persisted position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_during_publishing() {
    const TASKS: usize = 8;
    /// Publishes each task keeps in flight.
    const WINDOW: usize = 8;
    const RESTARTS: usize = 3;
    /// Acknowledgements to wait for between restarts, and after the last one.
    const PROGRESS: u64 = 1000;
    let mut nsqd = Nsqd::start();
    let mut config = producer_config();
    // nsqd is down for well under a second each time; a publish that needs 20 s is a stall.
    let publish_timeout = Duration::from_secs(20);
    config.publish_timeout = Some(publish_timeout);
    let producer = Producer::new(nsqd.tcp_addr().to_string(), config).unwrap();
    let t = topic("restart_stress");
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (producer, t, stop, acked) = (producer.clone(), t.clone(), stop.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let guard = publish_timeout + Duration::from_secs(10);
            let mut fates = Vec::new();
            let mut window = FuturesOrdered::new();
            let mut record = |body: String, result: Result<(), PublishError>| {
                let fate = match result {
                    Ok(()) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                        Fate::Acked
                    }
                    // E_MPUB_FAILED on a batch: nsqd may have stored part of it.
                    Err(PublishError::Unknown { .. } | PublishError::MaybeStored { .. }) => {
                        Fate::Unknown
                    }
                    Err(PublishError::NotSent(_)) => Fate::NotStored,
                    // E_PUB_FAILED: nsqd was exiting and did not store it.
                    Err(err @ PublishError::Rejected { .. }) if err.is_retry_safe() => {
                        Fate::NotStored
                    }
                    Err(err) => panic!("publish {body}: unexpected {err:?}"),
                };
                fates.push((body, fate));
            };
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let body = format!("{task}-{seq}");
                seq += 1;
                let queued = tokio::time::timeout(guard, producer.publish_async(&t, body.clone()))
                    .await
                    .unwrap_or_else(|_| panic!("publish_async {body} did not return"));
                match queued {
                    Ok(publish) => window.push_back(async move {
                        let result = tokio::time::timeout(guard, publish)
                            .await
                            .unwrap_or_else(|_| panic!("publish {body} did not resolve"));
                        (body, result)
                    }),
                    Err(err) => record(body, Err(err)),
                }
                if window.len() >= WINDOW {
                    let (body, result) = window.next().await.expect("window not empty");
                    record(body, result);
                }
            }
            while let Some((body, result)) = window.next().await {
                record(body, result);
            }
            fates
        }));
    }

    let wait_for_progress = |what: &'static str| {
        let acked = acked.clone();
        let from = acked.load(Ordering::Relaxed);
        within(what, async move {
            while acked.load(Ordering::Relaxed) < from + PROGRESS {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    for _ in 0..RESTARTS {
        wait_for_progress("publishing before a restart").await;
        blocking(|| {
            nsqd.shutdown();
            std::thread::sleep(Duration::from_millis(200));
            nsqd.restart();
        });
    }
    wait_for_progress("publishing after the last restart").await;
    stop.store(true, Ordering::Relaxed);

    let mut fates = Vec::new();
    for task in tasks {
        fates.extend(within("publisher", task).await.expect("publisher task"));
    }
    let of = |fate| -> HashSet<Bytes> {
        fates
            .iter()
            .filter(|(_, f)| *f == fate)
            .map(|(body, _)| Bytes::from(body.clone()))
            .collect()
    };
    let (acked, unknown, not_stored) = (of(Fate::Acked), of(Fate::Unknown), of(Fate::NotStored));
    eprintln!(
        "restart_during_publishing: {} publishes: {} acknowledged, {} unknown, {} not stored",
        fates.len(),
        acked.len(),
        unknown.len(),
        not_stored.len()
    );

    let stats = producer.stats();
    assert!(
        stats.reconnects >= RESTARTS as u64,
        "one reconnect per restart at least: {stats:?}"
    );
    assert_eq!(stats.acked, acked.len() as u64, "{stats:?}");
    assert_eq!(stats.unknown, unknown.len() as u64, "{stats:?}");
    assert_eq!(stats.timed_out, 0, "{stats:?}");
    within("close", producer.close()).await;

    let stored = nsqd.topic_depth("restart_stress").expect("topic exists");
    eprintln!("restart_during_publishing: nsqd holds {stored}");
    assert!(
        acked.len() as u64 <= stored && stored <= (acked.len() + unknown.len()) as u64,
        "acknowledged {} <= stored {stored} <= acknowledged + unknown {}",
        acked.len(),
        acked.len() + unknown.len()
    );

    // Message by message: read everything back through a channel created now.
    nsqd.create_channel("restart_stress", "ch");
    let read = blocking(|| read_exactly(&nsqd, "restart_stress", "ch", stored as usize));
    let read_set: HashSet<Bytes> = read.iter().cloned().collect();
    assert_eq!(read_set.len(), read.len(), "nothing is stored twice");
    let missing: Vec<_> = acked.difference(&read_set).take(10).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );
    let unexpected: Vec<_> = read_set
        .iter()
        .filter(|body| !acked.contains(*body) && !unknown.contains(*body))
        .take(10)
        .collect();
    assert!(
        unexpected.is_empty(),
        "stored but neither acknowledged nor unknown: {unexpected:?}"
    );
}
