//! The `metrics` feature against a scripted nsqd: every outcome, the gauges, batching,
//! reconnects and failed connection attempts are reported under the documented names and
//! labels.
//!
//! Each test installs a recorder of its own for its thread. The tests run on tokio's
//! current-thread runtime, so the producer (whose handles are registered when it is created)
//! and its router task run on that thread and report to that recorder.

mod common;

use nsq_test_support::{topic, within};
use std::collections::BTreeMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use nsq_producer::{NotSentReason, Producer, ProducerConfig, PublishError};

use common::*;

/// One metric series: its name and its labels other than `addr`, as `key=value`.
type Series = (String, Vec<String>);

/// The metrics recorded so far, by series, for the producer at `addr`. Every series must carry
/// `addr`.
///
/// The debugging recorder hands out each value once: a snapshot resets counters and gauges to
/// zero and empties histograms. The producer only ever increments and decrements its gauges, so
/// adding each snapshot to the ones before gives the totals.
struct Recorded {
    snapshotter: Snapshotter,
    addr: String,
    series: BTreeMap<Series, DebugValue>,
}

impl Recorded {
    fn new(recorder: &DebuggingRecorder, addr: &str) -> Self {
        Self {
            snapshotter: recorder.snapshotter(),
            addr: addr.to_owned(),
            series: BTreeMap::new(),
        }
    }

    /// Takes a snapshot and adds it to the totals.
    fn update(&mut self) -> &BTreeMap<Series, DebugValue> {
        for (key, _unit, description, value) in self.snapshotter.snapshot().into_vec() {
            let key = key.key();
            let name = key.name().to_owned();
            assert!(name.starts_with("nsq_producer_"), "{name}");
            assert!(description.is_some(), "{name} has no description");
            let mut labels = Vec::new();
            let mut own_addr = None;
            for label in key.labels() {
                if label.key() == "addr" {
                    own_addr = Some(label.value().to_owned());
                } else {
                    labels.push(format!("{}={}", label.key(), label.value()));
                }
            }
            assert_eq!(own_addr.as_deref(), Some(&*self.addr), "{name} {labels:?}");
            labels.sort();
            match (self.series.get_mut(&(name.clone(), labels.clone())), value) {
                (Some(DebugValue::Counter(total)), DebugValue::Counter(n)) => *total += n,
                (Some(DebugValue::Gauge(total)), DebugValue::Gauge(delta)) => total.0 += delta.0,
                (Some(DebugValue::Histogram(total)), DebugValue::Histogram(values)) => {
                    total.extend(values);
                }
                (Some(total), value) => panic!("{name}: {total:?} then {value:?}"),
                (None, value) => {
                    self.series.insert((name, labels), value);
                }
            }
        }
        &self.series
    }
}

fn series(name: &str, labels: &[&str]) -> Series {
    let mut labels: Vec<String> = labels.iter().map(|l| (*l).to_owned()).collect();
    labels.sort();
    (name.to_owned(), labels)
}

fn counter(snapshot: &BTreeMap<Series, DebugValue>, name: &str, labels: &[&str]) -> u64 {
    match snapshot.get(&series(name, labels)) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name} {labels:?}: expected a counter, got {other:?}"),
    }
}

fn gauge(snapshot: &BTreeMap<Series, DebugValue>, name: &str) -> f64 {
    match snapshot.get(&series(name, &[])) {
        Some(DebugValue::Gauge(value)) => value.0,
        other => panic!("{name}: expected a gauge, got {other:?}"),
    }
}

fn histogram(snapshot: &BTreeMap<Series, DebugValue>, name: &str, labels: &[&str]) -> Vec<f64> {
    match snapshot.get(&series(name, labels)) {
        Some(DebugValue::Histogram(values)) => values.iter().map(|v| v.0).collect(),
        other => panic!("{name} {labels:?}: expected a histogram, got {other:?}"),
    }
}

const PUBLISHES: &str = "nsq_producer_publishes_total";
const DURATION: &str = "nsq_producer_publish_duration_seconds";

/// One producer, unbatched and failing fast, through: an acknowledged publish; a rejection
/// with a request written behind it; a reconnect; a connection lost with a request in flight; a
/// failed connection attempt that fails a queued publish; another reconnect; and a publish
/// that times out and is acknowledged within the stall grace.
#[tokio::test(start_paused = true)]
async fn every_outcome_is_counted_under_its_labels() {
    let recorder = DebuggingRecorder::new();
    let _local = metrics::set_default_local_recorder(&recorder);

    let server = FakeServer::bind().await;
    let addr = server.addr();
    let mut recorded = Recorded::new(&recorder, &addr);
    let mut config = fail_fast();
    config.publish_timeout = Some(Duration::from_secs(2));
    // Long enough that the late reply always comes within it.
    config.stall_grace = Duration::from_secs(60);
    let (producer, mut nsqd) = connect(&server, config).await;

    // Acknowledged.
    let publish = spawn_publish(&producer, "a");
    assert_eq!(expect_pub(&mut nsqd).await, "a");
    nsqd.send_ok().await;
    assert_eq!(within("a", publish).await.unwrap(), Ok(()));

    // Rejected, and the request written behind it aborted.
    let bad = spawn_publish(&producer, "bad");
    assert_eq!(expect_pub(&mut nsqd).await, "bad");
    let behind = spawn_publish(&producer, "behind");
    assert_eq!(expect_pub(&mut nsqd).await, "behind");
    nsqd.send_error("E_BAD_MESSAGE PUB message too big 3 > 2")
        .await;
    rejection(within("bad", bad).await.unwrap());
    assert_eq!(within("behind", behind).await.unwrap(), aborted());
    within("EOF after the rejection", nsqd.expect_eof()).await;
    drop(nsqd);

    // Reconnected; the connection is lost with a request in flight.
    let mut nsqd = server.accept().await;
    let lost = spawn_publish(&producer, "lost");
    assert_eq!(expect_pub(&mut nsqd).await, "lost");
    drop(nsqd);
    unknown_cause(within("lost", lost).await.unwrap());

    // The next attempt fails in the handshake, and with fail_fast the queued publish fails.
    let queued = producer
        .publish_async(&topic(TOPIC), "queued")
        .await
        .unwrap();
    drop(server.accept_tcp().await);
    assert!(matches!(
        within("queued", queued).await,
        Err(PublishError::NotSent(NotSentReason::Unavailable(_)))
    ));

    // Reconnected; a publish times out, then its reply comes within the stall grace.
    let mut nsqd = server.accept().await;
    let slow = spawn_publish(&producer, "slow");
    assert_eq!(expect_pub(&mut nsqd).await, "slow");
    assert_eq!(within("slow", slow).await.unwrap(), timed_out(&producer));
    nsqd.send_ok().await;
    let last = spawn_publish(&producer, "last");
    assert_eq!(expect_pub(&mut nsqd).await, "last");
    nsqd.send_ok().await;
    assert_eq!(within("last", last).await.unwrap(), Ok(()));

    let stats = producer.stats();
    let m = recorded.update();
    assert_eq!(counter(m, PUBLISHES, &["outcome=acked"]), 3);
    assert_eq!(counter(m, PUBLISHES, &["outcome=acked"]), stats.acked);
    assert_eq!(
        counter(m, "nsq_producer_messages_total", &["outcome=acked"]),
        stats.acked_messages
    );
    assert_eq!(stats.acked_messages, 3);
    assert_eq!(
        counter(m, PUBLISHES, &["outcome=rejected", "code=E_BAD_MESSAGE"]),
        1
    );
    assert_eq!(
        counter(m, PUBLISHES, &["outcome=not_sent", "reason=aborted"]),
        1
    );
    assert_eq!(
        counter(m, PUBLISHES, &["outcome=not_sent", "reason=unavailable"]),
        1
    );
    for reason in ["deadline_expired", "queue_full", "closed"] {
        let labels = ["outcome=not_sent", &format!("reason={reason}")];
        assert_eq!(counter(m, PUBLISHES, &labels), 0, "{reason}");
    }
    assert_eq!(stats.not_sent, 2);
    assert_eq!(
        counter(m, PUBLISHES, &["outcome=unknown", "reason=connection_lost"]),
        1
    );
    for reason in ["mpub_failed", "closed"] {
        let labels = ["outcome=unknown", &format!("reason={reason}")];
        assert_eq!(counter(m, PUBLISHES, &labels), 0, "{reason}");
    }
    assert_eq!(stats.unknown, 1);
    assert_eq!(counter(m, "nsq_producer_timed_out_total", &[]), 1);
    assert_eq!(counter(m, "nsq_producer_reconnects_total", &[]), 2);
    assert_eq!(counter(m, "nsq_producer_connect_failures_total", &[]), 1);
    assert_eq!(stats.connect_failures, 1);
    // Six PUBs to `t`, each "PUB t\n", the size and the body.
    let bodies = ["a", "bad", "behind", "lost", "slow", "last"];
    let bytes: usize = bodies.iter().map(|body| 10 + body.len()).sum();
    assert_eq!(
        counter(m, "nsq_producer_bytes_written_total", &[]),
        bytes as u64
    );
    assert_eq!(
        counter(m, "nsq_producer_bytes_written_total", &[]),
        stats.bytes_written
    );
    assert_eq!(gauge(m, "nsq_producer_queued"), 0.0);
    assert_eq!(gauge(m, "nsq_producer_in_flight"), 0.0);
    // Batching is off.
    assert!(histogram(m, "nsq_producer_batch_size", &[]).is_empty());

    // One duration per result a caller got; the timed-out caller's is the publish timeout.
    assert_eq!(histogram(m, DURATION, &["outcome=acked"]).len(), 2);
    assert_eq!(histogram(m, DURATION, &["outcome=rejected"]).len(), 1);
    assert_eq!(histogram(m, DURATION, &["outcome=not_sent"]).len(), 2);
    assert_eq!(histogram(m, DURATION, &["outcome=unknown"]).len(), 1);
    let timed_out = histogram(m, DURATION, &["outcome=timed_out"]);
    assert_eq!(timed_out.len(), 1);
    assert!(timed_out[0] >= 2.0, "{timed_out:?}");

    within("close", producer.close()).await;
}

/// PUBs queued before the connection go out as one MPUB; nsqd fails it with `E_MPUB_FAILED`,
/// and the DPUB written behind it is aborted. On the next connection, two more PUBs go out
/// batched and are acknowledged.
#[tokio::test]
async fn batches_and_mpub_failures_are_reported() {
    let recorder = DebuggingRecorder::new();
    let _local = metrics::set_default_local_recorder(&recorder);

    let server = FakeServer::bind().await;
    let addr = server.addr();
    let mut recorded = Recorded::new(&recorder, &addr);
    let producer = Producer::new(&addr, ProducerConfig::default()).unwrap();
    let (batched, deferred) = queue_abc_and_dpub(&producer).await;
    let m = recorded.update();
    assert_eq!(gauge(m, "nsq_producer_queued"), 4.0);
    assert_eq!(gauge(m, "nsq_producer_in_flight"), 0.0);

    let mut nsqd = server.accept().await;
    expect_abc_then_dpub(&mut nsqd).await;
    let m = recorded.update();
    assert_eq!(gauge(m, "nsq_producer_queued"), 0.0);
    assert_eq!(gauge(m, "nsq_producer_in_flight"), 4.0);
    assert_eq!(histogram(m, "nsq_producer_batch_size", &[]), [3.0]);

    nsqd.send_error("E_MPUB_FAILED MPUB failed exiting").await;
    for publish in batched {
        assert!(matches!(
            within("a batched publish", publish).await,
            Err(PublishError::MaybeStored { .. })
        ));
    }
    assert_eq!(within("the DPUB", deferred).await, aborted());
    drop(nsqd);

    let mut nsqd = server.accept().await;
    let mut batched = Vec::new();
    for body in ["e", "f"] {
        batched.push(producer.publish_async(&topic(TOPIC), body).await.unwrap());
    }
    assert_eq!(expect_mpub(&mut nsqd, TOPIC).await, ["e", "f"]);
    nsqd.send_ok().await;
    for publish in batched {
        assert_eq!(within("a batched publish", publish).await, Ok(()));
    }

    let stats = producer.stats();
    let m = recorded.update();
    assert_eq!(
        counter(m, PUBLISHES, &["outcome=unknown", "reason=mpub_failed"]),
        3
    );
    assert_eq!(stats.unknown, 3);
    assert_eq!(
        counter(m, PUBLISHES, &["outcome=not_sent", "reason=aborted"]),
        1
    );
    assert_eq!(counter(m, PUBLISHES, &["outcome=acked"]), 2);
    assert_eq!(counter(m, "nsq_producer_reconnects_total", &[]), 1);
    assert_eq!(counter(m, "nsq_producer_connect_failures_total", &[]), 0);
    assert_eq!(
        counter(m, "nsq_producer_bytes_written_total", &[]),
        stats.bytes_written
    );
    assert_eq!(gauge(m, "nsq_producer_queued"), 0.0);
    assert_eq!(gauge(m, "nsq_producer_in_flight"), 0.0);
    assert_eq!(histogram(m, "nsq_producer_batch_size", &[]), [3.0, 2.0]);
    assert_eq!(histogram(m, DURATION, &["outcome=unknown"]).len(), 3);
    assert_eq!(histogram(m, DURATION, &["outcome=not_sent"]).len(), 1);
    assert_eq!(histogram(m, DURATION, &["outcome=acked"]).len(), 2);
    // Rejections are registered by code when they happen: none here.
    let rejected = |(name, labels): &Series| {
        name == PUBLISHES && labels.iter().any(|l| l == "outcome=rejected")
    };
    assert!(!m.keys().any(rejected), "nothing was rejected");
    assert!(histogram(m, DURATION, &["outcome=rejected"]).is_empty());

    within("close", producer.close()).await;
}

/// Two producers report under their own `addr`.
#[tokio::test]
async fn each_producer_reports_under_its_address() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);

    let first = FakeServer::bind().await;
    let second = FakeServer::bind().await;
    let (one, mut nsqd_one) = connect(&first, unbatched()).await;
    let (two, _nsqd_two) = connect(&second, unbatched()).await;
    let publish = spawn_publish(&one, "a");
    assert_eq!(expect_pub(&mut nsqd_one).await, "a");
    nsqd_one.send_ok().await;
    assert_eq!(within("a", publish).await.unwrap(), Ok(()));

    let mut acked = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let outcome = key
            .labels()
            .any(|l| l.key() == "outcome" && l.value() == "acked");
        if key.name() == PUBLISHES && outcome {
            let addr = key.labels().find(|l| l.key() == "addr").unwrap();
            acked.insert(addr.value().to_owned(), value);
        }
    }
    assert_eq!(
        acked,
        BTreeMap::from([
            (first.addr(), DebugValue::Counter(1)),
            (second.addr(), DebugValue::Counter(0)),
        ])
    );
    within("close", one.close()).await;
    within("close", two.close()).await;
}
