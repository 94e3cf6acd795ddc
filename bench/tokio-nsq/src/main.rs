//! tokio-nsq 0.14 in the cases of `cargo xtask bench`: publishes to one nsqd and prints one
//! JSON line with the result, in the format of `nsq-bench`'s clients.
//!
//! ```text
//! nsq-bench-tokio-nsq --addr 127.0.0.1:4150 --topic bench --n 200000 --size 100 --case c
//! ```
//!
//! tokio-nsq's producer takes `&mut self` for publishing and for reading acknowledgements
//! (`consume` yields one `NSQEvent::Ok()` per answered publish, in order), and its connection
//! task writes through a buffer that it flushes every `flush_interval` (250 ms by default).
//! Here the interval is 1 ms, the shortest tokio's timer offers; a publish that waits for its
//! answer therefore takes about 1 ms.
//!
//! - a: publish, then consume events until its `Ok`.
//! - b: tokio-nsq's producer cannot be shared, so one task owns it and the callers send it
//!   their messages over a channel, each waiting for its answer on a oneshot channel.
//! - c: publish while fewer than `--window` are unanswered; acknowledgements that are already
//!   there are taken after every publish, so that latency is measured when they arrive.
//! - d: `publish_multiple` of `--batch` messages, wait for its `Ok`.
//! - cstar: tokio-nsq has no automatic batching.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_nsq::{NSQConfigShared, NSQEvent, NSQProducer, NSQProducerConfig, NSQTopic};

const CLIENT: &str = "tokio-nsq";

/// The flush interval: the shortest period tokio's timer has.
const FLUSH_INTERVAL: Duration = Duration::from_millis(1);

struct Options {
    addr: String,
    topic: String,
    n: u64,
    size: usize,
    case: String,
    callers: u64,
    window: usize,
    batch: usize,
    time_limit: Option<Duration>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        addr: "127.0.0.1:4150".to_owned(),
        topic: "bench".to_owned(),
        n: 200_000,
        size: 100,
        case: "a".to_owned(),
        callers: 16,
        window: 1000,
        batch: 100,
        time_limit: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let (flag, value) = match flag.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), value.to_owned()),
            None => {
                let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
                (flag, value)
            }
        };
        let bad = |_| format!("{flag}: cannot parse {value:?}");
        match flag.as_str() {
            "--addr" => options.addr = value,
            "--topic" => options.topic = value,
            "--n" => options.n = value.parse().map_err(bad)?,
            "--size" => options.size = value.parse().map_err(bad)?,
            "--case" => options.case = value,
            "--callers" => options.callers = value.parse().map_err(bad)?,
            "--window" => options.window = value.parse().map_err(bad)?,
            "--batch" => options.batch = value.parse().map_err(bad)?,
            "--time-limit" => {
                let secs: f64 = value.parse().map_err(|_| format!("{flag}: {value:?}"))?;
                options.time_limit = (secs > 0.0).then(|| Duration::from_secs_f64(secs));
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if options.n == 0 || options.size == 0 || options.callers == 0 || options.window == 0 {
        return Err("--n, --size, --callers and --window must be at least 1".to_owned());
    }
    if options.batch == 0 {
        return Err("--batch must be at least 1".to_owned());
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(err) => {
            eprintln!("nsq-bench-tokio-nsq: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    // The workload runs in a spawned task on the runtime's workers, as in the other Rust
    // client (`nsq-bench`): application code runs in tasks.
    let outcome = runtime.block_on(async move {
        tokio::spawn(async move { run(&options).await })
            .await
            .unwrap_or_else(|e| Err(format!("the benchmark task failed: {e}")))
    });
    match outcome {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("nsq-bench-tokio-nsq: {err}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Default)]
struct Tally {
    acked: u64,
    errors: u64,
    truncated: bool,
    first_error: Option<String>,
    latencies_ns: Vec<u64>,
}

impl Tally {
    fn record(&mut self, result: Result<(), String>, messages: u64) {
        match result {
            Ok(()) => self.acked += messages,
            Err(err) => {
                self.errors += messages;
                self.first_error.get_or_insert(err);
            }
        }
    }

    fn latency(&mut self, began: Instant) {
        self.latencies_ns
            .push(u64::try_from(began.elapsed().as_nanos()).unwrap_or(u64::MAX));
    }

    fn merge(&mut self, other: Self) {
        self.acked += other.acked;
        self.errors += other.errors;
        self.truncated |= other.truncated;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies_ns.extend(other.latencies_ns);
    }
}

async fn run(options: &Options) -> Result<Value, String> {
    let mut line = Map::new();
    line.insert("client".into(), json!(CLIENT));
    line.insert("case".into(), json!(options.case));
    line.insert("n".into(), json!(options.n));
    if options.case == "cstar" {
        line.insert("acked".into(), json!(0));
        line.insert("errors".into(), json!(0));
        line.insert("unsupported".into(), json!("n/a (no batching)"));
        return Ok(Value::Object(line));
    }

    let topic = NSQTopic::new(options.topic.clone())
        .ok_or_else(|| format!("invalid topic {:?}", options.topic))?;
    let mut producer = connect(&options.addr).await?;
    let body = vec![b'x'; options.size];
    let deadline = options.time_limit.map(|limit| Instant::now() + limit);

    let cpu = process_cpu();
    let started = Instant::now();
    let tally = match options.case.as_str() {
        "a" => serial(&mut producer, &topic, &body, options.n, deadline).await,
        "b" => shared(producer, &topic, &body, options, deadline).await,
        "c" => pipelined(&mut producer, &topic, &body, options, deadline).await,
        "d" => batches(&mut producer, &topic, &body, options, deadline).await,
        other => return Err(format!("unknown case `{other}`")),
    };
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = match (cpu, process_cpu()) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before).as_secs_f64()),
        _ => None,
    };

    line.insert("seconds".into(), json!(elapsed));
    line.insert(
        "msgs_per_sec".into(),
        json!(tally.acked as f64 / elapsed.max(f64::EPSILON)),
    );
    line.insert("acked".into(), json!(tally.acked));
    line.insert("errors".into(), json!(tally.errors));
    if tally.truncated {
        line.insert("truncated".into(), json!(true));
    }
    if let Some(err) = tally.first_error {
        line.insert("first_error".into(), json!(err));
    }
    let mut latencies = tally.latencies_ns;
    if !latencies.is_empty() {
        latencies.sort_unstable();
        for (name, q) in [("p50_us", 0.5), ("p99_us", 0.99), ("p999_us", 0.999)] {
            let rank = (q * latencies.len() as f64).ceil() as usize;
            let value = latencies[rank.clamp(1, latencies.len()) - 1] as f64 / 1e3;
            line.insert(name.into(), json!(value));
        }
    }
    if let Some(cpu) = cpu {
        line.insert("cpu_s".into(), json!(cpu));
    }
    Ok(Value::Object(line))
}

/// Builds the producer and waits until its connection is ready, as tokio-nsq requires.
async fn connect(addr: &str) -> Result<NSQProducer, String> {
    let shared = NSQConfigShared::new().set_flush_interval(FLUSH_INTERVAL);
    let mut producer = NSQProducerConfig::new(addr).set_shared(shared).build();
    let ready = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match producer.consume().await {
                Some(NSQEvent::Healthy()) => return Ok(()),
                Some(_) => continue,
                None => return Err("the connection ended".to_owned()),
            }
        }
    })
    .await;
    match ready {
        Ok(Ok(())) => Ok(producer),
        Ok(Err(err)) => Err(format!("connecting to nsqd at {addr}: {err}")),
        Err(_) => Err(format!("connecting to nsqd at {addr}: no connection within 10 s")),
    }
}

/// Waits for the next acknowledgement.
async fn next_ack(producer: &mut NSQProducer) -> Result<(), String> {
    loop {
        match producer.consume().await {
            Some(NSQEvent::Ok()) => return Ok(()),
            Some(NSQEvent::Unhealthy()) => return Err("the connection failed".to_owned()),
            Some(_) => continue,
            None => return Err("the connection ended".to_owned()),
        }
    }
}

fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

async fn serial(
    producer: &mut NSQProducer,
    topic: &Arc<NSQTopic>,
    body: &[u8],
    n: u64,
    deadline: Option<Instant>,
) -> Tally {
    let mut tally = Tally {
        latencies_ns: Vec::with_capacity(n as usize),
        ..Tally::default()
    };
    for _ in 0..n {
        if expired(deadline) {
            tally.truncated = true;
            break;
        }
        let began = Instant::now();
        let result = match producer.publish(topic, body.to_vec()).await {
            Ok(()) => next_ack(producer).await,
            Err(err) => Err(err.to_string()),
        };
        tally.latency(began);
        tally.record(result, 1);
    }
    tally
}

type Request = (Vec<u8>, oneshot::Sender<Result<(), String>>);

/// Case b: one task owns the producer; `callers` tasks send it messages and wait.
async fn shared(
    mut producer: NSQProducer,
    topic: &Arc<NSQTopic>,
    body: &[u8],
    options: &Options,
    deadline: Option<Instant>,
) -> Tally {
    let (requests, mut incoming) = mpsc::channel::<Request>(1024);
    let owner_topic = topic.clone();
    let owner = tokio::spawn(async move {
        let mut waiting: VecDeque<oneshot::Sender<Result<(), String>>> = VecDeque::new();
        let mut open = true;
        while open || !waiting.is_empty() {
            tokio::select! {
                event = producer.consume() => match event {
                    Some(NSQEvent::Ok()) => {
                        if let Some(waiter) = waiting.pop_front() {
                            let _ = waiter.send(Ok(()));
                        }
                    }
                    Some(NSQEvent::Unhealthy()) | None => {
                        for waiter in waiting.drain(..) {
                            let _ = waiter.send(Err("the connection failed".to_owned()));
                        }
                        if !open {
                            break;
                        }
                    }
                    Some(_) => {}
                },
                request = incoming.recv(), if open => match request {
                    Some((body, waiter)) => match producer.publish(&owner_topic, body).await {
                        Ok(()) => waiting.push_back(waiter),
                        Err(err) => {
                            let _ = waiter.send(Err(err.to_string()));
                        }
                    },
                    None => open = false,
                },
            }
        }
    });

    let callers = options.callers;
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let share = options.n / callers + u64::from(caller < options.n % callers);
            let requests = requests.clone();
            let body = body.to_vec();
            tokio::spawn(async move {
                let mut tally = Tally {
                    latencies_ns: Vec::with_capacity(share as usize),
                    ..Tally::default()
                };
                for _ in 0..share {
                    if expired(deadline) {
                        tally.truncated = true;
                        break;
                    }
                    let began = Instant::now();
                    let (answer, answered) = oneshot::channel();
                    let result = if requests.send((body.clone(), answer)).await.is_err() {
                        Err("the producer task ended".to_owned())
                    } else {
                        answered
                            .await
                            .unwrap_or_else(|_| Err("the producer task ended".to_owned()))
                    };
                    tally.latency(began);
                    tally.record(result, 1);
                }
                tally
            })
        })
        .collect();
    drop(requests);
    let mut tally = Tally::default();
    for task in tasks {
        match task.await {
            Ok(part) => tally.merge(part),
            Err(err) => tally.record(Err(format!("caller task failed: {err}")), 0),
        }
    }
    let _ = owner.await;
    tally
}

/// Case c: at most `window` unanswered; acknowledgements already received are taken after
/// every publish.
async fn pipelined(
    producer: &mut NSQProducer,
    topic: &Arc<NSQTopic>,
    body: &[u8],
    options: &Options,
    deadline: Option<Instant>,
) -> Tally {
    let mut tally = Tally {
        latencies_ns: Vec::with_capacity(options.n as usize),
        ..Tally::default()
    };
    let mut outstanding: VecDeque<Instant> = VecDeque::with_capacity(options.window);
    let mut sent = 0;
    while sent < options.n {
        if expired(deadline) {
            tally.truncated = true;
            break;
        }
        while outstanding.len() >= options.window {
            let result = next_ack(producer).await;
            let began = outstanding.pop_front().expect("a publish is outstanding");
            tally.latency(began);
            tally.record(result, 1);
        }
        let began = Instant::now();
        match producer.publish(topic, body.to_vec()).await {
            Ok(()) => outstanding.push_back(began),
            Err(err) => tally.record(Err(err.to_string()), 1),
        }
        sent += 1;
        // Take the acknowledgements that have arrived, without waiting.
        while !outstanding.is_empty() {
            match producer.consume().now_or_never() {
                Some(Some(NSQEvent::Ok())) => {
                    let began = outstanding.pop_front().expect("a publish is outstanding");
                    tally.latency(began);
                    tally.record(Ok(()), 1);
                }
                Some(Some(NSQEvent::Unhealthy()) | None) => {
                    let failed = outstanding.len() as u64;
                    outstanding.clear();
                    tally.record(Err("the connection failed".to_owned()), failed);
                }
                Some(Some(_)) => {}
                None => break,
            }
        }
    }
    while let Some(began) = outstanding.pop_front() {
        let result = next_ack(producer).await;
        tally.latency(began);
        tally.record(result, 1);
    }
    tally
}

async fn batches(
    producer: &mut NSQProducer,
    topic: &Arc<NSQTopic>,
    body: &[u8],
    options: &Options,
    deadline: Option<Instant>,
) -> Tally {
    let mut tally = Tally::default();
    let mut left = options.n;
    while left > 0 {
        if expired(deadline) {
            tally.truncated = true;
            break;
        }
        let size = left.min(options.batch as u64);
        let bodies = (0..size).map(|_| body.to_vec()).collect();
        let began = Instant::now();
        let result = match producer.publish_multiple(topic, bodies).await {
            Ok(()) => next_ack(producer).await,
            Err(err) => Err(err.to_string()),
        };
        tally.latency(began);
        tally.record(result, size);
        left -= size;
    }
    tally
}

/// User plus system CPU time of this process from `/proc/self/stat` (10 ms resolution).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}
