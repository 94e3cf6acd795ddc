//! nsq-proto against the real nsqd v1.3.0, over a plain blocking `TcpStream`.
//!
//! Commands are encoded with `Command` (or written raw where the point is to send what a
//! `Command` cannot express, such as an invalid topic) and replies are decoded with
//! `FrameDecoder`. These tests pin what nsqd really answers: the exact error texts, that each
//! error closes the connection, and that nothing pipelined after a fatal error is executed.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use nsq_proto::{
    Command, ErrorCode, Frame, FrameDecoder, IdentifyConfig, IdentifyResponse, MAGIC_V2, Response,
    ServerError, UpgradePlan,
};
use nsq_test_support::{Nsqd, NsqdOptions, topic};
use serde_json::Value;

const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How a read ended when no frame came.
#[derive(Debug)]
enum Closed {
    Eof,
    Reset,
}

/// One raw V2 connection: magic written, frames decoded with nsq-proto.
struct Client {
    stream: std::net::TcpStream,
    input: BytesMut,
    decoder: FrameDecoder,
}

impl Client {
    fn connect(nsqd: &Nsqd) -> Self {
        let mut stream = std::net::TcpStream::connect(nsqd.tcp_addr()).expect("connect to nsqd");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.write_all(MAGIC_V2).unwrap();
        Self {
            stream,
            input: BytesMut::new(),
            decoder: FrameDecoder::default(),
        }
    }

    fn send(&mut self, cmd: Command<'_>) {
        let mut buf = BytesMut::new();
        cmd.encode(&mut buf).unwrap();
        self.send_raw(&buf);
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to nsqd");
    }

    /// The next frame, or how the connection ended. A reset counts as closed: nsqd closing a
    /// socket that still holds unread client bytes makes the kernel send RST.
    fn next_frame(&mut self) -> Result<Frame, Closed> {
        let mut chunk = [0; 4096];
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.input).expect("valid frames") {
                return Ok(frame);
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(Closed::Eof),
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(Closed::Reset);
                }
                Err(err) => panic!("read from nsqd failed: {err}"),
            }
        }
    }

    /// The next reply, with heartbeats skipped.
    fn reply(&mut self) -> Frame {
        loop {
            match self.next_frame() {
                Ok(Frame::Response(Response::Heartbeat)) => self.send(Command::Nop),
                Ok(frame) => return frame,
                Err(closed) => panic!("connection closed ({closed:?}) while awaiting a reply"),
            }
        }
    }

    fn expect_ok(&mut self) {
        assert_eq!(self.reply(), Frame::Response(Response::Ok));
    }

    /// Expects an error frame with exactly `text`, fatal, followed by the end of the connection.
    fn expect_fatal_error(&mut self, text: &str) -> ServerError {
        let err = match self.reply() {
            Frame::Error(err) => err,
            other => panic!("expected the error {text:?}, got {other:?}"),
        };
        assert_eq!(err.to_string(), text);
        assert!(err.code().is_fatal(), "{:?} should be fatal", err.code());
        assert!(err.is_fatal());
        self.expect_closed();
        err
    }

    /// The connection ends (EOF or reset) without another frame.
    fn expect_closed(&mut self) {
        match self.next_frame() {
            Err(Closed::Eof | Closed::Reset) => {}
            Ok(frame) => panic!("expected the connection to close, got {frame:?}"),
        }
    }
}

/// `PUB <topic>\n` with a body, written by hand so that any topic text can be sent.
fn raw_pub(topic: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes = format!("PUB {topic}\n").into_bytes();
    bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// Polls `read` until it returns `want` or two seconds pass; returns the last value.
fn eventually<T: PartialEq + Copy>(want: T, mut read: impl FnMut() -> T) -> T {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let got = read();
        if got == want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn channel_stats(nsqd: &Nsqd, topic: &str, channel: &str) -> Value {
    nsqd.channel_stats(topic, channel)
        .unwrap_or_else(|| panic!("channel {channel} of {topic} not in nsqd's stats"))
}

/// nsqd with the small limits of its own size tests: 100-byte messages, 1000-byte MPUB bodies.
fn small_limits() -> Nsqd {
    Nsqd::start_with(NsqdOptions::new().max_msg_size(100).max_body_size(1000))
}

// Successful publishes

#[test]
fn pub_gets_ok_and_the_message_is_counted() {
    let nsqd = Nsqd::start();
    let mut client = Client::connect(&nsqd);
    let t = topic("proto_pub");
    client.send(Command::Pub {
        topic: &t,
        body: b"hello",
    });
    client.expect_ok();
    assert_eq!(nsqd.topic_depth("proto_pub"), Some(1));
    assert_eq!(nsqd.topic_message_count("proto_pub"), Some(1));
}

#[test]
fn mpub_gets_one_ok_and_every_message_is_counted() {
    let nsqd = Nsqd::start();
    let mut client = Client::connect(&nsqd);
    let t = topic("proto_mpub");
    let bodies: Vec<Bytes> = (0..10).map(|i| Bytes::from(format!("m{i}"))).collect();
    client.send(Command::Mpub {
        topic: &t,
        bodies: &bodies,
    });
    client.expect_ok();
    assert_eq!(nsqd.topic_depth("proto_mpub"), Some(10));
    assert_eq!(nsqd.topic_message_count("proto_mpub"), Some(10));
}

/// Without a channel a deferred message waits in the topic like any other: the deferral only
/// applies when nsqd copies it into a channel.
#[test]
fn dpub_without_channel_sits_in_the_topic() {
    let nsqd = Nsqd::start();
    let mut client = Client::connect(&nsqd);
    let t = topic("proto_dpub_bare");
    client.send(Command::Dpub {
        topic: &t,
        delay: Duration::from_secs(60),
        body: b"later",
    });
    client.expect_ok();
    assert_eq!(nsqd.topic_depth("proto_dpub_bare"), Some(1));
    assert_eq!(nsqd.topic_message_count("proto_dpub_bare"), Some(1));
}

/// With a channel the message lands in the channel's deferred queue, not in its depth.
#[test]
fn dpub_with_channel_is_deferred_in_the_channel() {
    let nsqd = Nsqd::start();
    // nsqd 1.3.0's /channel/create answers 404 TOPIC_NOT_FOUND unless the topic exists.
    nsqd.create_topic("proto_dpub");
    nsqd.create_channel("proto_dpub", "ch");
    let mut client = Client::connect(&nsqd);
    let t = topic("proto_dpub");
    client.send(Command::Dpub {
        topic: &t,
        delay: Duration::from_secs(60),
        body: b"later",
    });
    client.expect_ok();
    let deferred = eventually(Some(1), || {
        channel_stats(&nsqd, "proto_dpub", "ch")["deferred_count"].as_u64()
    });
    let stats = channel_stats(&nsqd, "proto_dpub", "ch");
    assert_eq!(deferred, Some(1), "{stats}");
    assert_eq!(stats["depth"], 0, "{stats}");
    assert_eq!(stats["message_count"], 1, "{stats}");
    assert_eq!(nsqd.topic_depth("proto_dpub"), Some(0));
    assert_eq!(nsqd.topic_message_count("proto_dpub"), Some(1));
}

/// The bounds are inclusive: 0 and exactly `--max-req-timeout` are accepted.
#[test]
fn dpub_bounds_are_inclusive() {
    let nsqd = Nsqd::start();
    let mut client = Client::connect(&nsqd);
    let t = topic("proto_dpub_bounds");
    for delay in [Duration::ZERO, Duration::from_millis(3_600_000)] {
        client.send(Command::Dpub {
            topic: &t,
            delay,
            body: b"x",
        });
        client.expect_ok();
    }
    assert_eq!(nsqd.topic_message_count("proto_dpub_bounds"), Some(2));
}

// Fatal errors: exact text, fatal code, connection closed

#[test]
fn pub_invalid_topic_is_bad_topic() {
    let nsqd = Nsqd::start();
    let mut client = Client::connect(&nsqd);
    client.send_raw(&raw_pub("a:b", b"x"));
    let err = client.expect_fatal_error(r#"E_BAD_TOPIC PUB topic name "a:b" is not valid"#);
    assert_eq!(err.code(), &ErrorCode::BadTopic);
}

#[test]
fn mpub_invalid_topic_doubles_the_code() {
    let nsqd = Nsqd::start();
    let mut client = Client::connect(&nsqd);
    let mut bytes = b"MPUB a:b\n".to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 1, b'x']);
    client.send_raw(&bytes);
    let err =
        client.expect_fatal_error(r#"E_BAD_TOPIC E_BAD_TOPIC MPUB topic name "a:b" is not valid"#);
    assert_eq!(err.code(), &ErrorCode::BadTopic);
    assert_eq!(err.description(), r#"MPUB topic name "a:b" is not valid"#);
}

#[test]
fn pub_empty_body_is_bad_message() {
    let nsqd = Nsqd::start();
    let mut client = Client::connect(&nsqd);
    let t = topic("proto_empty");
    client.send(Command::Pub {
        topic: &t,
        body: b"",
    });
    let err = client.expect_fatal_error("E_BAD_MESSAGE PUB invalid message body size 0");
    assert_eq!(err.code(), &ErrorCode::BadMessage);
}

#[test]
fn pub_within_max_msg_size_is_ok_above_is_bad_message() {
    let nsqd = small_limits();
    let t = topic("proto_big");
    let mut client = Client::connect(&nsqd);
    client.send(Command::Pub {
        topic: &t,
        body: &[b'x'; 100],
    });
    client.expect_ok();
    client.send(Command::Pub {
        topic: &t,
        body: &[b'x'; 105],
    });
    let err = client.expect_fatal_error("E_BAD_MESSAGE PUB message too big 105 > 100");
    assert_eq!(err.code(), &ErrorCode::BadMessage);
    assert_eq!(nsqd.topic_depth("proto_big"), Some(1));
}

#[test]
fn mpub_without_messages_is_bad_body() {
    let nsqd = Nsqd::start();
    let mut client = Client::connect(&nsqd);
    let t = topic("proto_mpub_empty");
    client.send(Command::Mpub {
        topic: &t,
        bodies: &[],
    });
    let err = client.expect_fatal_error("E_BAD_BODY MPUB invalid message count 0");
    assert_eq!(err.code(), &ErrorCode::BadBody);
}

#[test]
fn mpub_above_max_body_size_is_bad_body() {
    let nsqd = small_limits();
    let t = topic("proto_mpub_big");
    let mut client = Client::connect(&nsqd);
    // 5 x 100 bytes: 4 + 5 * 104 = 524, within the limit.
    let fits = vec![Bytes::from(vec![b'x'; 100]); 5];
    client.send(Command::Mpub {
        topic: &t,
        bodies: &fits,
    });
    client.expect_ok();
    // 11 x 100 bytes: 4 + 11 * 104 = 1148.
    let too_big = vec![Bytes::from(vec![b'x'; 100]); 11];
    client.send(Command::Mpub {
        topic: &t,
        bodies: &too_big,
    });
    let err = client.expect_fatal_error("E_BAD_BODY MPUB body too big 1148 > 1000");
    assert_eq!(err.code(), &ErrorCode::BadBody);
    assert_eq!(nsqd.topic_depth("proto_mpub_big"), Some(5));
}

#[test]
fn dpub_above_max_req_timeout_is_invalid() {
    let nsqd = Nsqd::start();
    let mut client = Client::connect(&nsqd);
    let t = topic("proto_dpub_long");
    client.send(Command::Dpub {
        topic: &t,
        delay: Duration::from_millis(3_600_100),
        body: b"x",
    });
    let err = client.expect_fatal_error("E_INVALID DPUB timeout 3600100 out of range 0-3600000");
    assert_eq!(err.code(), &ErrorCode::Invalid);
}

#[test]
fn unknown_command_is_invalid() {
    let nsqd = Nsqd::start();
    let mut client = Client::connect(&nsqd);
    client.send_raw(b"ASDF\n");
    let err = client.expect_fatal_error("E_INVALID invalid command ASDF");
    assert_eq!(err.code(), &ErrorCode::Invalid);
}

// IDENTIFY

#[test]
fn identify_negotiates_and_the_reply_parses() {
    let nsqd = Nsqd::start();
    let mut client = Client::connect(&nsqd);
    let config = IdentifyConfig::new("proto-test", "localhost", "nsq-proto-tests/0.1.0");
    let body = config.to_json();
    client.send(Command::Identify { body: &body });
    let Frame::Response(response) = client.reply() else {
        panic!("expected a response frame");
    };
    assert!(
        matches!(response, Response::Other(_)),
        "feature negotiation answers JSON, got {response:?}"
    );
    let reply = IdentifyResponse::from_response(&response).unwrap();
    assert!(reply.negotiated);
    assert_eq!(reply.version.as_deref(), Some("1.3.0"));
    assert_eq!(reply.max_rdy_count, 2500);
    assert_eq!(reply.max_msg_timeout, 900_000);
    assert_eq!(reply.msg_timeout, 60_000);
    assert!(!reply.tls_v1);
    assert!(!reply.deflate);
    assert!(!reply.snappy);
    assert_eq!(reply.deflate_level, 6);
    assert_eq!(reply.max_deflate_level, 6);
    assert_eq!(reply.sample_rate, 0);
    assert!(!reply.auth_required);
    assert_eq!(reply.output_buffer_size, 16384);
    assert_eq!(reply.output_buffer_timeout, 250);
    let plan = UpgradePlan::negotiate(&config, &reply, false).unwrap();
    assert_eq!(plan.steps().count(), 0);

    // The connection is ready for publishing.
    let t = topic("proto_identified");
    client.send(Command::Pub {
        topic: &t,
        body: b"x",
    });
    client.expect_ok();
}

#[test]
fn identify_with_invalid_heartbeat_is_bad_body() {
    let nsqd = Nsqd::start();
    let mut client = Client::connect(&nsqd);
    let mut config = IdentifyConfig::new("proto-test", "localhost", "nsq-proto-tests/0.1.0");
    config.heartbeat_interval = Some(Duration::from_millis(999));
    let body = config.to_json();
    client.send(Command::Identify { body: &body });
    let err = client.expect_fatal_error("E_BAD_BODY IDENTIFY heartbeat interval (999) is invalid");
    assert_eq!(err.code(), &ErrorCode::BadBody);
}

// Pipelining

/// Four PUBs in one write, the second to an invalid topic: the first is stored, the second is
/// refused, and the last two are never executed because nsqd stops reading at a fatal error.
/// The producer relies on this to report the requests behind a rejection as not published.
#[test]
fn nothing_after_a_fatal_error_is_executed() {
    let nsqd = Nsqd::start();
    let mut client = Client::connect(&nsqd);
    let mut window = Vec::new();
    window.extend(raw_pub("pipelined", b"1"));
    window.extend(raw_pub("bad:topic", b"2"));
    window.extend(raw_pub("pipelined", b"3"));
    window.extend(raw_pub("pipelined", b"4"));
    client.send_raw(&window);
    client.expect_ok();
    client.expect_fatal_error(r#"E_BAD_TOPIC PUB topic name "bad:topic" is not valid"#);
    assert_eq!(nsqd.topic_depth("pipelined"), Some(1));
    assert_eq!(nsqd.topic_message_count("pipelined"), Some(1));
    assert_eq!(nsqd.topic_depth("bad:topic"), None);
}

// The blocking example

/// Builds `nsq-proto`'s `blocking_publish` example once and returns its path.
fn blocking_publish_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
        let output = Process::new(env!("CARGO"))
            .args(["build", "--quiet", "--manifest-path", manifest])
            .args(["-p", "nsq-proto", "--example", "blocking_publish"])
            .arg("--message-format=json")
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build");
        assert!(output.status.success(), "cargo build of the example failed");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|msg| msg["reason"] == "compiler-artifact")
            .filter(|msg| msg["target"]["name"] == "blocking_publish")
            .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported the example's executable")
    })
}

#[test]
fn blocking_example_publishes_ten_thousand_messages() {
    let nsqd = Nsqd::start();
    let output = Process::new(blocking_publish_binary())
        .args(["--nsqd", &nsqd.tcp_addr().to_string()])
        .args(["--topic", "blk", "--count", "10000"])
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("connected to nsqd 1.3.0"), "{stdout}");
    assert!(
        stdout.contains("published 10000 messages to blk in "),
        "{stdout}"
    );
    assert_eq!(nsqd.topic_depth("blk"), Some(10000));
}

#[test]
fn blocking_example_publishes_in_batches() {
    let nsqd = Nsqd::start();
    let output = Process::new(blocking_publish_binary())
        .args(["--nsqd", &nsqd.tcp_addr().to_string()])
        .args(["--topic", "blk_batch", "--count", "1001", "--batch", "100"])
        .args(["--size", "10"])
        .output()
        .expect("run the example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert_eq!(nsqd.topic_depth("blk_batch"), Some(1001));
}

/// A refusal ends the example with a non-zero status and nsqd's text.
#[test]
fn blocking_example_fails_loudly_on_an_error_frame() {
    let nsqd = small_limits();
    let output = Process::new(blocking_publish_binary())
        .args(["--nsqd", &nsqd.tcp_addr().to_string()])
        .args(["--topic", "blk_big", "--count", "3", "--size", "101"])
        .output()
        .expect("run the example");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("E_BAD_MESSAGE PUB message too big 101 > 100"),
        "{stderr}"
    );
    assert_eq!(nsqd.topic_depth("blk_big"), None);
}
