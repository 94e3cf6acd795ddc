//! nsq-producer against a real nsqd v1.3.0: connecting, pinging, heartbeats, publishing and
//! reading back, closing, ordering (scenarios 1-3, 18-21, 42, 46 and 50 in docs/testing.md).
//!
//! Every test starts its own nsqd; messages are read back with nsq-test-support's `NsqdReader`
//! (SUB, RDY and FIN on a blocking socket), and counts are cross-checked with nsqd's own
//! statistics.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use nsq_producer::{
    ConnError, ConnectError, NotSentReason, PingFailure, Producer, ProducerState, PublishError,
    Publisher,
};
use nsq_test_support::{Nsqd, read_exactly, topic, within};
use serde_json::Value;

use common::{blocking, producer_config};

/// nsqd's list of clients that have published (`producers` in `/stats`); empty when none has.
fn producers(nsqd: &Nsqd) -> Vec<Value> {
    nsqd.stats()["producers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// How many messages a producer client entry published to `topic`.
fn pub_count(producer: &Value, topic: &str) -> u64 {
    producer["pub_counts"]
        .as_array()
        .and_then(|counts| counts.iter().find(|c| c["topic"] == topic))
        .and_then(|c| c["count"].as_u64())
        .unwrap_or(0)
}

/// Scenario 1: a new producer does not connect until the first publish, which connects from
/// the configured local address and succeeds; after close, publishing fails with `Closed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s01_lazy_connect() {
    let nsqd = Nsqd::start();
    // A port that is free now, so that nsqd's view of the client shows the bind was used.
    let local: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port");
    let mut config = producer_config();
    config.conn = config.conn.local_addr(local);
    let producer = Producer::new(nsqd.tcp_addr().to_string(), config).expect("valid config");
    assert_eq!(producer.state(), ProducerState::Idle);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(producer.state(), ProducerState::Idle);
    assert!(
        !nsqd.log_tail().contains("TCP: new client"),
        "nothing connects before the first publish"
    );

    let t = topic("s01_lazy");
    within("publish", producer.publish(&t, "lazy"))
        .await
        .expect("the first publish connects and succeeds");
    assert_eq!(producer.state(), ProducerState::Connected);
    assert_eq!(nsqd.topic_depth("s01_lazy"), Some(1));
    let clients = producers(&nsqd);
    assert_eq!(clients.len(), 1, "{clients:?}");
    assert_eq!(clients[0]["remote_address"], local.to_string());
    assert_eq!(pub_count(&clients[0], "s01_lazy"), 1);

    let stats = within("close", producer.close()).await;
    assert_eq!(stats.acked, 1);
    assert!(stats.bytes_written > 0);
    assert_eq!(producer.state(), ProducerState::Closed);
    assert_eq!(
        producer.publish(&t, "after close").await,
        Err(PublishError::Closed(Publisher::Producer))
    );
    assert_eq!(nsqd.topic_depth("s01_lazy"), Some(1));
}

/// Scenario 2: ping on a fresh producer connects and succeeds; after close it fails with
/// `Closed`. `Producer::connect` pings before returning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s02_ping() {
    let nsqd = Nsqd::start();
    let addr = nsqd.tcp_addr().to_string();
    let producer = Producer::new(addr.clone(), producer_config()).unwrap();
    assert_eq!(producer.state(), ProducerState::Idle);
    within("ping", producer.ping())
        .await
        .expect("ping connects");
    assert_eq!(producer.state(), ProducerState::Connected);
    within("second ping", producer.ping())
        .await
        .expect("ping again");
    let stats = producer.stats();
    assert_eq!(stats.reconnects, 0);
    assert_eq!(stats.acked, 0, "a ping is not a publish");
    assert_eq!(stats.bytes_written, 0, "NOPs are not counted as requests");

    within("close", producer.close()).await;
    assert!(matches!(producer.ping().await, Err(PingFailure::Closed)));
    assert!(matches!(producer.ping().await, Err(PingFailure::Closed)));

    let connected = within("connect", Producer::connect(addr, producer_config()))
        .await
        .expect("Producer::connect succeeds against a running nsqd");
    assert_eq!(connected.state(), ProducerState::Connected);
    within("close", connected.close()).await;
    assert!(matches!(connected.ping().await, Err(PingFailure::Closed)));
}

/// Scenario 3. go-nsq sends 100 ms to nsqd and gets `E_BAD_BODY`; here 100 ms is refused by
/// the configuration before anything is sent. nsqd's own refusal is reached with 61 s, which
/// passes local validation but exceeds nsqd's default `--max-heartbeat-interval` of 60 s: its
/// exact text surfaces in the error. With 1000 ms, a publish succeeds, the producer idles
/// 1.1 s, and ten more publishes succeed on the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s03_invalid_heartbeat() {
    let nsqd = Nsqd::start();
    let addr = nsqd.tcp_addr().to_string();
    let t = topic("s03_heartbeat");

    let mut config = producer_config();
    config.conn = config.conn.heartbeat_interval(Duration::from_millis(100));
    let err = Producer::new(addr.clone(), config.clone()).expect_err("100 ms is refused locally");
    assert!(err.to_string().contains("heartbeat_interval"), "{err}");
    assert!(config.validate().is_err());

    // nsqd refuses what it does not allow.
    let refused = "E_BAD_BODY IDENTIFY heartbeat interval (61000) is invalid";
    let mut config = producer_config();
    config.conn = config.conn.heartbeat_interval(Duration::from_secs(61));
    // Fail at the refused attempt rather than wait for a connection until the deadline.
    config.fail_fast = true;
    let producer = Producer::new(addr.clone(), config.clone()).expect("61 s passes locally");
    let err = within("publish", producer.publish(&t, "x"))
        .await
        .expect_err("nsqd refuses IDENTIFY");
    let PublishError::NotSent(NotSentReason::Unavailable(conn_err)) = &err else {
        panic!("expected NotSent(Unavailable), got {err:?}");
    };
    let server_err = conn_err
        .server_error()
        .unwrap_or_else(|| panic!("expected nsqd's error frame, got {conn_err:?}"));
    assert_eq!(server_err.to_string(), refused);
    assert!(err.to_string().contains(refused), "{err}");
    assert!(err.is_retry_safe(), "nothing was sent");
    assert_eq!(producer.stats().not_sent, 1);
    assert_eq!(producer.stats().acked, 0);
    within("close", producer.close()).await;

    match within("connect", Producer::connect(addr.clone(), config)).await {
        Err(ConnectError::Connect(PingFailure::Connection(conn_err))) => {
            assert_eq!(
                conn_err.server_error().map(|e| e.to_string()),
                Some(refused.to_owned())
            );
        }
        other => panic!("expected nsqd's IDENTIFY refusal, got {other:?}"),
    }
    assert_eq!(nsqd.topic_depth("s03_heartbeat"), None, "nothing published");

    // A valid interval: heartbeats arrive while idle and are answered.
    let mut config = producer_config();
    config.conn = config.conn.heartbeat_interval(Duration::from_millis(1000));
    let producer = Producer::new(addr, config).unwrap();
    within("publish", producer.publish(&t, "first"))
        .await
        .expect("publish with a 1 s heartbeat");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for i in 0..10 {
        within("publish", producer.publish(&t, format!("after idle {i}")))
            .await
            .expect("publish after idling");
    }
    let stats = producer.stats();
    assert_eq!(stats.acked, 11);
    assert_eq!(stats.reconnects, 0);
    assert_eq!(producer.state(), ProducerState::Connected);
    let clients = producers(&nsqd);
    assert_eq!(clients.len(), 1, "one connection: {clients:?}");
    assert_eq!(pub_count(&clients[0], "s03_heartbeat"), 11);
    assert_eq!(nsqd.topic_depth("s03_heartbeat"), Some(11));
    within("close", producer.close()).await;
}

/// Scenario 42: with a 1 s heartbeat, idle 2.5 s (past nsqd's client timeout of twice the
/// interval, so only answered heartbeats keep the connection), then publish on the same
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s42_idle_producer_keeps_its_connection() {
    let nsqd = Nsqd::start();
    let mut config = producer_config();
    config.conn = config.conn.heartbeat_interval(Duration::from_secs(1));
    let producer = Producer::new(nsqd.tcp_addr().to_string(), config).unwrap();
    let t = topic("s42_idle");
    within("publish", producer.publish(&t, "before"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    within("publish", producer.publish(&t, "after"))
        .await
        .unwrap();
    assert_eq!(producer.stats().reconnects, 0);
    let clients = producers(&nsqd);
    assert_eq!(clients.len(), 1, "{clients:?}");
    assert_eq!(
        pub_count(&clients[0], "s42_idle"),
        2,
        "both publishes on one connection"
    );
    within("close", producer.close()).await;
}

/// Scenario 18: ten publishes, then a consumer reads exactly those ten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s18_publish_ten_read_back() {
    let nsqd = Nsqd::start();
    nsqd.create_channel("s18_publish", "ch");
    let producer = Producer::new(nsqd.tcp_addr().to_string(), producer_config()).unwrap();
    let t = topic("s18_publish");
    let sent: BTreeSet<Bytes> = (0..10)
        .map(|i| Bytes::from(format!("s18 message {i}")))
        .collect();
    for body in &sent {
        within("publish", producer.publish(&t, body.clone()))
            .await
            .expect("publish");
    }
    let stats = producer.stats();
    assert_eq!(stats.acked, 10);
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.queued, 0);
    let read: BTreeSet<Bytes> = blocking(|| read_exactly(&nsqd, "s18_publish", "ch", 10))
        .into_iter()
        .collect();
    assert_eq!(read, sent);
    within("close", producer.close()).await;
}

/// Scenario 19: one MPUB of ten bodies; ten messages are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s19_multi_publish_ten() {
    let nsqd = Nsqd::start();
    nsqd.create_channel("s19_mpub", "ch");
    let producer = Producer::new(nsqd.tcp_addr().to_string(), producer_config()).unwrap();
    let t = topic("s19_mpub");
    let bodies: Vec<Bytes> = (0..10)
        .map(|i| Bytes::from(format!("s19 message {i}")))
        .collect();
    within("mpub", producer.multi_publish(&t, bodies.clone()))
        .await
        .expect("MPUB");
    assert_eq!(producer.stats().acked, 1, "one request");
    assert_eq!(producer.stats().acked_messages, 10, "ten messages");
    let read = blocking(|| read_exactly(&nsqd, "s19_mpub", "ch", 10));
    assert_eq!(read, bodies, "an MPUB is delivered in batch order");
    within("close", producer.close()).await;
}

/// What a caller keeps next to its pending publish (go-nsq passes it through the producer).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Context {
    index: usize,
    label: String,
}

/// Scenario 20: ten async publishes, each with its own context: ten completions arrive, each
/// `Ok`, each with its context unchanged, and the messages read back are the contexts' bodies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s20_async_publish_with_contexts() {
    let nsqd = Nsqd::start();
    nsqd.create_channel("s20_async", "ch");
    let producer = Producer::new(nsqd.tcp_addr().to_string(), producer_config()).unwrap();
    let t = topic("s20_async");
    let body = |ctx: &Context| Bytes::from(format!("s20 {} {}", ctx.index, ctx.label));

    let mut pending = FuturesUnordered::new();
    for index in 0..10 {
        let ctx = Context {
            index,
            label: format!("arg{index}"),
        };
        let publish = within("publish_async", producer.publish_async(&t, body(&ctx)))
            .await
            .expect("queued");
        pending.push(async move { (ctx, publish.await) });
    }
    let mut completions = Vec::new();
    while let Some(done) = within("completion", pending.next()).await {
        completions.push(done);
    }
    assert_eq!(completions.len(), 10);
    let mut seen = BTreeSet::new();
    for (ctx, result) in &completions {
        assert_eq!(*result, Ok(()), "{ctx:?}");
        assert_eq!(ctx.label, format!("arg{}", ctx.index));
        assert!(seen.insert(ctx.index), "{ctx:?} completed twice");
    }
    assert_eq!(seen, (0..10).collect());

    let expected: HashSet<Bytes> = completions.iter().map(|(ctx, _)| body(ctx)).collect();
    let read: HashSet<Bytes> = blocking(|| read_exactly(&nsqd, "s20_async", "ch", 10))
        .into_iter()
        .collect();
    assert_eq!(read, expected);
    within("close", producer.close()).await;
}

/// Scenario 21: one async MPUB carrying a context of two values of different types.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s21_async_multi_publish() {
    let nsqd = Nsqd::start();
    nsqd.create_channel("s21_async_mpub", "ch");
    let producer = Producer::new(nsqd.tcp_addr().to_string(), producer_config()).unwrap();
    let t = topic("s21_async_mpub");
    let bodies: Vec<Bytes> = (0..10)
        .map(|i| Bytes::from(format!("s21 message {i}")))
        .collect();
    let context: (&str, u32) = ("test0", 1);
    let publish = within(
        "multi_publish_async",
        producer.multi_publish_async(&t, bodies.clone()),
    )
    .await
    .expect("queued");
    let ((label, number), result) =
        within("completion", async move { (context, publish.await) }).await;
    assert_eq!(result, Ok(()));
    assert_eq!(label, "test0");
    assert_eq!(number, 1);
    let read = blocking(|| read_exactly(&nsqd, "s21_async_mpub", "ch", 10));
    assert_eq!(read, bodies);
    within("close", producer.close()).await;
}

/// Scenario 46: closing twice is harmless, and publishing or pinging afterwards fails with
/// `Closed` without any I/O.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s46_close_twice_then_publish() {
    let nsqd = Nsqd::start();
    let producer = Producer::new(nsqd.tcp_addr().to_string(), producer_config()).unwrap();
    let t = topic("s46_close");
    within("publish", producer.publish(&t, "one"))
        .await
        .unwrap();
    let first = within("close", producer.close()).await;
    let second = within("second close", producer.close()).await;
    assert_eq!(first, second);
    assert_eq!(first.acked, 1);
    let clone = producer.clone();
    assert_eq!(within("close", clone.close()).await, first);

    assert_eq!(
        producer.publish(&t, "two").await,
        Err(PublishError::Closed(Publisher::Producer))
    );
    assert!(matches!(
        producer.publish_async(&t, "three").await,
        Err(PublishError::Closed(Publisher::Producer))
    ));
    assert_eq!(
        producer.multi_publish(&t, ["four", "five"]).await,
        Err(PublishError::Closed(Publisher::Producer))
    );
    assert_eq!(
        producer
            .deferred_publish(&t, Duration::from_millis(10), "six")
            .await,
        Err(PublishError::Closed(Publisher::Producer))
    );
    assert!(matches!(producer.ping().await, Err(PingFailure::Closed)));
    assert_eq!(producer.stats(), first, "nothing happened after close");
    assert_eq!(producer.state(), ProducerState::Closed);
    assert_eq!(nsqd.topic_depth("s46_close"), Some(1));

    // A producer that never connected closes too.
    let idle = Producer::new(nsqd.tcp_addr().to_string(), producer_config()).unwrap();
    let stats = within("close idle", idle.close()).await;
    assert_eq!(stats.acked + stats.not_sent + stats.unknown, 0);
    within("close idle again", idle.close()).await;
    assert_eq!(
        idle.publish(&t, "x").await,
        Err(PublishError::Closed(Publisher::Producer))
    );
}

/// Scenario 50: one caller's publishes are written and acknowledged in call order. nsqd
/// hands one topic's messages to a single in-memory channel, and that channel to its only
/// consumer, first in first out (no requeues, nothing spilled to disk here), so the read order
/// is the order nsqd stored them in: sequential publishes, then 1000 pipelined publish_async.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s50_ordering() {
    let nsqd = Nsqd::start();
    nsqd.create_channel("s50_sequential", "ch");
    nsqd.create_channel("s50_pipelined", "ch");
    let producer = Producer::new(nsqd.tcp_addr().to_string(), producer_config()).unwrap();
    let expected: Vec<Bytes> = (0..1000).map(|i| Bytes::from(format!("{i}"))).collect();

    let t = topic("s50_sequential");
    for body in &expected {
        within("publish", producer.publish(&t, body.clone()))
            .await
            .expect("publish");
    }
    let read = blocking(|| read_exactly(&nsqd, "s50_sequential", "ch", 1000));
    assert_eq!(
        read, expected,
        "sequential publishes are stored in call order"
    );

    let t = topic("s50_pipelined");
    let mut pending = Vec::new();
    for body in &expected {
        pending.push(
            within("publish_async", producer.publish_async(&t, body.clone()))
                .await
                .expect("queued"),
        );
    }
    for publish in pending {
        within("completion", publish).await.expect("acknowledged");
    }
    let read = blocking(|| read_exactly(&nsqd, "s50_pipelined", "ch", 1000));
    assert_eq!(
        read, expected,
        "pipelined publishes are stored in call order"
    );
    within("close", producer.close()).await;
}

/// A producer configured only through go-nsq option names, as from a file shared with
/// consumers: the TLS options come in an order where the key precedes its certificate and the
/// switch comes last, and a consumer's `max_in_flight=1` is ignored. nsqd requires TLS and a
/// verified client certificate, so the publish proves every TLS option was applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_tls_from_go_nsq_option_names() {
    let pki = nsq_test_support::TestPki::generate();
    let nsqd = Nsqd::start_with(
        nsq_test_support::NsqdOptions::new()
            .tls_cert(pki.server_cert())
            .tls_key(pki.server_key())
            .tls_root_ca_file(pki.ca_cert())
            .tls_client_auth_policy("require-verify")
            .tls_required("tcp-https"),
    );
    let path = |p: std::path::PathBuf| p.to_str().unwrap().to_owned();
    let mut config = producer_config();
    for (option, value) in [
        ("tls_key", path(pki.client_key())),
        ("tls_root_ca_file", path(pki.ca_cert())),
        ("tls_min_version", "tls1.2".to_owned()),
        ("tls_cert", path(pki.client_cert())),
        ("max_in_flight", "1".to_owned()),
        ("tls_v1", "true".to_owned()),
    ] {
        config.set(option, &value).unwrap();
    }
    assert_eq!(config.ignored_options(), ["max_in_flight"]);
    assert_eq!(config.max_pipelined, 4096);
    let producer = within(
        "connect",
        Producer::connect(nsqd.tcp_addr().to_string(), config),
    )
    .await
    .expect("TLS with the client certificate");
    let t = topic("producer_tls_options");
    within("publish", producer.publish(&t, "x")).await.unwrap();
    assert_eq!(nsqd.topic_depth("producer_tls_options"), Some(1));
    assert_eq!(producers(&nsqd)[0]["tls"], true);
    within("close", producer.close()).await;
}

/// A producer and a pool connecting without TLS to nsqd that requires it: `connect` fails
/// naming TLS (rather than succeeding and failing every publish with `E_INVALID`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_without_tls_to_nsqd_requiring_it_names_tls() {
    let pki = nsq_test_support::TestPki::generate();
    let nsqd = Nsqd::start_with(
        nsq_test_support::NsqdOptions::new()
            .tls_cert(pki.server_cert())
            .tls_key(pki.server_key())
            .tls_required("tcp-https"),
    );
    let addr = nsqd.tcp_addr().to_string();
    let requires_tls = format!("nsqd at {addr} requires TLS: set tls_v1");
    let err = within(
        "connect",
        Producer::connect(addr.clone(), producer_config()),
    )
    .await
    .map(drop)
    .unwrap_err();
    match &err {
        ConnectError::Connect(PingFailure::Connection(conn_err)) => {
            assert!(
                matches!(**conn_err, ConnError::TlsRequired { .. }),
                "{err:?}"
            );
        }
        other => panic!("expected a connection error, got {other:?}"),
    }
    assert_eq!(err.to_string(), requires_tls);

    let pool_config = nsq_producer::PoolConfig::new(producer_config());
    let err = within("connect", nsq_producer::Pool::connect([addr], pool_config))
        .await
        .map(drop)
        .unwrap_err();
    assert!(err.to_string().contains(&requires_tls), "{err}");
}
