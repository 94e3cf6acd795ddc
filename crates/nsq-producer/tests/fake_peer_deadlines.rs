//! Per-call deadlines (`timeout`, `deadline`, `no_timeout` on the publish futures), for every
//! publish kind and in every state a request can be in: waiting for a connection, written and
//! unanswered, queued behind a full pipeline. Deadlines of one's own arrive out of order with
//! the configured ones, and each must still be kept on time.
//!
//! Time runs on tokio's paused clock (see `common/mod.rs`), so the latencies checked here are
//! the producer's own timers. "Within its deadline plus 50 ms" is a correctness check.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use nsq_producer::{NotSentReason, Producer, PublishError};
use nsq_test_support::{FakeNsqd, topic, within};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use common::*;

const MARGIN: Duration = Duration::from_millis(50);

type Outcome = Result<(), PublishError>;

/// A publish under way: its kind, its timeout, and its task, which returns how long it took and
/// how it ended.
type Timed = (&'static str, Duration, JoinHandle<(Duration, Outcome)>);

/// The six ways to publish, each with `timeout` of its own, as one future per kind, in the order
/// PUB, MPUB, DPUB, then their `_async` forms (queued, then awaited through the handle).
fn every_kind(producer: &Producer, timeouts: [Duration; 6]) -> Vec<Timed> {
    let kinds = [
        "publish",
        "multi_publish",
        "deferred_publish",
        "publish_async",
        "multi_publish_async",
        "deferred_publish_async",
    ];
    kinds
        .into_iter()
        .zip(timeouts)
        .map(|(kind, timeout)| {
            let producer = producer.clone();
            let task = tokio::spawn(async move {
                let started = Instant::now();
                let t = topic(TOPIC);
                let delay = Duration::from_millis(10);
                let outcome: Pin<Box<dyn Future<Output = Outcome> + Send + '_>> = match kind {
                    "publish" => Box::pin(producer.publish(&t, kind).timeout(timeout)),
                    "multi_publish" => {
                        Box::pin(producer.multi_publish(&t, [kind, kind]).timeout(timeout))
                    }
                    "deferred_publish" => {
                        Box::pin(producer.deferred_publish(&t, delay, kind).timeout(timeout))
                    }
                    "publish_async" => Box::pin(async {
                        producer
                            .publish_async(&t, kind)
                            .timeout(timeout)
                            .await?
                            .await
                    }),
                    "multi_publish_async" => Box::pin(async {
                        let queued = producer.multi_publish_async(&t, [kind, kind]);
                        queued.timeout(timeout).await?.await
                    }),
                    _ => Box::pin(async {
                        let queued = producer.deferred_publish_async(&t, delay, kind);
                        queued.timeout(timeout).await?.await
                    }),
                };
                let outcome = outcome.await;
                (started.elapsed(), outcome)
            });
            (kind, timeout, task)
        })
        .collect()
}

/// Checks that each publish resolved with `expected` at its own deadline.
async fn resolved_at_their_deadlines(publishes: Vec<Timed>, expected: impl Fn(&Outcome) -> bool) {
    for (kind, timeout, task) in publishes {
        let (elapsed, outcome) = within(kind, task).await.unwrap();
        assert!(expected(&outcome), "{kind}: {outcome:?}");
        assert!(
            elapsed >= timeout && elapsed <= timeout + MARGIN,
            "{kind} with a {timeout:?} timeout resolved after {elapsed:?}"
        );
    }
}

/// Timeouts in decreasing order: every one is due before those queued ahead of it.
fn decreasing() -> [Duration; 6] {
    [600, 500, 400, 300, 200, 100].map(Duration::from_millis)
}

/// A peer that never answers the handshake. Behind a publish with the configured 30 s, each
/// kind of publish with a shorter deadline of its own fails unsent at that deadline, though
/// every one of them is due before the requests queued ahead of it.
#[tokio::test(start_paused = true)]
async fn per_call_deadlines_hold_while_waiting_for_a_connection() {
    let server = FakeServer::bind().await;
    let mut config = unbatched();
    config.publish_timeout = Some(Duration::from_secs(30));
    let producer = Producer::new(server.addr(), config).unwrap();
    let first = spawn_publish(&producer, "configured");
    let _hung = FakeNsqd::new(server.accept_tcp().await);
    let publishes = every_kind(&producer, decreasing());
    resolved_at_their_deadlines(publishes, |outcome| {
        *outcome == Err(PublishError::NotSent(NotSentReason::DeadlineExpired))
    })
    .await;
    assert!(!first.is_finished(), "the configured 30 s is not up");
    let stats = producer.close_now().await;
    assert_eq!(stats.not_sent, 7);
    assert_eq!(within("the first", first).await.unwrap(), not_sent_closed());
}

fn not_sent_closed() -> Outcome {
    Err(PublishError::NotSent(NotSentReason::Closed))
}

/// Every kind written and left unanswered: each caller is told `TimedOut` at its own deadline.
/// A short deadline of one's own does not make the producer judge nsqd slow: the connection
/// stays up, the late replies are consumed, and the next publish goes out on it.
#[tokio::test(start_paused = true)]
async fn per_call_deadlines_time_out_written_requests_without_dropping_the_connection() {
    let server = FakeServer::bind().await;
    let mut config = unbatched();
    config.publish_timeout = Some(Duration::from_secs(10));
    config.stall_grace = Duration::from_secs(1);
    let (producer, mut nsqd) = connect(&server, config).await;
    let first = spawn_publish(&producer, "configured");
    assert_eq!(expect_pub(&mut nsqd).await, "configured");
    let publishes = every_kind(&producer, decreasing());
    for _ in 0..6 {
        within("a command", nsqd.expect_command()).await;
    }
    resolved_at_their_deadlines(publishes, |outcome| *outcome == timed_out(&producer)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for _ in 0..7 {
        nsqd.send_ok().await;
    }
    assert_eq!(within("the first", first).await.unwrap(), Ok(()));
    let next = spawn_publish(&producer, "next");
    assert_eq!(
        expect_pub(&mut nsqd).await,
        "next",
        "on the same connection"
    );
    nsqd.send_ok().await;
    assert_eq!(within("next", next).await.unwrap(), Ok(()));
    let stats = producer.stats();
    assert_eq!((stats.timed_out, stats.acked, stats.reconnects), (6, 8, 0));
    server.assert_no_connection_waiting();
}

/// A deadline of one's own may be later than the configured one: with a 200 ms publish timeout,
/// a publish given 5 s waits 2 s for its reply, and the connection is not dropped as stalled
/// meanwhile. An ordinary publish written behind it times out at its own 200 ms.
#[tokio::test(start_paused = true)]
async fn a_longer_deadline_of_ones_own_is_kept_too() {
    let server = FakeServer::bind().await;
    let mut config = unbatched();
    config.publish_timeout = Some(Duration::from_millis(200));
    config.stall_grace = Duration::from_millis(100);
    let (producer, mut nsqd) = connect(&server, config).await;
    let patient = {
        let producer = producer.clone();
        tokio::spawn(async move {
            let publish = producer.publish(&topic(TOPIC), "patient");
            publish.timeout(Duration::from_secs(5)).await
        })
    };
    assert_eq!(expect_pub(&mut nsqd).await, "patient");
    let started = Instant::now();
    let ordinary = spawn_publish(&producer, "ordinary");
    assert_eq!(expect_pub(&mut nsqd).await, "ordinary");
    let outcome = within("the ordinary publish", ordinary).await.unwrap();
    assert_eq!(outcome, timed_out(&producer));
    let elapsed = started.elapsed();
    assert!(
        elapsed <= Duration::from_millis(200) + MARGIN,
        "{elapsed:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    nsqd.send_ok().await;
    nsqd.send_ok().await;
    assert_eq!(
        within("the patient publish", patient).await.unwrap(),
        Ok(())
    );
    assert_eq!(producer.stats().reconnects, 0);
    server.assert_no_connection_waiting();
}

/// With one request allowed in flight, a publish queued behind it with a 100 ms deadline fails
/// unsent at 100 ms, while the first still waits for its reply; it is never written.
#[tokio::test(start_paused = true)]
async fn per_call_deadline_holds_behind_a_full_pipeline() {
    let server = FakeServer::bind().await;
    let mut config = unbatched();
    config.max_pipelined = 1;
    let (producer, mut nsqd) = connect(&server, config).await;
    let first = spawn_publish(&producer, "first");
    assert_eq!(expect_pub(&mut nsqd).await, "first");
    let started = Instant::now();
    let short = producer
        .publish(&topic(TOPIC), "short")
        .timeout(Duration::from_millis(100))
        .await;
    assert_eq!(
        short,
        Err(PublishError::NotSent(NotSentReason::DeadlineExpired))
    );
    assert!(started.elapsed() <= Duration::from_millis(100) + MARGIN);
    let third = spawn_publish(&producer, "third");
    nsqd.send_ok().await;
    assert_eq!(within("the first", first).await.unwrap(), Ok(()));
    assert_eq!(
        expect_pub(&mut nsqd).await,
        "third",
        "`short` was never written"
    );
    nsqd.send_ok().await;
    assert_eq!(within("the third", third).await.unwrap(), Ok(()));
}

/// `deadline` in the past fails at once, unsent and never queued; `no_timeout` waits past
/// the configured timeout (and the connection is not judged stalled for it).
#[tokio::test(start_paused = true)]
async fn deadline_and_no_timeout() {
    let server = FakeServer::bind().await;
    let mut config = unbatched();
    config.publish_timeout = Some(Duration::from_millis(100));
    config.stall_grace = Duration::from_millis(100);
    let (producer, mut nsqd) = connect(&server, config).await;
    let past = producer
        .publish(&topic(TOPIC), "late")
        .deadline(Instant::now())
        .await;
    assert_eq!(
        past,
        Err(PublishError::NotSent(NotSentReason::DeadlineExpired))
    );
    let stats = producer.stats();
    assert_eq!(
        (stats.queued, stats.bytes_written, stats.not_sent),
        (0, 0, 1)
    );

    let unbounded = {
        let producer = producer.clone();
        tokio::spawn(async move {
            producer
                .publish(&topic(TOPIC), "whenever")
                .no_timeout()
                .await
        })
    };
    assert_eq!(expect_pub(&mut nsqd).await, "whenever");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!unbounded.is_finished());
    nsqd.send_ok().await;
    assert_eq!(
        within("the unbounded publish", unbounded).await.unwrap(),
        Ok(())
    );
    assert_eq!(producer.stats().reconnects, 0);
}
