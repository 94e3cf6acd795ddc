//! nsq-tail's `-n` against a real nsqd: exactly n messages are printed and finished, and the
//! rest stay in the channel.

mod common;

use std::collections::HashSet;

use nsq_test_support::Nsqd;

use common::{Running, channel_count, mpub, nsq_tail, wait_for_depth, wait_nothing_in_flight};

/// A topic holding 5,000 messages (in a durable channel created first): `-n 1000` prints 1,000
/// distinct published messages, exits 0 and leaves exactly 4,000 in the channel with nothing
/// in flight and nothing requeued (no message beyond the 1,000 was delivered); a second run with `-n 4000` prints the other 4,000, so none was lost.
#[test]
fn n_1000_of_a_topic_holding_5000_leaves_exactly_4000() {
    let nsqd = Nsqd::start();
    let (topic, channel) = ("exact", "durable");
    nsqd.create_channel(topic, channel);
    let bodies: Vec<Vec<u8>> = (0..5000).map(|i| format!("m{i:05}").into_bytes()).collect();
    mpub(&nsqd, topic, &bodies);
    wait_for_depth(&nsqd, topic, channel, 5000);

    let tail = |n: &str| {
        let mut command = nsq_tail();
        command.args([
            "-topic",
            topic,
            "-channel",
            channel,
            "-nsqd-tcp-address",
            &nsqd.tcp_addr().to_string(),
            "-n",
            n,
            // Not a divisor of 1,000: without lowering it near the end, nsqd would send a
            // whole window past the 1,000th message.
            "-max-in-flight",
            "300",
        ]);
        let finished = Running::spawn(&mut command, Vec::new()).wait();
        assert_eq!(finished.code, Some(0), "stderr:\n{}", finished.stderr);
        finished.stdout
    };

    let first = tail("1000");
    let first: Vec<&str> = first.lines().collect();
    assert_eq!(first.len(), 1000);
    assert_eq!(
        first.iter().collect::<HashSet<_>>().len(),
        1000,
        "duplicates"
    );
    assert_eq!(
        channel_count(&nsqd, topic, channel, "depth"),
        4000,
        "channel stats: {}",
        nsqd.channel_stats(topic, channel).unwrap()
    );
    wait_nothing_in_flight(&nsqd, topic, channel);
    assert_eq!(channel_count(&nsqd, topic, channel, "timeout_count"), 0);
    // Nothing beyond the 1,000 was taken: no delivery had to be requeued.
    assert_eq!(channel_count(&nsqd, topic, channel, "requeue_count"), 0);

    let second = tail("4000");
    let mut all: Vec<String> = first.iter().map(|l| (*l).to_owned()).collect();
    all.extend(second.lines().map(str::to_owned));
    all.sort();
    let published: Vec<String> = bodies
        .iter()
        .map(|b| String::from_utf8(b.clone()).unwrap())
        .collect();
    assert_eq!(
        all, published,
        "each message printed exactly once over both runs"
    );
    assert_eq!(channel_count(&nsqd, topic, channel, "depth"), 0);
    wait_nothing_in_flight(&nsqd, topic, channel);
}

/// `-n` below `--max-in-flight`, over two topics read at once: exactly n messages printed, and
/// the ones taken beyond n are back in their channels.
#[test]
fn n_over_two_topics_prints_n_and_requeues_the_rest() {
    let nsqd = Nsqd::start();
    let channel = "durable";
    for topic in ["left", "right"] {
        nsqd.create_channel(topic, channel);
        let bodies: Vec<Vec<u8>> = (0..300)
            .map(|i| format!("{topic}{i}").into_bytes())
            .collect();
        mpub(&nsqd, topic, &bodies);
        wait_for_depth(&nsqd, topic, channel, 300);
    }
    let mut command = nsq_tail();
    command.args([
        "--topic=left",
        "--topic=right",
        "--channel",
        channel,
        "--nsqd-tcp-address",
        &nsqd.tcp_addr().to_string(),
        "--print-topic",
        "-n",
        "250",
    ]);
    let finished = Running::spawn(&mut command, Vec::new()).wait();
    assert_eq!(finished.code, Some(0), "stderr:\n{}", finished.stderr);
    let lines: Vec<&str> = finished.stdout.lines().collect();
    assert_eq!(lines.len(), 250);
    for line in &lines {
        let (topic, body) = line.split_once(" | ").expect("TOPIC | BODY");
        assert!(body.starts_with(topic), "{line}");
    }
    for topic in ["left", "right"] {
        wait_nothing_in_flight(&nsqd, topic, channel);
    }
    let left = channel_count(&nsqd, "left", channel, "depth");
    let right = channel_count(&nsqd, "right", channel, "depth");
    assert_eq!(left + right, 600 - 250, "left {left}, right {right}");
}
