//! Helpers shared by the `consumer_*` tests: their consumer configuration, pre-filled topics,
//! polls of nsqd's statistics, and a sampler of every nsqd's RDY counts that runs beside a
//! consumer.
//!
//! Each test file uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nsq_consumer::ConsumerConfig;
use nsq_producer::{Producer, ProducerConfig};
use nsq_test_support::{ChannelSnapshot, HANG, Nsqd, channel_snapshot_at, topic};

/// The channel every consumer test reads.
pub const CHANNEL: &str = "consumer";

/// A consumer configuration for tests: the defaults with quick reconnects and short backoff.
pub fn consumer_config() -> ConsumerConfig {
    let mut config = ConsumerConfig::default();
    config.reconnect_backoff_min = Duration::from_millis(50);
    config.reconnect_backoff_max = Duration::from_millis(500);
    config.backoff_multiplier = Duration::from_millis(10);
    config.max_backoff_duration = Duration::from_millis(200);
    config
}

/// Creates `channel` on `topic` and publishes `bodies` to it with one producer, in batches, so
/// that the messages wait in the channel before any consumer connects.
pub async fn fill<I, B>(nsqd: &Nsqd, topic_name: &str, channel: &str, bodies: I)
where
    I: IntoIterator<Item = B>,
    B: Into<bytes::Bytes>,
{
    tokio::task::block_in_place(|| nsqd.create_channel(topic_name, channel));
    let producer = Producer::connect(nsqd.tcp_addr().to_string(), ProducerConfig::default())
        .await
        .expect("a producer to fill the topic");
    let t = topic(topic_name);
    let bodies: Vec<bytes::Bytes> = bodies.into_iter().map(Into::into).collect();
    for batch in bodies.chunks(1000) {
        producer
            .multi_publish(&t, batch.to_vec())
            .await
            .expect("the batch is published");
    }
    producer.close().await;
}

/// The snapshot of `channel` on `topic`, which must exist.
pub fn snapshot(nsqd: &Nsqd, topic_name: &str, channel: &str) -> ChannelSnapshot {
    tokio::task::block_in_place(|| nsqd.channel_snapshot(topic_name, channel))
        .unwrap_or_else(|| panic!("{topic_name}/{channel} exists on {}", nsqd.tcp_addr()))
}

/// Polls `check` (every 20 ms) until it returns true, failing the test with `what` after
/// [`HANG`]. Returns how long it took. Blocking statistics calls inside `check` are fine on the
/// multi-threaded runtime these tests use.
pub async fn until(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if tokio::task::block_in_place(&mut check) {
            return start.elapsed();
        }
        assert!(start.elapsed() < HANG, "{what}: not within {HANG:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the channel on every nsqd has nothing waiting, deferred or in flight.
pub async fn until_drained(nsqds: &[&Nsqd], topic_name: &str, channel: &str) {
    for nsqd in nsqds {
        until("the channel is empty with nothing in flight", || {
            nsqd.channel_snapshot(topic_name, channel)
                .is_some_and(|s| s.depth == 0 && s.in_flight_count == 0 && s.deferred_count == 0)
        })
        .await;
    }
}

/// What every nsqd said about the channel in one pass of a [`RdySampler`]: per nsqd, the sum
/// of its clients' RDY counts and the channel's in-flight count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    /// Per nsqd, in the order given: the sum of the RDY counts of its clients.
    pub ready: Vec<u64>,
    /// Per nsqd: messages in flight on the channel.
    pub in_flight: Vec<u64>,
    /// Per nsqd: clients subscribed to the channel.
    pub clients: Vec<usize>,
    /// When the pass ended, from the sampler's start.
    pub at: Duration,
}

/// The passes of a [`RdySampler`].
///
/// nsqd's counts can only be read one nsqd at a time, and a consumer moves RDY between
/// connections (RDY 0 to one, then RDY 1 to another) at any moment, so one pass over three
/// nsqd can mix the state before a move on one nsqd with the state after it on another, and add
/// up to more than was ever granted at once. A pass counts as *stable* when the next pass read
/// exactly the same values: then each nsqd kept its value from its read in the first pass to its
/// read in the second, and all the values held together between the end of the first pass and
/// the start of the second. Sums are checked on stable passes only; a consumer that over-grants
/// keeps over-granting and is caught there.
#[derive(Debug, Default)]
pub struct Samples {
    /// Every pass, in order.
    pub rounds: Vec<Round>,
}

impl Samples {
    /// The passes whose RDY counts the next pass read again unchanged.
    pub fn stable_ready(&self) -> Vec<&Round> {
        self.rounds
            .windows(2)
            .filter(|pair| pair[0].ready == pair[1].ready)
            .map(|pair| &pair[0])
            .collect()
    }

    /// The passes whose in-flight counts the next pass read again unchanged.
    pub fn stable_in_flight(&self) -> Vec<&Round> {
        self.rounds
            .windows(2)
            .filter(|pair| pair[0].in_flight == pair[1].in_flight)
            .map(|pair| &pair[0])
            .collect()
    }
}

/// Reads every nsqd's channel statistics over and over on a thread of its own until stopped.
pub struct RdySampler {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Samples>>,
}

impl RdySampler {
    /// Starts sampling `channel` of `topic_name` on the nsqd with these HTTP addresses. A
    /// missing channel, or an nsqd that does not answer, reads as 0.
    pub fn start(http_addrs: Vec<SocketAddr>, topic_name: &str, channel: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (topic_name, channel) = (topic_name.to_owned(), channel.to_owned());
        let stopped = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let start = Instant::now();
            let mut samples = Samples::default();
            while !stopped.load(Ordering::Relaxed) {
                let mut round = Round {
                    ready: Vec::new(),
                    in_flight: Vec::new(),
                    clients: Vec::new(),
                    at: Duration::ZERO,
                };
                for addr in &http_addrs {
                    let snapshot = channel_snapshot_at(*addr, &topic_name, &channel)
                        .ok()
                        .flatten();
                    round
                        .ready
                        .push(snapshot.as_ref().map_or(0, ChannelSnapshot::total_ready));
                    round
                        .in_flight
                        .push(snapshot.as_ref().map_or(0, |s| s.in_flight_count));
                    round
                        .clients
                        .push(snapshot.as_ref().map_or(0, |s| s.clients.len()));
                }
                round.at = start.elapsed();
                samples.rounds.push(round);
            }
            samples
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops sampling and returns every pass.
    pub fn finish(mut self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("finish is called once")
            .join()
            .expect("the sampler does not panic")
    }
}

impl Drop for RdySampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The body of message `i` of a numbered run: its sequence number in decimal.
pub fn numbered(i: usize) -> bytes::Bytes {
    bytes::Bytes::from(i.to_string())
}

/// The sequence number in a body made by [`numbered`].
pub fn number_of(body: &[u8]) -> usize {
    std::str::from_utf8(body)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("not a numbered body: {body:?}"))
}
