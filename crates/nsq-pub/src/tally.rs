//! What became of each message: counted, and the ones not acknowledged written to the out
//! files.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use nsq_producer::{Delivery, InvalidPublish, PublishError};

use crate::input::Msg;
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
    /// Messages not stored, by error code (`too_large` for those refused locally over the size
    /// limit, `interrupted` for those read but not sent when the run was interrupted).
    pub(crate) rejected: BTreeMap<String, u64>,
    /// Each distinct error, with how many messages it ended.
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

impl Tally {
    /// A tally writing to the out files given (created now, empty).
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
            rejected: BTreeMap::new(),
            errors: BTreeMap::new(),
            failed_out: failed_out.map(OutFile::create).transpose()?,
            unknown_out: unknown_out.map(OutFile::create).transpose()?,
            delimiter,
            names,
            shown: BTreeMap::new(),
            last_taken: None,
            printer: Printer::default(),
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
                let code = match error {
                    PublishError::Rejected { error, .. } => Some(error.code().as_str().to_owned()),
                    PublishError::Invalid(InvalidPublish::MessageTooLarge {
                        size, max, ..
                    }) => {
                        self.show(
                            "too_large",
                            format_args!(
                                "{}: message of {size} bytes is over the limit of {max} bytes; \
                                 not sent",
                                self.place(msg)
                            ),
                        );
                        Some("too_large".to_owned())
                    }
                    PublishError::Invalid(_) => Some("invalid".to_owned()),
                    _ => None,
                };
                if let Some(code) = code {
                    *self.rejected.entry(code).or_default() += 1;
                }
                self.not_stored(msg);
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

    /// Records a message read but not handed over because the run ended early, for `reason`.
    pub(crate) fn unsent(&mut self, reason: &str, msg: &Msg) {
        *self.rejected.entry(reason.to_owned()).or_default() += 1;
        self.not_stored(msg);
    }

    fn not_stored(&mut self, msg: &Msg) {
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

    /// Flushes the out files.
    ///
    /// # Errors
    ///
    /// The first out file that could not be written, with its path.
    pub(crate) fn finish(&mut self) -> Result<(), (PathBuf, io::Error)> {
        for out in [&mut self.failed_out, &mut self.unknown_out]
            .into_iter()
            .flatten()
        {
            out.finish()?;
        }
        Ok(())
    }
}

/// The messages of one publish.
#[derive(Debug)]
pub(crate) enum Msgs {
    One(Msg),
    Many(Vec<Msg>),
}

/// An out file; the first write error is kept and reported at the end.
struct OutFile {
    path: PathBuf,
    writer: BufWriter<File>,
    error: Option<io::Error>,
}

impl OutFile {
    fn create(path: &Path) -> Result<Self, (PathBuf, io::Error)> {
        let file = File::create(path).map_err(|e| (path.to_owned(), e))?;
        Ok(Self {
            path: path.to_owned(),
            writer: BufWriter::with_capacity(256 * 1024, file),
            error: None,
        })
    }

    fn finish(&mut self) -> Result<(), (PathBuf, io::Error)> {
        let flushed = self.writer.flush();
        match self.error.take().map_or(flushed, Err) {
            Ok(()) => Ok(()),
            Err(e) => Err((self.path.clone(), e)),
        }
    }
}

fn write_out(out: &mut Option<OutFile>, body: &[u8], delimiter: u8) {
    let Some(out) = out else { return };
    if out.error.is_some() {
        return;
    }
    let written = out
        .writer
        .write_all(body)
        .and_then(|()| out.writer.write_all(&[delimiter]));
    if let Err(e) = written {
        out.error = Some(e);
    }
}
