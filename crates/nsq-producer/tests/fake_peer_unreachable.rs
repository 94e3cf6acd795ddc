//! An nsqd that cannot be reached: a publish to a dead server fails promptly, concurrent
//! callers share one dial, and a queued publish resolves at its deadline as not sent while the
//! producer keeps redialling.
//!
//! Tests that depend on time run on tokio's paused clock (see `common/mod.rs`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use nsq_producer::{ConnError, NotSentReason, Producer, ProducerState, PublishError};
use nsq_test_support::{closed_addr, topic, within};
use tokio::sync::mpsc;

use common::*;

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
