//! The caller's handles against a scripted nsqd: `flush` waits for exactly what was queued
//! before it, and `close_now` gives up on everything at once.
//!
//! Tests that depend on time run on tokio's paused clock (see `common/mod.rs`); a bound such as
//! "returns within 50 ms" there is the producer's own timers, a correctness check.

mod common;

use nsq_test_support::{closed_addr, topic, within};
use std::time::Duration;

use nsq_producer::{FlushTimedOut, NotSentReason, Producer, PublishError};
use tokio::time::Instant;

use common::*;

/// `flush` resolves once the publishes queued before it have their outcomes, detached ones
/// included, and does not wait for a publish queued after it.
#[tokio::test]
async fn flush_waits_for_what_was_queued_before_it() {
    let server = FakeServer::bind().await;
    let (producer, mut nsqd) = connect(&server, unbatched()).await;
    for body in ["a", "b", "c"] {
        // Detached: the handles are dropped, the messages still go.
        drop(producer.publish_async(&topic(TOPIC), body).await.unwrap());
    }
    let flush = {
        let producer = producer.clone();
        tokio::spawn(async move { producer.flush().await })
    };
    for body in ["a", "b", "c"] {
        assert_eq!(expect_pub(&mut nsqd).await, body);
    }
    nsqd.send_ok().await;
    nsqd.send_ok().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!flush.is_finished(), "flush returned with c unanswered");
    let later = producer.publish_async(&topic(TOPIC), "d").await.unwrap();
    assert_eq!(expect_pub(&mut nsqd).await, "d");
    nsqd.send_ok().await;
    within("the flush", flush).await.unwrap();
    assert_eq!(producer.stats().acked, 3, "d is not answered yet");
    nsqd.send_ok().await;
    assert_eq!(within("d", later).await, Ok(()));
}

/// `flush_timeout` gives up when nsqd does not answer, and `flush` on a closed producer returns
/// at once.
#[tokio::test(start_paused = true)]
async fn flush_timeout_gives_up_and_flush_after_close_returns() {
    let server = FakeServer::bind().await;
    let (producer, mut nsqd) = connect(&server, unbatched()).await;
    drop(producer.publish_async(&topic(TOPIC), "a").await.unwrap());
    assert_eq!(expect_pub(&mut nsqd).await, "a");
    assert_eq!(
        within(
            "flush_timeout",
            producer.flush_timeout(Duration::from_secs(1))
        )
        .await,
        Err(FlushTimedOut)
    );
    let stats = within("close_now", producer.close_now()).await;
    assert_eq!(stats.unknown, 1);
    let started = Instant::now();
    within("flush after close", producer.flush()).await;
    assert!(started.elapsed() <= Duration::from_millis(50));
}

/// `close_now` with one request written and unanswered and two queued behind a full window:
/// it returns at once, the written one is unknown, the queued ones are not sent, and the
/// connection is dropped.
#[tokio::test(start_paused = true)]
async fn close_now_fails_queued_and_in_flight_at_once() {
    let server = FakeServer::bind().await;
    let mut config = unbatched();
    config.max_pipelined = 1;
    let (producer, mut nsqd) = connect(&server, config).await;
    let written = producer.publish_async(&topic(TOPIC), "a").await.unwrap();
    assert_eq!(expect_pub(&mut nsqd).await, "a");
    let queued = [
        producer.publish_async(&topic(TOPIC), "b").await.unwrap(),
        producer.publish_async(&topic(TOPIC), "c").await.unwrap(),
    ];
    let started = Instant::now();
    let stats = within("close_now", producer.close_now()).await;
    assert!(
        started.elapsed() <= Duration::from_millis(50),
        "close_now took {:?}",
        started.elapsed()
    );
    assert_eq!((stats.unknown, stats.not_sent, stats.acked), (1, 2, 0));
    assert!(matches!(
        within("a", written).await,
        Err(PublishError::Unknown { .. })
    ));
    for publish in queued {
        assert_eq!(
            within("a queued publish", publish).await,
            Err(PublishError::NotSent(NotSentReason::Closed))
        );
    }
    within("the connection to end", nsqd.expect_eof()).await;
}

/// `close_now` while nsqd cannot be reached and publishes wait for a connection: it returns at
/// once and they fail as not sent, instead of waiting for their deadlines.
#[tokio::test(start_paused = true)]
async fn close_now_while_nsqd_is_unreachable() {
    let producer = Producer::new(closed_addr().to_string(), unbatched()).unwrap();
    let waiting = spawn_publishes(&producer, 5);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started = Instant::now();
    let stats = within("close_now", producer.close_now()).await;
    assert!(started.elapsed() <= Duration::from_millis(50));
    assert_eq!(stats.not_sent, 5);
    for caller in waiting {
        assert_eq!(
            within("a waiting publish", caller).await.unwrap(),
            Err(PublishError::NotSent(NotSentReason::Closed))
        );
    }
}
