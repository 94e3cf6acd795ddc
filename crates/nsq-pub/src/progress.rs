//! Progress while publishing: a live line on a terminal, a plain line every few seconds
//! otherwise (a log, a CI job), nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::console::{self, Printer, bytes, count};
use crate::tally::Counters;

/// The live line with a known total: what comes before the counts takes 33 columns, so that
/// the counts of messages not stored and unknown, which come first, fit in 80.
const BAR_TEMPLATE: &str = "{elapsed_precise} [{bar:12}] {percent:>3}% {eta:>3} {wide_msg}";

/// How often plain progress lines are printed.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// How much there is to do, when known.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Total {
    /// Generated messages.
    Messages(u64),
    /// Bytes of the input files.
    Bytes(u64),
    Unknown,
}

/// A running progress display; [`finish`](Self::finish) removes it.
pub(crate) struct Progress {
    task: Option<(JoinHandle<()>, Option<ProgressBar>)>,
}

impl Progress {
    /// Starts showing `counters` on standard error, unless `quiet`; with a known total, as a
    /// bar (of messages with an outcome, or of input bytes read) with the time left.
    pub(crate) fn start(
        counters: Arc<Counters>,
        total: Total,
        read_bytes: Arc<AtomicU64>,
        quiet: bool,
    ) -> Self {
        if quiet {
            return Self { task: None };
        }
        let started = Instant::now();
        if std::io::stderr().is_terminal() {
            let bar = match total {
                Total::Messages(n) | Total::Bytes(n) => ProgressBar::new(n).with_style(
                    ProgressStyle::with_template(BAR_TEMPLATE)
                        .expect("a valid template")
                        .progress_chars("=> "),
                ),
                Total::Unknown => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {elapsed_precise} {wide_msg}")
                        .expect("a valid template"),
                ),
            };
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            console::show_live(bar.clone());
            let shown = bar.clone();
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                loop {
                    tick.tick().await;
                    let line = Line::read(&counters, started);
                    let position = match total {
                        Total::Bytes(_) => read_bytes.load(Relaxed),
                        _ => line.done(),
                    };
                    shown.set_position(position);
                    shown.set_message(line.to_string());
                }
            });
            Self {
                task: Some((task, Some(bar))),
            }
        } else {
            let task = tokio::spawn(async move {
                let mut tick = tokio::time::interval(PLAIN_EVERY);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let line = Line::read(&counters, started);
                    Printer.line(format_args!(
                        "nsq-pub: {:.0} s: {line}",
                        started.elapsed().as_secs_f64()
                    ));
                }
            });
            Self {
                task: Some((task, None)),
            }
        }
    }

    /// Stops the display and clears the live line.
    pub(crate) fn finish(self) {
        if let Some((task, bar)) = self.task {
            task.abort();
            console::clear_live();
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        }
    }
}

/// One progress reading.
struct Line {
    acknowledged: u64,
    failed: u64,
    unknown: u64,
    bytes: u64,
    rate: f64,
}

impl Line {
    fn read(counters: &Counters, started: Instant) -> Self {
        let acknowledged = counters.acknowledged.load(Relaxed);
        let secs = started.elapsed().as_secs_f64();
        Self {
            acknowledged,
            failed: counters.not_stored.load(Relaxed),
            unknown: counters.unknown.load(Relaxed),
            bytes: counters.bytes.load(Relaxed),
            rate: if secs > 0.0 {
                acknowledged as f64 / secs
            } else {
                0.0
            },
        }
    }

    /// Messages with an outcome.
    fn done(&self) -> u64 {
        self.acknowledged + self.failed + self.unknown
    }
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // What went wrong first: a line cut to the terminal's width loses the end.
        write!(
            f,
            "{} not stored, {} unknown, {} acknowledged, {}/s, {}",
            count(self.failed),
            count(self.unknown),
            count(self.acknowledged),
            count(self.rate as u64),
            bytes(self.bytes),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At 80 columns, with counts in the millions, the bar's line still shows how many
    /// messages were not stored and how many are unknown.
    #[test]
    fn failure_counts_fit_in_80_columns() {
        let line = Line {
            acknowledged: 12_345_678,
            failed: 1_234_567,
            unknown: 7_654,
            bytes: 1_234_567_890,
            rate: 234_567.0,
        }
        .to_string();
        // What the template puts before the message: `00:01:02 [=====>      ]  37% 12s `.
        let before = "00:01:02 [=====>      ]  37% 12s ";
        let shown: String = format!("{before}{line}").chars().take(80).collect();
        assert!(
            shown.contains("1,234,567 not stored, 7,654 unknown"),
            "{shown}"
        );
    }
}
