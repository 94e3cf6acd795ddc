//! The producer against a scripted nsqd: replies, errors, disconnects, heartbeats, timeouts,
//! backpressure, cancellation and closing. Test names start with the number of the scenario they
//! check (`s22_...` is scenario 22); docs/testing.md lists the scenarios.
//!
//! The producer dials TCP, so each test binds a listener on `127.0.0.1:0`, gives its address to
//! the producer and plays nsqd's side of every accepted connection with [`FakeNsqd`].
//!
//! Tests that depend on time run with tokio's clock paused: the clock jumps to the next timer
//! whenever every task is waiting, so "the fake is silent for two heartbeats" takes no real time,
//! and a `sleep` in the test returns only once everything else has settled. This works over
//! loopback sockets because bytes written to one end are readable at the other as soon as the
//! write returns, and tokio polls for I/O (without moving the clock if a task woke) before it
//! jumps. Two things keep that true: the fake's sockets have `TCP_NODELAY` (the producer's
//! already do), since otherwise a small write can wait tens of real milliseconds for a delayed
//! ACK while the clock races ahead; and the producer takes its deadlines from tokio's clock.
//! No test asserts how long anything took; timeouts in the tests only turn a hang into a
//! failure.

mod common;

use std::collections::HashSet;
use std::io::ErrorKind;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use nsq_producer::{
    ConnError, Delivery, ErrorCode, NotSentReason, PingFailure, Producer, ProducerConfig,
    ProducerState, PublishError, Publisher, Topic,
};
use nsq_proto::server::ClientCommand;
use nsq_proto::{Frame, Response, ServerError};
use nsq_test_support::{FakeNsqd, closed_addr, topic, within};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use common::*;

// Publishing, scenario 22 ------------------------------------------------------------------------

/// Many tasks publish at once; the fake answers each PUB in order and rejects one specific body.
/// Only that body's caller sees the rejection, the callers written behind it are not sent, and
/// every other caller gets exactly the OK the fake sent for its own body.
#[tokio::test]
async fn s22_concurrent_publishers_each_get_their_own_reply() {
    const TASKS: usize = 32;
    const EACH: usize = 8;
    const BAD_ROUND: usize = 3;
    const BAD: &str = "p17-3";
    const BAD_TEXT: &str = "E_BAD_MESSAGE PUB message too big 5 > 4";

    let server = FakeServer::bind().await;
    let producer = Producer::new(server.addr(), unbatched()).unwrap();
    let publishers: Vec<_> = (0..TASKS)
        .map(|task| {
            let producer = producer.clone();
            tokio::spawn(async move {
                let topic = topic(TOPIC);
                let mut results = Vec::new();
                for seq in 0..EACH {
                    let body = format!("p{task}-{seq}");
                    let result = producer.publish(&topic, body.clone()).await;
                    results.push((body, result));
                }
                results
            })
        })
        .collect();

    // Every task has exactly one publish outstanding at a time, so the fake reads one PUB per
    // task (a round), then answers the round in wire order, in one write.
    let mut nsqd = server.accept().await;
    let mut answered_ok = Vec::new();
    let mut behind_bad = Vec::new();
    for round in 0..=BAD_ROUND {
        let mut bodies = Vec::new();
        for _ in 0..TASKS {
            bodies.push(String::from_utf8(expect_pub(&mut nsqd).await.to_vec()).unwrap());
        }
        let mut replies = Vec::new();
        let mut bad_seen = false;
        for body in bodies {
            if bad_seen {
                behind_bad.push(body);
            } else if body == BAD {
                assert_eq!(round, BAD_ROUND);
                replies.extend(error_frame(BAD_TEXT));
                bad_seen = true;
            } else {
                replies.extend(ok_frame());
                answered_ok.push(body);
            }
        }
        nsqd.send_raw(&replies).await;
    }
    assert!(
        !behind_bad.is_empty(),
        "the scenario needs requests written behind the rejected one"
    );
    // nsqd closes after an error; the producer must not write anything more on it either.
    within("conn 1 closed", nsqd.expect_eof()).await;
    drop(nsqd);

    // The rest goes out on a new connection.
    let mut nsqd = server.accept().await;
    let second = tokio::spawn(async move { answer_ok_until_eof(&mut nsqd).await });
    let mut results = Vec::new();
    for publisher in publishers {
        results.extend(within("a publisher", publisher).await.unwrap());
    }
    let stats = within("close", producer.close()).await;
    let second = within("conn 2 closed", second).await.unwrap();
    assert_eq!(second.len(), TASKS * (EACH - BAD_ROUND - 1));
    answered_ok.extend(
        second
            .iter()
            .map(|body| String::from_utf8(body.to_vec()).unwrap()),
    );

    let answered: HashSet<&str> = answered_ok.iter().map(String::as_str).collect();
    assert_eq!(answered.len(), answered_ok.len(), "a body was sent twice");
    let behind: HashSet<&str> = behind_bad.iter().map(String::as_str).collect();
    let mut acked = HashSet::new();
    assert_eq!(results.len(), TASKS * EACH);
    for (body, result) in results {
        if body == BAD {
            let err = rejection(result);
            assert_eq!(err.code(), &ErrorCode::BadMessage);
            assert_eq!(err.to_string(), BAD_TEXT);
        } else if behind.contains(body.as_str()) {
            assert_eq!(result, aborted(), "{body}");
        } else {
            assert_eq!(result, Ok(()), "{body}");
            acked.insert(body);
        }
    }
    let acked: HashSet<&str> = acked.iter().map(String::as_str).collect();
    assert_eq!(
        acked, answered,
        "Ok results and the OKs the fake sent differ"
    );

    assert_eq!(stats.acked, answered.len() as u64);
    assert_eq!(stats.not_sent, behind.len() as u64);
    assert_eq!(stats.rejected.get("E_BAD_MESSAGE"), Some(&1));
    assert_eq!(stats.rejected_total(), 1);
    assert_eq!(stats.unknown, 0);
    assert_eq!(stats.reconnects, 1);
    server.assert_no_connection_waiting();
}

// Errors, connection loss and recovery, scenarios 31, 33, 35, 36 ---------------------------------

/// Four pipelined publishes; the fake answers OK, then rejects the second with a fatal error.
#[tokio::test]
async fn s31_pipelined_fatal_error_aborts_the_rest_and_reconnects() {
    const BAD_TOPIC: &str = "E_BAD_TOPIC PUB topic name \"bad:topic\" is not valid";
    let server = FakeServer::bind().await;
    let producer = Producer::new(server.addr(), unbatched()).unwrap();
    let topic = topic(TOPIC);
    let mut pending = Vec::new();
    for body in ["1", "2", "3", "4"] {
        pending.push(producer.publish_async(&topic, body).await.unwrap());
    }

    let mut nsqd = server.accept().await;
    for body in ["1", "2", "3", "4"] {
        assert_eq!(expect_pub(&mut nsqd).await, body);
    }
    nsqd.send_raw(&frames(&[&ok_frame(), &error_frame(BAD_TOPIC)]))
        .await;
    // Nothing more is written after the error; the producer drops the connection.
    within("conn 1 closed", nsqd.expect_eof()).await;

    let mut results = Vec::new();
    for publish in pending {
        results.push(within("a result", publish).await);
    }
    assert_eq!(results[0], Ok(()));
    let err = rejection(results[1].clone());
    assert_eq!(err.code(), &ErrorCode::BadTopic);
    assert_eq!(err.to_string(), BAD_TOPIC);
    assert!(!results[1].as_ref().unwrap_err().is_retry_safe());
    assert_eq!(results[2], aborted());
    assert_eq!(results[3], aborted());
    assert!(results[3].as_ref().unwrap_err().is_retry_safe());

    // The next publish reconnects and succeeds.
    let next = spawn_publish(&producer, "5");
    let mut nsqd = server.accept().await;
    assert_eq!(expect_pub(&mut nsqd).await, "5");
    nsqd.send_ok().await;
    assert_eq!(within("publish 5", next).await.unwrap(), Ok(()));

    let stats = producer.stats();
    assert_eq!(stats.acked, 2);
    assert_eq!(stats.not_sent, 2);
    assert_eq!(stats.rejected.get("E_BAD_TOPIC"), Some(&1));
    assert_eq!(stats.reconnects, 1);
}

/// Written requests resolve Unknown; requests still queued behind the in-flight window wait and
/// go out on the next connection, in order.
async fn connection_lost_without_error_frame(reset: bool) {
    let server = FakeServer::bind().await;
    let mut config = unbatched();
    config.max_pipelined = 2;
    let producer = Producer::new(server.addr(), config).unwrap();
    let topic = topic(TOPIC);
    let mut pending = Vec::new();
    for body in ["1", "2", "3", "4", "5"] {
        pending.push(producer.publish_async(&topic, body).await.unwrap());
    }

    let stream = server.accept_tcp().await;
    if reset {
        // A zero linger makes the close a reset; it never blocks.
        #[allow(deprecated)]
        stream.set_linger(Some(Duration::ZERO)).unwrap();
    }
    let mut nsqd = FakeServer::handshake(stream).await;
    assert_eq!(expect_pub(&mut nsqd).await, "1");
    assert_eq!(expect_pub(&mut nsqd).await, "2");
    let stats = producer.stats();
    assert_eq!((stats.in_flight, stats.queued), (2, 3));
    drop(nsqd);

    let mut pending = pending.into_iter();
    for _ in 0..2 {
        let cause = unknown_cause(within("a result", pending.next().unwrap()).await);
        if reset {
            assert!(
                matches!(&*cause, ConnError::Io(err) if err.kind() == ErrorKind::ConnectionReset),
                "{cause:?}"
            );
        } else {
            assert!(matches!(&*cause, ConnError::Closed), "{cause:?}");
        }
    }

    let mut nsqd = server.accept().await;
    for body in ["3", "4", "5"] {
        assert_eq!(expect_pub(&mut nsqd).await, body);
        nsqd.send_ok().await;
    }
    for publish in pending {
        assert_eq!(within("a result", publish).await, Ok(()));
    }
    let stats = producer.stats();
    assert_eq!(stats.unknown, 2);
    assert_eq!(stats.acked, 3);
    assert_eq!(stats.not_sent, 0);
    assert_eq!(stats.reconnects, 1);
}

#[tokio::test]
async fn s33_connection_reset_without_error_frame() {
    connection_lost_without_error_frame(true).await;
}

#[tokio::test]
async fn s33_connection_closed_without_error_frame() {
    connection_lost_without_error_frame(false).await;
}

/// An `OK` that arrives while nothing is outstanding: the connection is recycled.
#[tokio::test]
async fn s35_unexpected_ok_recycles_connection() {
    let server = FakeServer::bind().await;
    let producer = Producer::new(server.addr(), unbatched()).unwrap();
    let first = spawn_publish(&producer, "1");
    let mut nsqd = server.accept().await;
    assert_eq!(expect_pub(&mut nsqd).await, "1");
    // The reply and a stray second OK, in one write.
    nsqd.send_raw(&frames(&[&ok_frame(), &ok_frame()])).await;
    assert_eq!(within("publish 1", first).await.unwrap(), Ok(()));
    within("conn 1 closed", nsqd.expect_eof()).await;

    // The producer redials at once; the next publish goes there and gets its own reply.
    let _nsqd = publish_on_next_connection(&server, &producer, "2").await;

    let stats = producer.stats();
    assert_eq!(stats.acked, 2);
    assert_eq!(stats.unknown, 0);
    assert_eq!(stats.reconnects, 1);
}

/// A type-0 reply other than `OK` to a PUB: everything in flight is unknown, and the `OK` that
/// follows it is not given to anyone.
#[tokio::test]
async fn s35_unexpected_response_payload_recycles_connection() {
    let server = FakeServer::bind().await;
    let producer = Producer::new(server.addr(), unbatched()).unwrap();
    let topic = topic(TOPIC);
    let first = producer.publish_async(&topic, "1").await.unwrap();
    let second = producer.publish_async(&topic, "2").await.unwrap();

    let mut nsqd = server.accept().await;
    assert_eq!(expect_pub(&mut nsqd).await, "1");
    assert_eq!(expect_pub(&mut nsqd).await, "2");
    let odd = FakeNsqd::response_frame(b"{\"x\":1}").to_vec();
    nsqd.send_raw(&frames(&[&odd, &ok_frame()])).await;
    within("conn 1 closed", nsqd.expect_eof()).await;

    for publish in [first, second] {
        let cause = unknown_cause(within("a result", publish).await);
        match &*cause {
            ConnError::UnexpectedFrame { frame, .. } => assert_eq!(
                frame,
                &Frame::Response(Response::Other(Bytes::from_static(b"{\"x\":1}")))
            ),
            other => panic!("expected UnexpectedFrame, got {other:?}"),
        }
    }

    let _nsqd = publish_on_next_connection(&server, &producer, "3").await;

    let stats = producer.stats();
    assert_eq!(stats.acked, 1);
    assert_eq!(stats.unknown, 2);
    assert_eq!(stats.reconnects, 1);
}

/// `E_FIN_FAILED` is non-fatal in the protocol, but it never answers a publish: for a producer it
/// is a protocol violation, not a rejection.
#[tokio::test]
async fn s36_non_fatal_error_code_is_a_violation_for_a_producer() {
    const FIN_FAILED: &str = "E_FIN_FAILED FIN 0123456789abcdef failed ID not in flight";
    let parsed = ServerError::parse(Bytes::from_static(FIN_FAILED.as_bytes()));
    assert_eq!(parsed.code(), &ErrorCode::FinFailed);
    assert!(!parsed.is_fatal());
    assert!(!ErrorCode::FinFailed.is_fatal());

    let server = FakeServer::bind().await;
    let producer = Producer::new(server.addr(), unbatched()).unwrap();
    let first = spawn_publish(&producer, "1");
    let mut nsqd = server.accept().await;
    assert_eq!(expect_pub(&mut nsqd).await, "1");
    nsqd.send_error(FIN_FAILED).await;
    within("conn 1 closed", nsqd.expect_eof()).await;

    let cause = unknown_cause(within("publish 1", first).await.unwrap());
    match &*cause {
        ConnError::UnexpectedFrame {
            frame: Frame::Error(err),
            ..
        } => assert_eq!(err.to_string(), FIN_FAILED),
        other => panic!("expected UnexpectedFrame with the error, got {other:?}"),
    }

    let _nsqd = publish_on_next_connection(&server, &producer, "2").await;

    let stats = producer.stats();
    assert!(stats.rejected.is_empty(), "{:?}", stats.rejected);
    assert_eq!(stats.unknown, 1);
    assert_eq!(stats.acked, 1);
    assert_eq!(stats.reconnects, 1);
}

// Heartbeats and timeouts, scenarios 41, 42, 43 --------------------------------------------------

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

// Concurrency and shutdown, scenarios 44, 47, 48, 49, 50 -----------------------------------------

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

/// Nothing listens and `fail_fast` is on: publishes fail at once with `Unavailable` and the
/// connection error, and 20 callers are failed by one dial (they share one error).
#[tokio::test]
async fn s49_dead_server_at_start_fails_promptly() {
    let producer = Producer::new(closed_addr().to_string(), fail_fast()).unwrap();
    let callers = spawn_publishes(&producer, 20);
    // The guard is shorter than the publish timeout: waiting for the deadline fails here.
    let mut causes = Vec::new();
    for caller in callers {
        match within("a caller", caller).await.unwrap() {
            Err(PublishError::NotSent(NotSentReason::Unavailable(cause))) => {
                assert!(matches!(&*cause, ConnError::Connect { .. }), "{cause:?}");
                causes.push(cause);
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    assert!(
        causes.iter().all(|c| Arc::ptr_eq(c, &causes[0])),
        "callers were failed by different dials"
    );
    assert_eq!(producer.stats().not_sent, 20);
}

/// 20 callers while the first connection is still handshaking: one dial serves them all. The
/// listener accepts one connection and holds it until every caller is queued, then drops it; a
/// producer that dialled per caller would leave connections waiting and callers hanging. With
/// `fail_fast`, the failed handshake fails them all at once.
#[tokio::test]
async fn s49_concurrent_callers_share_one_dial() {
    let server = FakeServer::bind().await;
    let producer = Producer::new(server.addr(), fail_fast()).unwrap();
    let (queued, mut queued_rx) = mpsc::channel(20);
    let callers: Vec<_> = (0..20)
        .map(|i| {
            let producer = producer.clone();
            let queued = queued.clone();
            tokio::spawn(async move {
                let publish = producer
                    .publish_async(&topic(TOPIC), format!("m{i}"))
                    .await?;
                queued.send(()).await.unwrap();
                publish.await
            })
        })
        .collect();
    let stream = server.accept_tcp().await;
    for _ in 0..20 {
        within("callers queued", queued_rx.recv()).await.unwrap();
    }
    drop(stream);

    let mut causes = Vec::new();
    for caller in callers {
        match within("a caller", caller).await.unwrap() {
            Err(PublishError::NotSent(NotSentReason::Unavailable(cause))) => causes.push(cause),
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
    assert!(causes.iter().all(|c| Arc::ptr_eq(c, &causes[0])));
    let stats = producer.stats();
    assert_eq!((stats.not_sent, stats.queued), (20, 0));

    // The next publish dials again, once the backoff allows.
    let next = spawn_publish(&producer, "again");
    let mut nsqd = server.accept().await;
    assert_eq!(expect_pub(&mut nsqd).await, "again");
    nsqd.send_ok().await;
    assert_eq!(within("publish again", next).await.unwrap(), Ok(()));
    within("close", producer.close()).await;
    within("conn closed", nsqd.expect_eof()).await;
    server.assert_no_connection_waiting();
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

// Cancellation -----------------------------------------------------------------------------------

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

// Closing (scenarios 45, 46) ---------------------------------------------------------------------

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

// Bounded memory ---------------------------------------------------------------------------------

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

// Automatic batching ---------------------------------------------------------------------------

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

/// While nsqd is unreachable, a queued publish resolves at its deadline as not sent, with the
/// last connection error (it was never written, so retrying it is safe), even though the
/// router keeps redialling.
#[tokio::test(start_paused = true)]
async fn queued_publish_expires_while_nsqd_is_unreachable() {
    let server = FakeServer::bind().await;
    let mut config = unbatched();
    config.publish_timeout = Some(Duration::from_secs(2));
    config.reconnect_backoff_min = Duration::from_millis(300);
    config.reconnect_backoff_max = Duration::from_millis(300);
    let (producer, nsqd) = connect(&server, config).await;
    // nsqd goes away and nothing listens any more: every redial is refused.
    drop(nsqd);
    drop(server);
    let mut state = producer.watch_state();
    within(
        "reconnecting",
        state.wait_for(|s| matches!(s, ProducerState::Reconnecting { .. })),
    )
    .await
    .unwrap();
    let result = within("the publish", producer.publish(&topic(TOPIC), "lost")).await;
    match &result {
        Err(PublishError::NotSent(NotSentReason::Unavailable(cause))) => {
            assert!(matches!(&**cause, ConnError::Connect { .. }), "{cause:?}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(result.unwrap_err().is_retry_safe());
    assert_eq!(producer.stats().not_sent, 1);
}
