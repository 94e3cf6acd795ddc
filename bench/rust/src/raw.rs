//! `nsq-bench raw`: the protocol alone, for the raw limit. One blocking `std::net::TcpStream`,
//! commands encoded by `nsq-proto`, no runtime, no queue, no task.
//!
//! - a: PUB, read the answer, repeat.
//! - c: a writer thread writes PUBs while fewer than `window` are unanswered, as many as the
//!   window allows in one `write` (at most 100); a reader thread reads the answers.
//! - d: MPUB of `batch` messages, read the answer, repeat.
//!
//! There is no shared client (b) and no automatic batching (c*).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use nsq_proto::{
    Command, Frame, FrameDecoder, IdentifyConfig, IdentifyResponse, MAGIC_V2, Response, Topic,
};

use crate::cpu::CpuClock;
use crate::flags::{ClientOptions, expired};
use crate::record::{RunResult, Tally};

/// The client's name in results.
pub(crate) const CLIENT: &str = "raw";

/// Runs one case and returns its result line.
pub(crate) fn run(options: &ClientOptions) -> Result<RunResult, String> {
    let why = match options.case.as_str() {
        "a" | "c" | "d" => None,
        "b" => Some("n/a (not shareable)"),
        "cstar" => Some("n/a (no batching)"),
        other => return Err(format!("unknown case `{other}`")),
    };
    if let Some(why) = why {
        return Ok(RunResult::unsupported(
            CLIENT,
            &options.case,
            options.n,
            why,
        ));
    }

    let topic = Topic::new(options.topic.clone()).map_err(|e| e.to_string())?;
    let body = Bytes::from(vec![b'x'; options.size]);
    let mut conn = Connection::open(&options.addr)?;
    let deadline = options.deadline();
    let cpu = CpuClock::start();
    let started = Instant::now();
    let tally = match options.case.as_str() {
        "a" => serial(&mut conn, &topic, &body, options.n, deadline)?,
        "c" => pipelined(conn, &topic, &body, options.n, options.window, deadline)?,
        _ => batches(&mut conn, &topic, &body, options.n, options.batch, deadline)?,
    };
    let elapsed = started.elapsed();
    let mut result = RunResult::new(CLIENT, &options.case, options.n);
    result.fill(tally, elapsed);
    result.cpu_s = cpu.seconds();
    Ok(result)
}

/// One PUB at a time, each answer read before the next is written.
fn serial(
    conn: &mut Connection,
    topic: &Topic,
    body: &Bytes,
    n: u64,
    deadline: Option<Instant>,
) -> Result<Tally, String> {
    let mut tally = Tally::with_capacity(n as usize);
    let mut out = BytesMut::new();
    for _ in 0..n {
        if expired(deadline) {
            tally.truncated = true;
            break;
        }
        out.clear();
        encode(Command::Pub { topic, body }, &mut out)?;
        let began = Instant::now();
        conn.write(&out)?;
        let answer = conn.answer()?;
        tally.latency(began.elapsed());
        tally.record(answer, 1);
    }
    Ok(tally)
}

/// Most PUBs put in one `write` in case c.
const MAX_WRITE: u64 = 100;

/// How many PUBs are written and how many answered, shared by the two threads of case c.
#[derive(Default)]
struct Window {
    answered: u64,
    /// The reader stopped (an error, or every answer read).
    reader_done: bool,
}

/// PUBs with at most `window` unanswered: this thread writes, another reads the answers. A
/// message's latency runs from just before its write to the read of its answer.
fn pipelined(
    mut conn: Connection,
    topic: &Topic,
    body: &Bytes,
    n: u64,
    window: usize,
    deadline: Option<Instant>,
) -> Result<Tally, String> {
    let shared = Arc::new((Mutex::new(Window::default()), Condvar::new()));
    let (times, written) = mpsc::channel::<Instant>();
    let mut writer = conn
        .stream
        .try_clone()
        .map_err(|e| format!("cloning the socket: {e}"))?;
    let reader = {
        let shared = shared.clone();
        thread::spawn(move || {
            let mut tally = Tally::with_capacity(n as usize);
            let mut failure = None;
            // One answer per message the writer announced; the channel closes when it is done.
            while let Ok(began) = written.recv() {
                match conn.answer() {
                    Ok(answer) => {
                        tally.latency(began.elapsed());
                        tally.record(answer, 1);
                    }
                    Err(err) => {
                        failure = Some(err);
                        break;
                    }
                }
                let (lock, wake) = &*shared;
                lock.lock().unwrap_or_else(PoisonError::into_inner).answered += 1;
                wake.notify_one();
            }
            let (lock, wake) = &*shared;
            lock.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .reader_done = true;
            wake.notify_one();
            (tally, failure)
        })
    };

    let mut out = BytesMut::new();
    let mut sent = 0;
    let mut truncated = false;
    let mut write_failure = None;
    while sent < n {
        if expired(deadline) {
            truncated = true;
            break;
        }
        let room = {
            let (lock, wake) = &*shared;
            let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
            while sent - state.answered >= window as u64 && !state.reader_done {
                state = wake.wait(state).unwrap_or_else(PoisonError::into_inner);
            }
            if state.reader_done {
                break;
            }
            window as u64 - (sent - state.answered)
        };
        let count = room.min(n - sent).min(MAX_WRITE);
        out.clear();
        for _ in 0..count {
            encode(Command::Pub { topic, body }, &mut out)?;
        }
        let began = Instant::now();
        for _ in 0..count {
            // The reader is waiting for these; it only stops early after an error.
            let _ = times.send(began);
        }
        if let Err(err) = writer.write_all(&out) {
            write_failure = Some(format!("writing to nsqd: {err}"));
            break;
        }
        sent += count;
    }
    drop(times);
    let (mut tally, read_failure) = reader
        .join()
        .map_err(|_| "the reader thread panicked".to_owned())?;
    if let Some(failure) = write_failure.or(read_failure) {
        return Err(failure);
    }
    tally.truncated = truncated;
    Ok(tally)
}

/// MPUBs of `batch` messages, one at a time.
fn batches(
    conn: &mut Connection,
    topic: &Topic,
    body: &Bytes,
    n: u64,
    batch: usize,
    deadline: Option<Instant>,
) -> Result<Tally, String> {
    let mut tally = Tally::with_capacity((n as usize).div_ceil(batch));
    let full = vec![body.clone(); batch];
    let mut out = BytesMut::new();
    let mut left = n;
    while left > 0 {
        if expired(deadline) {
            tally.truncated = true;
            break;
        }
        let size = left.min(batch as u64);
        out.clear();
        let bodies = &full[..size as usize];
        encode(Command::Mpub { topic, bodies }, &mut out)?;
        let began = Instant::now();
        conn.write(&out)?;
        let answer = conn.answer()?;
        tally.latency(began.elapsed());
        tally.record(answer, size);
        left -= size;
    }
    Ok(tally)
}

/// Appends `command` to `out`.
pub(crate) fn encode(command: Command<'_>, out: &mut BytesMut) -> Result<(), String> {
    command.encode(out).map_err(|e| format!("encoding: {e}"))
}

/// One nsqd connection after the handshake, for publishing: this client's, the latency pacer's
/// (`nsq-bench pace`) and the suite's, which fills the topics of the consumer cases.
pub(crate) struct Connection {
    stream: TcpStream,
    input: BytesMut,
    decoder: FrameDecoder,
}

impl Connection {
    /// Connects, sends the magic and IDENTIFY, and checks that nothing needs upgrading.
    pub(crate) fn open(addr: &str) -> Result<Self, String> {
        let stream =
            TcpStream::connect(addr).map_err(|e| format!("connecting to nsqd at {addr}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        // Well above nsqd's 30 s heartbeat interval.
        stream
            .set_read_timeout(Some(Duration::from_secs(65)))
            .map_err(|e| e.to_string())?;
        let mut conn = Self {
            stream,
            input: BytesMut::with_capacity(64 * 1024),
            decoder: FrameDecoder::default(),
        };
        let identify = IdentifyConfig::new("nsq-bench", "localhost", "nsq-bench-raw/0.1");
        let mut out = BytesMut::new();
        out.extend_from_slice(MAGIC_V2);
        encode(
            Command::Identify {
                body: &identify.to_json(),
            },
            &mut out,
        )?;
        conn.write(&out)?;
        let reply = conn.response()?;
        IdentifyResponse::from_response(&reply).map_err(|e| format!("IDENTIFY: {e}"))?;
        Ok(conn)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .map_err(|e| format!("writing to nsqd: {e}"))
    }

    /// The answer to the next publish: `Ok` for `OK`, `Err` for an error frame.
    pub(crate) fn answer(&mut self) -> Result<Result<(), String>, String> {
        loop {
            match self.frame()? {
                Frame::Response(Response::Heartbeat) => self.nop()?,
                Frame::Response(Response::Ok) => return Ok(Ok(())),
                Frame::Response(other) => return Err(format!("unexpected answer {other:?}")),
                Frame::Error(err) => return Ok(Err(err.to_string())),
                Frame::Message(_) => return Err("unexpected message frame".to_owned()),
            }
        }
    }

    /// The next response frame, heartbeats answered and skipped.
    fn response(&mut self) -> Result<Response, String> {
        loop {
            match self.frame()? {
                Frame::Response(Response::Heartbeat) => self.nop()?,
                Frame::Response(response) => return Ok(response),
                Frame::Error(err) => return Err(format!("nsqd refused: {err}")),
                Frame::Message(_) => return Err("unexpected message frame".to_owned()),
            }
        }
    }

    fn nop(&mut self) -> Result<(), String> {
        let mut out = BytesMut::new();
        encode(Command::Nop, &mut out)?;
        self.write(&out)
    }

    fn frame(&mut self) -> Result<Frame, String> {
        let mut chunk = [0; 16 * 1024];
        loop {
            if let Some(frame) = self
                .decoder
                .decode(&mut self.input)
                .map_err(|e| format!("decoding: {e}"))?
            {
                return Ok(frame);
            }
            let read = self
                .stream
                .read(&mut chunk)
                .map_err(|e| format!("reading from nsqd: {e}"))?;
            if read == 0 {
                return Err("nsqd closed the connection".to_owned());
            }
            self.input.extend_from_slice(&chunk[..read]);
        }
    }
}
