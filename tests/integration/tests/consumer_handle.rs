//! `ConsumerHandle` against a real nsqd v1.3.0: `set_max_in_flight` takes effect at once in
//! both directions, a lower value holds while more than it is in flight, and `is_starved`
//! follows what is in flight.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use nsq_consumer::{Consumer, ConsumerConfig, Message};
use nsq_producer::Producer;
use nsq_test_support::{ChannelSnapshot, Nsqd, topic};

const CHANNEL: &str = "handle";
/// Far above what nsqd takes to act on a RDY (well under a millisecond here).
const MARGIN: Duration = Duration::from_secs(5);

/// Polls the channel until `done` holds, or fails after [`MARGIN`].
async fn until(nsqd: &Nsqd, topic: &str, what: &str, done: impl Fn(&ChannelSnapshot) -> bool) {
    let start = Instant::now();
    loop {
        let snapshot = nsqd
            .channel_snapshot(topic, CHANNEL)
            .expect("channel exists");
        if done(&snapshot) {
            return;
        }
        assert!(start.elapsed() < MARGIN, "{what}: {snapshot:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Takes `n` messages from the stream.
async fn take(consumer: &mut Consumer, n: usize) -> Vec<Message> {
    let mut taken = Vec::with_capacity(n);
    while taken.len() < n {
        let next = tokio::time::timeout(MARGIN, consumer.next()).await;
        taken.push(next.expect("a message in time").expect("consumer running"));
    }
    taken
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_max_in_flight_takes_effect_at_once_and_is_starved_follows() {
    let nsqd = Nsqd::start();
    let topic = topic("handle");
    let producer = Producer::connect(nsqd.tcp_addr().to_string(), Default::default())
        .await
        .unwrap();
    let bodies: Vec<Bytes> = (0..200).map(|i| Bytes::from(format!("{i}"))).collect();
    producer.multi_publish(&topic, bodies).await.unwrap();
    producer.close().await;

    let mut config = ConsumerConfig::default();
    config.max_in_flight = 50;
    let mut consumer = Consumer::builder(topic.as_str(), CHANNEL)
        .unwrap()
        .config(config)
        .nsqd(nsqd.tcp_addr().to_string())
        .connect()
        .await
        .unwrap();
    let handle = consumer.handle();

    // Held unanswered: 50 in flight, RDY 50, starved.
    let mut held = take(&mut consumer, 50).await;
    until(&nsqd, topic.as_str(), "RDY 50 with 50 in flight", |s| {
        s.total_ready() == 50 && s.in_flight_count == 50
    })
    .await;
    assert!(handle.is_starved());
    assert_eq!(handle.stats().total_rdy, 50);

    // Lowered: nsqd sees RDY 10 at once, and nothing more arrives while 50 are held.
    handle.set_max_in_flight(10);
    assert_eq!(handle.max_in_flight(), 10);
    until(&nsqd, topic.as_str(), "RDY lowered to 10", |s| {
        s.total_ready() == 10
    })
    .await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), consumer.next())
            .await
            .is_err(),
        "a message arrived with 50 in flight and max_in_flight 10"
    );

    // 45 answered: 5 in flight, so 5 more may come, and no more than that.
    for msg in held.drain(..45) {
        msg.finish().unwrap();
    }
    held.extend(take(&mut consumer, 5).await);
    until(
        &nsqd,
        topic.as_str(),
        "10 in flight after the answers",
        |s| s.in_flight_count == 10,
    )
    .await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), consumer.next())
            .await
            .is_err(),
        "more than max_in_flight 10 delivered"
    );
    assert!(handle.is_starved(), "10 in flight of RDY 10");

    // Raised: RDY 100 at once; everything left arrives.
    handle.set_max_in_flight(100);
    until(&nsqd, topic.as_str(), "RDY raised to 100", |s| {
        s.total_ready() == 100
    })
    .await;
    for msg in held.drain(..) {
        msg.finish().unwrap();
    }
    for _ in 0..200 - 55 {
        take(&mut consumer, 1)
            .await
            .pop()
            .unwrap()
            .finish()
            .unwrap();
    }
    until(&nsqd, topic.as_str(), "everything finished", |s| {
        s.depth == 0 && s.in_flight_count == 0
    })
    .await;
    assert!(!handle.is_starved());

    let report = consumer.drain().await;
    assert_eq!(report.received, 200, "{report}");
    assert_eq!(report.finished, 200, "{report}");
    assert_eq!(report.left_in_flight, 0, "{report}");
}
