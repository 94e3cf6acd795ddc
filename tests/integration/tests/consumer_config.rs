//! A consumer configured only by go-nsq option names, against a real nsqd v1.3.0: the
//! connection options reach nsqd (its `/stats` shows them) and take effect (a `msg_timeout` of
//! 1 s times out a message held unanswered within seconds, where nsqd's default would wait
//! 60 s).

use std::time::{Duration, Instant};

use futures::StreamExt;
use nsq_consumer::{Consumer, ConsumerConfig};
use nsq_test_support::{Nsqd, topic};

/// How long nsqd gets to time the held message out. Its `msg_timeout` is 1 s, but nsqd first
/// scans a new channel's in-flight queue when it refreshes its list of channels, every 5 s.
const TIMEOUT_DEADLINE: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_set_by_name_reach_nsqd_and_take_effect() {
    let nsqd = Nsqd::start();
    let topic = topic("by_name");
    nsqd.http_publish(topic.as_str(), b"hello");

    let mut config = ConsumerConfig::default();
    for (option, value) in [
        ("max_in_flight", "2"),
        ("client-id", "reader-7"),
        ("hostname", "reader-7.example.com"),
        ("user_agent", "by-name/1.0"),
        // nsqd skips a message when a random 0..99 exceeds the rate: 99 skips none.
        ("sample_rate", "99"),
        ("snappy", "true"),
        ("heartbeat_interval", "2s"),
        ("msg_timeout", "1s"),
        ("drain_timeout", "1s"),
        // A producer's option in a shared configuration: ignored.
        ("max_pipelined", "64"),
    ] {
        config
            .set(option, value)
            .unwrap_or_else(|err| panic!("{option}={value}: {err}"));
    }
    assert_eq!(config.ignored_options(), ["max_pipelined"]);

    let mut consumer = Consumer::builder(topic.as_str(), "ch")
        .unwrap()
        .config(config)
        .nsqd(nsqd.tcp_addr().to_string())
        .connect()
        .await
        .unwrap();

    let first = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("the message is delivered")
        .expect("the consumer is running");
    assert_eq!(first.body().as_ref(), b"hello");
    assert_eq!(first.attempts(), 1);

    let channel = nsqd.channel_stats(topic.as_str(), "ch").unwrap();
    let clients = channel["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 1, "{channel}");
    let client = &clients[0];
    assert_eq!(client["client_id"], "reader-7", "{client}");
    assert_eq!(client["hostname"], "reader-7.example.com", "{client}");
    assert_eq!(client["user_agent"], "by-name/1.0", "{client}");
    assert_eq!(client["sample_rate"], 99, "{client}");
    assert_eq!(client["snappy"], true, "{client}");
    assert_eq!(client["deflate"], false, "{client}");

    // Held unanswered (not dropped, which would requeue it at once), the message times out
    // after the msg_timeout set by name.
    let started = Instant::now();
    loop {
        let channel = nsqd.channel_stats(topic.as_str(), "ch").unwrap();
        if channel["timeout_count"] == 1 {
            break;
        }
        assert!(
            started.elapsed() < TIMEOUT_DEADLINE,
            "nsqd did not time the message out within {TIMEOUT_DEADLINE:?}: {channel}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let again = tokio::time::timeout(Duration::from_secs(10), consumer.next())
        .await
        .expect("the timed-out message is delivered again")
        .expect("the consumer is running");
    assert_eq!(again.id(), first.id());
    assert_eq!(again.attempts(), 2);
    again.finish().unwrap();
    // The first delivery is stale: its id has been answered.
    drop(first);
    let started = Instant::now();
    loop {
        let channel = nsqd.channel_stats(topic.as_str(), "ch").unwrap();
        if channel["in_flight_count"] == 0 {
            assert_eq!(channel["depth"], 0, "{channel}");
            assert_eq!(channel["requeue_count"], 0, "{channel}");
            assert_eq!(channel["timeout_count"], 1, "{channel}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the FIN did not reach nsqd: {channel}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = consumer.drain().await;
    // Two deliveries of one message: the first timed out in nsqd, the second was finished.
    assert_eq!(report.received, 2, "{report}");
    assert_eq!(report.timed_out, 1, "{report}");
    assert_eq!(report.finished, 1, "{report}");
    assert_eq!(report.left_in_flight, 0, "{report}");
}
