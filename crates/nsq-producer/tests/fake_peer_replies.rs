//! Replies against a scripted nsqd: many callers each get the reply to their own request, a
//! fatal error aborts what was written behind it, and a connection lost without an error frame,
//! an unexpected `OK` or response payload, or a non-fatal error code ends the connection with
//! every caller told what became of its request.

mod common;

use std::collections::HashSet;
use std::io::ErrorKind;
use std::time::Duration;

use bytes::Bytes;
use nsq_producer::{ConnError, ErrorCode, Producer};
use nsq_proto::{Frame, Response, ServerError};
use nsq_test_support::{FakeNsqd, topic, within};

use common::*;

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
