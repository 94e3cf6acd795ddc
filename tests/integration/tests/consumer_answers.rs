//! How the consumer answers messages, checked in nsqd's own statistics (v1.3.0): a message
//! dropped unanswered is requeued at once, a message past `max_attempts` goes to the give-up
//! hook (here: a dead-letter topic), failures back off with every connection at RDY 0 and then
//! recover, and `E_FIN_FAILED`, `E_REQ_FAILED` and `E_TOUCH_FAILED` are counted without ending anything.

mod consumer_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use nsq_consumer::{Consumer, Message};
use nsq_producer::{Producer, ProducerConfig};
use nsq_test_support::{Nsqd, read_all, topic, within};

use consumer_common::{CHANNEL, RdySampler, consumer_config, fill, snapshot, until, until_drained};

/// `msg_timeout` is 60 s, so a message left to time out would come back after a minute. A
/// message dropped without an answer is requeued at once instead: nsqd counts the REQ within
/// seconds, nothing timed out, and the message comes back with attempts 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_message_is_requeued_at_once() {
    const TOPIC: &str = "consumer_dropped";
    let nsqd = Nsqd::start();
    fill(&nsqd, TOPIC, CHANNEL, ["only"]).await;
    let mut config = consumer_config();
    config.conn = config.conn.msg_timeout(Duration::from_secs(60));
    let mut consumer = within(
        "connect",
        Consumer::builder(TOPIC, CHANNEL)
            .unwrap()
            .config(config)
            .nsqd(nsqd.tcp_addr().to_string())
            .connect(),
    )
    .await
    .unwrap();
    let handle = consumer.handle();

    let msg = within("the message", consumer.next()).await.unwrap();
    assert_eq!(msg.attempts(), 1);
    assert_eq!(&msg.body()[..], b"only");
    let id = msg.id();
    assert_eq!(snapshot(&nsqd, TOPIC, CHANNEL).in_flight_count, 1);
    drop(msg);
    // Requeued without a delay, the message is at once in flight again: delivered anew.
    let took = until("nsqd counts the requeue", || {
        nsqd.channel_snapshot(TOPIC, CHANNEL).unwrap().requeue_count == 1
    })
    .await;
    eprintln!("nsqd counted the REQ {took:?} after the drop");
    assert!(
        took < Duration::from_secs(30),
        "requeued at once, not after msg_timeout"
    );
    assert_eq!(snapshot(&nsqd, TOPIC, CHANNEL).timeout_count, 0);

    let again = within("the redelivery", consumer.next()).await.unwrap();
    assert_eq!(again.id(), id);
    assert_eq!(again.attempts(), 2);
    again.finish().unwrap();
    until_drained(&[&nsqd], TOPIC, CHANNEL).await;
    let stats = handle.stats();
    assert_eq!(stats.dropped, 1, "{stats:?}");
    assert_eq!(stats.requeued, 1, "{stats:?}");
    assert_eq!(stats.finished, 1, "{stats:?}");
    let report = within("the drain", consumer.drain()).await;
    assert_eq!(report.received, 2, "{report}");
    assert_eq!(report.left_in_flight, 0, "{report}");
}

/// A handler that always fails, `max_attempts` 2 and no requeue delay: the message is handled
/// twice, then handed to the give-up hook, which publishes it to a dead-letter topic with
/// nsq-producer (the recipe of `examples/dead_letter.rs`). The dead-letter topic holds it once;
/// the source channel ends empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_past_max_attempts_goes_to_the_dead_letter_topic() {
    const TOPIC: &str = "consumer_dead_source";
    const DEAD: &str = "consumer_dead_letters";
    let nsqd = Nsqd::start();
    fill(&nsqd, TOPIC, CHANNEL, ["poison"]).await;
    let producer = Producer::connect(nsqd.tcp_addr().to_string(), ProducerConfig::default())
        .await
        .unwrap();

    let mut config = consumer_config();
    config.max_attempts = 2;
    config.default_requeue_delay = Duration::ZERO;
    let dead = topic(DEAD);
    let consumer = within(
        "connect",
        Consumer::builder(TOPIC, CHANNEL)
            .unwrap()
            .config(config)
            .nsqd(nsqd.tcp_addr().to_string())
            .give_up({
                let producer = producer.clone();
                move |msg: Message| {
                    let (producer, dead) = (producer.clone(), dead.clone());
                    async move { producer.publish(&dead, msg.body().clone()).await }
                }
            })
            .connect(),
    )
    .await
    .unwrap();
    let handle = consumer.handle();
    let calls = Arc::new(AtomicU32::new(0));
    let run = tokio::spawn(consumer.run(1, {
        let calls = Arc::clone(&calls);
        move |msg: Message| {
            let calls = Arc::clone(&calls);
            async move {
                calls.fetch_add(1, Ordering::Relaxed);
                Err::<(), _>(std::io::Error::other(format!(
                    "cannot handle attempt {}",
                    msg.attempts()
                )))
            }
        }
    }));
    until("the message is given up", || handle.stats().given_up == 1).await;
    until_drained(&[&nsqd], TOPIC, CHANNEL).await;
    handle.stop();
    let report = within("the drain", run).await.unwrap();

    assert_eq!(
        calls.load(Ordering::Relaxed),
        2,
        "handled max_attempts times"
    );
    assert_eq!(report.given_up, 1, "{report}");
    assert_eq!(report.requeued, 2, "{report}");
    assert_eq!(report.finished, 0, "{report}");
    assert_eq!(report.received, 3, "{report}");
    assert_eq!(report.left_in_flight, 0, "{report}");
    producer.close().await;
    let dead_letters = tokio::task::block_in_place(|| read_all(&nsqd, DEAD));
    assert_eq!(dead_letters, ["poison"]);
    let source = snapshot(&nsqd, TOPIC, CHANNEL);
    assert_eq!(
        source.depth + source.in_flight_count + source.deferred_count,
        0
    );
}

/// Two nsqd, `max_in_flight` 4, a handler that fails its first three calls and then succeeds,
/// backoff unit 50 ms. nsqd's `/stats` shows RDY 0 on both
/// connections during backoff, then the RDY counts come back to the whole `max_in_flight`;
/// every message is finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_back_off_every_connection_then_recover() {
    const TOPIC: &str = "consumer_backoff";
    const PER_NODE: usize = 10;
    let nsqds = [Nsqd::start(), Nsqd::start()];
    for (n, nsqd) in nsqds.iter().enumerate() {
        fill(
            nsqd,
            TOPIC,
            CHANNEL,
            (0..PER_NODE).map(|i| format!("{n}-{i}")),
        )
        .await;
    }
    let mut config = consumer_config();
    config.max_in_flight = 4;
    config.default_requeue_delay = Duration::ZERO;
    config.backoff_multiplier = Duration::from_millis(50);
    config.max_backoff_duration = Duration::from_secs(2);
    let sampler = RdySampler::start(nsqds.iter().map(Nsqd::http_addr).collect(), TOPIC, CHANNEL);
    let consumer = within(
        "connect",
        Consumer::builder(TOPIC, CHANNEL)
            .unwrap()
            .config(config)
            .nsqd(nsqds[0].tcp_addr().to_string())
            .nsqd(nsqds[1].tcp_addr().to_string())
            .connect(),
    )
    .await
    .unwrap();
    let handle = consumer.handle();
    let calls = Arc::new(AtomicU32::new(0));
    let started = Instant::now();
    let run = tokio::spawn(consumer.run(4, {
        let calls = Arc::clone(&calls);
        move |_msg: Message| {
            let calls = Arc::clone(&calls);
            async move {
                if calls.fetch_add(1, Ordering::Relaxed) < 3 {
                    Err(std::io::Error::other("failing on purpose"))
                } else {
                    Ok(())
                }
            }
        }
    }));
    until("every message is finished", || {
        handle.stats().finished == 2 * PER_NODE as u64
    })
    .await;
    until("RDY is back to max_in_flight", || {
        nsqds
            .iter()
            .map(|n| n.channel_snapshot(TOPIC, CHANNEL).unwrap().total_ready())
            .sum::<u64>()
            == 4
    })
    .await;
    let finished_after = started.elapsed();
    let samples = tokio::task::block_in_place(|| sampler.finish());
    let stats = handle.stats();
    handle.stop();
    let report = within("the drain", run).await.unwrap();

    assert!(stats.backoffs >= 1, "{stats:?}");
    assert_eq!(stats.backoff_level, 0, "{stats:?}");
    assert_eq!(report.requeued, 3, "{report}");
    assert_eq!(report.finished, 2 * PER_NODE as u64, "{report}");
    let stable = samples.stable_ready();
    let paused: Vec<_> = stable
        .iter()
        .filter(|r| {
            r.at < finished_after
                && r.clients.iter().all(|&n| n == 1)
                && r.ready.iter().all(|&n| n == 0)
        })
        .collect();
    eprintln!(
        "{} passes, {} stable, {} with RDY 0 everywhere; finished after {finished_after:?}",
        samples.rounds.len(),
        stable.len(),
        paused.len()
    );
    assert!(
        !paused.is_empty(),
        "nsqd showed RDY 0 on every connection during backoff: {:?}",
        samples.rounds
    );
    for round in &stable {
        assert!(round.ready.iter().sum::<u64>() <= 4, "{round:?}");
    }
    let nodes: Vec<&Nsqd> = nsqds.iter().collect();
    until_drained(&nodes, TOPIC, CHANNEL).await;
}

/// `msg_timeout` 1 s; two messages are held until nsqd has timed them out, with the channel
/// paused so that nsqd keeps them instead of delivering them again at once. Touching and then
/// finishing the first gets `E_TOUCH_FAILED` and `E_FIN_FAILED`, requeueing the second
/// `E_REQ_FAILED`: each counted, none fatal. The connection stays, and the consumer goes on to
/// receive both redeliveries (attempts 2) and a new message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_nsqd_refuses_are_counted_and_not_fatal() {
    const TOPIC: &str = "consumer_answer_failed";
    let nsqd = Nsqd::start();
    fill(&nsqd, TOPIC, CHANNEL, ["first", "second"]).await;
    let mut config = consumer_config();
    config.max_in_flight = 2;
    config.conn = config.conn.msg_timeout(Duration::from_secs(1));
    let mut consumer = within(
        "connect",
        Consumer::builder(TOPIC, CHANNEL)
            .unwrap()
            .config(config)
            .nsqd(nsqd.tcp_addr().to_string())
            .connect(),
    )
    .await
    .unwrap();
    let handle = consumer.handle();

    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(within("a message", consumer.next()).await.unwrap());
    }
    held.sort_by(|a, b| a.body().cmp(b.body()));
    let (first, second) = (&held[0], &held[1]);
    assert_eq!(&first.body()[..], b"first");
    let pause = format!("/channel/pause?topic={TOPIC}&channel={CHANNEL}");
    let response = tokio::task::block_in_place(|| nsqd.http_request("POST", &pause, b""));
    assert!(response.is_success(), "{response:?}");
    until("nsqd times both messages out", || {
        nsqd.channel_snapshot(TOPIC, CHANNEL).unwrap().timeout_count == 2
    })
    .await;
    // Each is written; nsqd refuses each with an error that leaves the connection open.
    let _ = first.touch();
    until("E_TOUCH_FAILED is counted", || {
        handle.stats().touch_failed == 1
    })
    .await;
    let _ = first.finish();
    until("E_FIN_FAILED is counted", || handle.stats().fin_failed == 1).await;
    let _ = second.requeue_without_backoff(Some(Duration::ZERO));
    until("E_REQ_FAILED is counted", || handle.stats().req_failed == 1).await;

    let unpause = format!("/channel/unpause?topic={TOPIC}&channel={CHANNEL}");
    let response = tokio::task::block_in_place(|| nsqd.http_request("POST", &unpause, b""));
    assert!(response.is_success(), "{response:?}");
    for _ in 0..2 {
        let again = within("a redelivery", consumer.next()).await.unwrap();
        assert!(again.id() == first.id() || again.id() == second.id());
        assert_eq!(again.attempts(), 2);
        again.finish().unwrap();
    }
    tokio::task::block_in_place(|| nsqd.http_publish(TOPIC, b"next"));
    let next = within("a new message", consumer.next()).await.unwrap();
    assert_eq!(&next.body()[..], b"next");
    next.finish().unwrap();
    until_drained(&[&nsqd], TOPIC, CHANNEL).await;

    let stats = handle.stats();
    assert_eq!(
        (stats.touch_failed, stats.fin_failed, stats.req_failed),
        (1, 1, 1),
        "{stats:?}"
    );
    assert_eq!(stats.connects, 1, "{stats:?}");
    assert_eq!(stats.disconnects, 0, "{stats:?}");
    assert_eq!(stats.connections, 1, "{stats:?}");
    drop(held);
    within("the drain", consumer.drain()).await;
}
