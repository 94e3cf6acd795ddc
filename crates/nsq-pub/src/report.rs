//! The final report, for people (standard error) and machines (`--report-json`), and the exit
//! status it implies.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde::Serialize;

use crate::run::End;
use crate::tally::Tally;

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
/// Interrupted, every message read acknowledged.
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// What a run did.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) topic: String,
    /// Messages taken from the input: `acknowledged + not_stored + unknown`.
    pub(crate) read: u64,
    pub(crate) skipped_empty: u64,
    pub(crate) acknowledged: u64,
    /// Certainly not stored: the messages of `--failed-out`.
    pub(crate) not_stored: u64,
    /// Maybe stored: the messages of `--unknown-out`.
    pub(crate) unknown: u64,
    /// The part of `not_stored` refused by nsqd or locally, by error code.
    pub(crate) rejected: BTreeMap<String, u64>,
    /// Bytes of the acknowledged messages.
    pub(crate) bytes: u64,
    pub(crate) elapsed_s: f64,
    /// Acknowledged messages per second.
    pub(crate) rate: f64,
    pub(crate) interrupted: bool,
    /// Reading the input failed part way.
    pub(crate) input_failed: bool,
    /// After an interruption or a read error: the last record taken from the input, as
    /// `source:record`. Every record up to it was acknowledged or is in an out file; to finish,
    /// feed `--failed-out`, then the input after this record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stopped_after: Option<String>,
    /// Each distinct error and how many messages it ended.
    pub(crate) errors: BTreeMap<String, u64>,
    /// For `--generate`: what nsqd counted (absent when it could not be asked).
    #[serde(skip_serializing_if = "Option::is_none")]
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
    /// The report of a run that took `elapsed`.
    pub(crate) fn new(topic: &str, tally: &Tally, end: End, elapsed: Duration) -> Self {
        let c = &tally.counters;
        let acknowledged = c.acknowledged.load(Relaxed);
        let not_stored = c.not_stored.load(Relaxed);
        let unknown = c.unknown.load(Relaxed);
        let interrupted = end == End::Interrupted;
        let exit_code = if unknown > 0 {
            EXIT_UNKNOWN
        } else if not_stored > 0 || end == End::InputFailed {
            EXIT_NOT_STORED
        } else if interrupted {
            EXIT_INTERRUPTED
        } else {
            EXIT_OK
        };
        let secs = elapsed.as_secs_f64();
        Self {
            topic: topic.to_owned(),
            read: acknowledged + not_stored + unknown,
            skipped_empty: c.skipped_empty.load(Relaxed),
            acknowledged,
            not_stored,
            unknown,
            rejected: tally.rejected.clone(),
            bytes: c.bytes.load(Relaxed),
            elapsed_s: secs,
            rate: if secs > 0.0 {
                acknowledged as f64 / secs
            } else {
                0.0
            },
            interrupted,
            input_failed: end == End::InputFailed,
            stopped_after: (end != End::Complete).then(|| tally.last_taken()).flatten(),
            errors: tally.errors.clone(),
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

/// Thousands separated by commas.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// Bytes in B, kB, MB or GB (powers of 1000).
pub(crate) fn bytes(n: u64) -> String {
    let n = n as f64;
    match n {
        n if n >= 1e9 => format!("{:.2} GB", n / 1e9),
        n if n >= 1e6 => format!("{:.1} MB", n / 1e6),
        n if n >= 1e3 => format!("{:.1} kB", n / 1e3),
        n => format!("{n} B"),
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
        for (code, n) in &self.rejected {
            writeln!(f, "    {code:<20}{:>8}", count(*n))?;
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
                "  stopped after {place}: the records after it were not read"
            )?;
        }
        if !self.errors.is_empty() {
            writeln!(f, "  errors:")?;
            let mut errors: Vec<_> = self.errors.iter().collect();
            errors.sort_by(|a, b| b.1.cmp(a.1));
            for (error, n) in errors.iter().take(10) {
                writeln!(f, "    {:>10} x {error}", count(**n))?;
            }
            if errors.len() > 10 {
                writeln!(
                    f,
                    "    ... {} more kinds (see --report-json)",
                    errors.len() - 10
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_sizes_read_easily() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1_500), "1.5 kB");
        assert_eq!(bytes(100_000_000), "100.0 MB");
    }
}
