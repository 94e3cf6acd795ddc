//! `nsq-bench stall`: cases h and i, how fast callers waiting for room in the producer's queue
//! get in once nsqd is back after a stall.
//!
//! The client connects, stops nsqd with SIGSTOP (by the pid the suite gives it, through the
//! `kill` command), then starts `n` `publish_async` calls. The first ones fill the window and the
//! queue and return; the others wait for room. Once every call has been polled once, it resumes
//! nsqd with SIGCONT and times from there to the return of the last waiting call. The rate is
//! waiting calls over that time. The results of the queued publishes are awaited too, so that
//! nsqd's count can be checked as in the other cases.
//!
//! Case h starts one tokio task per call; case i drives every call from one
//! `FuturesUnordered` in one task.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use nsq_producer::{ProducerConfig, Publish, PublishError, Topic};
use tokio::sync::mpsc;

use crate::cpu::CpuClock;
use crate::flags::ClientOptions;
use crate::producer::{CLIENT, connect};
use crate::record::{RunResult, Tally};

/// How long every call must have been waiting before nsqd is resumed: the last calls are
/// polled a moment after the counter says they started.
const SETTLE: Duration = Duration::from_millis(200);

/// Longest wait for the `n` calls to start.
const START_LIMIT: Duration = Duration::from_secs(60);

/// Runs case `h` (one task per call) or `i` (one `FuturesUnordered`).
pub(crate) async fn run(options: &ClientOptions) -> Result<RunResult, String> {
    let pid = options
        .nsqd_pid
        .ok_or("cases h and i need --nsqd-pid, the pid of the nsqd to stop")?;
    let per_task = match options.case.as_str() {
        "h" => true,
        "i" => false,
        other => return Err(format!("unknown stall case `{other}`")),
    };
    let producer = connect(&options.addr, ProducerConfig::default()).await?;
    let topic = Topic::new(options.topic.clone()).map_err(|e| e.to_string())?;
    let body = Bytes::from(vec![b'x'; options.size]);
    let n = options.n;

    signal(pid, "STOP")?;
    let stalled = Stalled {
        pid,
        started: Arc::new(AtomicU64::new(0)),
        returned: Arc::new(AtomicU64::new(0)),
    };
    let outcome = if per_task {
        stalled.per_task(&producer, &topic, &body, n).await
    } else {
        stalled.unordered(&producer, &topic, &body, n).await
    };
    // Whatever happened, nsqd must not stay stopped.
    let resumed = signal(pid, "CONT");
    let run = outcome?;
    resumed?;
    producer.close().await;

    let waited = n - run.before_release;
    let seconds = run
        .last_return
        .saturating_duration_since(run.released)
        .as_secs_f64();
    let mut result = RunResult::new(CLIENT, &options.case, n);
    result.acked = run.tally.acked;
    result.errors = run.tally.errors;
    result.first_error = run.tally.first_error;
    result.seconds = Some(seconds);
    result.waiting = Some(waited);
    result.resolved_per_sec = Some(waited as f64 / seconds.max(f64::EPSILON));
    result.cpu_s = run.cpu_s;
    Ok(result)
}

/// What one run measured.
struct Run {
    /// Calls that returned before nsqd was resumed: they filled the window and the queue.
    before_release: u64,
    released: Instant,
    last_return: Instant,
    /// CPU time from the release to the last return.
    cpu_s: Option<f64>,
    /// The outcomes of every publish.
    tally: Tally,
}

/// The shared state of the calls of one run.
struct Stalled {
    pid: u32,
    /// Calls polled at least once.
    started: Arc<AtomicU64>,
    /// Calls whose `publish_async` returned.
    returned: Arc<AtomicU64>,
}

impl Stalled {
    /// Case h: one task per call. Each task records when its `publish_async` returned, then
    /// awaits the publish.
    async fn per_task(
        &self,
        producer: &nsq_producer::Producer,
        topic: &Topic,
        body: &Bytes,
        n: u64,
    ) -> Result<Run, String> {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let (producer, topic, body) = (producer.clone(), topic.clone(), body.clone());
                let (started, returned) = (self.started.clone(), self.returned.clone());
                tokio::spawn(async move {
                    started.fetch_add(1, Ordering::Relaxed);
                    let queued = producer.publish_async(&topic, body).await;
                    let at = Instant::now();
                    returned.fetch_add(1, Ordering::Relaxed);
                    let result = match queued {
                        Ok(publish) => publish.await,
                        Err(err) => Err(err),
                    };
                    (at, result)
                })
            })
            .collect();
        let (before_release, released, cpu) = self.release_when_started(n).await?;
        // The CPU time up to the last return, not up to the last answer.
        while self.returned.load(Ordering::Relaxed) < n && released.elapsed() < START_LIMIT {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let cpu_s = cpu.seconds();
        let mut tally = Tally::default();
        let mut last_return = released;
        for task in tasks {
            match task.await {
                Ok((at, result)) => {
                    last_return = last_return.max(at);
                    tally.record(result, 1);
                }
                Err(err) => tally.record(Err(format!("caller task failed: {err}")), 1),
            }
        }
        Ok(Run {
            before_release,
            released,
            last_return,
            cpu_s,
            tally,
        })
    }

    /// Case i: every call in one `FuturesUnordered`, driven by this task. Each returned publish
    /// goes to a collector task that awaits it.
    async fn unordered(
        &self,
        producer: &nsq_producer::Producer,
        topic: &Topic,
        body: &Bytes,
        n: u64,
    ) -> Result<Run, String> {
        let calls: FuturesUnordered<_> = (0..n)
            .map(|_| {
                let started = self.started.clone();
                async move {
                    started.fetch_add(1, Ordering::Relaxed);
                    producer.publish_async(topic, body.clone()).await
                }
            })
            .collect();
        let (queued, mut publishes) = mpsc::unbounded_channel::<Publish>();
        let collector = tokio::spawn(async move {
            let mut tally = Tally::default();
            while let Some(publish) = publishes.recv().await {
                tally.record(publish.await, 1);
            }
            tally
        });
        let drive = async {
            let mut calls = calls;
            let mut refused = Tally::default();
            while let Some(queued_call) = calls.next().await {
                self.returned.fetch_add(1, Ordering::Relaxed);
                match queued_call {
                    Ok(publish) => {
                        let _ = queued.send(publish);
                    }
                    Err(err) => refused.record(Err::<(), PublishError>(err), 1),
                }
            }
            (Instant::now(), refused)
        };
        let (driven, release) = tokio::join!(drive, self.release_when_started(n));
        let ((last_return, refused), (before_release, released, cpu)) = (driven, release?);
        let cpu_s = cpu.seconds();
        drop(queued);
        let mut tally = collector
            .await
            .map_err(|e| format!("collector task failed: {e}"))?;
        tally.merge(refused);
        Ok(Run {
            before_release,
            released,
            last_return,
            cpu_s,
            tally,
        })
    }

    /// Waits until all `n` calls started and settled, then resumes nsqd. Returns how many calls
    /// had returned by then, the moment of the release and a CPU clock started there.
    async fn release_when_started(&self, n: u64) -> Result<(u64, Instant, CpuClock), String> {
        let began = Instant::now();
        while self.started.load(Ordering::Relaxed) < n {
            if began.elapsed() > START_LIMIT {
                return Err(format!(
                    "only {} of {n} calls started in {} s",
                    self.started.load(Ordering::Relaxed),
                    START_LIMIT.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(SETTLE).await;
        let before = self.returned.load(Ordering::Relaxed);
        let cpu = CpuClock::start();
        let released = Instant::now();
        signal(self.pid, "CONT")?;
        Ok((before, released, cpu))
    }
}

/// Sends `SIG<name>` to `pid` with the `kill` command.
fn signal(pid: u32, name: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .map_err(|e| format!("running kill -{name} {pid}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -{name} {pid} failed ({status})"))
    }
}
