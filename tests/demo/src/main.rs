//! `cargo xtask demo`: publishes many messages through one producer, shows the rate while it
//! runs, then checks nsqd's own count against the acknowledgements.
//!
//! Without `--nsqd` it starts a private nsqd on loopback (found like the tests find it) and
//! stops it at the end.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use nsq_producer::{Producer, ProducerConfig, PublishError, Topic};
use nsq_test_support::{Nsqd, NsqdOptions, topic_depth_at};

const USAGE: &str = "\
usage: cargo xtask demo [options]

  --nsqd HOST:PORT        publish to this nsqd's TCP address instead of starting one
  --nsqd-http HOST:PORT   its HTTP address, for the count check (default: TCP port + 1)
  --count N               messages to publish (default 1000000)
  --size BYTES            body size (default 100)
  --tasks N               concurrent publishing tasks (default 16)
  --window N              unanswered publishes per task (default 1000)
  --topic NAME            topic (default demo-<time>)";

struct Args {
    nsqd: Option<SocketAddr>,
    nsqd_http: Option<SocketAddr>,
    count: u64,
    size: usize,
    tasks: u64,
    window: usize,
    topic: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        nsqd: None,
        nsqd_http: None,
        count: 1_000_000,
        size: 100,
        tasks: 16,
        window: 1000,
        topic: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |what: &str| format!("{flag}: expected {what}, got {value:?}");
        match flag.as_str() {
            "--nsqd" => args.nsqd = Some(value.parse().map_err(|_| bad("HOST:PORT"))?),
            "--nsqd-http" => args.nsqd_http = Some(value.parse().map_err(|_| bad("HOST:PORT"))?),
            "--count" => args.count = value.parse().map_err(|_| bad("a number"))?,
            "--size" => args.size = value.parse().map_err(|_| bad("a number"))?,
            "--tasks" => args.tasks = value.parse().map_err(|_| bad("a number"))?,
            "--window" => args.window = value.parse().map_err(|_| bad("a number"))?,
            "--topic" => args.topic = Some(value),
            other => return Err(format!("unknown option {other}")),
        }
    }
    if args.size == 0 || args.tasks == 0 || args.window == 0 {
        return Err("--size, --tasks and --window must be at least 1".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) if err.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("error: {err}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("demo failed: {err}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Default)]
struct Tally {
    acked: AtomicU64,
    failed_unknown: AtomicU64,
    failed_not_stored: AtomicU64,
}

async fn run(args: Args) -> Result<(), String> {
    // Keep the private nsqd alive until the end; it is stopped on drop.
    let (nsqd, tcp, http) = match args.nsqd {
        Some(tcp) => {
            let http = args
                .nsqd_http
                .unwrap_or_else(|| SocketAddr::new(tcp.ip(), tcp.port() + 1));
            (None, tcp, http)
        }
        None => {
            // A large memory queue, so nothing spills to disk and the rate is the producer's.
            let queue = args.count.max(10_000);
            let nsqd = tokio::task::spawn_blocking(move || {
                Nsqd::start_with(NsqdOptions::new().mem_queue_size(queue))
            })
            .await
            .map_err(|e| format!("starting nsqd: {e}"))?;
            let (tcp, http) = (nsqd.tcp_addr(), nsqd.http_addr());
            println!(
                "started nsqd {} (tcp {tcp}, http {http})",
                nsqd.binary().display()
            );
            (Some(nsqd), tcp, http)
        }
    };
    let topic_name = args.topic.clone().unwrap_or_else(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        format!("demo-{secs}")
    });
    let topic = Topic::new(topic_name.clone()).map_err(|e| e.to_string())?;
    let before = topic_depth_at(http, &topic_name)
        .map_err(|e| format!("reading /stats from {http}: {e}"))?
        .unwrap_or(0);

    let producer = Producer::connect(tcp.to_string(), ProducerConfig::default())
        .await
        .map_err(|e| format!("connecting to nsqd at {tcp}: {e}"))?;
    println!(
        "publishing {} messages of {} bytes to topic {topic_name} from {} tasks",
        args.count, args.size, args.tasks
    );

    let tally = Arc::new(Tally::default());
    let body = Bytes::from(vec![b'x'; args.size]);
    let started = Instant::now();
    let mut workers = Vec::new();
    for task in 0..args.tasks {
        let share = args.count / args.tasks + u64::from(task < args.count % args.tasks);
        let (producer, topic, body, tally) =
            (producer.clone(), topic.clone(), body.clone(), tally.clone());
        let window = args.window;
        workers.push(tokio::spawn(async move {
            publish_share(&producer, &topic, body, share, window, &tally).await;
        }));
    }
    let progress = tokio::spawn(show_progress(tally.clone(), args.count, started));
    for worker in workers {
        worker
            .await
            .map_err(|e| format!("publishing task failed: {e}"))?;
    }
    let elapsed = started.elapsed();
    progress.abort();
    let stats = producer.close().await;

    let acked = tally.acked.load(Relaxed);
    let unknown = tally.failed_unknown.load(Relaxed);
    let not_stored = tally.failed_not_stored.load(Relaxed);
    let after = topic_depth_at(http, &topic_name)
        .map_err(|e| format!("reading /stats from {http}: {e}"))?
        .unwrap_or(0);
    let stored = after.saturating_sub(before);
    let rate = acked as f64 / elapsed.as_secs_f64();
    println!();
    println!("published   {acked} acknowledged, {not_stored} not stored, {unknown} unknown");
    println!(
        "rate        {:.0} msgs/s, {:.1} MB/s over {:.2} s",
        rate,
        rate * args.size as f64 / 1e6,
        elapsed.as_secs_f64()
    );
    println!(
        "producer    {} requests acked, {} bytes written, {} reconnects",
        stats.acked, stats.bytes_written, stats.reconnects
    );
    let verified = stored >= acked && stored <= acked + unknown;
    println!(
        "nsqd        topic depth {stored}: {}",
        if verified {
            "matches the acknowledged count"
        } else {
            "DOES NOT match the acknowledged count"
        }
    );
    drop(nsqd);
    if !verified {
        return Err(format!(
            "nsqd holds {stored} messages, the producer had {acked} acknowledged and {unknown} unknown"
        ));
    }
    if acked != args.count {
        return Err(format!(
            "{} of {} publishes failed",
            args.count - acked,
            args.count
        ));
    }
    Ok(())
}

/// Publishes `count` messages keeping up to `window` unanswered.
async fn publish_share(
    producer: &Producer,
    topic: &Topic,
    body: Bytes,
    count: u64,
    window: usize,
    tally: &Tally,
) {
    let mut pending = FuturesUnordered::new();
    let record = |result: Result<(), PublishError>| match result {
        Ok(()) => {
            tally.acked.fetch_add(1, Relaxed);
        }
        Err(err) => {
            match err.delivery() {
                nsq_producer::Delivery::Unknown => tally.failed_unknown.fetch_add(1, Relaxed),
                nsq_producer::Delivery::NotStored => tally.failed_not_stored.fetch_add(1, Relaxed),
            };
        }
    };
    for _ in 0..count {
        if pending.len() >= window {
            if let Some(result) = pending.next().await {
                record(result);
            }
        }
        match producer.publish_async(topic, body.clone()).await {
            Ok(publish) => pending.push(publish),
            Err(err) => record(Err(err)),
        }
    }
    while let Some(result) = pending.next().await {
        record(result);
    }
}

/// A progress bar on a terminal; a plain line per second otherwise.
async fn show_progress(tally: Arc<Tally>, total: u64, started: Instant) {
    let tty = std::io::stdout().is_terminal();
    let tick = if tty {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(1)
    };
    let mut interval = tokio::time::interval(tick);
    let (mut last_done, mut last_at) = (0u64, Instant::now());
    loop {
        interval.tick().await;
        let done = tally.acked.load(Relaxed)
            + tally.failed_unknown.load(Relaxed)
            + tally.failed_not_stored.load(Relaxed);
        let now = Instant::now();
        let rate = (done - last_done) as f64 / now.duration_since(last_at).as_secs_f64().max(1e-9);
        (last_done, last_at) = (done, now);
        let fraction = done as f64 / total.max(1) as f64;
        let mut out = std::io::stdout().lock();
        if tty {
            let width = 30;
            let filled = (fraction * width as f64) as usize;
            let _ = write!(
                out,
                "\r[{}{}] {:>5.1}% {done}/{total}  {rate:>9.0} msgs/s  {:>5.1} s ",
                "#".repeat(filled),
                ".".repeat(width - filled.min(width)),
                fraction * 100.0,
                started.elapsed().as_secs_f64()
            );
        } else {
            let _ = writeln!(
                out,
                "progress {done}/{total} ({:.1}%), {rate:.0} msgs/s, {:.1} s",
                fraction * 100.0,
                started.elapsed().as_secs_f64()
            );
        }
        let _ = out.flush();
    }
}
