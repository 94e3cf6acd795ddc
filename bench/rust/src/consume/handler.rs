//! `nsq-bench consume --api run`: both phases through `Consumer::run` and a handler that does
//! nothing but count (and, in the latency phase, time) the messages; the consumer finishes each
//! one when the handler returns `Ok`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nsq_consumer::{Consumer, Message};
use tokio::sync::Notify;
use tokio::time::{Instant, timeout_at};

use super::{Clock, ConsumeOptions, Phases, latency_deadline, pacer_outcome, since, start_pacer};
use crate::pace::stamped_at;
use crate::record::Tally;

/// What the handler shares with the task that watches the phases.
struct Shared {
    n: u64,
    filled: u64,
    latency_n: u64,
    /// Messages handled so far.
    seen: AtomicU64,
    /// Stamped messages timed so far, and their latencies in nanoseconds.
    timed: AtomicU64,
    latencies: Mutex<Vec<u64>>,
    /// Woken at the `n`-th message, the `filled`-th, and the `latency_n`-th stamped one.
    timed_phase_done: Notify,
    all_read: Notify,
    latency_done: Notify,
}

impl Shared {
    fn handle(&self, message: &Message) {
        let count = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if count == self.n {
            self.timed_phase_done.notify_one();
        }
        if count == self.filled {
            self.all_read.notify_one();
        }
        if count <= self.filled {
            return;
        }
        if let Some(at) = stamped_at(message.body()) {
            let took = u64::try_from(since(at).as_nanos()).unwrap_or(u64::MAX);
            self.latencies
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(took);
            if self.timed.fetch_add(1, Ordering::Relaxed) + 1 == self.latency_n {
                self.latency_done.notify_one();
            }
        }
    }
}

/// Runs both phases through `Consumer::run`, then stops it, which drains.
pub(super) async fn phases(
    consumer: Consumer,
    options: &ConsumeOptions,
    clock: &Clock<'_>,
    deadline: Instant,
) -> Result<Phases, String> {
    let shared = Arc::new(Shared {
        n: options.n,
        filled: options.filled,
        latency_n: options.latency_n,
        seen: AtomicU64::new(0),
        timed: AtomicU64::new(0),
        latencies: Mutex::new(Vec::with_capacity(options.latency_n as usize)),
        timed_phase_done: Notify::new(),
        all_read: Notify::new(),
        latency_done: Notify::new(),
    });
    let handle = consumer.handle();
    let handler_state = Arc::clone(&shared);
    let running = tokio::spawn(consumer.run(options.concurrency, move |message: Message| {
        let state = Arc::clone(&handler_state);
        async move {
            state.handle(&message);
            Ok::<(), std::convert::Infallible>(())
        }
    }));

    let mut tally = Tally::default();
    let timed = match timeout_at(deadline, shared.timed_phase_done.notified()).await {
        Ok(()) => Some(clock.stop()?),
        Err(_) => None,
    };
    let received = shared.seen.load(Ordering::Relaxed).min(options.n);
    let all_read = timed.is_some()
        && (options.filled == options.n
            || timeout_at(deadline, shared.all_read.notified())
                .await
                .is_ok());
    let extra = shared
        .seen
        .load(Ordering::Relaxed)
        .saturating_sub(options.n)
        .min(options.filled - options.n);

    let mut latency_n = None;
    if all_read && options.latency_n > 0 {
        match start_pacer(options) {
            Ok(pacing) => {
                let end = latency_deadline(options);
                let _ = timeout_at(end, shared.latency_done.notified()).await;
                if let Err(err) = pacer_outcome(pacing).await {
                    tally.record(Err(err), 0);
                }
            }
            Err(err) => tally.record(Err(err), 0),
        }
        let latencies = shared
            .latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for &took in latencies.iter() {
            tally.latency(Duration::from_nanos(took));
        }
        latency_n = Some(latencies.len() as u64);
    }
    handle.stop();
    running
        .await
        .map_err(|e| format!("the consumer's run task failed: {e}"))?;
    Ok(Phases {
        tally,
        received,
        timed,
        extra,
        latency_n,
    })
}
