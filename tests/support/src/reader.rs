//! Reading messages back from a real nsqd: a bare blocking consumer and the checks the tests
//! make with it.
//!
//! It is blocking (a `std` socket and nsq-proto's decoder), so that the nsq-pub tests, which run
//! no runtime, and the async tests (through `tokio::task::block_in_place` or `spawn_blocking`)
//! read the same way.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use nsq_proto::{Channel, Command, Frame, FrameDecoder, MAGIC_V2, Message, Response, Topic};

use crate::{HANG, Nsqd};

/// The channel [`read_all`] subscribes to.
pub const READBACK: &str = "readback";

/// How many messages a [`NsqdReader`] lets nsqd send ahead of its reads.
const RDY: u32 = 2500;

/// A bare blocking consumer: SUB, one RDY, and a FIN for every message it returns. FINs (and the
/// NOPs that answer heartbeats) are written whenever no whole frame is waiting, so reading many
/// messages costs few writes.
pub struct NsqdReader {
    stream: TcpStream,
    input: BytesMut,
    decoder: FrameDecoder,
    output: BytesMut,
    read_timeout: Option<Duration>,
    received: usize,
    redeliveries: u64,
}

impl NsqdReader {
    /// Connects to nsqd's TCP port at `addr`, subscribes to `topic`/`channel` and announces
    /// RDY 2500.
    ///
    /// # Panics
    ///
    /// When nsqd cannot be reached or does not answer the SUB with `OK`.
    pub fn subscribe(addr: SocketAddr, topic: &str, channel: &str) -> Self {
        let stream = TcpStream::connect(addr)
            .unwrap_or_else(|err| panic!("the reader cannot connect to {addr}: {err}"));
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let mut reader = Self {
            stream,
            input: BytesMut::new(),
            decoder: FrameDecoder::default(),
            output: BytesMut::new(),
            read_timeout: None,
            received: 0,
            redeliveries: 0,
        };
        reader.output.extend_from_slice(MAGIC_V2);
        let topic = Topic::new(topic).expect("valid topic");
        let channel = Channel::new(channel).expect("valid channel");
        reader.queue(&Command::Sub {
            topic: &topic,
            channel: &channel,
        });
        reader.flush();
        match reader.frame_within(HANG) {
            Some(Frame::Response(Response::Ok)) => {}
            other => panic!("SUB answered with {other:?}"),
        }
        reader.queue(&Command::Rdy { count: RDY });
        reader.flush();
        reader
    }

    fn queue(&mut self, command: &Command<'_>) {
        command.encode(&mut self.output).expect("encode a command");
    }

    /// Writes out what is queued (FINs, NOPs).
    pub fn flush(&mut self) {
        if !self.output.is_empty() {
            self.stream.write_all(&self.output).expect("write to nsqd");
            self.output.clear();
        }
    }

    /// The next message, finished with the next flush.
    ///
    /// # Panics
    ///
    /// When none comes within [`HANG`], on any other frame, or when the connection fails.
    pub fn next_message(&mut self) -> Message {
        self.next_within(HANG).unwrap_or_else(|| {
            panic!(
                "no message from nsqd within {HANG:?} after {} messages",
                self.received
            )
        })
    }

    /// The next message if one comes within `wait`, finished with the next flush.
    ///
    /// # Panics
    ///
    /// On any frame but a message, or when the connection fails.
    pub fn next_within(&mut self, wait: Duration) -> Option<Message> {
        match self.frame_within(wait)? {
            Frame::Message(message) => {
                self.queue(&Command::Fin { id: &message.id });
                self.received += 1;
                if message.attempts > 1 {
                    self.redeliveries += 1;
                }
                Some(message)
            }
            other => panic!("the reader expected a message, got {other:?}"),
        }
    }

    /// Reads exactly `n` messages; returns their bodies in arrival order.
    pub fn read(&mut self, n: usize) -> Vec<Bytes> {
        (0..n).map(|_| self.next_message().body).collect()
    }

    /// Messages delivered more than once (nsqd requeues a message not finished in time); 0 in
    /// a healthy test.
    pub fn redeliveries(&self) -> u64 {
        self.redeliveries
    }

    /// The next frame other than a heartbeat (answered with NOP), if one comes within `wait`.
    /// What is queued is written out before waiting.
    fn frame_within(&mut self, wait: Duration) -> Option<Frame> {
        let mut chunk = [0; 64 * 1024];
        loop {
            match self.decoder.decode(&mut self.input).expect("valid frames") {
                Some(Frame::Response(Response::Heartbeat)) => self.queue(&Command::Nop),
                Some(frame) => return Some(frame),
                None => {
                    self.flush();
                    if self.read_timeout != Some(wait) {
                        self.stream
                            .set_read_timeout(Some(wait))
                            .expect("read timeout");
                        self.read_timeout = Some(wait);
                    }
                    match self.stream.read(&mut chunk) {
                        Ok(0) => panic!(
                            "nsqd closed the connection after {} messages",
                            self.received
                        ),
                        Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                        Err(err)
                            if matches!(
                                err.kind(),
                                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                            ) =>
                        {
                            return None;
                        }
                        Err(err) => panic!(
                            "reading from nsqd failed after {} messages: {err}",
                            self.received
                        ),
                    }
                }
            }
        }
    }
}

/// A numeric field of a channel's statistics (`depth`, `deferred_count`, `message_count`,
/// `in_flight_count`, ...).
///
/// # Panics
///
/// When the channel or the field does not exist.
pub fn channel_number(nsqd: &Nsqd, topic: &str, channel: &str, field: &str) -> u64 {
    let stats = nsqd
        .channel_stats(topic, channel)
        .unwrap_or_else(|| panic!("channel {topic}/{channel} does not exist"));
    stats[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no numeric {field:?} in {stats}"))
}

/// Reads `n` messages from `topic`/`channel` and checks, through nsqd's statistics, that the
/// channel received exactly `n`, delivered none twice and has none left; returns the bodies in
/// arrival order.
pub fn read_exactly(nsqd: &Nsqd, topic: &str, channel: &str, n: usize) -> Vec<Bytes> {
    let mut reader = NsqdReader::subscribe(nsqd.tcp_addr(), topic, channel);
    let bodies = reader.read(n);
    reader.flush();
    assert_eq!(reader.redeliveries(), 0, "no message is delivered twice");
    // nsqd counts a FIN when it has read it, a little after the write.
    let deadline = Instant::now() + HANG;
    while channel_number(nsqd, topic, channel, "in_flight_count") != 0 {
        assert!(Instant::now() < deadline, "every message read was finished");
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        channel_number(nsqd, topic, channel, "message_count"),
        n as u64,
        "the channel received exactly the messages read"
    );
    assert_eq!(channel_number(nsqd, topic, channel, "depth"), 0);
    assert_eq!(channel_number(nsqd, topic, channel, "deferred_count"), 0);
    bodies
}

/// Reads `n` messages from `topic`/`channel`, then any more there are, until nsqd reports the
/// topic and the channel empty with nothing in flight (a message delivered and not yet read
/// would stay in flight, since only what is read is finished). Returns the bodies in arrival
/// order.
///
/// `n` is what the caller knows to be there; more may be: after a SIGKILL, nsqd's depth can
/// miss a message written just before the kill.
pub fn read_at_least(nsqd: &Nsqd, topic: &str, channel: &str, n: usize) -> Vec<Bytes> {
    let mut reader = NsqdReader::subscribe(nsqd.tcp_addr(), topic, channel);
    let mut bodies = reader.read(n);
    let deadline = Instant::now() + HANG;
    loop {
        while let Some(message) = reader.next_within(Duration::from_millis(50)) {
            bodies.push(message.body);
        }
        reader.flush();
        let in_flight = channel_number(nsqd, topic, channel, "in_flight_count");
        let depth = channel_number(nsqd, topic, channel, "depth");
        let topic_depth = nsqd.topic_depth(topic).expect("the topic exists");
        if in_flight == 0 && depth == 0 && topic_depth == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after reading {} messages, {topic} still has depth {topic_depth}, {channel} depth \
             {depth} and {in_flight} in flight",
            bodies.len()
        );
    }
    assert_eq!(reader.redeliveries(), 0, "no message is delivered twice");
    bodies
}

/// Everything `topic` holds on `nsqd`, read through the channel [`READBACK`], which must not
/// exist yet (so the topic's depth is everything there is). An absent topic holds nothing.
pub fn read_all(nsqd: &Nsqd, topic: &str) -> Vec<Bytes> {
    let Some(stats) = nsqd.topic_stats(topic) else {
        return Vec::new();
    };
    assert!(
        stats["channels"].as_array().is_none_or(Vec::is_empty),
        "read_all needs a topic without channels: {stats}"
    );
    let depth = stats["depth"].as_u64().expect("topic depth");
    read_at_least(nsqd, topic, READBACK, depth as usize)
}

/// Reads from `topic`/`channel` until no message has come for `quiet`; returns the bodies in
/// arrival order. For a topic whose size is not known in advance.
pub fn read_until_quiet(nsqd: &Nsqd, topic: &str, channel: &str, quiet: Duration) -> Vec<Bytes> {
    let mut reader = NsqdReader::subscribe(nsqd.tcp_addr(), topic, channel);
    let mut bodies = Vec::new();
    while let Some(message) = reader.next_within(quiet) {
        bodies.push(message.body);
    }
    reader.flush();
    bodies
}
