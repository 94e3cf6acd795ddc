//! Helpers of the nsq-to-nsq tests: the binary, its JSON report, and reading a destination
//! back with nsq-consumer.
// Each test file uses its own subset of these.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use nsq_consumer::{Consumer, ConsumerConfig};
use nsq_test_support::Nsqd;
use serde_json::Value;

/// A command for nsq-to-nsq.
pub fn nsq_to_nsq() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nsq-to-nsq"))
}

/// The JSON report nsq-to-nsq wrote to `path`.
pub fn report(path: &Path) -> Value {
    let text =
        std::fs::read(path).unwrap_or_else(|err| panic!("no report at {}: {err}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|err| panic!("report is not JSON: {err}"))
}

/// A count of the report (`source.received` reaches into `source`).
pub fn count(report: &Value, field: &str) -> u64 {
    let mut value = report;
    for key in field.split('.') {
        value = &value[key];
    }
    value
        .as_u64()
        .unwrap_or_else(|| panic!("report field {field} is not a count: {report}"))
}

/// Polls `condition` every 50 ms until it holds; panics with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// A channel's (depth, in-flight count) on `nsqd`; (0, 0) for a channel that does not exist.
pub fn channel_state(nsqd: &Nsqd, topic: &str, channel: &str) -> (u64, u64) {
    nsqd.channel_stats(topic, channel).map_or((0, 0), |c| {
        (
            c["depth"].as_u64().unwrap_or(0),
            c["in_flight_count"].as_u64().unwrap_or(0),
        )
    })
}

/// The messages the topic holds across `nsqds`, read with nsq-consumer through a fresh channel
/// on each (messages published before a channel existed go to the first channel): until at
/// least `at_least` arrived and nothing more came for a second.
pub fn read_back(nsqds: &[&Nsqd], topic: &str, at_least: usize) -> Vec<Bytes> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let addrs: Vec<String> = nsqds.iter().map(|n| n.tcp_addr().to_string()).collect();
    runtime.block_on(async move {
        let mut config = ConsumerConfig::default();
        config.max_in_flight = 2500;
        let mut builder = Consumer::builder(topic, "readback")
            .expect("valid names")
            .config(config);
        for addr in &addrs {
            builder = builder.nsqd(addr.clone());
        }
        let mut consumer = builder.connect().await.expect("subscribe to read back");
        let mut got = Vec::with_capacity(at_least);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let quiet = if got.len() >= at_least {
                Duration::from_secs(1)
            } else {
                deadline.saturating_duration_since(tokio::time::Instant::now())
            };
            match tokio::time::timeout(quiet, consumer.next()).await {
                Ok(Some(msg)) => {
                    got.push(msg.body().clone());
                    msg.finish().expect("finish a read-back message");
                }
                Ok(None) => break,
                Err(_) if got.len() >= at_least => break,
                Err(_) => panic!(
                    "read back {} of at least {at_least} messages of {topic} in 120 s",
                    got.len()
                ),
            }
        }
        let report = consumer.drain().await;
        assert_eq!(report.left_in_flight, 0, "read-back drain: {report}");
        got
    })
}

/// How many times each body was read.
pub fn tally(messages: &[Bytes]) -> HashMap<&[u8], usize> {
    let mut counts = HashMap::new();
    for m in messages {
        *counts.entry(m.as_ref()).or_insert(0) += 1;
    }
    counts
}
