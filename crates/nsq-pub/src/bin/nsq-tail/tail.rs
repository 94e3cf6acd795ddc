//! The reading loop: messages from every topic's consumer are written in batches, flushed, and
//! only then finished; `-n` lowers `max_in_flight` as the count nears, so that nsqd sends no
//! more than will be shown.

use std::future::poll_fn;
use std::io::{self, Write};
use std::task::Poll;

use futures::{FutureExt as _, StreamExt as _};
use nsq_consumer::{Consumer, ConsumerHandle, DrainReport, Message};
use tokio::sync::watch;

use crate::output::Framer;
use crate::signals::Interrupts;

/// Why reading stopped.
#[derive(Debug)]
pub(crate) enum End {
    /// `-n` messages were shown.
    Limit,
    /// A signal asked to stop.
    Interrupted(&'static str),
    /// Standard output's reader went away (a broken pipe).
    OutputClosed,
    /// Writing standard output failed.
    OutputFailed(io::Error),
    /// Every consumer ended by itself.
    ConsumersEnded,
}

/// What a run came to.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) end: End,
    /// Messages written and finished (or whose `FIN` could not be sent).
    pub(crate) shown: u64,
    /// Messages written whose `FIN` could not be sent (their connection closed): nsqd
    /// delivers them again after its `msg_timeout`. With the first such error.
    pub(crate) unfinished: u64,
    pub(crate) first_unfinished: Option<String>,
    /// Each topic's drain report.
    pub(crate) drained: Vec<(String, DrainReport)>,
}

/// Reads every consumer and writes what it reads.
pub(crate) struct Tail<W: Write> {
    /// Each topic and its consumer.
    consumers: Vec<(String, Consumer)>,
    handles: Vec<ConsumerHandle>,
    /// The consumer polled first next time, so that no topic starves the others.
    first: usize,
    framer: Framer<W>,
    limit: Option<u64>,
    max_in_flight: u32,
}

impl<W: Write> Tail<W> {
    /// `max_in_flight` is what each consumer was configured with.
    pub(crate) fn new(
        consumers: Vec<(String, Consumer)>,
        framer: Framer<W>,
        limit: Option<u64>,
        max_in_flight: u32,
    ) -> Self {
        let handles = consumers.iter().map(|(_, c)| c.handle()).collect();
        Self {
            consumers,
            handles,
            first: 0,
            framer,
            limit,
            max_in_flight,
        }
    }

    /// Reads until the limit, an interrupt or an output error, then drains every consumer (what
    /// was delivered and not written is requeued).
    pub(crate) async fn run(mut self, mut stop: watch::Receiver<Interrupts>) -> Outcome {
        let mut shown = 0u64;
        let mut unfinished = 0u64;
        let mut first_unfinished = None;
        let mut batch: Vec<(usize, Message)> = Vec::new();
        let end = loop {
            let remaining = self.limit.map_or(u64::MAX, |n| n - shown);
            let next = tokio::select! {
                biased;
                Ok(i) = stop.wait_for(|i| i.count > 0) => {
                    break End::Interrupted(i.signal.unwrap_or("a signal"));
                }
                next = self.next() => next,
            };
            let Some(next) = next else {
                break End::ConsumersEnded;
            };
            batch.push(next);
            // Whatever else has arrived goes in the same write.
            while (batch.len() as u64) < remaining {
                match self.next().now_or_never() {
                    Some(Some(next)) => batch.push(next),
                    _ => break,
                }
            }
            if let Err(e) = self.write(&batch) {
                break match e.kind() {
                    io::ErrorKind::BrokenPipe => End::OutputClosed,
                    _ => End::OutputFailed(e),
                };
            }
            shown += batch.len() as u64;
            if let Some(n) = self.limit {
                // Before the FINs, so that each connection has its lower RDY count before a FIN
                // makes room for another message.
                self.cap_in_flight(n - shown);
            }
            for (_, message) in batch.drain(..) {
                if let Err(e) = message.finish() {
                    unfinished += 1;
                    first_unfinished.get_or_insert_with(|| e.to_string());
                }
            }
            if self.limit.is_some_and(|n| shown >= n) {
                break End::Limit;
            }
        };
        // Not written: requeued at once.
        drop(batch);
        let drains = self
            .consumers
            .into_iter()
            .map(|(topic, consumer)| async move { (topic, consumer.drain().await) });
        let drained = futures::future::join_all(drains).await;
        Outcome {
            end,
            shown,
            unfinished,
            first_unfinished,
            drained,
        }
    }

    /// Writes and flushes `batch`.
    fn write(&mut self, batch: &[(usize, Message)]) -> io::Result<()> {
        for (i, message) in batch {
            self.framer.write(&self.consumers[*i].0, message)?;
        }
        self.framer.flush()
    }

    /// Lowers every consumer's `max_in_flight` to `remaining` when it is below the configured
    /// one.
    fn cap_in_flight(&self, remaining: u64) {
        let cap = u32::try_from(remaining).unwrap_or(u32::MAX);
        if cap < self.max_in_flight {
            for handle in &self.handles {
                handle.set_max_in_flight(cap);
            }
        }
    }

    /// The next message of any consumer, taking the consumers in turn; `None` once all ended.
    async fn next(&mut self) -> Option<(usize, Message)> {
        let consumers = &mut self.consumers;
        let first = &mut self.first;
        poll_fn(|cx| {
            let n = consumers.len();
            let mut ended = 0;
            for k in 0..n {
                let i = (*first + k) % n;
                match consumers[i].1.poll_next_unpin(cx) {
                    Poll::Ready(Some(message)) => {
                        *first = (i + 1) % n;
                        return Poll::Ready(Some((i, message)));
                    }
                    Poll::Ready(None) => ended += 1,
                    Poll::Pending => {}
                }
            }
            if ended == n {
                Poll::Ready(None)
            } else {
                Poll::Pending
            }
        })
        .await
    }
}
