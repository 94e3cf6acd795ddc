//! Accounting: where each message taken from the input ended. Plain counts, with no printing
//! and no files; the progress display and the report read them.
//!
//! Every message ends in exactly one place: acknowledged, not stored (under one reason), or
//! unknown. Each message not acknowledged is also counted under one error text, so
//! `not_stored_by` sums to `not_stored` and `errors` to `not_stored + unknown`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use nsq_producer::{Delivery, InvalidPublish, NotSentReason, PublishError};

use crate::input::Msg;

/// The reason (in `not_stored_by`) of messages read but not published because the run was
/// interrupted.
pub(crate) const INTERRUPTED: &str = "interrupted";

/// The reason of messages not sent because no nsqd was up.
pub(crate) const NO_NODE_UP: &str = "no_node_up";

/// The reason of messages refused locally, over nsqd's size limit.
pub(crate) const TOO_LARGE: &str = "too_large";

/// The error text of messages read but not published because the run was interrupted.
const INTERRUPTED_ERROR: &str = "not published: the run was interrupted first";

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

/// Where a message not acknowledged ended: which out file holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Certainly not stored: `--failed-out`.
    NotStored,
    /// Maybe stored: `--unknown-out`.
    Unknown,
}

/// The running counts, read by the progress display while the publisher updates them.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Empty records skipped.
    pub(crate) skipped_empty: AtomicU64,
    /// Messages nsqd acknowledged.
    pub(crate) acknowledged: AtomicU64,
    /// Bytes of the acknowledged messages.
    pub(crate) bytes: AtomicU64,
    /// Messages certainly not stored.
    pub(crate) not_stored: AtomicU64,
    /// Messages whose fate is unknown.
    pub(crate) unknown: AtomicU64,
}

/// The counts of a run.
#[derive(Debug)]
pub(crate) struct Tally {
    counters: Arc<Counters>,
    /// Messages not stored, by reason: nsqd's error code, [`TOO_LARGE`], [`NO_NODE_UP`],
    /// [`INTERRUPTED`], and so on. The counts sum to `not_stored`.
    not_stored_by: BTreeMap<String, u64>,
    /// Each distinct error, with how many messages it ended: the counts sum to `not_stored`
    /// and `unknown`.
    errors: BTreeMap<String, u64>,
    /// The name of each source, for places.
    names: Vec<String>,
    /// The last message taken from the input: every record up to it is accounted for.
    last_taken: Option<(u32, u64)>,
}

impl Tally {
    /// An empty tally of the input whose sources are `names`.
    pub(crate) fn new(names: Vec<String>) -> Self {
        Self {
            counters: Arc::default(),
            not_stored_by: BTreeMap::new(),
            errors: BTreeMap::new(),
            names,
            last_taken: None,
        }
    }

    /// The running counts, for a display that reads them while the run goes on.
    pub(crate) fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Counts `n` empty records skipped.
    pub(crate) fn skipped(&mut self, n: u64) {
        self.counters.skipped_empty.fetch_add(n, Relaxed);
    }

    /// Notes messages taken from the input (in input order).
    pub(crate) fn taken(&mut self, msgs: &[Msg]) {
        if let Some(last) = msgs.last() {
            self.last_taken = Some((last.source, last.record));
        }
    }

    /// Counts `count` messages of `bytes` bytes acknowledged.
    pub(crate) fn acked(&mut self, count: u64, bytes: u64) {
        self.counters.acknowledged.fetch_add(count, Relaxed);
        self.counters.bytes.fetch_add(bytes, Relaxed);
    }

    /// Counts one message that ended with `error`; returns where it ended.
    pub(crate) fn failed(&mut self, error: &PublishError) -> Fate {
        add(&mut self.errors, &error.to_string());
        match error.delivery() {
            Delivery::Unknown => {
                self.counters.unknown.fetch_add(1, Relaxed);
                Fate::Unknown
            }
            Delivery::NotStored => {
                self.count_not_stored(not_stored_reason(error));
                Fate::NotStored
            }
        }
    }

    /// Counts one message read but not sent, for `reason` (a `not_stored_by` key), with
    /// `error` (an `errors` key). It ends not stored.
    pub(crate) fn unsent(&mut self, reason: &str, error: &str) -> Fate {
        add(&mut self.errors, error);
        self.count_not_stored(reason);
        Fate::NotStored
    }

    /// Counts one message read but not published because the run was interrupted.
    pub(crate) fn interrupted(&mut self) -> Fate {
        self.unsent(INTERRUPTED, INTERRUPTED_ERROR)
    }

    fn count_not_stored(&mut self, reason: &str) {
        add(&mut self.not_stored_by, reason);
        self.counters.not_stored.fetch_add(1, Relaxed);
    }

    /// Empty records skipped.
    pub(crate) fn skipped_empty(&self) -> u64 {
        self.counters.skipped_empty.load(Relaxed)
    }

    /// Messages acknowledged.
    pub(crate) fn acknowledged(&self) -> u64 {
        self.counters.acknowledged.load(Relaxed)
    }

    /// Bytes of the acknowledged messages.
    pub(crate) fn bytes(&self) -> u64 {
        self.counters.bytes.load(Relaxed)
    }

    /// Messages certainly not stored.
    pub(crate) fn not_stored(&self) -> u64 {
        self.counters.not_stored.load(Relaxed)
    }

    /// Messages whose fate is unknown.
    pub(crate) fn unknown(&self) -> u64 {
        self.counters.unknown.load(Relaxed)
    }

    /// Messages not stored, by reason.
    pub(crate) fn not_stored_by(&self) -> &BTreeMap<String, u64> {
        &self.not_stored_by
    }

    /// Messages not acknowledged, by error.
    pub(crate) fn errors(&self) -> &BTreeMap<String, u64> {
        &self.errors
    }

    /// Where the input was left: the place of the last message taken from it.
    pub(crate) fn last_taken(&self) -> Option<String> {
        let (source, record) = self.last_taken?;
        Some(self.place(source, record))
    }

    /// Where a message came from, as `source:record`.
    pub(crate) fn place_of(&self, msg: &Msg) -> String {
        self.place(msg.source, msg.record)
    }

    fn place(&self, source: u32, record: u64) -> String {
        let name = self
            .names
            .get(source as usize)
            .map_or("input", String::as_str);
        format!("{name}:{record}")
    }
}

fn add(counts: &mut BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            counts.insert(key.to_owned(), 1);
        }
    }
}

/// The `not_stored_by` key of a message certainly not stored because of `error`.
fn not_stored_reason(error: &PublishError) -> &str {
    match error {
        PublishError::Rejected { error, .. } => error.code().as_str(),
        PublishError::Invalid(InvalidPublish::MessageTooLarge { .. }) => TOO_LARGE,
        PublishError::Invalid(_) | PublishError::InvalidTopic(_) => "invalid",
        PublishError::NotSent(NotSentReason::NoNodeUp(_) | NotSentReason::TooFewNodesUp(_)) => {
            NO_NODE_UP
        }
        PublishError::NotSent(_) => "not_sent",
        PublishError::Copies(_) => "fan_out",
        _ => "other",
    }
}
