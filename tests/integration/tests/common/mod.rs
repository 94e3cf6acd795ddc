//! Helpers shared by the `producer_*` tests: a minimal consumer, hang guards, nsqd statistics
//! and a seeded random source.
//!
//! Each test file uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use nsq_conn::{ConnConfig, Connection};
use nsq_producer::ProducerConfig;
use nsq_proto::{Channel, Command, Frame, Message, Response, Topic};
use nsq_test_support::{HANG, Nsqd, within};

/// A producer configuration for tests: the defaults with quick reconnects.
pub fn producer_config() -> ProducerConfig {
    let mut config = ProducerConfig::default();
    config.reconnect_backoff_min = Duration::from_millis(20);
    config.reconnect_backoff_max = Duration::from_millis(500);
    config
}

/// Runs the blocking harness call `f` without stalling the runtime's other tasks (for calls
/// that take a while, such as a restart). Needs the multi-threaded runtime.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// A numeric field of a channel's statistics (`depth`, `deferred_count`, `message_count`,
/// `in_flight_count`, ...).
pub fn channel_number(nsqd: &Nsqd, topic: &str, channel: &str, field: &str) -> u64 {
    let stats = nsqd
        .channel_stats(topic, channel)
        .unwrap_or_else(|| panic!("channel {topic}/{channel} does not exist"));
    stats[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no numeric {field:?} in {stats}"))
}

/// Polls `read` until it returns `want` or [`HANG`] passes; returns the last value. For nsqd's
/// statistics, which some operations update asynchronously.
pub async fn eventually<T: PartialEq>(want: T, mut read: impl FnMut() -> T) -> T {
    let deadline = Instant::now() + HANG;
    loop {
        let got = read();
        if got == want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Buffered FIN bytes above which the consumer writes them out even while messages keep coming.
const FIN_FLUSH_THRESHOLD: usize = 16 * 1024;

/// A bare consumer on one nsq-conn `Connection`: SUB, one RDY, and a FIN for every message.
///
/// FINs are buffered and written when no frame is waiting (or many have piled up), so reading
/// many messages costs few writes.
pub struct Consumer {
    conn: Connection,
    /// How often each message id was delivered.
    deliveries: HashMap<[u8; 16], u32>,
}

impl Consumer {
    /// Connects, subscribes to `topic`/`channel` and announces `rdy`.
    pub async fn subscribe(addr: SocketAddr, topic: &str, channel: &str, rdy: u32) -> Self {
        let config = ConnConfig::builder(addr.to_string())
            .client_id("test-consumer")
            .build()
            .expect("consumer configuration");
        let mut conn = within("consumer connect", Connection::connect(&config))
            .await
            .unwrap_or_else(|err| panic!("consumer cannot connect to {addr}: {err}"));
        let topic = Topic::new(topic).expect("valid topic");
        let channel = Channel::new(channel).expect("valid channel");
        conn.send(Command::Sub {
            topic: &topic,
            channel: &channel,
        })
        .await
        .expect("send SUB");
        match within("SUB reply", conn.recv()).await {
            Ok(Frame::Response(Response::Ok)) => {}
            other => panic!("SUB answered with {other:?}"),
        }
        conn.send(Command::Rdy { count: rdy })
            .await
            .expect("send RDY");
        Self {
            conn,
            deliveries: HashMap::new(),
        }
    }

    /// The next message, finished (the FIN goes out with the next flush). Cancel safe.
    ///
    /// # Panics
    ///
    /// On anything but a message, or a connection error.
    pub async fn next(&mut self) -> Message {
        let conn = &mut self.conn;
        let frame = poll_fn(|cx| match conn.poll_recv(cx) {
            Poll::Ready(frame) => {
                if conn.write_buffer_len() >= FIN_FLUSH_THRESHOLD {
                    // Progress only; the flush is driven on by later calls.
                    let _ = conn.poll_flush(cx);
                }
                Poll::Ready(frame)
            }
            // Nothing to read right now: a good moment to send the FINs.
            Poll::Pending if conn.write_buffer_len() > 0 => match conn.poll_flush(cx) {
                Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
                _ => Poll::Pending,
            },
            Poll::Pending => Poll::Pending,
        })
        .await;
        match frame {
            Ok(Frame::Message(message)) => {
                self.conn
                    .buffer_command(&Command::Fin { id: &message.id })
                    .expect("buffer FIN");
                *self.deliveries.entry(message.id.0).or_default() += 1;
                message
            }
            other => panic!("consumer expected a message, got {other:?}"),
        }
    }

    /// Reads exactly `n` messages (failing after [`HANG`]) and returns their bodies in arrival
    /// order.
    pub async fn read(&mut self, n: usize) -> Vec<Bytes> {
        let mut bodies = Vec::with_capacity(n);
        within(&format!("reading {n} messages"), async {
            while bodies.len() < n {
                bodies.push(self.next().await.body);
            }
        })
        .await;
        bodies
    }

    /// Messages delivered more than once (nsqd requeues a message that is not finished in
    /// time); 0 in a healthy test.
    pub fn redeliveries(&self) -> u64 {
        self.deliveries.values().map(|&n| u64::from(n - 1)).sum()
    }

    /// Writes the buffered FINs out.
    pub async fn flush(&mut self) {
        let conn = &mut self.conn;
        within("flushing FINs", poll_fn(|cx| conn.poll_flush(cx)))
            .await
            .expect("flush FINs");
    }
}

/// Reads `n` messages from a fresh channel consumer and checks, through nsqd's statistics,
/// that the channel received exactly `n` and has none left: returns the bodies in arrival
/// order.
pub async fn read_exactly(nsqd: &Nsqd, topic: &str, channel: &str, n: usize) -> Vec<Bytes> {
    let mut consumer = Consumer::subscribe(nsqd.tcp_addr(), topic, channel, 2500).await;
    let bodies = consumer.read(n).await;
    consumer.flush().await;
    assert_eq!(consumer.redeliveries(), 0, "no message is delivered twice");
    let in_flight = eventually(0, || {
        channel_number(nsqd, topic, channel, "in_flight_count")
    })
    .await;
    assert_eq!(in_flight, 0, "every message read was finished");
    assert_eq!(
        channel_number(nsqd, topic, channel, "message_count"),
        n as u64,
        "the channel received exactly the messages read"
    );
    assert_eq!(channel_number(nsqd, topic, channel, "depth"), 0);
    assert_eq!(channel_number(nsqd, topic, channel, "deferred_count"), 0);
    bodies
}

/// Reads from a fresh channel consumer until no message has come for `quiet`; returns the
/// bodies in arrival order. For a topic whose size is not known in advance.
pub async fn read_until_quiet(
    nsqd: &Nsqd,
    topic: &str,
    channel: &str,
    quiet: Duration,
) -> Vec<Bytes> {
    let mut consumer = Consumer::subscribe(nsqd.tcp_addr(), topic, channel, 2500).await;
    let mut bodies = Vec::new();
    while let Ok(message) = tokio::time::timeout(quiet, consumer.next()).await {
        bodies.push(message.body);
    }
    consumer.flush().await;
    bodies
}
