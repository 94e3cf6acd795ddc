//! Publishing the input: every message handed to the pool, at the rate asked for, and every
//! outcome collected as it comes.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use nsq_producer::{Pool, PublishError, Topic};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::args::Batch;
use crate::collect::Outcomes;
use crate::input::{Chunk, Msg};
use crate::signals::Interrupts;
use crate::tally::{Msgs, NO_NODE_UP, Tally};

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The input was read to its end.
    Complete,
    /// Interrupted (SIGINT, SIGTERM or SIGHUP): the input was not read to its end.
    Interrupted,
    /// Reading the input failed; what was read before was published.
    InputFailed,
}

/// What to publish and how.
pub(crate) struct Job<'a> {
    pub(crate) pool: &'a Pool,
    pub(crate) topic: Topic,
    pub(crate) batch: Batch,
    pub(crate) rate: u64,
    /// nsqd's per-message limit, for explicit MPUBs (the producer checks single ones itself).
    pub(crate) max_msg_size: u64,
    /// nsqd's MPUB body limit.
    pub(crate) max_body_size: u64,
    /// Source names, for a read error.
    pub(crate) names: &'a [String],
    /// How many nsqd each message goes to (fan-out), so how many must be up to send one.
    pub(crate) copies: u64,
}

/// The publishes handed over: those of earlier chunks of input, collected as groups, and those
/// of the chunk being handed over.
#[derive(Default)]
struct Pending {
    groups: FuturesUnordered<Outcomes>,
    current: Outcomes,
    /// A publish could not be queued because no nsqd came up before its deadline (its error):
    /// until one is up again, messages are not sent but written to the failed-out file at
    /// once, with that error.
    no_node: Option<String>,
}

impl Pending {
    fn push(&mut self, handle: nsq_producer::Publish, msgs: Msgs) {
        self.current.push(handle, msgs);
    }

    /// Starts collecting the current group.
    fn seal(&mut self) {
        if !self.current.is_empty() {
            self.groups.push(std::mem::take(&mut self.current));
        }
    }

    /// Tallies the groups already answered, without waiting.
    fn collect_ready(&mut self, tally: &mut Tally) {
        while let Some(Some(outcomes)) = self.groups.next().now_or_never() {
            tally_all(tally, outcomes);
        }
    }
}

fn tally_all(tally: &mut Tally, outcomes: Vec<(Result<(), PublishError>, Msgs)>) {
    for (result, msgs) in outcomes {
        tally.outcome(result, msgs);
    }
}

/// Publishes everything `input` yields until it ends or `stop` counts an interrupt, then
/// closes the pool and collects every outcome. A second interrupt closes it without waiting.
pub(crate) async fn publish_all(
    job: &Job<'_>,
    mut input: mpsc::Receiver<Chunk>,
    tally: &mut Tally,
    stop: &mut watch::Receiver<Interrupts>,
) -> End {
    let mut pending = Pending::default();
    let mut pacer = Pacer::new(job.rate);
    let mut group = Group::default();
    let mut end = End::Complete;
    'input: loop {
        // Nothing more is ready: a partial MPUB group goes now rather than wait for input that
        // may be slow to come.
        if !group.msgs.is_empty()
            && input.is_empty()
            && !send_group(job, &mut group, &mut pending, tally, stop).await
        {
            end = End::Interrupted;
            break;
        }
        pending.seal();
        let chunk = tokio::select! {
            biased;
            Ok(_) = stop.wait_for(|i| i.count >= 1) => {
                end = End::Interrupted;
                break 'input;
            }
            Some(outcomes) = pending.groups.next(), if !pending.groups.is_empty() => {
                tally_all(tally, outcomes);
                continue;
            }
            chunk = input.recv() => chunk,
        };
        let msgs = match chunk {
            None => break,
            Some(Chunk::Failed { source, error }) => {
                let name = job
                    .names
                    .get(source as usize)
                    .map_or("input", String::as_str);
                tally
                    .printer
                    .line(format_args!("nsq-pub: error: reading {name}: {error}"));
                end = End::InputFailed;
                break;
            }
            Some(Chunk::Messages { msgs, skipped }) => {
                tally.counters.skipped_empty.fetch_add(skipped, Relaxed);
                tally.taken(&msgs);
                msgs
            }
        };
        // While too few nsqd are up (a publish waited its whole deadline for them), messages
        // are not sent; whether they are back is looked at once a chunk.
        if pending.no_node.is_some()
            && job.pool.nodes().iter().filter(|n| n.up).count() >= job.copies as usize
        {
            pending.no_node = None;
        }
        let mut msgs = msgs.into_iter();
        while let Some(msg) = msgs.next() {
            if let Some(error) = &pending.no_node {
                tally.unsent(NO_NODE_UP, error, &msg);
                continue;
            }
            // Each step tallies (or keeps in the group) the message it was given, whatever
            // happens; only the ones after it are left here when the run is interrupted.
            let handed = if !pace(&mut pacer, job, &mut group, &mut pending, tally, stop).await {
                tally.interrupted(&msg);
                false
            } else {
                match job.batch {
                    Batch::Auto | Batch::Size(1) => {
                        publish_one(job, msg, &mut pending, tally, stop).await
                    }
                    Batch::Size(n) => {
                        add_to_group(job, n, msg, &mut group, &mut pending, tally, stop).await
                    }
                }
            };
            if !handed {
                for msg in msgs {
                    tally.interrupted(&msg);
                }
                end = End::Interrupted;
                break 'input;
            }
        }
        pending.seal();
        pending.collect_ready(tally);
    }
    if end != End::Interrupted
        && !group.msgs.is_empty()
        && !send_group(job, &mut group, &mut pending, tally, stop).await
    {
        end = End::Interrupted;
    }
    for msg in std::mem::take(&mut group.msgs) {
        tally.interrupted(&msg);
    }
    if end == End::Interrupted {
        // What was read ahead was not handed over: it belongs in the failed-out file.
        input.close();
        while let Ok(chunk) = input.try_recv() {
            if let Chunk::Messages { msgs, skipped } = chunk {
                tally.counters.skipped_empty.fetch_add(skipped, Relaxed);
                tally.taken(&msgs);
                for msg in &msgs {
                    tally.interrupted(msg);
                }
            }
        }
    }
    // The last outcomes come while the pool closes: it waits for what is queued and written,
    // within its close timeout; a second Ctrl-C ends those at once.
    let closing = async {
        tokio::select! {
            biased;
            _ = job.pool.close() => {}
            Ok(_) = stop.wait_for(|i| i.count >= 2) => {
                job.pool.close_now().await;
            }
        }
    };
    pending.seal();
    let collecting = async {
        while let Some(outcomes) = pending.groups.next().await {
            tally_all(tally, outcomes);
        }
    };
    tokio::join!(closing, collecting);
    end
}

/// The error of a publish that failed because no nsqd (or too few for its copies) was up
/// until its deadline.
fn no_node_up(error: &PublishError) -> Option<String> {
    matches!(
        error,
        PublishError::NotSent(
            nsq_producer::NotSentReason::NoNodeUp(_)
                | nsq_producer::NotSentReason::TooFewNodesUp(_)
        )
    )
    .then(|| error.to_string())
}

/// Waits until the rate allows one more message; sends a partial MPUB group first rather than
/// hold it while waiting. False when interrupted.
async fn pace(
    pacer: &mut Pacer,
    job: &Job<'_>,
    group: &mut Group,
    pending: &mut Pending,
    tally: &mut Tally,
    stop: &mut watch::Receiver<Interrupts>,
) -> bool {
    let Some(at) = pacer.next() else { return true };
    if Instant::now() >= at {
        return true;
    }
    if !group.msgs.is_empty() && !send_group(job, group, pending, tally, stop).await {
        return false;
    }
    // What was handed over is collected while this waits.
    pending.seal();
    tokio::select! {
        biased;
        Ok(_) = stop.wait_for(|i| i.count >= 1) => false,
        () = tokio::time::sleep_until(at) => true,
    }
}

/// Hands one message to the pool. False when interrupted while waiting for room (the message
/// is then tallied as not sent).
async fn publish_one(
    job: &Job<'_>,
    msg: Msg,
    pending: &mut Pending,
    tally: &mut Tally,
    stop: &mut watch::Receiver<Interrupts>,
) -> bool {
    let queued = tokio::select! {
        biased;
        queued = job.pool.publish_async(&job.topic, msg.body.clone()) => queued,
        Ok(_) = stop.wait_for(|i| i.count >= 1) => {
            tally.interrupted(&msg);
            return false;
        }
    };
    match queued {
        Ok(handle) => pending.push(handle, Msgs::One(msg)),
        Err(error) => {
            tally.failed(&error, &msg);
            pending.no_node = pending.no_node.take().or_else(|| no_node_up(&error));
        }
    }
    true
}

/// Messages waiting to go as one MPUB.
#[derive(Default)]
struct Group {
    msgs: Vec<Msg>,
    /// The MPUB body's size so far: the count, and each message with its size.
    body: u64,
}

/// Adds a message to the MPUB group, sending the group when it is full. False when interrupted
/// (the message is then in the group, which is left unsent).
async fn add_to_group(
    job: &Job<'_>,
    size: usize,
    msg: Msg,
    group: &mut Group,
    pending: &mut Pending,
    tally: &mut Tally,
    stop: &mut watch::Receiver<Interrupts>,
) -> bool {
    let len = msg.body.len() as u64;
    if len > job.max_msg_size {
        // Refused here, alone, so that it does not take its group down with it.
        let error = PublishError::Invalid(nsq_producer::InvalidPublish::MessageTooLarge {
            index: None,
            size: len,
            max: job.max_msg_size,
        });
        tally.failed(&error, &msg);
        return true;
    }
    let full = !group.msgs.is_empty() && group.body + 4 + len > job.max_body_size;
    let sent = !full || send_group(job, group, pending, tally, stop).await;
    if group.msgs.is_empty() {
        group.body = 4;
    }
    group.body += 4 + len;
    group.msgs.push(msg);
    if !sent {
        return false;
    }
    if group.msgs.len() >= size {
        return send_group(job, group, pending, tally, stop).await;
    }
    true
}

/// Sends the group as one MPUB. False when interrupted while waiting for room: the messages
/// are then back in the group, unsent.
async fn send_group(
    job: &Job<'_>,
    group: &mut Group,
    pending: &mut Pending,
    tally: &mut Tally,
    stop: &mut watch::Receiver<Interrupts>,
) -> bool {
    let msgs = std::mem::take(&mut group.msgs);
    let bodies: Vec<Bytes> = msgs.iter().map(|m| m.body.clone()).collect();
    let queued = tokio::select! {
        biased;
        queued = job.pool.multi_publish_async(&job.topic, bodies) => queued,
        Ok(_) = stop.wait_for(|i| i.count >= 1) => {
            group.msgs = msgs;
            return false;
        }
    };
    match queued {
        Ok(handle) => pending.push(handle, Msgs::Many(msgs)),
        Err(error) => {
            pending.no_node = pending.no_node.take().or_else(|| no_node_up(&error));
            tally.outcome(Err(error), Msgs::Many(msgs));
        }
    }
    true
}

/// Spaces messages out to at most `rate` per second, with a burst of a tenth of a second's
/// worth: by any time t after the start, at most `rate * t + burst` messages have been let
/// through.
struct Pacer {
    rate: u64,
    burst: u64,
    start: Instant,
    let_through: u64,
}

impl Pacer {
    fn new(rate: u64) -> Self {
        Self {
            rate,
            burst: (rate / 10).max(1),
            start: Instant::now(),
            let_through: 0,
        }
    }

    /// When the next message may go; `None` without a rate.
    fn next(&mut self) -> Option<Instant> {
        if self.rate == 0 {
            return None;
        }
        self.let_through += 1;
        let ahead = self.let_through.saturating_sub(self.burst);
        Some(self.start + Duration::from_secs_f64(ahead as f64 / self.rate as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pacer_lets_through_at_most_rate_times_elapsed_plus_the_burst() {
        let mut pacer = Pacer::new(100);
        let start = pacer.start;
        let mut times = Vec::new();
        for _ in 0..500 {
            let at = pacer.next().unwrap();
            tokio::time::sleep_until(at).await;
            times.push(Instant::now() - start);
        }
        for (i, t) in times.iter().enumerate() {
            let allowed = 100.0 * t.as_secs_f64() + 10.0;
            assert!((i + 1) as f64 <= allowed + 1e-6, "message {i} at {t:?}");
        }
        // Not slower than asked either: 500 messages at 100/s take under 5 s.
        assert!(*times.last().unwrap() < Duration::from_secs(5));
        assert!(Pacer::new(0).next().is_none());
    }
}
