//! Automatic batching against a scripted nsqd: PUBs queued together go out as one MPUB that one
//! `OK` answers, a rejection rejects every member, the queue order holds across topics and
//! commands, the MPUB size limit is respected, cancelled publishes are left out, and the linger
//! gathers publishes that arrive meanwhile.

mod common;

use std::time::Duration;

use bytes::Bytes;
use nsq_producer::{ErrorCode, Producer, ProducerConfig, Topic};
use nsq_proto::server::ClientCommand;
use nsq_test_support::{FakeNsqd, topic, within};

use common::*;

/// Queues `bodies` (to [`TOPIC`]) on a producer that has not connected yet, so that the router
/// finds them all waiting when the connection comes up.
async fn queue_before_connecting(
    config: ProducerConfig,
    bodies: &[&'static str],
) -> (Producer, Vec<nsq_producer::Publish>, FakeNsqd) {
    let server = FakeServer::bind().await;
    let producer = Producer::new(server.addr(), config).unwrap();
    let mut pending = Vec::new();
    for body in bodies {
        pending.push(
            within("queueing", producer.publish_async(&topic(TOPIC), *body))
                .await
                .unwrap(),
        );
    }
    let nsqd = server.accept().await;
    (producer, pending, nsqd)
}

/// PUBs that are queued together go out as one MPUB, in order, and nsqd's single OK answers
/// each of them.
#[tokio::test]
async fn batching_merges_queued_pubs_and_one_ok_answers_them_all() {
    let bodies = ["a", "b", "c", "d", "e"];
    let (producer, pending, mut nsqd) =
        queue_before_connecting(ProducerConfig::default(), &bodies).await;
    let sent = expect_mpub(&mut nsqd, TOPIC).await;
    assert_eq!(
        sent,
        bodies.map(|b: &'static str| Bytes::from_static(b.as_bytes()))
    );
    nsqd.send_ok().await;
    for publish in pending {
        assert_eq!(within("a batched publish", publish).await, Ok(()));
    }
    let stats = producer.stats();
    assert_eq!(stats.acked, 5, "each request counts, not each command");
    assert_eq!(stats.in_flight, 0);
}

/// nsqd judges an MPUB as a whole: when it rejects the batch, every publish in it gets nsqd's
/// error (none was stored), and what was written behind it is not sent.
#[tokio::test]
async fn batching_rejection_rejects_every_member() {
    let server = FakeServer::bind().await;
    let (producer, batched, deferred, mut nsqd) = batch_then_dpub(&server).await;
    let text = "E_BAD_MESSAGE MPUB message too big 105 > 100";
    nsqd.send_error(text).await;
    for publish in batched {
        let err = rejection(within("a batched publish", publish).await);
        assert_eq!(err.to_string(), text);
        assert_eq!(err.code(), &ErrorCode::BadMessage);
    }
    assert_eq!(within("the DPUB", deferred).await, aborted());
    let stats = producer.stats();
    assert_eq!(stats.rejected.get("E_BAD_MESSAGE"), Some(&3));
    assert_eq!(stats.not_sent, 1);
}

/// Only consecutive PUBs to one topic are merged; another topic, a DPUB or a caller's own MPUB
/// ends the batch, and the wire order is the queue order.
#[tokio::test]
async fn batching_keeps_the_queue_order_across_topics_and_commands() {
    let server = FakeServer::bind().await;
    let producer = Producer::new(server.addr(), ProducerConfig::default()).unwrap();
    let other = Topic::new("u").unwrap();
    let mut pending = vec![
        producer.publish_async(&topic(TOPIC), "a").await.unwrap(),
        producer.publish_async(&topic(TOPIC), "b").await.unwrap(),
        producer.publish_async(&other, "c").await.unwrap(),
        producer
            .deferred_publish_async(&topic(TOPIC), Duration::from_millis(1), "d")
            .await
            .unwrap(),
        producer.publish_async(&topic(TOPIC), "e").await.unwrap(),
        producer
            .multi_publish_async(&topic(TOPIC), ["f", "g"])
            .await
            .unwrap(),
        producer.publish_async(&topic(TOPIC), "h").await.unwrap(),
        producer.publish_async(&topic(TOPIC), "i").await.unwrap(),
    ];
    let mut nsqd = server.accept().await;
    assert_eq!(
        expect_mpub(&mut nsqd, TOPIC).await,
        ["a", "b"].map(|b: &'static str| Bytes::from_static(b.as_bytes()))
    );
    match within("the PUB to u", nsqd.expect_command()).await {
        ClientCommand::Pub { topic, body } => {
            assert_eq!((topic.as_str(), &body[..]), ("u", &b"c"[..]))
        }
        other => panic!("expected a PUB to u, got {other:?}"),
    }
    assert!(matches!(
        nsqd.expect_command().await,
        ClientCommand::Dpub { .. }
    ));
    assert_eq!(expect_pub(&mut nsqd).await, "e");
    assert_eq!(
        expect_mpub(&mut nsqd, TOPIC).await,
        ["f", "g"].map(|b: &'static str| Bytes::from_static(b.as_bytes()))
    );
    assert_eq!(
        expect_mpub(&mut nsqd, TOPIC).await,
        ["h", "i"].map(|b: &'static str| Bytes::from_static(b.as_bytes()))
    );
    for _ in 0..6 {
        nsqd.send_ok().await;
    }
    for publish in pending.drain(..) {
        assert_eq!(within("a publish", publish).await, Ok(()));
    }
    assert_eq!(producer.stats().acked, 8);
}

/// A batch never grows past the MPUB body limit.
#[tokio::test]
async fn batching_respects_the_mpub_size_limit() {
    let mut config = ProducerConfig::default();
    // Room for three 10-byte messages: 4 + 3 * (4 + 10).
    config.limits.max_body_size = 46;
    let bodies = ["0123456789"; 7];
    let (_producer, pending, mut nsqd) = queue_before_connecting(config, &bodies).await;
    assert_eq!(expect_mpub(&mut nsqd, TOPIC).await.len(), 3);
    assert_eq!(expect_mpub(&mut nsqd, TOPIC).await.len(), 3);
    assert_eq!(expect_pub(&mut nsqd).await, "0123456789");
    for _ in 0..3 {
        nsqd.send_ok().await;
    }
    for publish in pending {
        assert_eq!(within("a publish", publish).await, Ok(()));
    }
}

/// A publish cancelled before its batch is written is left out of it.
#[tokio::test]
async fn batching_leaves_out_cancelled_publishes() {
    let (producer, mut pending, mut nsqd) =
        queue_before_connecting(ProducerConfig::default(), &["a", "b", "c"]).await;
    // The producer has not connected when the middle one is cancelled: accepting it is what
    // lets the router start, but it only reads the queue after the handshake.
    assert!(pending.remove(1).cancel());
    let sent = expect_mpub(&mut nsqd, TOPIC).await;
    assert_eq!(
        sent,
        ["a", "c"].map(|b: &'static str| Bytes::from_static(b.as_bytes()))
    );
    nsqd.send_ok().await;
    for publish in pending {
        assert_eq!(within("a publish", publish).await, Ok(()));
    }
    assert_eq!((producer.stats().acked, producer.stats().withdrawn), (2, 1));
}

/// With a linger, a PUB waits briefly for company; without one it goes out alone at once.
#[tokio::test(start_paused = true)]
async fn batching_linger_gathers_publishes_that_arrive_meanwhile() {
    let server = FakeServer::bind().await;
    let mut config = ProducerConfig::default();
    config.batch_linger = Duration::from_millis(50);
    let (producer, mut nsqd) = connect(&server, config).await;
    let first = spawn_publish(&producer, "a");
    tokio::time::sleep(Duration::from_millis(10)).await;
    let second = spawn_publish(&producer, "b");
    assert_eq!(
        expect_mpub(&mut nsqd, TOPIC).await,
        ["a", "b"].map(|b: &'static str| Bytes::from_static(b.as_bytes()))
    );
    nsqd.send_ok().await;
    assert_eq!(within("first", first).await.unwrap(), Ok(()));
    assert_eq!(within("second", second).await.unwrap(), Ok(()));

    let server = FakeServer::bind().await;
    let (producer, mut nsqd) = connect(&server, ProducerConfig::default()).await;
    let first = spawn_publish(&producer, "a");
    assert_eq!(expect_pub(&mut nsqd).await, "a");
    let second = spawn_publish(&producer, "b");
    assert_eq!(expect_pub(&mut nsqd).await, "b");
    nsqd.send_ok().await;
    nsqd.send_ok().await;
    assert_eq!(within("first", first).await.unwrap(), Ok(()));
    assert_eq!(within("second", second).await.unwrap(), Ok(()));
}
