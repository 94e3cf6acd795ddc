//! Publishes messages to a real nsqd with `std::net::TcpStream` and `nsq-proto` alone: no async
//! runtime, no other crate.
//!
//! ```text
//! cargo run -p nsq-proto --example blocking_publish -- \
//!     [--nsqd HOST:PORT] [--topic T] [--count N] [--size BYTES] [--batch B]
//! ```
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `--nsqd` | `127.0.0.1:4150` | nsqd's TCP address |
//! | `--topic` | `blocking_publish` | topic to publish to |
//! | `--count` | `10000` | number of messages |
//! | `--size` | `100` | body size in bytes |
//! | `--batch` | `1` | 1: one `PUB` per message; more: `MPUB`s of that many messages |
//!
//! It writes the magic and an IDENTIFY with feature negotiation, parses the reply into an
//! `IdentifyResponse` and prints nsqd's version. It then pipelines the publishes in windows: up
//! to 100 commands (at most about 4 MiB) go out in one write, then one reply per command is read.
//! A `_heartbeat_` that arrives meanwhile is answered with `NOP`; an error frame stops the
//! program. Pipelining cannot deadlock here: nsqd answers each publish with a 10-byte frame, so
//! a window's replies always fit in the socket buffers while it is being written.
//!
//! On success it prints `published N messages to T in X s (R msgs/s)`; on any error it prints
//! the error and exits with status 1.

use std::error::Error;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use nsq_proto::{
    Command, Frame, FrameDecoder, IdentifyConfig, IdentifyResponse, MAGIC_V2, PublishLimits,
    Response, Topic, UpgradePlan,
};

/// Most commands written before their replies are read.
const WINDOW_COMMANDS: usize = 100;
/// Most bytes written before the replies are read (one command may exceed it on its own).
const WINDOW_BYTES: usize = 4 * 1024 * 1024;
/// How long to wait for nsqd before giving up; well above its 30 s heartbeat interval.
const READ_TIMEOUT: Duration = Duration::from_secs(65);

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

struct Options {
    nsqd: String,
    topic: Topic,
    count: u64,
    size: usize,
    batch: usize,
}

fn main() -> ExitCode {
    match parse_args().and_then(|options| run(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("blocking_publish: {err}");
            ExitCode::FAILURE
        }
    }
}

fn parse_args() -> Result<Options> {
    let mut options = Options {
        nsqd: "127.0.0.1:4150".to_owned(),
        topic: Topic::new("blocking_publish")?,
        count: 10_000,
        size: 100,
        batch: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!(
                "usage: blocking_publish [--nsqd HOST:PORT] [--topic T] [--count N] \
                 [--size BYTES] [--batch B]"
            );
            std::process::exit(0);
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--nsqd" => options.nsqd = value,
            "--topic" => options.topic = Topic::new(value)?,
            "--count" => options.count = value.parse().map_err(|e| format!("--count: {e}"))?,
            "--size" => options.size = value.parse().map_err(|e| format!("--size: {e}"))?,
            "--batch" => options.batch = value.parse().map_err(|e| format!("--batch: {e}"))?,
            other => return Err(format!("unknown option {other} (try --help)").into()),
        }
    }
    if options.batch == 0 {
        return Err("--batch must be at least 1".into());
    }
    Ok(options)
}

fn run(options: &Options) -> Result<()> {
    let mut conn = Connection::open(&options.nsqd)?;
    let version = conn.identify()?;
    println!(
        "connected to nsqd {} at {}",
        version.as_deref().unwrap_or("(unknown version)"),
        options.nsqd
    );

    let body = Bytes::from(vec![b'x'; options.size]);
    let limits = PublishLimits::default();
    let started = Instant::now();
    let mut remaining = options.count;
    let mut window = BytesMut::new();
    while remaining > 0 {
        window.clear();
        let mut commands = 0;
        while remaining > 0 && commands < WINDOW_COMMANDS && window.len() < WINDOW_BYTES {
            if options.batch == 1 {
                limits.check_pub(&body)?;
                Command::Pub {
                    topic: &options.topic,
                    body: &body,
                }
                .encode(&mut window)?;
                remaining -= 1;
            } else {
                let n = remaining.min(options.batch as u64) as usize;
                let bodies = vec![body.clone(); n];
                limits.check_mpub(&bodies)?;
                Command::Mpub {
                    topic: &options.topic,
                    bodies: &bodies,
                }
                .encode(&mut window)?;
                remaining -= n as u64;
            }
            commands += 1;
        }
        conn.write(&window)?;
        for _ in 0..commands {
            match conn.read_reply()? {
                Response::Ok => {}
                other => return Err(format!("unexpected reply to a publish: {other:?}").into()),
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "published {} messages to {} in {elapsed:.3} s ({:.0} msgs/s)",
        options.count,
        options.topic,
        options.count as f64 / elapsed.max(f64::EPSILON)
    );
    Ok(())
}

/// One nsqd connection: the socket, the bytes read but not yet decoded, and the decoder.
struct Connection {
    stream: TcpStream,
    input: BytesMut,
    decoder: FrameDecoder,
}

impl Connection {
    fn open(addr: &str) -> Result<Self> {
        let stream =
            TcpStream::connect(addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        Ok(Self {
            stream,
            input: BytesMut::with_capacity(64 * 1024),
            decoder: FrameDecoder::default(),
        })
    }

    /// Writes the magic and IDENTIFY and checks the reply; returns nsqd's version.
    fn identify(&mut self) -> Result<Option<String>> {
        let config = IdentifyConfig::new(
            "blocking_publish",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_owned()),
            concat!("nsq-proto-blocking-publish/", env!("CARGO_PKG_VERSION")),
        );
        let body = config.to_json();
        let mut out = BytesMut::new();
        out.extend_from_slice(MAGIC_V2);
        Command::Identify { body: &body }.encode(&mut out)?;
        self.write(&out)?;
        let reply = IdentifyResponse::from_response(&self.read_reply()?)?;
        // Nothing was asked for, so no upgrade may follow; AUTH cannot be done without a secret.
        let plan = UpgradePlan::negotiate(&config, &reply, false)?;
        if plan.steps().next().is_some() {
            return Err(format!("unexpected upgrades: {plan:?}").into());
        }
        Ok(reply.version)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream
            .write_all(bytes)
            .map_err(|e| format!("write to nsqd failed: {e}"))?;
        Ok(())
    }

    /// The next reply to a command: heartbeats are answered and skipped, error frames fail.
    fn read_reply(&mut self) -> Result<Response> {
        loop {
            match self.read_frame()? {
                Frame::Response(Response::Heartbeat) => {
                    let mut nop = BytesMut::new();
                    Command::Nop.encode(&mut nop)?;
                    self.write(&nop)?;
                }
                Frame::Response(response) => return Ok(response),
                Frame::Error(err) => return Err(format!("nsqd refused: {err}").into()),
                Frame::Message(msg) => {
                    return Err(format!("unexpected message frame {}", msg.id).into());
                }
            }
        }
    }

    fn read_frame(&mut self) -> Result<Frame> {
        let mut chunk = [0; 16 * 1024];
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.input)? {
                return Ok(frame);
            }
            let n = self
                .stream
                .read(&mut chunk)
                .map_err(|e| format!("read from nsqd failed: {e}"))?;
            if n == 0 {
                return Err("nsqd closed the connection".into());
            }
            self.input.extend_from_slice(&chunk[..n]);
        }
    }
}
