//! Concurrency and backpressure against a scripted nsqd: a caller slow to look at its results
//! holds up nobody, a full queue makes publishers wait (or fail at once with `fail_fast`), one
//! caller's publishes arrive in call order, and a burst against a peer that stops reading stays
//! within the configured bounds.
//!
//! Tests that depend on time run on tokio's paused clock (see `common/mod.rs`).

mod common;

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use nsq_producer::{NotSentReason, Producer, PublishError};
use nsq_proto::server::ClientCommand;
use nsq_test_support::{topic, within};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use common::*;

/// One caller holds 100 unpolled results; everyone else's publishes still complete, and the held
/// results are there when the caller finally looks.
#[tokio::test]
async fn s44_slow_completion_consumer_holds_up_nobody() {
    const HELD: usize = 100;
    let server = FakeServer::bind().await;
    let producer = Producer::new(server.addr(), unbatched()).unwrap();
    let topic = topic(TOPIC);

    // Written first, so their replies arrive first and nobody polls them.
    let mut held = Vec::new();
    for i in 0..HELD {
        held.push(
            producer
                .publish_async(&topic, format!("held-{i}"))
                .await
                .unwrap(),
        );
    }
    let mut nsqd = server.accept().await;
    let fake = tokio::spawn(async move { answer_ok_until_eof(&mut nsqd).await });

    let others = {
        let producer = producer.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            for i in 0..100 {
                producer.publish(&topic, format!("other-{i}")).await?;
            }
            Ok::<_, PublishError>(())
        })
    };
    assert_eq!(within("the other publisher", others).await.unwrap(), Ok(()));
    assert_eq!(producer.stats().acked, 200);

    for publish in held {
        assert_eq!(within("a held result", publish).await, Ok(()));
    }
    within("close", producer.close()).await;
    let bodies = within("the fake", fake).await.unwrap();
    assert_eq!(bodies.len(), 200);
    assert_eq!(bodies[0], "held-0");
    assert_eq!(bodies[HELD], "other-0");
}

/// Sets up a producer with a window of 2 and a queue of 8, and fills the window: returns the
/// producer, the two written publishes, a sender that lets the fake answer, and the fake task
/// (which answers in order until it has answered `answers` PUBs, and returns the bodies).
async fn full_window(
    server: &FakeServer,
    fail_fast: bool,
    answers: usize,
) -> (
    Producer,
    Vec<nsq_producer::Publish>,
    oneshot::Sender<()>,
    JoinHandle<Vec<Bytes>>,
) {
    let mut config = unbatched();
    config.max_pipelined = 2;
    config.queue_capacity = 8;
    config.fail_fast = fail_fast;
    let producer = Producer::new(server.addr(), config).unwrap();
    let topic = topic(TOPIC);
    let mut written = Vec::new();
    for body in ["1", "2"] {
        written.push(
            within("publish_async", producer.publish_async(&topic, body))
                .await
                .unwrap(),
        );
    }
    let mut nsqd = server.accept().await;
    let mut bodies = vec![expect_pub(&mut nsqd).await, expect_pub(&mut nsqd).await];
    let (go, wait) = oneshot::channel::<()>();
    let fake = tokio::spawn(async move {
        wait.await.unwrap();
        nsqd.send_ok().await;
        nsqd.send_ok().await;
        while bodies.len() < answers {
            bodies.push(expect_pub(&mut nsqd).await);
            nsqd.send_ok().await;
        }
        bodies
    });
    let stats = producer.stats();
    assert_eq!((stats.in_flight, stats.queued), (2, 0));
    (producer, written, go, fake)
}

/// With the window full and the queue full, a publish waits for room, then proceeds.
#[tokio::test(start_paused = true)]
async fn s47_bounded_queue_makes_publishers_wait() {
    let server = FakeServer::bind().await;
    let (producer, mut pending, go, fake) = full_window(&server, false, 11).await;
    let topic = topic(TOPIC);
    for i in 3..=10 {
        pending.push(
            within(
                "publish_async with room",
                producer.publish_async(&topic, i.to_string()),
            )
            .await
            .unwrap(),
        );
    }
    let stats = producer.stats();
    assert_eq!((stats.in_flight, stats.queued), (2, 8));

    let mut eleventh = pin!(producer.publish_async(&topic, "11"));
    // The clock only reaches the end of this wait once everything else is blocked.
    assert!(
        tokio::time::timeout(Duration::from_secs(1), eleventh.as_mut())
            .await
            .is_err(),
        "publish_async returned while the queue was full"
    );
    let stats = producer.stats();
    assert_eq!((stats.in_flight, stats.queued), (2, 8));

    go.send(()).unwrap();
    pending.push(within("publish_async after room", eleventh).await.unwrap());
    for publish in pending {
        assert_eq!(within("a result", publish).await, Ok(()));
    }
    let bodies = within("the fake", fake).await.unwrap();
    let expected: Vec<String> = (1..=11).map(|i| i.to_string()).collect();
    assert_eq!(bodies, expected);
}

/// With `fail_fast`, a publish to a full queue fails at once with `QueueFull`.
#[tokio::test(start_paused = true)]
async fn s47_bounded_queue_fail_fast_returns_queue_full() {
    let server = FakeServer::bind().await;
    let (producer, mut pending, go, fake) = full_window(&server, true, 11).await;
    let topic = topic(TOPIC);
    for i in 3..=10 {
        pending.push(
            within(
                "publish_async with room",
                producer.publish_async(&topic, i.to_string()),
            )
            .await
            .unwrap(),
        );
    }
    let full = within(
        "publish_async when full",
        producer.publish_async(&topic, "x"),
    )
    .await;
    assert_eq!(
        full.map(drop),
        Err(PublishError::NotSent(NotSentReason::QueueFull))
    );
    let stats = producer.stats();
    assert_eq!((stats.in_flight, stats.queued, stats.not_sent), (2, 8, 1));

    go.send(()).unwrap();
    for publish in pending {
        assert_eq!(within("a result", publish).await, Ok(()));
    }
    // Room again.
    assert_eq!(
        within("publish 11", producer.publish(&topic, "11")).await,
        Ok(())
    );
    let bodies = within("the fake", fake).await.unwrap();
    let expected: Vec<String> = (1..=11).map(|i| i.to_string()).collect();
    assert_eq!(bodies, expected);
}

/// One caller's publishes (PUB, MPUB and DPUB, pipelined through a small window) arrive in call
/// order and are acknowledged in that order.
#[tokio::test]
async fn s50_one_callers_publishes_arrive_in_call_order() {
    const COUNT: usize = 60;
    let server = FakeServer::bind().await;
    let mut config = unbatched();
    config.max_pipelined = 4;
    let producer = Producer::new(server.addr(), config).unwrap();
    let topic = topic(TOPIC);

    let expected: Vec<ClientCommand> = (0..COUNT)
        .map(|i| match i % 3 {
            0 => ClientCommand::Pub {
                topic: TOPIC.into(),
                body: format!("pub-{i}").into(),
            },
            1 => ClientCommand::Mpub {
                topic: TOPIC.into(),
                bodies: vec![format!("mpub-{i}-a").into(), format!("mpub-{i}-b").into()],
            },
            _ => ClientCommand::Dpub {
                topic: TOPIC.into(),
                defer_ms: 1000,
                body: format!("dpub-{i}").into(),
            },
        })
        .collect();
    // Completion order, recorded by each result as it lands.
    let (done, mut done_rx) = mpsc::unbounded_channel();
    let mut waiters = Vec::new();
    for i in 0..COUNT {
        let publish = match i % 3 {
            0 => producer.publish_async(&topic, format!("pub-{i}")).await,
            1 => {
                producer
                    .multi_publish_async(&topic, [format!("mpub-{i}-a"), format!("mpub-{i}-b")])
                    .await
            }
            _ => {
                producer
                    .deferred_publish_async(&topic, Duration::from_secs(1), format!("dpub-{i}"))
                    .await
            }
        }
        .unwrap();
        let done = done.clone();
        waiters.push(tokio::spawn(async move {
            let result = publish.await;
            done.send(i).unwrap();
            result
        }));
    }
    let mut nsqd = server.accept().await;
    let fake = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(command) = within("a command or EOF", nsqd.next_command()).await {
            seen.push(command);
            nsqd.send_ok().await;
        }
        seen
    });
    for waiter in waiters {
        assert_eq!(within("a result", waiter).await.unwrap(), Ok(()));
    }
    drop(done);
    let mut completed = Vec::new();
    while let Some(i) = done_rx.recv().await {
        completed.push(i);
    }
    assert_eq!(completed, (0..COUNT).collect::<Vec<_>>());
    within("close", producer.close()).await;
    assert_eq!(within("the fake", fake).await.unwrap(), expected);
}

/// A burst of a million publishes from 16 tasks against a peer that completes the handshake and
/// then stops reading: publishers wait instead of the queue growing. The in-flight window is
/// small enough for the socket buffers to take it, so the bound that holds is the producer's.
#[tokio::test(start_paused = true)]
async fn bounded_memory_burst_against_stalled_peer() {
    const TASKS: usize = 16;
    const PER_TASK: usize = 1_000_000 / TASKS;
    const QUEUE: usize = 1024;
    const WINDOW: usize = 256;

    let server = FakeServer::bind().await;
    let mut config = unbatched();
    config.queue_capacity = QUEUE;
    config.max_pipelined = WINDOW;
    config.publish_timeout = None;
    config.close_timeout = Duration::from_secs(1);
    let (producer, nsqd) = connect(&server, config).await;
    // `nsqd` is never read from again.

    let returned = Arc::new(AtomicUsize::new(0));
    let publishers: Vec<_> = (0..TASKS)
        .map(|_| {
            let producer = producer.clone();
            let returned = returned.clone();
            tokio::spawn(async move {
                let topic = topic(TOPIC);
                for _ in 0..PER_TASK {
                    match producer.publish_async(&topic, "x").await {
                        Ok(publish) => {
                            returned.fetch_add(1, Ordering::Relaxed);
                            // Kept alive, not awaited here: a dropped one would be skipped.
                            tokio::spawn(publish);
                        }
                        Err(PublishError::Closed(_)) => return,
                        Err(err) => panic!("unexpected error: {err}"),
                    }
                }
                panic!("a million publishes were queued against a stalled peer");
            })
        })
        .collect();

    // Returns only once every task is blocked.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let stats = producer.stats();
    let returned_now = returned.load(Ordering::Relaxed);
    assert!(stats.queued <= QUEUE as u64, "queued {}", stats.queued);
    assert!(
        stats.in_flight <= WINDOW as u64,
        "in flight {}",
        stats.in_flight
    );
    // Each returned call holds a place in the queue (requests the router took and has not
    // written keep theirs) or the window.
    assert!(
        returned_now <= QUEUE + WINDOW,
        "{returned_now} publish_async calls returned"
    );
    assert!(
        returned_now >= QUEUE,
        "the queue never filled ({returned_now})"
    );

    let stats = within("close", producer.close()).await;
    for publisher in publishers {
        within("a publisher", publisher).await.unwrap();
    }
    let returned = returned.load(Ordering::Relaxed) as u64;
    assert_eq!(stats.acked, 0);
    assert_eq!(stats.unknown + stats.not_sent, returned);
    drop(nsqd);
}
