//! Standard error, shared by everything nsq-pub prints while it runs: lines printed around the
//! live progress line, error lines of one kind shown up to a limit, and numbers as people read
//! them.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Mutex, PoisonError};

use indicatif::ProgressBar;

/// Error lines printed for each kind of failure before the rest are only counted.
const SHOWN_PER_KIND: u64 = 20;

/// The live progress line, while there is one: what [`Printer`] takes down to print.
static LIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Makes `bar` the live line that [`Printer`] takes down while it prints.
pub(crate) fn show_live(bar: ProgressBar) {
    *LIVE.lock().unwrap_or_else(PoisonError::into_inner) = Some(bar);
}

/// Forgets the live line (it is being cleared).
pub(crate) fn clear_live() {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner).take();
}

/// Prints lines on standard error without tearing the live progress line: the line is taken
/// down, the text printed, and the line drawn again. Error lines, interrupt notices and the
/// producer's log all go through it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Printer;

impl Printer {
    /// Prints `text` as a line of its own on standard error.
    pub(crate) fn line(&self, text: std::fmt::Arguments<'_>) {
        self.bytes(format!("{text}\n").as_bytes());
    }

    /// Writes `bytes` (whole lines) to standard error.
    pub(crate) fn bytes(&self, bytes: &[u8]) {
        // Through the test harness, which shows what a test printed only when it fails.
        if cfg!(test) {
            eprint!("{}", String::from_utf8_lossy(bytes));
            return;
        }
        let live = LIVE.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let write = || {
            let _ = std::io::stderr().lock().write_all(bytes);
        };
        match live {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}

/// Error lines about single messages, printed up to [`SHOWN_PER_KIND`] of each kind; the
/// report counts them all.
#[derive(Debug, Default)]
pub(crate) struct Notices {
    /// Printed lines, by kind.
    shown: BTreeMap<&'static str, u64>,
}

impl Notices {
    /// Prints `line`, unless many of its kind were printed already.
    pub(crate) fn show(&mut self, kind: &'static str, line: std::fmt::Arguments<'_>) {
        let shown = self.shown.entry(kind).or_default();
        *shown += 1;
        if *shown <= SHOWN_PER_KIND {
            Printer.line(format_args!("{}: {line}", env!("CARGO_BIN_NAME")));
        } else if *shown == SHOWN_PER_KIND + 1 {
            Printer.line(format_args!(
                "{}: more of these are counted in the report, not shown",
                env!("CARGO_BIN_NAME")
            ));
        }
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
