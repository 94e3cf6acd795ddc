//! Cancellation against a scripted nsqd: a request withdrawn before it is written is skipped,
//! and one withdrawn after it was written changes nothing, replies included.
//!
//! Tests that depend on time run on tokio's paused clock (see `common/mod.rs`).

mod common;

use std::time::Duration;

use nsq_producer::{NotSentReason, Producer, PublishError};
use nsq_test_support::{topic, within};

use common::*;

/// A request withdrawn before it is written (a `Publish` cancelled, a `publish` future dropped)
/// is skipped: the fake never sees it, and it is counted as withdrawn. A dropped `Publish`
/// handle detaches instead: its message is still sent.
#[tokio::test(start_paused = true)]
async fn cancel_before_write_skips_the_request() {
    let server = FakeServer::bind().await;
    let mut config = unbatched();
    config.max_pipelined = 1;
    let producer = Producer::new(server.addr(), config).unwrap();
    let topic = topic(TOPIC);
    let first = producer.publish_async(&topic, "a").await.unwrap();
    let mut nsqd = server.accept().await;
    assert_eq!(expect_pub(&mut nsqd).await, "a");

    // The window is full: these stay queued. `b` is cancelled, `c`'s caller gives up on its
    // `publish` future, `d` is detached.
    let b = producer.publish_async(&topic, "b").await.unwrap();
    let given_up = tokio::time::timeout(Duration::from_millis(100), producer.publish(&topic, "c"));
    assert!(
        given_up.await.is_err(),
        "publish c finished with nothing answered"
    );
    drop(producer.publish_async(&topic, "d").await.unwrap());
    let last = producer.publish_async(&topic, "e").await.unwrap();
    assert!(b.cancel());
    assert!(!b.cancel(), "withdrawn once");
    assert_eq!(
        within("publish b", b).await,
        Err(PublishError::NotSent(NotSentReason::Cancelled))
    );

    nsqd.send_ok().await;
    assert_eq!(within("publish a", first).await, Ok(()));
    assert_eq!(expect_pub(&mut nsqd).await, "d");
    nsqd.send_ok().await;
    assert_eq!(expect_pub(&mut nsqd).await, "e");
    nsqd.send_ok().await;
    assert_eq!(within("publish e", last).await, Ok(()));

    let stats = within("close", producer.close()).await;
    within("conn closed", nsqd.expect_eof()).await;
    assert_eq!((stats.acked, stats.withdrawn, stats.not_sent), (3, 2, 0));
    assert_eq!((stats.queued, stats.in_flight), (0, 0));
}

/// `cancel` after the request was written withdraws nothing: the publish resolves with nsqd's
/// answer.
#[tokio::test]
async fn cancel_after_write_does_nothing() {
    let server = FakeServer::bind().await;
    let (producer, mut nsqd) = connect(&server, unbatched()).await;
    let publish = producer.publish_async(&topic(TOPIC), "a").await.unwrap();
    assert_eq!(expect_pub(&mut nsqd).await, "a");
    assert!(!publish.cancel());
    nsqd.send_ok().await;
    assert_eq!(within("publish a", publish).await, Ok(()));
    assert_eq!(producer.stats().withdrawn, 0);
}

/// Callers that leave after their request was written do not shift the replies: the next caller
/// still gets its own.
#[tokio::test]
async fn cancel_after_write_keeps_replies_matched() {
    const TEXT: &str = "E_BAD_MESSAGE PUB message too big 5 > 4";
    let server = FakeServer::bind().await;
    let producer = Producer::new(server.addr(), unbatched()).unwrap();
    let topic = topic(TOPIC);
    // One caller awaits `publish` in a task that will be aborted; one drops its `Publish`.
    let aborted_caller = spawn_publish(&producer, "a");
    let mut nsqd = server.accept().await;
    assert_eq!(expect_pub(&mut nsqd).await, "a");
    let dropped = producer.publish_async(&topic, "b").await.unwrap();
    let last = producer.publish_async(&topic, "c").await.unwrap();
    assert_eq!(expect_pub(&mut nsqd).await, "b");
    assert_eq!(expect_pub(&mut nsqd).await, "c");

    aborted_caller.abort();
    assert!(
        within("the aborted caller", aborted_caller)
            .await
            .unwrap_err()
            .is_cancelled()
    );
    drop(dropped);
    nsqd.send_raw(&frames(&[&ok_frame(), &ok_frame(), &error_frame(TEXT)]))
        .await;
    let err = rejection(within("publish c", last).await);
    assert_eq!(err.to_string(), TEXT);
    within("conn closed", nsqd.expect_eof()).await;

    let stats = producer.stats();
    assert_eq!(stats.acked, 2);
    assert_eq!(stats.rejected.get("E_BAD_MESSAGE"), Some(&1));
}
