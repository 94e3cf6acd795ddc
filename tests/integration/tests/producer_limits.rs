//! nsq-producer against a real nsqd v1.3.0: size limits, DPUB ranges, empty batches, topic
//! names, and a fatal error in the middle of a pipeline (scenarios 23-27 and 31 in
//! docs/testing.md).
//!
//! What nsqd would refuse is refused locally as `Invalid`, with nothing sent and the connection
//! left alone. To see nsqd's own refusals, some tests raise the producer's limits on purpose
//! above nsqd's: the request then reaches nsqd, comes back `Rejected` with nsqd's exact text,
//! and the producer carries on over a new connection.
//!
//! Scenarios 29 (unknown command) and 32 (MPUB's doubled `E_BAD_TOPIC` text) cannot be
//! produced through the producer, whose API cannot express either request. They are pinned
//! against nsqd at the protocol level by `proto_nsqd.rs` (`unknown_command_is_invalid`,
//! `mpub_invalid_topic_doubles_the_code`).

mod common;

use std::time::Duration;

use bytes::Bytes;
use nsq_producer::{
    Delivery, ErrorCode, InvalidPublish, NotSentReason, Producer, ProducerState, PublishError,
    Topic,
};
use nsq_test_support::{Nsqd, NsqdOptions, channel_number, read_exactly, topic, within};

use common::{blocking, eventually, producer_config};

const MIB: u64 = 1024 * 1024;

/// nsqd with the small limits of its own size tests: 100-byte messages, 1000-byte MPUB bodies.
fn small_limits() -> Nsqd {
    Nsqd::start_with(NsqdOptions::new().max_msg_size(100).max_body_size(1000))
}

fn bodies(count: usize, size: usize) -> Vec<Bytes> {
    (0..count).map(|_| Bytes::from(vec![b'm'; size])).collect()
}

fn invalid(result: Result<(), PublishError>) -> InvalidPublish {
    match result {
        Err(PublishError::Invalid(invalid)) => invalid,
        other => panic!("expected a local refusal, got {other:?}"),
    }
}

/// The text of nsqd's rejection, after checking what the error says about delivery.
fn rejection(result: Result<(), PublishError>) -> (ErrorCode, String) {
    let err = result.expect_err("nsqd should refuse this");
    let server = err
        .server_error()
        .unwrap_or_else(|| panic!("expected a rejection, got {err:?}"))
        .clone();
    assert_eq!(err.delivery(), Delivery::NotStored);
    assert!(!err.is_retry_safe(), "{err}: not a transient failure");
    (server.code().clone(), server.to_string())
}

/// Scenario 23, with the producer's limits equal to nsqd's (100 / 1000): whatever nsqd
/// would refuse is refused locally and nothing reaches nsqd (the connection stays up). With the
/// producer's limits raised on purpose, nsqd's own refusal of a 105-byte PUB comes back
/// `Rejected` with its exact text, and the next publish succeeds on a new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s23_size_limits() {
    let nsqd = small_limits();
    let t = topic("s23_sizes");
    let mut config = producer_config();
    config.limits.max_msg_size = 100;
    config.limits.max_body_size = 1000;
    let producer = Producer::new(nsqd.tcp_addr().to_string(), config).unwrap();

    within("publish 95", producer.publish(&t, vec![b'a'; 95]))
        .await
        .expect("95 bytes fit");
    let written = producer.stats().bytes_written;
    assert!(written > 95);

    assert_eq!(
        invalid(producer.publish(&t, vec![b'a'; 105]).await),
        InvalidPublish::MessageTooLarge {
            index: None,
            size: 105,
            max: 100
        }
    );
    assert_eq!(
        invalid(producer.publish(&t, Bytes::new()).await),
        InvalidPublish::EmptyBody
    );
    within("mpub 5 x 100", producer.multi_publish(&t, bodies(5, 100)))
        .await
        .expect("5 x 100 bytes make a 524-byte MPUB body");
    let written = producer.stats().bytes_written;
    assert_eq!(
        invalid(producer.multi_publish(&t, bodies(11, 100)).await),
        InvalidPublish::BatchTooLarge {
            size: 1148,
            max: 1000
        }
    );
    let mut with_empty = bodies(5, 100);
    with_empty.push(Bytes::new());
    assert_eq!(
        invalid(producer.multi_publish(&t, with_empty).await),
        InvalidPublish::EmptyMessage { index: 5 }
    );
    assert_eq!(
        invalid(producer.multi_publish(&t, bodies(5, 101)).await),
        InvalidPublish::MessageTooLarge {
            index: Some(0),
            size: 101,
            max: 100
        }
    );
    assert_eq!(
        invalid(
            producer
                .deferred_publish(&t, Duration::from_millis(10), vec![b'a'; 101])
                .await
        ),
        InvalidPublish::MessageTooLarge {
            index: None,
            size: 101,
            max: 100
        }
    );

    // Nothing of that reached nsqd: no bytes written, the same connection still works.
    let stats = producer.stats();
    assert_eq!(stats.bytes_written, written);
    assert_eq!(stats.acked, 2);
    assert_eq!(stats.rejected_total(), 0);
    assert_eq!(
        stats.not_sent, 0,
        "local refusals are not counted as requests"
    );
    within("publish", producer.publish(&t, "still connected"))
        .await
        .unwrap();
    assert_eq!(producer.stats().reconnects, 0);
    assert_eq!(producer.state(), ProducerState::Connected);
    assert_eq!(nsqd.topic_depth("s23_sizes"), Some(7));
    within("close", producer.close()).await;

    // Limits above nsqd's: nsqd refuses, the producer reconnects.
    let mut config = producer_config();
    config.limits.max_msg_size = MIB;
    let producer = Producer::new(nsqd.tcp_addr().to_string(), config).unwrap();
    within("publish", producer.publish(&t, "first"))
        .await
        .unwrap();
    let (code, text) =
        rejection(within("publish 105", producer.publish(&t, vec![b'a'; 105])).await);
    assert_eq!(code, ErrorCode::BadMessage);
    assert_eq!(text, "E_BAD_MESSAGE PUB message too big 105 > 100");
    within("publish after the rejection", producer.publish(&t, "next"))
        .await
        .expect("the next publish goes out on a new connection");
    let stats = producer.stats();
    assert_eq!(stats.reconnects, 1);
    assert_eq!(stats.acked, 2);
    assert_eq!(stats.rejected.get("E_BAD_MESSAGE"), Some(&1));
    assert_eq!(stats.rejected_total(), 1);
    assert_eq!(stats.unknown, 0);
    assert_eq!(nsqd.topic_depth("s23_sizes"), Some(9));
    within("close", producer.close()).await;
}

/// Scenario 24: DPUB 1000 ms is acknowledged and sits in the channel's deferred queue until
/// it is delivered; a defer above the producer's maximum is refused locally; with the maximum
/// raised on purpose, nsqd refuses 3600100 ms with its exact text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s24_deferred_publish() {
    let nsqd = Nsqd::start();
    nsqd.create_channel("s24_dpub", "ch");
    let t = topic("s24_dpub");
    let producer = Producer::new(nsqd.tcp_addr().to_string(), producer_config()).unwrap();

    within(
        "dpub",
        producer.deferred_publish(&t, Duration::from_millis(1000), "later"),
    )
    .await
    .expect("DPUB 1000 ms");
    let deferred = eventually(1, || {
        channel_number(&nsqd, "s24_dpub", "ch", "deferred_count")
    })
    .await;
    assert_eq!(
        deferred, 1,
        "the message waits in the channel's deferred queue"
    );
    assert_eq!(channel_number(&nsqd, "s24_dpub", "ch", "depth"), 0);

    let written = producer.stats().bytes_written;
    let too_long = Duration::from_millis(3_600_100);
    assert_eq!(
        invalid(producer.deferred_publish(&t, too_long, "x").await),
        InvalidPublish::DeferTooLong {
            delay: too_long,
            max: Duration::from_secs(3600)
        }
    );
    assert_eq!(producer.stats().bytes_written, written, "nothing sent");
    assert_eq!(producer.stats().reconnects, 0);
    within("close", producer.close()).await;

    let mut config = producer_config();
    config.limits.max_defer = Duration::from_secs(7200);
    let producer = Producer::new(nsqd.tcp_addr().to_string(), config).unwrap();
    let (code, text) =
        rejection(within("dpub", producer.deferred_publish(&t, too_long, "x")).await);
    assert_eq!(code, ErrorCode::Invalid);
    assert_eq!(
        text,
        "E_INVALID DPUB timeout 3600100 out of range 0-3600000"
    );
    within("publish after the rejection", producer.publish(&t, "now"))
        .await
        .expect("the next publish reconnects");
    let stats = producer.stats();
    assert_eq!(stats.reconnects, 1);
    assert_eq!(stats.rejected.get("E_INVALID"), Some(&1));
    within("close", producer.close()).await;

    // The deferred message is delivered once its time has come.
    let mut read = blocking(|| read_exactly(&nsqd, "s24_dpub", "ch", 2));
    read.sort();
    assert_eq!(read, [Bytes::from("later"), Bytes::from("now")]);
}

/// Scenario 25: the defer range is inclusive: exactly nsqd's `--max-req-timeout` (1 h) and
/// 0 are accepted. Sub-millisecond parts are truncated on the wire, so 1 h plus 999 µs is also
/// accepted. (A negative defer cannot be expressed: `Duration` is unsigned.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s25_deferred_publish_bounds() {
    let nsqd = Nsqd::start();
    nsqd.create_channel("s25_bounds", "ch");
    let t = topic("s25_bounds");
    let producer = Producer::new(nsqd.tcp_addr().to_string(), producer_config()).unwrap();
    let hour = Duration::from_millis(3_600_000);
    for delay in [hour, Duration::ZERO, hour + Duration::from_micros(999)] {
        within(
            "dpub",
            producer.deferred_publish(&t, delay, format!("{delay:?}")),
        )
        .await
        .unwrap_or_else(|err| panic!("DPUB {delay:?}: {err}"));
    }
    let deferred = eventually(2, || {
        channel_number(&nsqd, "s25_bounds", "ch", "deferred_count")
    })
    .await;
    assert_eq!(deferred, 2, "the two one-hour messages are deferred");
    let depth = eventually(1, || channel_number(&nsqd, "s25_bounds", "ch", "depth")).await;
    assert_eq!(depth, 1, "defer 0 is an ordinary message");
    let stats = producer.stats();
    assert_eq!(stats.acked, 3);
    assert_eq!(stats.reconnects, 0);
    within("close", producer.close()).await;
}

/// Scenario 26: an MPUB without messages is refused locally; nothing is sent, not even a
/// connection is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s26_empty_multi_publish() {
    let nsqd = Nsqd::start();
    let t = topic("s26_empty");
    let producer = Producer::new(nsqd.tcp_addr().to_string(), producer_config()).unwrap();
    assert_eq!(
        invalid(producer.multi_publish(&t, Vec::<Bytes>::new()).await),
        InvalidPublish::NoMessages
    );
    assert!(matches!(
        producer
            .multi_publish_async(&t, std::iter::empty::<Bytes>())
            .await,
        Err(PublishError::Invalid(InvalidPublish::NoMessages))
    ));
    assert_eq!(producer.state(), ProducerState::Idle, "no connection made");
    let stats = producer.stats();
    assert_eq!(stats.bytes_written, 0);
    assert_eq!(stats.queued, 0);
    assert_eq!(nsqd.topic_depth("s26_empty"), None);
    within("close", producer.close()).await;
}

/// Scenario 27: `Topic::new` refuses what nsqd refuses (or, for `a b`, silently
/// misroutes) and accepts the edge cases nsqd accepts, which publish fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s27_topic_validation() {
    for name in [
        "a b",
        "a:b",
        "",
        &"t".repeat(65),
        "test:ephemeral",
        "a/b",
        "a\nb",
    ] {
        let err = Topic::new(name).expect_err(name);
        assert!(matches!(
            PublishError::from(err),
            PublishError::InvalidTopic(_)
        ));
    }

    let nsqd = Nsqd::start();
    let producer = Producer::new(nsqd.tcp_addr().to_string(), producer_config()).unwrap();
    let long_ephemeral = format!("{}#ephemeral", "e".repeat(54));
    let long_plain = "p".repeat(64);
    for name in [
        "test-with_period.",
        "test#ephemeral",
        long_ephemeral.as_str(),
        long_plain.as_str(),
        "..",
    ] {
        let t = Topic::new(name).unwrap_or_else(|err| panic!("{name:?} is valid: {err}"));
        within("publish", producer.publish(&t, "x"))
            .await
            .unwrap_or_else(|err| panic!("publish to {name:?}: {err}"));
        assert_eq!(nsqd.topic_depth(name), Some(1), "{name:?}");
    }
    let stats = producer.stats();
    assert_eq!(stats.acked, 5);
    assert_eq!(stats.reconnects, 0);
    within("close", producer.close()).await;
}

/// With automatic batching (the default) nsqd judges a batch of PUBs as one MPUB. Here one
/// message is above nsqd's `--max-msg-size` (the producer's limit raised on purpose): every
/// publish of its batch is rejected with nsqd's MPUB text, and nsqd stored none of them; the
/// publishes after it go out on a new connection and are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_rejection_stores_none_of_the_batch() {
    let nsqd = Nsqd::start_with(NsqdOptions::new().max_msg_size(100));
    let t = topic("batched_rejection");
    let mut config = producer_config();
    config.limits.max_msg_size = MIB;
    let producer = Producer::new(nsqd.tcp_addr().to_string(), config).unwrap();
    // Queued before the first connection exists, so the router finds them all waiting and
    // sends them as one MPUB.
    let mut pending = Vec::new();
    for i in 0..50 {
        let body = if i == 20 {
            vec![b'x'; 105]
        } else {
            vec![b'y'; 10]
        };
        pending.push(producer.publish_async(&t, body).await.unwrap());
    }
    for publish in pending {
        match within("a batched publish", publish).await {
            Err(PublishError::Rejected { error: err, .. }) => {
                assert_eq!(
                    err.to_string(),
                    "E_BAD_MESSAGE MPUB message too big 105 > 100"
                );
            }
            other => panic!("every publish of the batch shares its fate, got {other:?}"),
        }
    }
    assert_eq!(
        nsqd.topic_depth("batched_rejection").unwrap_or(0),
        0,
        "nothing was stored"
    );

    let mut pending = Vec::new();
    for _ in 0..30 {
        pending.push(producer.publish_async(&t, vec![b'z'; 10]).await.unwrap());
    }
    for publish in pending {
        assert_eq!(within("a publish", publish).await, Ok(()));
    }
    assert_eq!(nsqd.topic_depth("batched_rejection"), Some(30));
    let stats = producer.stats();
    assert_eq!(stats.rejected.get("E_BAD_MESSAGE"), Some(&50));
    assert_eq!(stats.acked, 30);
    within("close", producer.close()).await;
}

/// Scenario 31, "fatal error mid-pipeline", against nsqd (`--max-msg-size=100`, producer
/// limits raised on purpose): 200 async publishes with a 105-byte message at index 100. The
/// publishes are queued before the first connection exists, so once it is up they go out
/// together and many sit on the wire behind the bad one. Those before it are acknowledged; it
/// is rejected with nsqd's text; those written behind it on the same connection are
/// `NotSent(Aborted)` (nsqd never executed them); any not written yet go out on the next
/// connection. nsqd's depth equals the number acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s31_fatal_error_mid_pipeline() {
    const COUNT: usize = 200;
    const BAD: usize = 100;
    let nsqd = Nsqd::start_with(NsqdOptions::new().max_msg_size(100));
    let t = topic("s31_pipeline");
    let mut config = producer_config();
    config.limits.max_msg_size = MIB;
    // One command per publish, so that the bad message is alone in its command (with batching
    // it would sink its whole batch: see `batched_rejection_stores_none_of_the_batch`).
    config.batching = false;
    let producer = Producer::new(nsqd.tcp_addr().to_string(), config).unwrap();

    let mut pending = Vec::with_capacity(COUNT);
    for i in 0..COUNT {
        let body = if i == BAD {
            Bytes::from(vec![b'x'; 105])
        } else {
            Bytes::from(format!("s31 {i}"))
        };
        pending.push(
            within("publish_async", producer.publish_async(&t, body))
                .await
                .expect("queued"),
        );
    }
    let results = within("results", futures::future::join_all(pending)).await;

    for (i, result) in results[..BAD].iter().enumerate() {
        assert_eq!(*result, Ok(()), "publish {i} precedes the bad one");
    }
    let (code, text) = rejection(results[BAD].clone());
    assert_eq!(code, ErrorCode::BadMessage);
    assert_eq!(text, "E_BAD_MESSAGE PUB message too big 105 > 100");
    let behind = &results[BAD + 1..];
    let aborted = behind
        .iter()
        .take_while(|r| **r == Err(PublishError::NotSent(NotSentReason::Aborted)))
        .count();
    for (i, result) in behind.iter().enumerate().skip(aborted) {
        assert_eq!(
            *result,
            Ok(()),
            "publish {}: after the aborted ones, the rest go out on the next connection",
            BAD + 1 + i
        );
    }
    assert!(
        aborted >= 1,
        "at least one request was written behind the bad one: {:?}",
        &behind[..3]
    );
    assert!(results[BAD + 1].as_ref().unwrap_err().is_retry_safe());
    eprintln!("s31: {aborted} requests were aborted behind the rejected one");

    let acked = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(acked, COUNT - 1 - aborted);
    assert_eq!(
        nsqd.topic_depth("s31_pipeline"),
        Some(acked as u64),
        "nsqd stored exactly the acknowledged messages"
    );
    let stats = producer.stats();
    assert_eq!(stats.acked, acked as u64);
    assert_eq!(stats.not_sent, aborted as u64);
    assert_eq!(stats.rejected.get("E_BAD_MESSAGE"), Some(&1));
    assert_eq!(stats.unknown, 0);

    within("publish after the rejection", producer.publish(&t, "later"))
        .await
        .expect("publishing continues on a new connection");
    let stats = producer.stats();
    assert_eq!(stats.reconnects, 1);
    assert_eq!(nsqd.topic_depth("s31_pipeline"), Some(acked as u64 + 1));
    within("close", producer.close()).await;
}

/// Scenario 31 again, with nsqd's answer arriving while the producer is still writing: 5 MB
/// are queued behind a rejected message, so nsqd closes the connection (with a reset, as bytes
/// are left unread) in the middle of the producer's writes and the next write fails. The
/// replies that arrived before the failure still count: the first publish is acknowledged and
/// the bad one is rejected with nsqd's text, rather than both being reported unknown. This pins
/// that the connection keeps reading after a failed write until nsqd's side ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s31_rejection_while_still_writing() {
    const FOLLOWERS: usize = 5000;
    let nsqd = Nsqd::start_with(NsqdOptions::new().max_msg_size(1000));
    let t = topic("s31_writing");
    let mut config = producer_config();
    config.limits.max_msg_size = MIB;
    // One command per publish, so that the bad message is alone in its command (with batching
    // it would sink its whole batch: see `batched_rejection_stores_none_of_the_batch`).
    config.batching = false;
    let producer = Producer::new(nsqd.tcp_addr().to_string(), config).unwrap();
    let first = producer.publish_async(&t, "first").await.expect("queued");
    let bad = producer
        .publish_async(&t, vec![b'x'; 1001])
        .await
        .expect("queued");
    let mut followers = Vec::with_capacity(FOLLOWERS);
    for i in 0..FOLLOWERS {
        let mut body = format!("follower {i} ").into_bytes();
        body.resize(1000, b'f');
        followers.push(producer.publish_async(&t, body).await.expect("queued"));
    }
    assert_eq!(within("first", first).await, Ok(()));
    let (code, text) = rejection(within("bad", bad).await);
    assert_eq!(code, ErrorCode::BadMessage);
    assert_eq!(text, "E_BAD_MESSAGE PUB message too big 1001 > 1000");
    let mut aborted = 0;
    for (i, follower) in followers.into_iter().enumerate() {
        match within("follower", follower).await {
            Ok(()) => {}
            Err(PublishError::NotSent(NotSentReason::Aborted)) => aborted += 1,
            other => panic!("follower {i}: {other:?}"),
        }
    }
    eprintln!("s31_rejection_while_still_writing: {aborted} aborted");
    let stats = producer.stats();
    assert_eq!(stats.unknown, 0);
    assert_eq!(stats.acked, (1 + FOLLOWERS - aborted) as u64);
    assert_eq!(
        nsqd.topic_depth("s31_writing"),
        Some((1 + FOLLOWERS - aborted) as u64)
    );
    within("close", producer.close()).await;
}
