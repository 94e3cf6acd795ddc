//! What becomes of each message: counted in the tally and, when it is not acknowledged, written
//! to the out file of where it ended. The publisher hands every message here exactly once.

use std::io;
use std::path::{Path, PathBuf};

use nsq_producer::{InvalidPublish, PublishError};

use crate::console::Notices;
use crate::input::{Msg, Msgs};
use crate::outfile::OutFile;
use crate::tally::{Fate, TOO_LARGE, Tally};

/// The tally of a run, its out files, and the error lines about single messages.
pub(crate) struct Books {
    tally: Tally,
    failed_out: Option<OutFile>,
    unknown_out: Option<OutFile>,
    delimiter: u8,
    notices: Notices,
}

impl Books {
    /// Books writing to the out files given (each started as a temporary file, put in place by
    /// [`close`](Self::close)), for the input whose sources are `names`.
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
            tally: Tally::new(names),
            failed_out: failed_out.map(OutFile::create).transpose()?,
            unknown_out: unknown_out.map(OutFile::create).transpose()?,
            delimiter,
            notices: Notices::default(),
        })
    }

    /// The counts so far.
    pub(crate) fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Notes a chunk taken from the input: its messages (not yet published) and the empty
    /// records skipped before them.
    pub(crate) fn taken(&mut self, msgs: &[Msg], skipped: u64) {
        self.tally.skipped(skipped);
        self.tally.taken(msgs);
    }

    /// Records the outcomes of a group of publishes.
    pub(crate) fn outcomes(&mut self, outcomes: Vec<(Result<(), PublishError>, Msgs)>) {
        for (result, msgs) in outcomes {
            self.outcome(result, &msgs);
        }
    }

    /// Records one publish's outcome for each of its messages.
    pub(crate) fn outcome(&mut self, result: Result<(), PublishError>, msgs: &Msgs) {
        match result {
            Ok(()) => {
                let msgs = msgs.as_slice();
                let bytes = msgs.iter().map(|m| m.body.len() as u64).sum();
                self.tally.acked(msgs.len() as u64, bytes);
            }
            Err(error) => {
                for msg in msgs.as_slice() {
                    self.failed(&error, msg);
                }
            }
        }
    }

    /// Records a message that ended with `error`.
    pub(crate) fn failed(&mut self, error: &PublishError, msg: &Msg) {
        if let PublishError::Invalid(InvalidPublish::MessageTooLarge { size, max, .. }) = error {
            self.notices.show(
                TOO_LARGE,
                format_args!(
                    "{}: message of {size} bytes is over the limit of {max} bytes; not sent",
                    self.tally.place_of(msg)
                ),
            );
        }
        let fate = self.tally.failed(error);
        self.write_out(fate, msg);
    }

    /// Records a message read but not sent, for `reason` (a `not_stored_by` key), with `error`
    /// (an `errors` key).
    pub(crate) fn unsent(&mut self, reason: &str, error: &str, msg: &Msg) {
        let fate = self.tally.unsent(reason, error);
        self.write_out(fate, msg);
    }

    /// Records a message read but not published because the run was interrupted.
    pub(crate) fn interrupted(&mut self, msg: &Msg) {
        let fate = self.tally.interrupted();
        self.write_out(fate, msg);
    }

    fn write_out(&mut self, fate: Fate, msg: &Msg) {
        let out = match fate {
            Fate::NotStored => &mut self.failed_out,
            Fate::Unknown => &mut self.unknown_out,
        };
        if let Some(out) = out {
            out.write(&[&msg.body, &[self.delimiter]]);
        }
    }

    /// Puts the out files in place.
    ///
    /// # Errors
    ///
    /// Each out file that could not be written, with its path.
    pub(crate) fn close(self) -> Vec<(PathBuf, io::Error)> {
        [self.failed_out, self.unknown_out]
            .into_iter()
            .flatten()
            .filter_map(|out| out.commit().err())
            .collect()
    }
}
