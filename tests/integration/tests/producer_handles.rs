//! nsq-producer's handles against a real nsqd v1.3.0: fire-and-forget publishes that are
//! delivered, `flush` as the one wait, and `close_now` while nsqd is frozen.

mod common;

use std::time::{Duration, Instant};

use nsq_producer::{NotSentReason, Producer, PublishError};
use nsq_test_support::{Nsqd, topic, within};

use common::{eventually, producer_config};

/// 20,000 `publish_async` handles dropped at once (fire and forget), then `flush` and `close`:
/// every message is delivered, nsqd's depth is 20,000, and the counters say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_handles_are_delivered_and_flush_waits_for_them() {
    const N: u64 = 20_000;
    let nsqd = Nsqd::start();
    let producer = Producer::new(nsqd.tcp_addr().to_string(), producer_config()).unwrap();
    let t = topic("detached");
    for i in 0..N {
        drop(
            producer
                .publish_async(&t, format!("m{i}"))
                .await
                .expect("queued"),
        );
    }
    within("flush", producer.flush()).await;
    let stats = producer.stats();
    assert_eq!(
        (stats.acked, stats.withdrawn, stats.not_sent, stats.unknown),
        (N, 0, 0, 0)
    );
    let closed = within("close", producer.close()).await;
    assert_eq!(closed.acked, N);
    assert_eq!(
        eventually(Some(N), || nsqd.topic_depth("detached")).await,
        Some(N)
    );
}

/// nsqd frozen with SIGSTOP and publishes written and queued behind it: `close_now` returns at
/// once, the written ones are unknown, the queued ones not sent, and the counts add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_now_returns_at_once_while_nsqd_is_frozen() {
    let nsqd = Nsqd::start();
    let mut config = producer_config();
    config.max_pipelined = 4;
    config.batching = false;
    let producer = Producer::connect(nsqd.tcp_addr().to_string(), config)
        .await
        .unwrap();
    let t = topic("close_now");
    within("a publish", producer.publish(&t, "before"))
        .await
        .unwrap();
    nsqd.pause();
    let mut pending = Vec::new();
    for i in 0..10 {
        pending.push(producer.publish_async(&t, format!("m{i}")).await.unwrap());
    }
    // Let the router write what the window takes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let stats = within("close_now", producer.close_now()).await;
    let took = started.elapsed();
    nsqd.resume();
    assert!(took < Duration::from_secs(1), "close_now took {took:?}");
    assert_eq!((stats.acked, stats.unknown, stats.not_sent), (1, 4, 6));
    let mut unknown = 0;
    let mut not_sent = 0;
    for publish in pending {
        match within("a result", publish).await {
            Err(PublishError::Unknown { .. }) => unknown += 1,
            Err(PublishError::NotSent(NotSentReason::Closed)) => not_sent += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((unknown, not_sent), (4, 6));
}

/// The number in a warning's `name=value` field.
fn field(warning: &str, name: &str) -> u64 {
    let start = warning
        .find(&format!(" {name}="))
        .unwrap_or_else(|| panic!("no {name} in {warning}"))
        + name.len()
        + 2;
    let digits: String = warning[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

/// A program that returns from `main` after 20,000 fire-and-forget publishes, without `flush`
/// or `close`: dropping the producer warns with how many were still queued or in flight, and
/// the runtime's end warns with how many were not sent and how many were written without a
/// reply. Everything else is in nsqd: what nsqd stored lies between what was not reported and
/// that plus the written ones, so nothing vanished without a word.
#[test]
fn returning_from_main_without_flush_says_what_was_left() {
    const N: u64 = 20_000;
    let nsqd = Nsqd::start();
    let warnings = nsq_test_support::Warnings::default();
    let _guard = warnings.set_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let producer = Producer::connect(nsqd.tcp_addr().to_string(), producer_config())
            .await
            .unwrap();
        let t = topic("left_at_exit");
        for i in 0..N {
            drop(
                producer
                    .publish_async(&t, format!("m{i}"))
                    .await
                    .expect("queued"),
            );
            // Now and then the router gets to run, so that part is acknowledged.
            if i % 2_000 == 1_999 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });
    let dropped = warnings.taken();
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    let pending = field(&dropped[0], "queued") + field(&dropped[0], "in_flight");
    assert!(pending > 0, "{dropped:?}");

    drop(runtime);
    let shut_down = warnings.taken();
    assert_eq!(shut_down.len(), 1, "{shut_down:?}");
    let (unsent, written) = (
        field(&shut_down[0], "unsent"),
        field(&shut_down[0], "written"),
    );
    assert!(unsent + written <= pending, "{dropped:?} {shut_down:?}");

    // nsqd still executes what reached it before the connection closed; wait for the depth to
    // settle.
    let mut stored = nsqd.topic_depth("left_at_exit").unwrap_or(0);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = nsqd.topic_depth("left_at_exit").unwrap_or(0);
        if now == stored {
            break;
        }
        stored = now;
    }
    assert!(
        (N - unsent - written..=N - unsent).contains(&stored),
        "stored {stored}, not sent {unsent}, written {written}"
    );
}
