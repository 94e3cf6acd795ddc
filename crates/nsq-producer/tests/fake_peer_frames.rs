//! The producer against a scripted nsqd that answers with unusual frames: a lone oversize frame
//! header, and an MPUB failure after which part of the batch may be stored.
//!
//! Each test binds a listener on `127.0.0.1:0`, gives its address to the producer and plays
//! nsqd's side of the accepted connection with [`FakeNsqd`](nsq_test_support::FakeNsqd). These
//! tests run on real time; `within` only turns a hang into a failure.

mod common;

use std::time::Instant;

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
