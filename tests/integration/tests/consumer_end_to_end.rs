//! End to end against real servers (nsqd and nsqlookupd v1.3.0): messages numbered in their
//! bodies, published with nsq-producer's `Pool` over three nsqd registered with one
//! nsqlookupd, consumed through nsqlookupd by `run` with concurrency 64. Every number is
//! handled; a number handled more than once is accounted for by a requeue or an nsqd timeout;
//! every channel ends with nothing waiting or in flight. Plain and TLS with snappy with a
//! million messages each, deflate on one of the three nsqd with 200,000.

mod consumer_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nsq_conn::{ConnConfigBuilder, TlsConfig};
use nsq_consumer::{Consumer, Message};
use nsq_producer::{Pool, PoolConfig, ProducerConfig, Strategy};
use nsq_test_support::{ClientSnapshot, Nsqd, NsqdOptions, Nsqlookupd, TestPki, topic, within};

use consumer_common::{CHANNEL, consumer_config, number_of, numbered, until, until_drained};

/// Publishing tasks, each sending batches of this many messages.
const BATCH: usize = 1000;
const PUBLISHERS: usize = 8;

/// Starts three nsqd registered with `lookupd`, the `n`th with `options(n)`, with the topic
/// and channel created (so that nsqlookupd lists them and nothing waits in the topic).
fn cluster(
    lookupd: &Nsqlookupd,
    topic_name: &str,
    options: impl Fn(usize) -> NsqdOptions,
) -> Vec<Nsqd> {
    (0..3)
        .map(|n| {
            let nsqd = Nsqd::start_with(options(n).lookupd(lookupd).data_in_memory(true));
            nsqd.create_channel(topic_name, CHANNEL);
            lookupd.wait_for_topic(&nsqd, topic_name);
            nsqd
        })
        .collect()
}

/// Publishes the numbers `0..total` round-robin over `nsqds` with a pool.
async fn publish_numbered(nsqds: &[Nsqd], topic_name: &str, total: usize) {
    let config = PoolConfig::new(ProducerConfig::default()).strategy(Strategy::RoundRobin);
    let pool = Pool::connect(nsqds.iter().map(|n| n.tcp_addr().to_string()), config)
        .await
        .unwrap();
    let t = topic(topic_name);
    let batches = total.div_ceil(BATCH);
    let tasks: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let (pool, t) = (pool.clone(), t.clone());
            tokio::spawn(async move {
                for b in (p..batches).step_by(PUBLISHERS) {
                    let bodies: Vec<_> = (b * BATCH..((b + 1) * BATCH).min(total))
                        .map(numbered)
                        .collect();
                    pool.multi_publish(&t, bodies).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let stats = pool.close().await;
    assert_eq!(stats.acked, batches as u64, "{stats:?}");
}

/// Consumes `total` numbered messages from the cluster through `lookupd`; `check` sees every
/// nsqd's client (by nsqd index) once all three are connected.
async fn consume_numbered(
    lookupd: &Nsqlookupd,
    nsqds: &[Nsqd],
    topic_name: &str,
    total: usize,
    conn: impl FnOnce(ConnConfigBuilder) -> ConnConfigBuilder,
    check: impl Fn(usize, &ClientSnapshot),
) {
    let mut config = consumer_config();
    config.max_in_flight = 1000;
    config.conn = conn(config.conn);
    let consumer = within(
        "connect",
        Consumer::builder(topic_name, CHANNEL)
            .unwrap()
            .config(config)
            .lookupd(lookupd.http_addr().to_string())
            .connect(),
    )
    .await
    .unwrap();
    let handle = consumer.handle();
    let counts: Arc<Vec<AtomicU8>> = Arc::new((0..total).map(|_| AtomicU8::new(0)).collect());
    let unique = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let run = tokio::spawn(consumer.run(64, {
        let (counts, unique) = (Arc::clone(&counts), Arc::clone(&unique));
        move |msg: Message| {
            let (counts, unique) = (Arc::clone(&counts), Arc::clone(&unique));
            async move {
                let n = number_of(msg.body());
                if counts[n].fetch_add(1, Ordering::Relaxed) == 0 {
                    unique.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), std::io::Error>(())
            }
        }
    }));
    until("all three nsqd have our client", || {
        nsqds.iter().all(|n| {
            n.channel_snapshot(topic_name, CHANNEL)
                .is_some_and(|s| s.clients.len() == 1)
        })
    })
    .await;
    for (i, nsqd) in nsqds.iter().enumerate() {
        let channel = nsqd.channel_snapshot(topic_name, CHANNEL).unwrap();
        check(i, &channel.clients[0]);
    }
    let deadline = Duration::from_secs(600);
    while unique.load(Ordering::Relaxed) < total as u64 {
        assert!(
            started.elapsed() < deadline,
            "{} of {total} handled after {deadline:?}: {:?}",
            unique.load(Ordering::Relaxed),
            handle.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    let nodes: Vec<&Nsqd> = nsqds.iter().collect();
    until_drained(&nodes, topic_name, CHANNEL).await;
    let stats = handle.stats();
    handle.stop();
    let report = within("the drain", run).await.unwrap();
    eprintln!(
        "{total} messages consumed in {took:?} ({:.0} msgs/s, debug or release as built); \
         {stats:?}",
        total as f64 / took.as_secs_f64()
    );

    let timeouts: u64 = nsqds
        .iter()
        .map(|n| {
            n.channel_snapshot(topic_name, CHANNEL)
                .unwrap()
                .timeout_count
        })
        .sum();
    let extra: u64 = counts
        .iter()
        .map(|c| u64::from(c.load(Ordering::Relaxed)).saturating_sub(1))
        .sum();
    assert!(
        counts.iter().all(|c| c.load(Ordering::Relaxed) >= 1),
        "every number is handled"
    );
    assert!(
        extra <= stats.requeued + timeouts,
        "{extra} extra deliveries, but only {} requeues and {timeouts} timeouts: {stats:?}",
        stats.requeued
    );
    assert_eq!(report.left_in_flight, 0, "{report}");
    assert_eq!(
        report.received,
        report.finished + report.requeued + report.given_up + report.lost_with_connection,
        "{report}"
    );
}

/// 1,000,000 messages, plain TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_messages_through_lookupd() {
    const TOPIC: &str = "consumer_e2e";
    const TOTAL: usize = 1_000_000;
    let lookupd = Nsqlookupd::start();
    let nsqds = tokio::task::block_in_place(|| cluster(&lookupd, TOPIC, |_| NsqdOptions::new()));
    let started = Instant::now();
    publish_numbered(&nsqds, TOPIC, TOTAL).await;
    eprintln!("{TOTAL} messages published in {:?}", started.elapsed());
    consume_numbered(
        &lookupd,
        &nsqds,
        TOPIC,
        TOTAL,
        |conn| conn,
        |_, client| {
            assert!(
                !client.tls && !client.snappy && !client.deflate,
                "{client:?}"
            );
        },
    )
    .await;
}

/// 1,000,000 messages, TLS with snappy on every connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_snappy_through_lookupd() {
    const TOPIC: &str = "consumer_e2e_tls";
    const TOTAL: usize = 1_000_000;
    let pki = TestPki::generate();
    let lookupd = Nsqlookupd::start();
    let nsqds = tokio::task::block_in_place(|| {
        cluster(&lookupd, TOPIC, |_| {
            NsqdOptions::new()
                .tls_cert(pki.server_cert())
                .tls_key(pki.server_key())
        })
    });
    publish_numbered(&nsqds, TOPIC, TOTAL).await;
    let ca = pki.ca_cert();
    consume_numbered(
        &lookupd,
        &nsqds,
        TOPIC,
        TOTAL,
        |conn| conn.tls_v1(TlsConfig::new().root_ca_file(ca)).snappy(true),
        |_, client| assert!(client.tls && client.snappy, "{client:?}"),
    )
    .await;
}

/// The consumer asks for deflate; only the first nsqd allows it, so one connection deflates
/// and the other two run plain. A million messages take about 8 s in a debug build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deflate_on_one_nsqd_through_lookupd() {
    const TOPIC: &str = "consumer_e2e_deflate";
    const TOTAL: usize = 1_000_000;
    let lookupd = Nsqlookupd::start();
    let nsqds = tokio::task::block_in_place(|| {
        cluster(&lookupd, TOPIC, |n| NsqdOptions::new().deflate(n == 0))
    });
    publish_numbered(&nsqds, TOPIC, TOTAL).await;
    consume_numbered(
        &lookupd,
        &nsqds,
        TOPIC,
        TOTAL,
        |conn| conn.deflate(true),
        |n, client| assert_eq!(client.deflate, n == 0, "nsqd {n}: {client:?}"),
    )
    .await;
}
