//! The final report, for people (standard error) and machines (`--report-json`), and the exit
//! status it implies.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::console::{bytes, count};
use crate::tally::{End, INTERRUPTED, NO_NODE_UP, Tally};

/// Distinct errors listed in the text report; the others are summed on one line.
const SHOWN_ERRORS: usize = 10;

/// Every message acknowledged.
pub(crate) const EXIT_OK: u8 = 0;
/// Some messages certainly not stored, none unknown.
pub(crate) const EXIT_NOT_STORED: u8 = 1;
/// Bad flags, topic or producer option; nothing published.
pub(crate) const EXIT_USAGE: u8 = 2;
/// The fate of some messages is unknown.
pub(crate) const EXIT_UNKNOWN: u8 = 3;
/// No nsqd reachable, or an input that cannot be opened; nothing published.
pub(crate) const EXIT_CANNOT_START: u8 = 4;
/// Interrupted (SIGINT, SIGTERM, SIGHUP): what was read and not published is in
/// `--failed-out`; nothing was refused and nothing is unknown.
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// The version of the report's JSON layout: a field is only ever added, and a change to an
/// existing one comes with a new version.
pub(crate) const SCHEMA: u32 = 1;

/// What a run did. Every field is always present (`null` when it does not apply), and the
/// counts add up: `read = acknowledged + not_stored + unknown`, the values of
/// `not_stored_by` sum to `not_stored`, and those of `errors` to `not_stored + unknown`.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) schema: u32,
    pub(crate) topic: String,
    /// Messages taken from the input: `acknowledged + not_stored + unknown`.
    pub(crate) read: u64,
    pub(crate) skipped_empty: u64,
    pub(crate) acknowledged: u64,
    /// Certainly not stored: the messages of `--failed-out`.
    pub(crate) not_stored: u64,
    /// `not_stored` by reason: nsqd's error code, `too_large`, `no_node_up`, `interrupted`
    /// (read but not published when the run was interrupted), ...
    pub(crate) not_stored_by: BTreeMap<String, u64>,
    /// Maybe stored: the messages of `--unknown-out`.
    pub(crate) unknown: u64,
    /// Each distinct error and how many messages it ended.
    pub(crate) errors: BTreeMap<String, u64>,
    /// Copies nsqd acknowledged, counted on every nsqd: `acknowledged` times the copies with
    /// fan-out (the producer's `acked_messages`), what the topic's depths summed over the nsqd
    /// grew by. `null` when no nsqd was connected.
    pub(crate) copies_acknowledged: Option<u64>,
    /// Bytes of the acknowledged messages.
    pub(crate) bytes: u64,
    pub(crate) elapsed_s: f64,
    /// Acknowledged messages per second.
    pub(crate) rate: f64,
    pub(crate) interrupted: bool,
    /// The signal that interrupted the run (`SIGINT`, `SIGTERM`, `SIGHUP`).
    pub(crate) signal: Option<&'static str>,
    /// Reading the input failed part way.
    pub(crate) input_failed: bool,
    /// After an interruption or a read error: the last record taken from the input, as
    /// `source:record`. Every record up to it was acknowledged or is in an out file; to finish,
    /// feed `--failed-out`, then the input after this record.
    pub(crate) stopped_after: Option<String>,
    /// For `--generate`: what nsqd counted (`null` when it could not be asked).
    pub(crate) verified: Option<Verified>,
    pub(crate) exit_code: u8,
}

/// nsqd's own count of the messages a generated run added to the topic.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Verified {
    /// Messages the topic gained on every nsqd, summed.
    pub(crate) counted: u64,
    /// Whether that matches: at least the acknowledged copies, at most those plus the unknown.
    pub(crate) matches: bool,
}

impl Report {
    /// The report of a run that took `elapsed`; `signal` is what interrupted it.
    pub(crate) fn new(
        topic: &str,
        tally: &Tally,
        end: End,
        signal: Option<&'static str>,
        elapsed: Duration,
    ) -> Self {
        let acknowledged = tally.acknowledged();
        let not_stored = tally.not_stored();
        let unknown = tally.unknown();
        let interrupted = end == End::Interrupted;
        let not_published = tally.not_stored_by().get(INTERRUPTED).copied().unwrap_or(0);
        let exit_code = if unknown > 0 {
            EXIT_UNKNOWN
        } else if not_stored > not_published || end == End::InputFailed {
            EXIT_NOT_STORED
        } else if interrupted {
            EXIT_INTERRUPTED
        } else {
            EXIT_OK
        };
        let secs = elapsed.as_secs_f64();
        Self {
            schema: SCHEMA,
            topic: topic.to_owned(),
            read: acknowledged + not_stored + unknown,
            skipped_empty: tally.skipped_empty(),
            acknowledged,
            not_stored,
            not_stored_by: tally.not_stored_by().clone(),
            unknown,
            errors: tally.errors().clone(),
            copies_acknowledged: None,
            bytes: tally.bytes(),
            elapsed_s: secs,
            rate: if secs > 0.0 {
                acknowledged as f64 / secs
            } else {
                0.0
            },
            interrupted,
            signal: signal.filter(|_| interrupted),
            input_failed: end == End::InputFailed,
            stopped_after: (end != End::Complete).then(|| tally.last_taken()).flatten(),
            verified: None,
            exit_code,
        }
    }

    /// Records nsqd's count; a mismatch makes the run fail (a count that could not be taken
    /// is left out, with a warning printed where it failed).
    pub(crate) fn verify(&mut self, verified: Verified) {
        if !verified.matches && self.exit_code == EXIT_OK {
            self.exit_code = EXIT_NOT_STORED;
        }
        self.verified = Some(verified);
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.interrupted {
            "interrupted"
        } else if self.input_failed {
            "input failed"
        } else {
            "done"
        };
        writeln!(
            f,
            "nsq-pub: {state}: topic {} in {:.2} s",
            self.topic, self.elapsed_s
        )?;
        writeln!(
            f,
            "  acknowledged  {:>12}  {}, {} msgs/s",
            count(self.acknowledged),
            bytes(self.bytes),
            count(self.rate as u64)
        )?;
        writeln!(
            f,
            "  not stored    {:>12}  certainly not stored, safe to send again",
            count(self.not_stored)
        )?;
        for (reason, n) in &self.not_stored_by {
            let what = match reason.as_str() {
                INTERRUPTED => "  not published: read ahead when interrupted",
                NO_NODE_UP => "  not sent: no nsqd was up",
                _ => "",
            };
            writeln!(f, "    {reason:<14}{:>10}{what}", count(*n))?;
        }
        writeln!(
            f,
            "  unknown       {:>12}  maybe stored: sending again may duplicate",
            count(self.unknown)
        )?;
        writeln!(
            f,
            "  read          {:>12}  ({} empty skipped)",
            count(self.read),
            count(self.skipped_empty)
        )?;
        if let Some(place) = &self.stopped_after {
            writeln!(
                f,
                "  stopped after {place}: to finish, publish what --failed-out holds, then the \
                 records after it"
            )?;
        }
        if !self.errors.is_empty() {
            writeln!(f, "  errors:")?;
            let mut errors: Vec<_> = self.errors.iter().collect();
            errors.sort_by(|a, b| b.1.cmp(a.1));
            for (error, n) in errors.iter().take(SHOWN_ERRORS) {
                writeln!(f, "    {:>10} x {error}", count(**n))?;
            }
            if errors.len() > SHOWN_ERRORS {
                let rest: u64 = errors[SHOWN_ERRORS..].iter().map(|(_, n)| **n).sum();
                writeln!(
                    f,
                    "    {:>10} x {} other errors (see --report-json)",
                    count(rest),
                    errors.len() - SHOWN_ERRORS
                )?;
            }
        }
        if let Some(v) = &self.verified {
            let verdict = if v.matches {
                "matches"
            } else {
                "DOES NOT MATCH"
            };
            writeln!(
                f,
                "  nsqd counted  {:>12}  new messages on the topic: {verdict}",
                count(v.counted)
            )?;
        }
        write!(f, "  exit status {}", self.exit_code)
    }
}
