//! Helpers shared by the scripted-peer tests (`fake_*.rs`): a loopback listener standing in for
//! nsqd, the producer connected to it, and the frames and outcomes the tests check. Test names
//! that start with a number check that scenario (`s22_...` is scenario 22); docs/testing.md lists
//! the scenarios.
//!
//! The producer dials TCP, so each test binds a listener on `127.0.0.1:0`, gives its address to
//! the producer and plays nsqd's side of every accepted connection with [`FakeNsqd`].
//!
//! Tests that depend on time run with tokio's clock paused: the clock jumps to the next timer
//! whenever every task is waiting, so "the fake is silent for two heartbeats" takes no real time,
//! and a `sleep` in the test returns only once everything else has settled. This works over
//! loopback sockets because bytes written to one end are readable at the other as soon as the
//! write returns, and tokio polls for I/O (without moving the clock if a task woke) before it
//! jumps. Two things keep that true: the fake's sockets have `TCP_NODELAY` (the producer's
//! already do), since otherwise a small write can wait tens of real milliseconds for a delayed
//! ACK while the clock races ahead; and the producer takes its deadlines from tokio's clock.
//! No test asserts how long anything took; timeouts in the tests only turn a hang into a
//! failure.

// Each test file uses its own subset of these.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::io::ErrorKind;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use bytes::Bytes;
use nsq_producer::{ConnError, NotSentReason, Producer, ProducerConfig, Publish, PublishError};
use nsq_proto::server::ClientCommand;
use nsq_proto::{HEARTBEAT, OK, ServerError};
use nsq_test_support::{FakeNsqd, topic, within};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// These tests pin the pipeline of one command per publish, so automatic batching (which would
/// merge consecutive PUBs into one MPUB) is off; `batching_*` tests cover it.
pub fn unbatched() -> ProducerConfig {
    let mut config = ProducerConfig::default();
    config.batching = false;
    config
}

/// Unbatched, and publishes fail as soon as a connection attempt fails instead of waiting for
/// the next one.
pub fn fail_fast() -> ProducerConfig {
    let mut config = unbatched();
    config.fail_fast = true;
    config
}

/// The topic of every publish in these tests.
pub const TOPIC: &str = "t";

/// A loopback listener standing in for nsqd's TCP port.
pub struct FakeServer {
    pub listener: TcpListener,
}

impl FakeServer {
    pub async fn bind() -> Self {
        Self {
            listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        }
    }

    pub fn addr(&self) -> String {
        self.listener.local_addr().unwrap().to_string()
    }

    /// The next TCP connection, before any handshake.
    pub async fn accept_tcp(&self) -> TcpStream {
        let (stream, _) = within("a connection from the producer", self.listener.accept())
            .await
            .unwrap();
        // Without it, a small write waits for the ACK of the previous one, which the
        // producer's kernel delays by up to 40 ms of real time: with the clock paused, the
        // producer would see nothing arrive and the clock would jump to its next timer.
        stream.set_nodelay(true).unwrap();
        stream
    }

    /// The next connection, with the magic and IDENTIFY read and answered.
    pub async fn accept(&self) -> FakeNsqd {
        Self::handshake(self.accept_tcp().await).await
    }

    pub async fn handshake(stream: TcpStream) -> FakeNsqd {
        let mut nsqd = FakeNsqd::new(stream);
        within("the handshake", async {
            nsqd.accept_plain().await;
            nsqd.answer_tls_check().await;
        })
        .await;
        nsqd
    }

    /// Fails if a connection is waiting to be accepted.
    pub fn assert_no_connection_waiting(self) {
        let listener = self.listener.into_std().unwrap();
        match listener.accept() {
            Err(err) if err.kind() == ErrorKind::WouldBlock => {}
            Ok((_, peer)) => panic!("unexpected connection from {peer}"),
            Err(err) => panic!("accept failed: {err}"),
        }
    }
}

/// A producer made with [`Producer::connect`], and the fake it connected to (which has seen the
/// handshake and the ping's NOP).
pub async fn connect(server: &FakeServer, config: ProducerConfig) -> (Producer, FakeNsqd) {
    let connecting = tokio::spawn(Producer::connect(server.addr(), config));
    let mut nsqd = server.accept().await;
    assert_eq!(
        within("the ping's NOP", nsqd.expect_command()).await,
        ClientCommand::Nop
    );
    let producer = within("connect", connecting).await.unwrap().unwrap();
    (producer, nsqd)
}

/// Publishes `body` from a task of its own.
pub fn spawn_publish(
    producer: &Producer,
    body: &'static str,
) -> JoinHandle<Result<(), PublishError>> {
    let producer = producer.clone();
    tokio::spawn(async move { producer.publish(&topic(TOPIC), body).await })
}

/// Reads a PUB to [`TOPIC`] and returns its body.
pub async fn expect_pub(nsqd: &mut FakeNsqd) -> Bytes {
    match within("a PUB", nsqd.expect_command()).await {
        ClientCommand::Pub { topic, body } => {
            assert_eq!(topic, TOPIC);
            body
        }
        other => panic!("expected a PUB, got {other:?}"),
    }
}

/// The producer's next connection: accepts it, publishes `body` on it and answers `OK`; the
/// publish must succeed. Returns the fake, which keeps the connection open while it lives.
pub async fn publish_on_next_connection(
    server: &FakeServer,
    producer: &Producer,
    body: &'static str,
) -> FakeNsqd {
    let mut nsqd = server.accept().await;
    let publish = spawn_publish(producer, body);
    assert_eq!(expect_pub(&mut nsqd).await, body);
    nsqd.send_ok().await;
    assert_eq!(within(body, publish).await.unwrap(), Ok(()));
    nsqd
}

/// Answers every PUB with `OK` until the producer closes the connection; returns the bodies.
pub async fn answer_ok_until_eof(nsqd: &mut FakeNsqd) -> Vec<Bytes> {
    let mut bodies = Vec::new();
    while let Some(command) = within("a command or EOF", nsqd.next_command()).await {
        match command {
            ClientCommand::Pub { body, .. } => {
                bodies.push(body);
                nsqd.send_ok().await;
            }
            other => panic!("expected a PUB, got {other:?}"),
        }
    }
    bodies
}

/// Sends a heartbeat every `interval` and reads the NOPs, until the producer closes the
/// connection; returns how many NOPs arrived.
pub async fn heartbeat_until_eof(nsqd: &mut FakeNsqd, interval: Duration) -> usize {
    let mut nops = 0;
    loop {
        tokio::select! {
            // EOF first: a heartbeat written after the producer left would meet a reset.
            biased;
            command = nsqd.next_command() => match command {
                Some(ClientCommand::Nop) => nops += 1,
                Some(other) => panic!("expected a NOP, got {other:?}"),
                None => return nops,
            },
            () = tokio::time::sleep(interval) => nsqd.send_heartbeat().await,
        }
    }
}

/// The bytes of several frames, to send in one write so that the producer reads them together.
pub fn frames(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

pub fn ok_frame() -> Vec<u8> {
    FakeNsqd::response_frame(OK).to_vec()
}

pub fn heartbeat_frame() -> Vec<u8> {
    FakeNsqd::response_frame(HEARTBEAT).to_vec()
}

pub fn error_frame(text: &str) -> Vec<u8> {
    FakeNsqd::error_frame(text).to_vec()
}

/// Whether `future` is still pending, polled once without a waker that matters.
pub fn is_pending<F: Future + ?Sized>(future: Pin<&mut F>) -> bool {
    future
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_pending()
}

/// The connection error of an [`PublishError::Unknown`].
pub fn unknown_cause(result: Result<(), PublishError>) -> Arc<ConnError> {
    match result {
        Err(PublishError::Unknown {
            cause: Some(cause), ..
        }) => cause,
        other => panic!("expected Unknown with a cause, got {other:?}"),
    }
}

pub fn rejection(result: Result<(), PublishError>) -> ServerError {
    match result {
        Err(PublishError::Rejected { error, .. }) => error,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

pub fn aborted() -> Result<(), PublishError> {
    Err(PublishError::NotSent(NotSentReason::Aborted))
}

/// Reads an MPUB to `topic_name` and returns its bodies.
pub async fn expect_mpub(nsqd: &mut FakeNsqd, topic_name: &str) -> Vec<Bytes> {
    match within("an MPUB", nsqd.expect_command()).await {
        ClientCommand::Mpub { topic, bodies } => {
            assert_eq!(topic, topic_name);
            bodies
        }
        other => panic!("expected an MPUB, got {other:?}"),
    }
}

/// Queues PUBs `a`, `b`, `c` and a DPUB to [`TOPIC`] on `producer`; returns their handles.
pub async fn queue_abc_and_dpub(producer: &Producer) -> (Vec<Publish>, Publish) {
    let mut batched = Vec::new();
    for body in ["a", "b", "c"] {
        batched.push(producer.publish_async(&topic(TOPIC), body).await.unwrap());
    }
    let deferred = producer
        .deferred_publish_async(&topic(TOPIC), Duration::from_millis(5), "d")
        .await
        .unwrap();
    (batched, deferred)
}

/// Reads what [`queue_abc_and_dpub`] queued before the connection: the PUBs as one MPUB, then
/// the DPUB.
pub async fn expect_abc_then_dpub(nsqd: &mut FakeNsqd) {
    assert_eq!(expect_mpub(nsqd, TOPIC).await, ["a", "b", "c"]);
    assert!(matches!(
        within("the DPUB", nsqd.expect_command()).await,
        ClientCommand::Dpub { .. }
    ));
}

/// A producer with batching on, on which PUBs `a`, `b`, `c` and a DPUB were queued before it
/// connected, and the fake it connected to, which has read them: the PUBs as one MPUB, then the
/// DPUB. Returns the producer, the three batched publishes, the DPUB and the fake.
pub async fn batch_then_dpub(server: &FakeServer) -> (Producer, Vec<Publish>, Publish, FakeNsqd) {
    let producer = Producer::new(server.addr(), ProducerConfig::default()).unwrap();
    let (batched, deferred) = queue_abc_and_dpub(&producer).await;
    let mut nsqd = server.accept().await;
    expect_abc_then_dpub(&mut nsqd).await;
    (producer, batched, deferred, nsqd)
}

/// `n` publishes (`m0`, `m1`, ...) to [`TOPIC`], each from a task of its own.
pub fn spawn_publishes(producer: &Producer, n: usize) -> Vec<JoinHandle<Result<(), PublishError>>> {
    (0..n)
        .map(|i| {
            let producer = producer.clone();
            tokio::spawn(async move { producer.publish(&topic(TOPIC), format!("m{i}")).await })
        })
        .collect()
}

/// The outcome of a publish on `producer` whose publish timeout passed after it was written.
pub fn timed_out(producer: &Producer) -> Result<(), PublishError> {
    Err(PublishError::TimedOut {
        addr: producer.addr().into(),
    })
}
