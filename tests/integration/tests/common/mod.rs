//! Helpers shared by the `producer_*` and `pool_*` tests: their producer configuration, a way
//! to run blocking harness calls, a poll of nsqd's statistics, and publishers for the pool
//! tests. The hang guard, the topic
//! names and the reader of messages are nsq-test-support's.
//!
//! Each test file uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nsq_producer::{Pool, ProducerConfig, PublishError};
use nsq_proto::Topic;
use nsq_test_support::{HANG, Nsqd, within};
use tokio::task::JoinHandle;

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

/// Tasks publishing `t<task>m<i>` to a pool one after another until [`stop`](Self::stop).
pub struct Publishers {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Vec<Result<(), PublishError>>>>,
}

impl Publishers {
    /// Starts `tasks` tasks publishing to `topic` on `pool`.
    pub fn start(pool: &Pool, topic: &Topic, tasks: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..tasks)
            .map(|k| {
                let (pool, t, stop) = (pool.clone(), topic.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut outcomes = Vec::new();
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        outcomes.push(pool.publish(&t, format!("t{k}m{i}")).await);
                        i += 1;
                    }
                    outcomes
                })
            })
            .collect();
        Self { stop, tasks }
    }

    /// Stops the tasks after their publish under way; returns every outcome.
    pub async fn stop(self) -> Vec<Result<(), PublishError>> {
        self.stop.store(true, Ordering::Relaxed);
        let mut outcomes = Vec::new();
        for task in self.tasks {
            outcomes.extend(within("a publishing task", task).await.unwrap());
        }
        outcomes
    }
}

/// Publishes `m0` to `m<n-1>` to `topic` on `pool` from `tasks` tasks, each taking every
/// `tasks`-th message; every publish must be `Ok`.
pub async fn publish_spread(pool: &Pool, topic: &Topic, tasks: u64, n: u64) {
    let handles: Vec<_> = (0..tasks)
        .map(|k| {
            let (pool, t) = (pool.clone(), topic.clone());
            tokio::spawn(async move {
                for i in (k..n).step_by(tasks as usize) {
                    pool.publish(&t, format!("m{i}")).await.unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        within("a publishing task", handle).await.unwrap();
    }
}

/// Stops `nsqd` (SIGKILL) and waits until `pool` sees its node down.
pub async fn stop_and_see_down(pool: &Pool, nsqd: &mut Nsqd) {
    let killed = nsqd.tcp_addr().to_string();
    blocking(|| nsqd.stop());
    let up = eventually(false, || {
        pool.nodes().iter().find(|n| n.addr == killed).unwrap().up
    })
    .await;
    assert!(!up, "the pool saw the killed node go down");
}
