//! Closing against a scripted nsqd: `close` waits for the replies in flight up to its timeout,
//! and a publish after `close` is refused without any I/O.
//!
//! Tests that depend on time run on tokio's paused clock (see `common/mod.rs`).

mod common;

use std::time::Duration;

use nsq_producer::{NotSentReason, PingFailure, Producer, ProducerState, PublishError, Publisher};
use nsq_test_support::{topic, within};

use common::*;

/// `close` with requests in flight waits for their replies and reports them acknowledged.
#[tokio::test(start_paused = true)]
async fn s45_close_waits_for_replies_in_flight() {
    let server = FakeServer::bind().await;
    let producer = Producer::new(server.addr(), unbatched()).unwrap();
    let topic = topic(TOPIC);
    let mut pending = Vec::new();
    for body in ["1", "2", "3"] {
        pending.push(producer.publish_async(&topic, body).await.unwrap());
    }
    let mut nsqd = server.accept().await;
    for body in ["1", "2", "3"] {
        assert_eq!(expect_pub(&mut nsqd).await, body);
    }

    let closing = {
        let producer = producer.clone();
        tokio::spawn(async move { producer.close().await })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !closing.is_finished(),
        "close returned with replies outstanding"
    );
    assert_eq!(
        producer.publish(&topic, "late").await,
        Err(PublishError::Closed(Publisher::Producer))
    );
    nsqd.send_raw(&frames(&[&ok_frame(), &ok_frame(), &ok_frame()]))
        .await;
    let stats = within("close", closing).await.unwrap();
    within("conn closed", nsqd.expect_eof()).await;

    assert_eq!(stats.acked, 3);
    assert_eq!((stats.in_flight, stats.unknown, stats.not_sent), (0, 0, 0));
    for publish in pending {
        assert_eq!(within("a result", publish).await, Ok(()));
    }
    assert_eq!(producer.state(), ProducerState::Closed);
}

/// `close` against a peer that never answers gives up after `close_timeout`: what was written is
/// unknown, what was still queued is not sent.
#[tokio::test(start_paused = true)]
async fn s45_close_gives_up_after_close_timeout() {
    let server = FakeServer::bind().await;
    let mut config = unbatched();
    config.max_pipelined = 3;
    config.close_timeout = Duration::from_secs(2);
    let producer = Producer::new(server.addr(), config).unwrap();
    let topic = topic(TOPIC);
    let mut pending = Vec::new();
    for body in ["1", "2", "3", "4"] {
        pending.push(producer.publish_async(&topic, body).await.unwrap());
    }
    let mut nsqd = server.accept().await;
    for body in ["1", "2", "3"] {
        assert_eq!(expect_pub(&mut nsqd).await, body);
    }
    let fake = tokio::spawn(async move { nsqd.expect_eof().await });

    let stats = within("close", producer.close()).await;
    within("conn closed", fake).await.unwrap();
    assert_eq!(stats.acked, 0);
    assert_eq!(stats.unknown, 3);
    assert_eq!(stats.not_sent, 1);
    assert_eq!((stats.in_flight, stats.queued), (0, 0));
    let mut results = Vec::new();
    for publish in pending {
        results.push(within("a result", publish).await);
    }
    for result in &results[..3] {
        assert!(
            matches!(result, Err(PublishError::Unknown { .. })),
            "{result:?}"
        );
    }
    assert_eq!(
        results[3],
        Err(PublishError::NotSent(NotSentReason::Closed))
    );
}

/// After `close`, publishing fails with `Closed` and nothing is dialled or written; closing
/// again returns the same report.
#[tokio::test]
async fn s46_publish_after_close_is_closed_without_io() {
    let server = FakeServer::bind().await;
    let (producer, mut nsqd) = connect(&server, unbatched()).await;
    let topic = topic(TOPIC);
    let first = spawn_publish(&producer, "1");
    assert_eq!(expect_pub(&mut nsqd).await, "1");
    nsqd.send_ok().await;
    assert_eq!(within("publish 1", first).await.unwrap(), Ok(()));

    let stats = within("close", producer.close()).await;
    within("conn closed", nsqd.expect_eof()).await;
    assert_eq!(stats.acked, 1);

    assert_eq!(
        producer.publish(&topic, "2").await,
        Err(PublishError::Closed(Publisher::Producer))
    );
    assert_eq!(
        producer.publish_async(&topic, "3").await.map(drop),
        Err(PublishError::Closed(Publisher::Producer))
    );
    assert_eq!(
        producer.multi_publish(&topic, ["4", "5"]).await,
        Err(PublishError::Closed(Publisher::Producer))
    );
    assert!(matches!(producer.ping().await, Err(PingFailure::Closed)));
    assert_eq!(within("close again", producer.close()).await, stats);
    server.assert_no_connection_waiting();
}
