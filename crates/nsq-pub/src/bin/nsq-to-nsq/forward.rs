//! The forwarding loop: each source message is published to the destination pool, and
//! finished or requeued at the source by the publish's outcome.

use std::fs::File;
use std::future::Future;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::stream::{FuturesUnordered, SelectAll};
use futures::{Stream, StreamExt};
use nsq_consumer::{Consumer, ConsumerHandle, DrainReport, Message};
use nsq_producer::{Delivery, Pool, PublishError, Topic};
use tokio::sync::watch;

use crate::console::{Notices, Printer};
use crate::filter::{Filter, Verdict};
use crate::report::{Counters, Status};
use crate::signals::Interrupts;

/// A publish under way: the source message, the body sent, and the outcome once known.
type InFlight = Pin<Box<dyn Future<Output = (Message, Bytes, Result<(), PublishError>)> + Send>>;

/// Every source topic's messages, each with its topic's index.
type Sources = SelectAll<Pin<Box<dyn Stream<Item = (usize, Message)> + Send>>>;

/// `--unknown-out`: where messages of unknown fate go instead of back to the source.
pub(crate) struct UnknownOut {
    path: PathBuf,
    file: BufWriter<File>,
}

impl UnknownOut {
    /// Creates (or truncates) the file.
    ///
    /// # Errors
    ///
    /// The file cannot be created.
    pub(crate) fn create(path: PathBuf) -> Result<Self, String> {
        let file = File::create(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        Ok(Self {
            path,
            file: BufWriter::new(file),
        })
    }

    /// Writes `body` and a newline, and hands them to the system before the message is
    /// finished.
    fn write(&mut self, body: &[u8]) -> std::io::Result<()> {
        self.file.write_all(body)?;
        self.file.write_all(b"\n")?;
        self.file.flush()
    }
}

/// What the loop works with.
pub(crate) struct Forwarder {
    pub(crate) pool: Pool,
    /// The destination topic of each source topic, by index.
    pub(crate) destinations: Vec<Topic>,
    pub(crate) filter: Filter,
    pub(crate) counters: Arc<Counters>,
    pub(crate) unknown_out: Option<UnknownOut>,
    pub(crate) status_every: u64,
    pub(crate) started: Instant,
    pub(crate) notices: Notices,
}

impl Forwarder {
    /// Forwards until the first interrupt, then finishes what is in flight (until a second
    /// interrupt), lets the consumers drain and returns their reports summed.
    pub(crate) async fn run(
        mut self,
        consumers: Vec<Consumer>,
        mut stop: watch::Receiver<Interrupts>,
    ) -> (DrainReport, Pool) {
        let handles: Vec<ConsumerHandle> = consumers.iter().map(Consumer::handle).collect();
        let mut sources: Sources = futures::stream::select_all(
            consumers
                .into_iter()
                .enumerate()
                .map(|(i, c)| c.map(move |m| (i, m)).boxed()),
        );
        let mut pending: FuturesUnordered<InFlight> = FuturesUnordered::new();
        let mut stopping = false;
        loop {
            tokio::select! {
                biased;
                Some((msg, body, outcome)) = pending.next(), if !pending.is_empty() => {
                    self.settle(msg, &body, outcome);
                }
                Ok(_) = stop.wait_for(|i| i.count > u8::from(stopping)),
                    if !stopping || !pending.is_empty() =>
                {
                    if !stopping {
                        stopping = true;
                        for handle in &handles {
                            handle.stop();
                        }
                        continue;
                    }
                    // Stop waiting: the messages are requeued at the source as they are
                    // dropped; their publishes may still be stored.
                    let left = pending.len() as u64;
                    self.counters
                        .abandoned
                        .fetch_add(left, std::sync::atomic::Ordering::Relaxed);
                    drop(pending);
                    break;
                }
                next = sources.next(), if !stopping => match next {
                    Some((i, msg)) => {
                        if let Some(in_flight) = self.start(i, msg).await {
                            pending.push(in_flight);
                        }
                    }
                    None => stopping = true,
                },
                else => break,
            }
        }
        // Messages delivered and not taken are requeued as the consumers are dropped.
        drop(sources);
        let mut total = DrainReport::default();
        for handle in &handles {
            let report = handle.wait_report().await;
            total.received += report.received;
            total.finished += report.finished;
            total.requeued += report.requeued;
            total.requeued_by_drain += report.requeued_by_drain;
            total.given_up += report.given_up;
            total.lost_with_connection += report.lost_with_connection;
            total.left_in_flight += report.left_in_flight;
        }
        if let Some(out) = &mut self.unknown_out {
            let _ = out.file.flush();
        }
        (total, self.pool)
    }

    /// Filters the message and queues its publish; `None` when it was answered at once.
    async fn start(&mut self, topic: usize, msg: Message) -> Option<InFlight> {
        let body = match self.filter.judge(msg.body()) {
            Verdict::Forward(body) => body,
            Verdict::Filtered(_) => {
                let _ = msg.finish();
                Counters::bump(&self.counters.filtered);
                return None;
            }
        };
        match self
            .pool
            .publish_async(&self.destinations[topic], body.clone())
            .await
        {
            Ok(publish) => Some(Box::pin(async move {
                let outcome = publish.await;
                (msg, body, outcome)
            })),
            Err(e) => {
                self.settle(msg, &body, Err(e));
                None
            }
        }
    }

    /// Answers the source message by the publish's outcome.
    fn settle(&mut self, msg: Message, body: &Bytes, outcome: Result<(), PublishError>) {
        let counters = &*self.counters;
        let error = match outcome {
            Ok(()) => {
                if let Err(e) = msg.finish() {
                    Counters::bump(&counters.finish_lost);
                    self.notices
                        .show("finish", format_args!("forwarded, but not finished: {e}"));
                    return;
                }
                let forwarded = counters
                    .forwarded
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1;
                counters
                    .bytes
                    .fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
                if self.status_every > 0 && forwarded % self.status_every == 0 {
                    let counts = counters.read();
                    Printer.line(format_args!(
                        "nsq-to-nsq: {}",
                        Status {
                            counts: &counts,
                            elapsed: self.started.elapsed(),
                        }
                    ));
                }
                return;
            }
            Err(e) => e,
        };
        if error.delivery() == Delivery::NotStored {
            self.notices.show(
                "not stored",
                format_args!("not stored, requeued at the source: {error}"),
            );
            let _ = msg.requeue(None);
            Counters::bump(&counters.requeued);
            return;
        }
        if let Some(out) = &mut self.unknown_out {
            match out.write(body) {
                Ok(()) => {
                    let _ = msg.finish();
                    Counters::bump(&counters.unknown_written);
                    return;
                }
                Err(e) => self.notices.show(
                    "unknown-out",
                    format_args!("writing {}: {e}; requeued instead", out.path.display()),
                ),
            }
        }
        self.notices.show(
            "unknown",
            format_args!("maybe stored, requeued at the source: {error}"),
        );
        // The destination's connection failed, not the message: no backoff.
        let _ = msg.requeue_without_backoff(None);
        Counters::bump(&counters.unknown_requeued);
    }
}
