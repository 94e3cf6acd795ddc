//! Heartbeats and silence against a scripted nsqd: a heartbeat is answered with NOP and resolves
//! nobody, an idle producer keeps its connection, a silent server is dropped and redialled, and
//! a request unanswered past its timeout recycles the connection.
//!
//! Time runs on tokio's paused clock (see `common/mod.rs` for why that works over loopback
//! sockets).

mod common;

use std::pin::pin;
use std::time::Duration;

use nsq_producer::{ConnError, Delivery, Producer, ProducerState};
use nsq_proto::server::ClientCommand;
use nsq_test_support::{topic, within};

use common::*;

/// A heartbeat between two `OK`s is answered with NOP and resolves nobody.
#[tokio::test]
async fn s41_heartbeat_during_pipelining_is_answered_and_resolves_nothing() {
    let server = FakeServer::bind().await;
    let producer = Producer::new(server.addr(), unbatched()).unwrap();
    let topic = topic(TOPIC);
    let first = producer.publish_async(&topic, "1").await.unwrap();
    let second = producer.publish_async(&topic, "2").await.unwrap();
    let mut third = pin!(producer.publish_async(&topic, "3").await.unwrap());

    let mut nsqd = server.accept().await;
    for body in ["1", "2", "3"] {
        assert_eq!(expect_pub(&mut nsqd).await, body);
    }
    nsqd.send_raw(&frames(&[&ok_frame(), &heartbeat_frame(), &ok_frame()]))
        .await;
    assert_eq!(within("publish 1", first).await, Ok(()));
    assert_eq!(within("publish 2", second).await, Ok(()));
    // The three frames were read together: had the heartbeat resolved a request, the second OK
    // would have resolved the third publish by now.
    assert!(is_pending(third.as_mut()));
    assert_eq!(
        within("the NOP", nsqd.expect_command()).await,
        ClientCommand::Nop
    );
    assert!(is_pending(third.as_mut()));
    nsqd.send_ok().await;
    assert_eq!(within("publish 3", third).await, Ok(()));

    let stats = within("close", producer.close()).await;
    within("conn closed", nsqd.expect_eof()).await;
    assert_eq!(stats.acked, 3);
    assert_eq!(stats.reconnects, 0);
    server.assert_no_connection_waiting();
}

/// With a 1 s heartbeat, an idle producer answers heartbeats and publishes on the same
/// connection 2.5 s later.
#[tokio::test(start_paused = true)]
async fn s42_idle_producer_keeps_its_connection() {
    let server = FakeServer::bind().await;
    let mut config = unbatched();
    config.conn = config.conn.heartbeat_interval(Duration::from_secs(1));
    let (producer, mut nsqd) = connect(&server, config).await;
    let topic = topic(TOPIC);

    let fake = tokio::spawn(async move {
        assert_eq!(expect_pub(&mut nsqd).await, "1");
        nsqd.send_ok().await;
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            nsqd.send_heartbeat().await;
            assert_eq!(
                within("a NOP", nsqd.expect_command()).await,
                ClientCommand::Nop
            );
        }
        assert_eq!(expect_pub(&mut nsqd).await, "2");
        nsqd.send_ok().await;
        within("conn closed", nsqd.expect_eof()).await;
    });

    assert_eq!(
        within("publish 1", producer.publish(&topic, "1")).await,
        Ok(())
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(producer.state(), ProducerState::Connected);
    assert_eq!(
        within("publish 2", producer.publish(&topic, "2")).await,
        Ok(())
    );
    let stats = within("close", producer.close()).await;
    within("the fake", fake).await.unwrap();
    assert_eq!(stats.acked, 2);
    assert_eq!(stats.reconnects, 0);
    server.assert_no_connection_waiting();
}

/// A peer that sends nothing at all (not even heartbeats) is declared dead after twice the
/// heartbeat interval; what was in flight is unknown and the producer reconnects.
#[tokio::test(start_paused = true)]
async fn s43_silent_server_is_dropped_and_redialled() {
    let server = FakeServer::bind().await;
    let mut config = unbatched();
    config.conn = config.conn.heartbeat_interval(Duration::from_secs(1));
    let producer = Producer::new(server.addr(), config).unwrap();
    let first = spawn_publish(&producer, "1");
    let mut nsqd = server.accept().await;
    assert_eq!(expect_pub(&mut nsqd).await, "1");
    // Silence, until the producer gives up on the connection.
    within("conn 1 closed", nsqd.expect_eof()).await;

    let cause = unknown_cause(within("publish 1", first).await.unwrap());
    assert!(
        matches!(&*cause, ConnError::HeartbeatTimeout(_)),
        "{cause:?}"
    );

    let _nsqd = publish_on_next_connection(&server, &producer, "2").await;

    let stats = producer.stats();
    assert_eq!(stats.unknown, 1);
    assert_eq!(stats.acked, 1);
    assert_eq!(stats.reconnects, 1);
}

/// A peer that takes a PUB and never answers it, while its heartbeats keep coming: the caller
/// gets `TimedOut` at the publish timeout, and the connection is dropped `stall_grace` later.
#[tokio::test(start_paused = true)]
async fn s48_request_timeout_then_connection_recycled() {
    let server = FakeServer::bind().await;
    let mut config = unbatched();
    config.conn = config.conn.heartbeat_interval(Duration::from_secs(1));
    config.publish_timeout = Some(Duration::from_secs(5));
    config.stall_grace = Duration::from_millis(1500);
    let producer = Producer::new(server.addr(), config).unwrap();
    let topic = topic(TOPIC);
    let first = producer.publish_async(&topic, "1").await.unwrap();

    let mut nsqd = server.accept().await;
    assert_eq!(expect_pub(&mut nsqd).await, "1");
    let fake =
        tokio::spawn(async move { heartbeat_until_eof(&mut nsqd, Duration::from_secs(1)).await });

    let result = within("publish 1", first).await;
    assert_eq!(result, timed_out(&producer));
    assert_eq!(result.unwrap_err().delivery(), Delivery::Unknown);
    // Within the grace period the connection is still up.
    assert_eq!(producer.state(), ProducerState::Connected);
    assert!(!fake.is_finished());

    let nops = within("conn 1 closed", fake).await.unwrap();
    assert!(
        nops >= 4,
        "heartbeats kept the connection alive ({nops} NOPs)"
    );
    let _nsqd = publish_on_next_connection(&server, &producer, "2").await;

    let stats = producer.stats();
    assert_eq!(stats.timed_out, 1);
    assert_eq!(stats.acked, 1);
    assert_eq!(stats.reconnects, 1);
    assert_eq!(stats.in_flight, 0);
}
