//! `pool-health`: how a pool of real nsqd rides out a frozen node and a restarted one, and how
//! soon a lone producer connects to an nsqd that starts late. It prints figures; it asserts
//! nothing (the integration tests do).
//!
//! ```text
//! cargo run --release -p nsq-bench --bin pool-health -- freeze [--callers 16] [--window 1]
//!     [--freeze-secs 6] [--timeout-secs 2]
//! cargo run --release -p nsq-bench --bin pool-health -- restart [--down-secs 7]
//! cargo run --release -p nsq-bench --bin pool-health -- lone [--absent-secs 5]
//! cargo run --release -p nsq-bench --bin pool-health -- slow [--delay-ms 100]
//! ```
//!
//! - `freeze`: three nsqd, a round-robin pool, `--callers` tasks each keeping `--window`
//!   publishes under way (1: each waits for its publish). After 2 s the second nsqd is frozen
//!   (SIGSTOP) for `--freeze-secs`, then thawed. Prints the acknowledgements per second in
//!   100 ms windows around the freeze, the time from the freeze until a window carries at least
//!   80 % of the rate before it, and the outcomes by kind.
//! - `restart`: three nsqd, 16 callers; the second nsqd is killed (SIGKILL), restarted after
//!   `--down-secs`, and the time from its restart (nsqd answering `/ping`) to its first
//!   acknowledgement is printed, with the dials made while it was down.
//! - `lone`: one producer, 16 publishes waiting from the start, nsqd started `--absent-secs`
//!   later; prints the time from nsqd being ready to the first acknowledgement.
//! - `slow`: three nsqd, the third behind a proxy that delays its replies by `--delay-ms`;
//!   16 callers each waiting for each publish for 5 s; prints the rate and the slow node's share.

#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use nsq_producer::{Pool, PoolConfig, Producer, ProducerConfig, PublishError, Topic};
use nsq_test_support::{DelayProxy, Nsqd};

/// Width of a window of the rate.
const BUCKET: Duration = Duration::from_millis(100);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("usage: pool-health freeze|restart|lone|slow [--flag value]...");
        return ExitCode::from(2);
    };
    let flags = match parse(rest) {
        Ok(flags) => flags,
        Err(err) => {
            eprintln!("pool-health: {err}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let outcome = match command.as_str() {
        "freeze" => runtime.block_on(freeze(&flags)),
        "restart" => runtime.block_on(restart(&flags)),
        "lone" => runtime.block_on(lone(&flags)),
        "slow" => runtime.block_on(slow(&flags)),
        other => Err(format!("unknown command `{other}`")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pool-health: {err}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<BTreeMap<String, u64>, String> {
    let mut flags = BTreeMap::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let name = arg
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument `{arg}`"))?;
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        let value = value
            .parse()
            .map_err(|_| format!("--{name}: `{value}` is not a number"))?;
        flags.insert(name.to_owned(), value);
    }
    Ok(flags)
}

fn flag(flags: &BTreeMap<String, u64>, name: &str, default: u64) -> u64 {
    flags.get(name).copied().unwrap_or(default)
}

fn topic() -> Topic {
    Topic::new("pool_health").expect("a valid topic")
}

/// Acknowledgements counted in 100 ms windows since `start`.
struct Rate {
    start: Instant,
    buckets: Vec<AtomicU64>,
}

impl Rate {
    fn new(total: Duration) -> Self {
        let n = (total.as_millis() / BUCKET.as_millis()) as usize + 1;
        Self {
            start: Instant::now(),
            buckets: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn ack(&self) {
        let i = (self.start.elapsed().as_millis() / BUCKET.as_millis()) as usize;
        if let Some(bucket) = self.buckets.get(i) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Acknowledgements per second in window `i`.
    fn per_second(&self, i: usize) -> u64 {
        self.buckets[i].load(Ordering::Relaxed) * 1000 / BUCKET.as_millis() as u64
    }
}

fn kind(err: &PublishError) -> String {
    match err {
        PublishError::TimedOut { .. } => "TimedOut".to_owned(),
        PublishError::Unknown { .. } => "Unknown".to_owned(),
        PublishError::NotSent(reason) => {
            let reason = reason.to_string();
            let short = reason.split(':').next().unwrap_or_default();
            format!("NotSent({short})")
        }
        PublishError::Rejected { .. } => "Rejected".to_owned(),
        PublishError::MaybeStored { .. } => "MaybeStored".to_owned(),
        _ => "other".to_owned(),
    }
}

async fn freeze(flags: &BTreeMap<String, u64>) -> Result<(), String> {
    let callers = flag(flags, "callers", 16);
    let window = flag(flags, "window", 1).max(1) as usize;
    let frozen_for = Duration::from_secs(flag(flags, "freeze-secs", 6));
    let timeout = Duration::from_secs(flag(flags, "timeout-secs", 2));
    let before = Duration::from_secs(2);
    let after = Duration::from_secs(2);
    let nodes: Vec<Nsqd> = (0..3).map(|_| Nsqd::start()).collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.tcp_addr().to_string()).collect();
    let mut config = ProducerConfig::default();
    config.publish_timeout = Some(timeout);
    let pool = Pool::connect(addrs, PoolConfig::new(config))
        .await
        .map_err(|e| format!("connecting the pool: {e}"))?;
    let rate = Arc::new(Rate::new(
        before + frozen_for + after + Duration::from_secs(1),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let t = topic();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let (pool, t, stop, rate) = (pool.clone(), t.clone(), stop.clone(), rate.clone());
            tokio::spawn(async move {
                let outcomes: Vec<Result<(), PublishError>> = futures::stream::iter(0..)
                    .take_while(|_| std::future::ready(!stop.load(Ordering::Relaxed)))
                    .map(|_| {
                        let (pool, t, rate) = (&pool, &t, &rate);
                        async move {
                            let result = pool.publish(t, &b"0123456789"[..]).await;
                            if result.is_ok() {
                                rate.ack();
                            }
                            result
                        }
                    })
                    .buffer_unordered(window)
                    .collect()
                    .await;
                let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
                for outcome in outcomes {
                    *kinds
                        .entry(match &outcome {
                            Ok(()) => "Ok".to_owned(),
                            Err(err) => kind(err),
                        })
                        .or_default() += 1;
                }
                kinds
            })
        })
        .collect();
    let verbose = flag(flags, "verbose", 0) > 0;
    let show = |pool: &Pool| {
        if verbose {
            let states: Vec<String> = pool
                .nodes()
                .iter()
                .map(|n| {
                    format!("{}:{:?}", u8::from(n.up), n.state)
                        .chars()
                        .take(14)
                        .collect()
                })
                .collect();
            println!(
                "{:>6.2}s {}",
                rate.start.elapsed().as_secs_f64(),
                states.join(" ")
            );
        }
    };
    while rate.start.elapsed() < before {
        show(&pool);
        tokio::time::sleep(BUCKET).await;
    }
    nodes[1].pause();
    let frozen_at = rate.start.elapsed();
    while rate.start.elapsed() < frozen_at + frozen_for {
        show(&pool);
        tokio::time::sleep(BUCKET).await;
    }
    nodes[1].resume();
    let thawed_at = rate.start.elapsed();
    tokio::time::sleep(after).await;
    stop.store(true, Ordering::Relaxed);
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for task in tasks {
        for (k, n) in task.await.map_err(|e| format!("a caller: {e}"))? {
            *kinds.entry(k).or_default() += n;
        }
    }
    pool.close().await;

    let first = (frozen_at.as_millis() / BUCKET.as_millis()) as usize;
    let pre: Vec<u64> = (first.saturating_sub(10)..first)
        .map(|i| rate.per_second(i))
        .collect();
    let pre_rate = pre.iter().sum::<u64>() / pre.len().max(1) as u64;
    println!(
        "freeze: {callers} callers x {window} under way, publish timeout {timeout:?}, node frozen at {:.2} s for {frozen_for:?}",
        frozen_at.as_secs_f64()
    );
    println!("acked/s before the freeze (last 1 s): {pre_rate}");
    let thaw = (thawed_at.as_millis() / BUCKET.as_millis()) as usize;
    let mut line = String::new();
    for i in first.saturating_sub(3)..(thaw + 5).min(rate.buckets.len()) {
        let at = i as f64 * 0.1 - frozen_at.as_secs_f64();
        line.push_str(&format!("{at:+.1}s:{} ", rate.per_second(i)));
        if line.len() > 100 {
            println!("  {line}");
            line.clear();
        }
    }
    if !line.is_empty() {
        println!("  {line}");
    }
    // The first window after the freeze that carries 80 % of the rate before it.
    let carried = (first + 1..thaw).find(|&i| rate.per_second(i) * 5 >= pre_rate * 4);
    match carried {
        Some(i) => println!(
            "survivors first carry >= 80 % in the window ending {:.2} s after the freeze",
            (i + 1) as f64 * 0.1 - frozen_at.as_secs_f64()
        ),
        None => println!("survivors never carried >= 80 % during the freeze"),
    }
    let slumps = (first + 1..thaw)
        .filter(|&i| rate.per_second(i) * 5 < pre_rate * 4)
        .count();
    println!(
        "100 ms windows below 80 % during the freeze: {slumps} of {}",
        thaw - first - 1
    );
    println!("outcomes: {kinds:?}");
    Ok(())
}

async fn restart(flags: &BTreeMap<String, u64>) -> Result<(), String> {
    let down_for = Duration::from_secs(flag(flags, "down-secs", 7));
    let mut nodes: Vec<Nsqd> = (0..3).map(|_| Nsqd::start()).collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.tcp_addr().to_string()).collect();
    let restarted = addrs[1].clone();
    let pool = Pool::connect(addrs, PoolConfig::new(ProducerConfig::default()))
        .await
        .map_err(|e| format!("connecting the pool: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let t = topic();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (pool, t, stop) = (pool.clone(), t.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let _ = pool.publish(&t, &b"0123456789"[..]).await;
                }
            })
        })
        .collect();
    let node = |pool: &Pool| {
        pool.nodes()
            .into_iter()
            .find(|n| n.addr == restarted)
            .expect("the node")
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::block_in_place(|| nodes[1].stop());
    let killed = Instant::now();
    let failures_at_kill = node(&pool).stats.connect_failures;
    tokio::time::sleep(down_for).await;
    let dials = node(&pool).stats.connect_failures - failures_at_kill;
    let down = killed.elapsed();
    tokio::task::block_in_place(|| nodes[1].restart());
    let ready = Instant::now();
    let acked = node(&pool).stats.acked;
    let back = loop {
        if node(&pool).stats.acked > acked {
            break Some(ready.elapsed());
        }
        if ready.elapsed() > Duration::from_secs(20) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    pool.close().await;
    println!(
        "restart: node down {:.1} s, {dials} failed dials meanwhile ({:.1}/s)",
        down.as_secs_f64(),
        dials as f64 / down.as_secs_f64()
    );
    match back {
        Some(back) => println!(
            "first acknowledgement from the restarted node {:.3} s after it was ready",
            back.as_secs_f64()
        ),
        None => println!("no acknowledgement from the restarted node within 20 s"),
    }
    Ok(())
}

async fn lone(flags: &BTreeMap<String, u64>) -> Result<(), String> {
    let absent = Duration::from_secs(flag(flags, "absent-secs", 5));
    let mut nsqd = Nsqd::start();
    let addr = nsqd.tcp_addr().to_string();
    tokio::task::block_in_place(|| nsqd.stop());
    let mut config = ProducerConfig::default();
    config.publish_timeout = Some(absent + Duration::from_secs(30));
    let producer = Producer::new(addr, config).map_err(|e| format!("a producer: {e}"))?;
    let t = topic();
    let started = Instant::now();
    let waiting: Vec<_> = (0..16)
        .map(|_| {
            let (producer, t) = (producer.clone(), t.clone());
            tokio::spawn(async move {
                let result = producer.publish(&t, &b"0123456789"[..]).await;
                (result, Instant::now())
            })
        })
        .collect();
    tokio::time::sleep(absent).await;
    tokio::task::block_in_place(|| nsqd.restart());
    let ready = Instant::now();
    let mut latest = ready;
    let mut failed = 0;
    for task in waiting {
        let (result, at) = task.await.map_err(|e| format!("a publish: {e}"))?;
        failed += usize::from(result.is_err());
        latest = latest.max(at);
    }
    let stats = producer.close().await;
    println!(
        "lone: nsqd ready {:.2} s after the first publish; {} failed dials before",
        (ready - started).as_secs_f64(),
        stats.connect_failures
    );
    println!(
        "every waiting publish resolved {:.3} s after nsqd was ready ({failed} failed)",
        (latest - ready).as_secs_f64()
    );
    Ok(())
}

async fn slow(flags: &BTreeMap<String, u64>) -> Result<(), String> {
    let delay = Duration::from_millis(flag(flags, "delay-ms", 100));
    let nodes: Vec<Nsqd> = (0..3).map(|_| Nsqd::start()).collect();
    let proxy = DelayProxy::start(nodes[2].tcp_addr(), delay);
    let slow = proxy.addr().to_string();
    let addrs = vec![
        nodes[0].tcp_addr().to_string(),
        nodes[1].tcp_addr().to_string(),
        slow.clone(),
    ];
    let pool = Pool::connect(addrs, PoolConfig::new(ProducerConfig::default()))
        .await
        .map_err(|e| format!("connecting the pool: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let t = topic();
    let started = Instant::now();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (pool, t, stop) = (pool.clone(), t.clone(), stop.clone());
            tokio::spawn(async move {
                let mut failed = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    failed += u64::from(pool.publish(&t, &b"0123456789"[..]).await.is_err());
                }
                failed
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    let mut failed = 0;
    for task in tasks {
        failed += task.await.map_err(|e| format!("a caller: {e}"))?;
    }
    let elapsed = started.elapsed();
    let nodes_after = pool.nodes();
    let stats = pool.close().await;
    let slow_acked = nodes_after
        .iter()
        .find(|n| n.addr == slow)
        .map_or(0, |n| n.stats.acked);
    println!(
        "slow: one of three nsqd answers {delay:?} late; 16 callers for {:.1} s",
        elapsed.as_secs_f64()
    );
    println!(
        "acked/s {:.0}; the slow node acked {slow_acked} of {} ({:.1} %); {failed} failed",
        stats.acked as f64 / elapsed.as_secs_f64(),
        stats.acked,
        slow_acked as f64 * 100.0 / stats.acked.max(1) as f64
    );
    drop(proxy);
    Ok(())
}
