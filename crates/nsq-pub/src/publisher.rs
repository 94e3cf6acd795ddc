//! Publishing the input: every message handed to the pool, at the rate asked for, and every
//! outcome collected as it comes and entered in the books.
//!
//! [`Publisher`] owns everything a run changes (the input, the MPUB group being formed, the
//! publishes awaiting their answers, the books), so each step is a method on it. Every message
//! taken from the input is entered in the books exactly once: with its publish's outcome, or
//! as not sent, or as not published because the run was interrupted.

use bytes::Bytes;
use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use nsq_producer::{InvalidPublish, NotSentReason, Pool, PublishError, Topic};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::args::Batch;
use crate::books::Books;
use crate::collect::Outcomes;
use crate::console::Printer;
use crate::input::{Chunk, Msg, Msgs};
use crate::pacer::Pacer;
use crate::signals::Interrupts;
use crate::tally::{End, NO_NODE_UP};

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

/// The run was interrupted while a step waited (for the pacer, or for room in the pool).
struct Interrupted;

/// A run in progress: the input, what was handed to the pool, and the books.
pub(crate) struct Publisher<'a> {
    job: Job<'a>,
    input: mpsc::Receiver<Chunk>,
    stop: watch::Receiver<Interrupts>,
    books: Books,
    pacer: Pacer,
    /// Messages waiting to go as one MPUB (with `--batch N`).
    group: Group,
    /// The publishes of earlier chunks of input, awaited as groups.
    answers: FuturesUnordered<Outcomes>,
    /// The publishes of the chunk being handed over.
    current: Outcomes,
    /// A publish could not be queued because no nsqd came up before its deadline (its error):
    /// until one is up again, messages are not sent but entered as not stored at once, with
    /// that error.
    no_node: Option<String>,
}

impl<'a> Publisher<'a> {
    /// A publisher of what `input` yields, stopped by the interrupts counted in `stop`.
    pub(crate) fn new(
        job: Job<'a>,
        input: mpsc::Receiver<Chunk>,
        stop: watch::Receiver<Interrupts>,
        books: Books,
    ) -> Self {
        let pacer = Pacer::new(job.rate);
        Self {
            job,
            input,
            stop,
            books,
            pacer,
            group: Group::default(),
            answers: FuturesUnordered::new(),
            current: Outcomes::default(),
            no_node: None,
        }
    }

    /// Publishes everything the input yields until it ends or an interrupt, then closes the
    /// pool and collects every outcome (a second interrupt closes it without waiting). Returns
    /// how the run ended and the books, every message taken from the input entered.
    pub(crate) async fn run(mut self) -> (End, Books) {
        let mut end = self.publish_input().await;
        if end != End::Interrupted && self.send_group().await.is_err() {
            end = End::Interrupted;
        }
        for msg in std::mem::take(&mut self.group.msgs) {
            self.books.interrupted(&msg);
        }
        if end == End::Interrupted {
            self.drop_read_ahead();
        }
        self.close().await;
        (end, self.books)
    }

    /// Publishes chunk after chunk until the input ends, fails, or an interrupt comes.
    async fn publish_input(&mut self) -> End {
        loop {
            // Nothing more is ready: a partial MPUB group goes now rather than wait for input
            // that may be slow to come.
            if self.input.is_empty() && self.send_group().await.is_err() {
                return End::Interrupted;
            }
            self.seal();
            let chunk = tokio::select! {
                biased;
                Ok(_) = self.stop.wait_for(|i| i.count >= 1) => return End::Interrupted,
                Some(outcomes) = self.answers.next(), if !self.answers.is_empty() => {
                    self.books.outcomes(outcomes);
                    continue;
                }
                chunk = self.input.recv() => chunk,
            };
            match chunk {
                None => return End::Complete,
                Some(Chunk::Failed { source, error }) => {
                    let name = self
                        .job
                        .names
                        .get(source as usize)
                        .map_or("input", String::as_str);
                    Printer.line(format_args!("nsq-pub: error: reading {name}: {error}"));
                    return End::InputFailed;
                }
                Some(Chunk::Messages { msgs, skipped }) => {
                    self.books.taken(&msgs, skipped);
                    if self.publish_chunk(msgs).await.is_err() {
                        return End::Interrupted;
                    }
                }
            }
            self.seal();
            self.enter_ready();
        }
    }

    /// Publishes a chunk's messages; when interrupted, the rest are entered as not published.
    async fn publish_chunk(&mut self, msgs: Vec<Msg>) -> Result<(), Interrupted> {
        // While too few nsqd are up (a publish waited its whole deadline for them), messages
        // are not sent; whether they are back is looked at once a chunk.
        if self.no_node.is_some()
            && self.job.pool.nodes().iter().filter(|n| n.up).count() >= self.job.copies as usize
        {
            self.no_node = None;
        }
        let mut msgs = msgs.into_iter();
        while let Some(msg) = msgs.next() {
            if let Err(interrupted) = self.publish(msg).await {
                for msg in msgs {
                    self.books.interrupted(&msg);
                }
                return Err(interrupted);
            }
        }
        Ok(())
    }

    /// Publishes one message, or keeps it in the MPUB group. The message is entered in the
    /// books (or kept in the group) whatever happens.
    async fn publish(&mut self, msg: Msg) -> Result<(), Interrupted> {
        if let Some(error) = &self.no_node {
            self.books.unsent(NO_NODE_UP, error, &msg);
            return Ok(());
        }
        if let Err(interrupted) = self.pace().await {
            self.books.interrupted(&msg);
            return Err(interrupted);
        }
        match self.job.batch {
            Batch::Auto | Batch::Size(1) => self.publish_one(msg).await,
            Batch::Size(n) => self.add_to_group(n, msg).await,
        }
    }

    /// Waits until the rate allows one more message; sends a partial MPUB group first rather
    /// than hold it while waiting.
    async fn pace(&mut self) -> Result<(), Interrupted> {
        let Some(at) = self.pacer.next() else {
            return Ok(());
        };
        if Instant::now() >= at {
            return Ok(());
        }
        self.send_group().await?;
        // What was handed over is collected while this waits.
        self.seal();
        tokio::select! {
            biased;
            Ok(_) = self.stop.wait_for(|i| i.count >= 1) => Err(Interrupted),
            () = tokio::time::sleep_until(at) => Ok(()),
        }
    }

    /// Hands one message to the pool. When interrupted while waiting for room, the message is
    /// entered as not published.
    async fn publish_one(&mut self, msg: Msg) -> Result<(), Interrupted> {
        let queued = tokio::select! {
            biased;
            queued = self.job.pool.publish_async(&self.job.topic, msg.body.clone()) => queued,
            Ok(_) = self.stop.wait_for(|i| i.count >= 1) => {
                self.books.interrupted(&msg);
                return Err(Interrupted);
            }
        };
        match queued {
            Ok(handle) => self.current.push(handle, Msgs::One(msg)),
            Err(error) => {
                self.books.failed(&error, &msg);
                self.note_no_node(&error);
            }
        }
        Ok(())
    }

    /// Adds a message to the MPUB group, sending the group when it is full. When interrupted,
    /// the message is in the group, which is left unsent.
    async fn add_to_group(&mut self, size: usize, msg: Msg) -> Result<(), Interrupted> {
        let len = msg.body.len() as u64;
        if len > self.job.max_msg_size {
            // Refused here, alone, so that it does not take its group down with it.
            let error = PublishError::Invalid(InvalidPublish::MessageTooLarge {
                index: None,
                size: len,
                max: self.job.max_msg_size,
            });
            self.books.failed(&error, &msg);
            return Ok(());
        }
        let sent = if self.group.fits(len, self.job.max_body_size) {
            Ok(())
        } else {
            self.send_group().await
        };
        self.group.push(msg);
        sent?;
        if self.group.msgs.len() >= size {
            return self.send_group().await;
        }
        Ok(())
    }

    /// Sends the MPUB group, if any. When interrupted while waiting for room, the messages are
    /// back in the group, unsent.
    async fn send_group(&mut self) -> Result<(), Interrupted> {
        if self.group.msgs.is_empty() {
            return Ok(());
        }
        let msgs = std::mem::take(&mut self.group.msgs);
        let bodies: Vec<Bytes> = msgs.iter().map(|m| m.body.clone()).collect();
        let queued = tokio::select! {
            biased;
            queued = self.job.pool.multi_publish_async(&self.job.topic, bodies) => queued,
            Ok(_) = self.stop.wait_for(|i| i.count >= 1) => {
                self.group.msgs = msgs;
                return Err(Interrupted);
            }
        };
        match queued {
            Ok(handle) => self.current.push(handle, Msgs::Many(msgs)),
            Err(error) => {
                self.note_no_node(&error);
                self.books.outcome(Err(error), &Msgs::Many(msgs));
            }
        }
        Ok(())
    }

    /// After a publish that failed because no nsqd (or too few for its copies) was up until
    /// its deadline, messages are not sent until enough are up again.
    fn note_no_node(&mut self, error: &PublishError) {
        let no_node_up = matches!(
            error,
            PublishError::NotSent(NotSentReason::NoNodeUp(_) | NotSentReason::TooFewNodesUp(_))
        );
        if no_node_up && self.no_node.is_none() {
            self.no_node = Some(error.to_string());
        }
    }

    /// Starts collecting the publishes of the current chunk as one group.
    fn seal(&mut self) {
        if !self.current.is_empty() {
            self.answers.push(std::mem::take(&mut self.current));
        }
    }

    /// Enters the groups already answered, without waiting.
    fn enter_ready(&mut self) {
        while let Some(Some(outcomes)) = self.answers.next().now_or_never() {
            self.books.outcomes(outcomes);
        }
    }

    /// After an interrupt: what was read ahead was not handed over, so it is entered as not
    /// published (it belongs in the failed-out file).
    fn drop_read_ahead(&mut self) {
        self.input.close();
        while let Ok(chunk) = self.input.try_recv() {
            if let Chunk::Messages { msgs, skipped } = chunk {
                self.books.taken(&msgs, skipped);
                for msg in &msgs {
                    self.books.interrupted(msg);
                }
            }
        }
    }

    /// Closes the pool while collecting the last outcomes: it waits for what is queued and
    /// written, within its close timeout; a second interrupt ends those at once.
    async fn close(&mut self) {
        self.seal();
        let Self {
            job,
            stop,
            answers,
            books,
            ..
        } = self;
        let closing = async {
            tokio::select! {
                biased;
                _ = job.pool.close() => {}
                Ok(_) = stop.wait_for(|i| i.count >= 2) => {
                    job.pool.close_now().await;
                }
            }
        };
        let collecting = async {
            while let Some(outcomes) = answers.next().await {
                books.outcomes(outcomes);
            }
        };
        tokio::join!(closing, collecting);
    }
}

/// Messages waiting to go as one MPUB.
#[derive(Default)]
struct Group {
    msgs: Vec<Msg>,
    /// The MPUB body's size so far: the count, and each message with its size.
    body: u64,
}

impl Group {
    /// Whether a message of `len` bytes fits in an MPUB body of at most `max` bytes with the
    /// group's messages (it always does in an empty group).
    fn fits(&self, len: u64, max: u64) -> bool {
        self.msgs.is_empty() || self.body + 4 + len <= max
    }

    fn push(&mut self, msg: Msg) {
        if self.msgs.is_empty() {
            self.body = 4;
        }
        self.body += 4 + msg.body.len() as u64;
        self.msgs.push(msg);
    }
}
