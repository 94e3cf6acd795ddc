//! What became of each message: counted, and the ones not acknowledged written to the out
//! files.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use nsq_producer::{Delivery, InvalidPublish, NotSentReason, PublishError};

use crate::input::Msg;
use crate::outfile::OutFile;
use crate::progress::Printer;

/// Error lines printed for each kind of failure before the rest are only counted.
const SHOWN_PER_KIND: u64 = 20;

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

/// The counts and the out files.
pub(crate) struct Tally {
    pub(crate) counters: Arc<Counters>,
    /// Messages not stored, by reason: nsqd's error code, `too_large` for those refused
    /// locally over the size limit, `no_node_up` for those not sent while no nsqd was up,
    /// `interrupted` for those read but not published when the run was interrupted, and so on.
    /// The counts sum to `not_stored`.
    pub(crate) not_stored_by: BTreeMap<String, u64>,
    /// Each distinct error, with how many messages it ended: the counts sum to `not_stored`
    /// and `unknown`.
    pub(crate) errors: BTreeMap<String, u64>,
    failed_out: Option<OutFile>,
    unknown_out: Option<OutFile>,
    delimiter: u8,
    names: Vec<String>,
    /// Printed error lines, by kind.
    shown: BTreeMap<&'static str, u64>,
    /// The last message taken from the input: every record up to it is accounted for.
    last_taken: Option<(u32, u64)>,
    /// Where error lines go.
    pub(crate) printer: Printer,
}

/// The reason (in `not_stored_by`) of messages read but not published because the run was
/// interrupted.
pub(crate) const INTERRUPTED: &str = "interrupted";

impl Tally {
    /// A tally writing to the out files given (each started as a temporary file, put in place by
    /// [`finish`](Self::finish)).
    ///
    /// # Errors
    ///
    /// An out file that cannot be created, with its path.
    pub(crate) fn new(
        failed_out: Option<&Path>,
        unknown_out: Option<&Path>,
        delimiter: u8,
        names: Vec<String>,
    ) -> Result<Self, (PathBuf, io::Error)> {
        Ok(Self {
            counters: Arc::default(),
            not_stored_by: BTreeMap::new(),
            errors: BTreeMap::new(),
            failed_out: failed_out.map(OutFile::create).transpose()?,
            unknown_out: unknown_out.map(OutFile::create).transpose()?,
            delimiter,
            names,
            shown: BTreeMap::new(),
            last_taken: None,
            printer: Printer,
        })
    }

    /// Records one publish's outcome for each of its messages.
    pub(crate) fn outcome(&mut self, result: Result<(), PublishError>, msgs: Msgs) {
        match result {
            Ok(()) => {
                let (count, bytes) = match &msgs {
                    Msgs::One(msg) => (1, msg.body.len() as u64),
                    Msgs::Many(msgs) => (
                        msgs.len() as u64,
                        msgs.iter().map(|m| m.body.len() as u64).sum(),
                    ),
                };
                self.counters.acknowledged.fetch_add(count, Relaxed);
                self.counters.bytes.fetch_add(bytes, Relaxed);
            }
            Err(error) => match msgs {
                Msgs::One(msg) => self.failed(&error, &msg),
                Msgs::Many(msgs) => {
                    for msg in &msgs {
                        self.failed(&error, msg);
                    }
                }
            },
        }
    }

    /// Records a message that ended with `error`.
    pub(crate) fn failed(&mut self, error: &PublishError, msg: &Msg) {
        *self.errors.entry(error.to_string()).or_default() += 1;
        match error.delivery() {
            Delivery::Unknown => {
                self.counters.unknown.fetch_add(1, Relaxed);
                write_out(&mut self.unknown_out, &msg.body, self.delimiter);
            }
            Delivery::NotStored => {
                if let PublishError::Invalid(InvalidPublish::MessageTooLarge {
                    size, max, ..
                }) = error
                {
                    self.show(
                        "too_large",
                        format_args!(
                            "{}: message of {size} bytes is over the limit of {max} bytes; \
                             not sent",
                            self.place(msg)
                        ),
                    );
                }
                self.not_stored(&not_stored_reason(error), msg);
            }
        }
    }

    /// Notes messages taken from the input (in input order).
    pub(crate) fn taken(&mut self, msgs: &[Msg]) {
        if let Some(last) = msgs.last() {
            self.last_taken = Some((last.source, last.record));
        }
    }

    /// Where the input was left: the place of the last message taken from it.
    pub(crate) fn last_taken(&self) -> Option<String> {
        let (source, record) = self.last_taken?;
        let name = self
            .names
            .get(source as usize)
            .map_or("input", String::as_str);
        Some(format!("{name}:{record}"))
    }

    /// Records a message read but not sent, for `reason` (a `not_stored_by` key), with `error`
    /// (an `errors` key).
    pub(crate) fn unsent(&mut self, reason: &str, error: &str, msg: &Msg) {
        match self.errors.get_mut(error) {
            Some(n) => *n += 1,
            None => {
                self.errors.insert(error.to_owned(), 1);
            }
        }
        self.not_stored(reason, msg);
    }

    /// Records a message read but not published because the run was interrupted.
    pub(crate) fn interrupted(&mut self, msg: &Msg) {
        self.unsent(
            INTERRUPTED,
            "not published: the run was interrupted first",
            msg,
        );
    }

    fn not_stored(&mut self, reason: &str, msg: &Msg) {
        match self.not_stored_by.get_mut(reason) {
            Some(n) => *n += 1,
            None => {
                self.not_stored_by.insert(reason.to_owned(), 1);
            }
        }
        self.counters.not_stored.fetch_add(1, Relaxed);
        write_out(&mut self.failed_out, &msg.body, self.delimiter);
    }

    /// Where a message came from, as `source:record`.
    pub(crate) fn place(&self, msg: &Msg) -> String {
        let name = self
            .names
            .get(msg.source as usize)
            .map_or("input", String::as_str);
        format!("{name}:{}", msg.record)
    }

    /// Prints an error line, unless many of its kind were printed already.
    fn show(&mut self, kind: &'static str, line: std::fmt::Arguments<'_>) {
        let shown = self.shown.entry(kind).or_default();
        *shown += 1;
        if *shown <= SHOWN_PER_KIND {
            self.printer.line(format_args!("nsq-pub: {line}"));
        } else if *shown == SHOWN_PER_KIND + 1 {
            self.printer.line(format_args!(
                "nsq-pub: more of these are counted in the report, not shown"
            ));
        }
    }

    /// Puts the out files in place.
    ///
    /// # Errors
    ///
    /// Each out file that could not be written, with its path.
    pub(crate) fn finish(&mut self) -> Vec<(PathBuf, io::Error)> {
        [self.failed_out.take(), self.unknown_out.take()]
            .into_iter()
            .flatten()
            .filter_map(|out| out.commit().err())
            .collect()
    }
}

/// The `not_stored_by` key of a message certainly not stored because of `error`.
fn not_stored_reason(error: &PublishError) -> String {
    match error {
        PublishError::Rejected { error, .. } => error.code().as_str().to_owned(),
        PublishError::Invalid(InvalidPublish::MessageTooLarge { .. }) => "too_large".to_owned(),
        PublishError::Invalid(_) | PublishError::InvalidTopic(_) => "invalid".to_owned(),
        PublishError::NotSent(NotSentReason::NoNodeUp(_) | NotSentReason::TooFewNodesUp(_)) => {
            NO_NODE_UP.to_owned()
        }
        PublishError::NotSent(_) => "not_sent".to_owned(),
        PublishError::Copies(_) => "fan_out".to_owned(),
        _ => "other".to_owned(),
    }
}

/// The reason of messages not sent because no nsqd was up.
pub(crate) const NO_NODE_UP: &str = "no_node_up";

/// The messages of one publish.
#[derive(Debug)]
pub(crate) enum Msgs {
    One(Msg),
    Many(Vec<Msg>),
}

fn write_out(out: &mut Option<OutFile>, body: &[u8], delimiter: u8) {
    if let Some(out) = out {
        out.write(&[body, &[delimiter]]);
    }
}
