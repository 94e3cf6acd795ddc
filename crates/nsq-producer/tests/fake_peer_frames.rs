//! The producer against a scripted nsqd that answers with unusual frames: a lone oversize frame
//! header, and an MPUB failure after which part of the batch may be stored.
//!
//! Each test binds a listener on `127.0.0.1:0`, gives its address to the producer and plays
//! nsqd's side of the accepted connection with [`FakeNsqd`](nsq_test_support::FakeNsqd). These
//! tests run on real time; `within` only turns a hang into a failure.

mod common;

use nsq_test_support::within;
use std::time::Instant;

use nsq_producer::{Delivery, ErrorCode, PublishError};

use common::*;

/// nsqd answers a PUB with only the 4 bytes of a 2 GiB frame's size field and nothing after.
/// The size is refused as soon as those 4 bytes arrive, so the publish resolves with the
/// decode error at once, without heartbeats or a publish timeout to end the wait.
#[tokio::test]
async fn lone_oversize_frame_header_fails_the_publish_at_once() {
    let server = FakeServer::bind().await;
    let mut config = unbatched();
    config.publish_timeout = None;
    config.conn = config.conn.disable_heartbeats();
    let (producer, mut nsqd) = connect(&server, config).await;

    let publish = spawn_publish(&producer, "a");
    assert_eq!(expect_pub(&mut nsqd).await, "a");
    let sent = Instant::now();
    nsqd.send_raw(b"\x7f\xff\xff\xff").await;
    let result = within("the publish after a lone 4-byte header", publish)
        .await
        .unwrap();
    let elapsed = sent.elapsed();
    let cause = unknown_cause(result);
    assert!(
        cause.to_string().contains("exceeds the maximum"),
        "unexpected cause: {cause}"
    );
    eprintln!("resolved {elapsed:?} after the 4 bytes were sent");
    let stats = producer.stats();
    assert_eq!(stats.unknown, 1);
    assert_eq!(stats.in_flight, 0);
    drop(nsqd);
}

/// nsqd stores an MPUB's messages one at a time and answers `E_MPUB_FAILED` at the first that
/// fails, so some of the batch may be stored. Every publish batched into the MPUB gets
/// `MaybeStored` with nsqd's error (not retry-safe) and counts as unknown, not rejected; what
/// was written behind it is not sent; the next publish goes out on a new connection.
#[tokio::test]
async fn batched_mpub_failure_may_have_stored_every_member() {
    let server = FakeServer::bind().await;
    let (producer, batched, deferred, mut nsqd) = batch_then_dpub(&server).await;
    let text = "E_MPUB_FAILED MPUB failed exiting";
    nsqd.send_error(text).await;
    for publish in batched {
        let err = within("a batched publish", publish).await.unwrap_err();
        let PublishError::MaybeStored {
            error: server_error,
            ..
        } = &err
        else {
            panic!("expected MaybeStored, got {err:?}")
        };
        assert_eq!(server_error.to_string(), text);
        assert_eq!(server_error.code(), &ErrorCode::MpubFailed);
        assert_eq!(err.server_error(), Some(server_error));
        assert!(!err.is_retry_safe());
        assert_eq!(err.delivery(), Delivery::Unknown);
    }
    assert_eq!(within("the DPUB", deferred).await, aborted());
    let stats = producer.stats();
    assert_eq!(stats.unknown, 3);
    assert_eq!(stats.rejected_total(), 0, "{stats:?}");
    assert_eq!(stats.not_sent, 1);
    assert_eq!(stats.in_flight, 0);

    let _nsqd = publish_on_next_connection(&server, &producer, "e").await;
    assert_eq!(producer.stats().reconnects, 1);
}
