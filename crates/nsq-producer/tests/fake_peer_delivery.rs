//! Deadlines and reconnection against peers that misbehave: a closed port, an HTTP port, a peer
//! that stops answering, a handshake that never completes, a connection lost while closing.
//!
//! Time runs on tokio's paused clock (see `common/mod.rs` for why that works over loopback
//! sockets), so "ten seconds of redialling" takes no real time and the latencies checked here are
//! the producer's own timers, not the machine's speed. A bound such as "within the publish
//! timeout plus 50 ms" is a correctness check: a publish must not outlive its deadline.

mod common;

use std::time::Duration;

use nsq_producer::{
    ConnError, NotSentReason, Producer, ProducerConfig, ProducerState, PublishError,
};
use nsq_proto::server::ClientCommand;
use nsq_test_support::{FakeNsqd, closed_addr, topic, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::Instant;

use common::*;

/// How far past its deadline a publish may resolve: one turn of the router, not a timer of
/// anything else.
const MARGIN: Duration = Duration::from_millis(50);

/// Dials against a closed port back off from the first attempt, though the producer never
/// connected. With the default 100 ms to 10 s backoff and a publish waiting, the delay grows
/// (100 ms, 200 ms, 400 ms, each jittered down by up to half) to its cap of 0.5 s while
/// something waits: over ten seconds that is 2 to 4 attempts a second, not one every 100 ms.
/// The publish waiting meanwhile fails at its deadline with the last connection error, and the
/// state says which attempt is next, when, and why the last one failed. Once nothing waits, the
/// backoff grows to seconds: the next twenty seconds see only a few attempts.
#[tokio::test(start_paused = true)]
async fn dials_back_off_against_a_closed_port() {
    let mut config = unbatched();
    config.publish_timeout = Some(Duration::from_secs(10));
    let producer = Producer::new(closed_addr().to_string(), config).unwrap();
    let started = Instant::now();
    let result = within("the publish", producer.publish(&topic(TOPIC), "m")).await;
    assert!(started.elapsed() <= Duration::from_secs(10) + MARGIN);
    match &result {
        Err(PublishError::NotSent(NotSentReason::Unavailable(cause))) => {
            assert!(matches!(&**cause, ConnError::Connect { .. }), "{cause:?}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let failures = producer.stats().connect_failures;
    assert!(
        (18..=45).contains(&failures),
        "{failures} dial attempts in 10 s with a publish waiting"
    );
    match producer.state() {
        ProducerState::Reconnecting {
            attempt,
            last_error: Some(last_error),
            next_attempt,
        } => {
            assert_eq!(u64::from(attempt), failures + 1);
            assert!(matches!(&*last_error, ConnError::Connect { .. }));
            assert!(next_attempt > Instant::now().into_std());
        }
        other => panic!("expected Reconnecting, got {other:?}"),
    }
    let shown = format!("{} / {:?}", producer.state(), producer.state());
    assert!(
        shown.contains(&format!("attempt {}", failures + 1)),
        "{shown}"
    );
    assert!(shown.contains(" in "), "{shown}");
    assert!(!shown.contains("tv_sec"), "{shown}");
    // Nothing waits any more: the full backoff, which has grown to 5 to 10 s.
    tokio::time::sleep(Duration::from_secs(20)).await;
    let idle = producer.stats().connect_failures - failures;
    assert!(
        idle <= 5,
        "{idle} dial attempts in 20 s with nothing waiting"
    );
}

/// A producer pointed at nsqd's HTTP port: each attempt gets an HTTP answer instead of a
/// handshake, and the attempts back off just as against a closed port (to 2 to 4 a second while
/// a publish waits).
#[tokio::test(start_paused = true)]
async fn dials_back_off_against_an_http_port() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let http = tokio::spawn(async move {
        let mut accepted = 0;
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return accepted;
            };
            accepted += 1;
            stream.set_nodelay(true).unwrap();
            let mut request = [0u8; 512];
            let _ = stream.read(&mut request).await;
            let _ = stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    let mut config = unbatched();
    config.publish_timeout = Some(Duration::from_secs(10));
    let producer = Producer::new(addr, config).unwrap();
    let result = within("the publish", producer.publish(&topic(TOPIC), "m")).await;
    match &result {
        Err(PublishError::NotSent(NotSentReason::Unavailable(cause))) => {
            assert!(cause.to_string().contains("HTTP"), "{cause}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let failures = producer.stats().connect_failures;
    assert!(
        (18..=45).contains(&failures),
        "{failures} dial attempts in 10 s with a publish waiting"
    );
    producer.close().await;
    http.abort();
}

/// A peer that answers three publishes and then stops answering. The caller publishing one
/// message after another gets `TimedOut` for the fourth; its next publish is not written on the
/// stalled connection (where it would have an unknown outcome when the connection is dropped)
/// but held back, and goes out on the next connection. Exactly one caller times out per stall
/// and none gets `Unknown`.
#[tokio::test(start_paused = true)]
async fn an_overdue_request_holds_back_writes_on_its_connection() {
    let server = FakeServer::bind().await;
    let mut config = unbatched();
    config.publish_timeout = Some(Duration::from_secs(2));
    config.stall_grace = Duration::from_millis(500);
    let (producer, mut first) = connect(&server, config).await;
    let caller = {
        let producer = producer.clone();
        tokio::spawn(async move {
            let mut results = Vec::new();
            for i in 0..8 {
                results.push(producer.publish(&topic(TOPIC), format!("m{i}")).await);
            }
            results
        })
    };
    for i in 0..3 {
        assert_eq!(expect_pub(&mut first).await, format!("m{i}"));
        first.send_ok().await;
    }
    assert_eq!(expect_pub(&mut first).await, "m3");
    // Silent from here: the next thing on this connection must be its end, not another PUB.
    within("the stalled connection to close", first.expect_eof()).await;

    let mut second = server.accept().await;
    let bodies = tokio::spawn(async move { answer_ok_until_eof(&mut second).await });
    let results = within("the caller", caller).await.unwrap();
    let timed_out_count = results
        .iter()
        .filter(|r| **r == timed_out(&producer))
        .count();
    assert_eq!(timed_out_count, 1, "{results:?}");
    assert_eq!(results[3], timed_out(&producer));
    assert!(
        results.iter().enumerate().all(|(i, r)| i == 3 || r.is_ok()),
        "{results:?}"
    );
    producer.close().await;
    let resent: Vec<_> = within("the second connection", bodies).await.unwrap();
    let expected: Vec<String> = (4..8).map(|i| format!("m{i}")).collect();
    assert_eq!(resent, expected);
    let stats = producer.stats();
    assert_eq!(
        (stats.acked, stats.timed_out, stats.unknown),
        (7, 1, 1),
        "the one unknown is the request that timed out"
    );
}

/// A peer that accepts TCP and never answers IDENTIFY, like nsqd under SIGSTOP. With a 2 s
/// publish timeout and the 10 s handshake timeout, every publish resolves within its own 2 s,
/// whether it was queued before the dial or during the handshake, and `close` returns at once
/// instead of waiting for the handshake.
#[tokio::test(start_paused = true)]
async fn deadlines_hold_while_the_handshake_hangs() {
    let server = FakeServer::bind().await;
    let mut config = unbatched();
    let timeout = Duration::from_secs(2);
    config.publish_timeout = Some(timeout);
    let producer = Producer::new(server.addr(), config).unwrap();
    let publish_timed = {
        let producer = producer.clone();
        move |body: String| {
            let producer = producer.clone();
            async move {
                let started = Instant::now();
                let result = producer.publish(&topic(TOPIC), body).await;
                (started.elapsed(), result)
            }
        }
    };
    let sync_loop = tokio::spawn({
        let publish_timed = publish_timed.clone();
        async move {
            let mut outcomes = Vec::new();
            for i in 0..4 {
                outcomes.push(publish_timed(format!("loop{i}")).await);
            }
            outcomes
        }
    });
    let mut hung = FakeNsqd::new(server.accept_tcp().await);
    // The magic and IDENTIFY arrive; no answer ever goes back.
    assert_eq!(
        within("the magic", hung.expect_command()).await,
        ClientCommand::Magic
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    let concurrent: Vec<_> = (0..5)
        .map(|i| tokio::spawn(publish_timed(format!("c{i}"))))
        .collect();
    let mut outcomes = within("the loop", sync_loop).await.unwrap();
    for handle in concurrent {
        outcomes.push(within("a concurrent publish", handle).await.unwrap());
    }
    for (elapsed, result) in &outcomes {
        assert!(
            *elapsed <= timeout + MARGIN,
            "a publish took {elapsed:?}: {result:?}"
        );
        assert!(
            matches!(result, Err(PublishError::NotSent(_))),
            "{result:?}"
        );
    }
    // 8 s in, 2 s before the handshake times out: nothing is queued, so close need not wait.
    let started = Instant::now();
    let stats = within("close", producer.close()).await;
    assert!(
        started.elapsed() <= MARGIN,
        "close took {:?}",
        started.elapsed()
    );
    assert_eq!(stats.not_sent, 9);
    assert_eq!(producer.state(), ProducerState::Closed);
    within("the abandoned handshake to close", async {
        while hung.next_command().await.is_some() {}
    })
    .await;
}

/// The connection is lost with nothing queued and `close` begins while the producer waits to
/// redial: it closes at once and never dials again.
#[tokio::test(start_paused = true)]
async fn close_after_a_lost_connection_does_not_dial_again() {
    let server = FakeServer::bind().await;
    let (producer, nsqd) = connect(&server, ProducerConfig::default()).await;
    drop(nsqd);
    let mut state = producer.watch_state();
    within(
        "the lost connection",
        state.wait_for(|s| matches!(s, ProducerState::Reconnecting { .. })),
    )
    .await
    .unwrap();
    let started = Instant::now();
    within("close", producer.close()).await;
    assert!(
        started.elapsed() <= MARGIN,
        "close took {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    server.assert_no_connection_waiting();
}
