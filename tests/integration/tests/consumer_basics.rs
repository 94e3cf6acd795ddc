//! The consumer against a real nsqd v1.3.0: everything published is handled once, and a drain
//! leaves nothing in flight.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use nsq_consumer::{Consumer, ConsumerConfig, Message};
use nsq_producer::{Producer, Topic};
use nsq_test_support::{Nsqd, topic};

const MESSAGES: usize = 20_000;

async fn publish(nsqd: &Nsqd, topic: &Topic, count: usize) {
    let producer = Producer::connect(nsqd.tcp_addr().to_string(), Default::default())
        .await
        .unwrap();
    let bodies: Vec<Bytes> = (0..count).map(|i| Bytes::from(i.to_string())).collect();
    for chunk in bodies.chunks(1000) {
        producer.multi_publish(topic, chunk.to_vec()).await.unwrap();
    }
    producer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_every_message_once_and_drains_to_nothing_in_flight() {
    let nsqd = Nsqd::start();
    let topic = topic("consume");
    publish(&nsqd, &topic, MESSAGES).await;

    let mut config = ConsumerConfig::default();
    config.max_in_flight = 200;
    let consumer = Consumer::builder(topic.as_str(), "ch")
        .unwrap()
        .config(config)
        .nsqd(nsqd.tcp_addr().to_string())
        .connect()
        .await
        .unwrap();
    let handle = consumer.handle();
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let seen2 = Arc::clone(&seen);
    let stopper = handle.clone();
    let report = consumer
        .run(16, move |msg: Message| {
            let seen = Arc::clone(&seen2);
            let stopper = stopper.clone();
            async move {
                let n: usize = std::str::from_utf8(msg.body()).unwrap().parse().unwrap();
                let mut seen = seen.lock().unwrap();
                assert!(seen.insert(n), "message {n} handled twice");
                if seen.len() == MESSAGES {
                    stopper.stop();
                }
                Ok::<(), std::io::Error>(())
            }
        })
        .await;
    assert_eq!(seen.lock().unwrap().len(), MESSAGES);
    assert_eq!(report.received, MESSAGES as u64, "{report}");
    assert_eq!(report.finished, MESSAGES as u64, "{report}");
    assert_eq!(report.left_in_flight, 0, "{report}");
    let stats = nsqd.channel_stats(topic.as_str(), "ch").unwrap();
    assert_eq!(stats["depth"], 0, "{stats}");
    assert_eq!(stats["in_flight_count"], 0, "{stats}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stats = nsqd.channel_stats(topic.as_str(), "ch").unwrap();
    assert_eq!(
        stats["clients"].as_array().map(Vec::len),
        Some(0),
        "{stats}"
    );
}
