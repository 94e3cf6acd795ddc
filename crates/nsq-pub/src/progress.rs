//! Progress while publishing: a live line on a terminal, a plain line every few seconds
//! otherwise (a log, a CI job), nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;

use crate::report::{bytes, count};
use crate::tally::Counters;

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

/// Prints lines on standard error without tearing the live progress line: the line is taken
/// down, the text printed, and the line drawn again.
#[derive(Debug, Clone, Default)]
pub(crate) struct Printer(Option<ProgressBar>);

impl Printer {
    /// Prints `text` as a line of its own on standard error.
    pub(crate) fn line(&self, text: std::fmt::Arguments<'_>) {
        match &self.0 {
            Some(bar) => bar.suspend(|| eprintln!("{text}")),
            None => eprintln!("{text}"),
        }
    }
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
                    ProgressStyle::with_template(
                        "{elapsed_precise} [{bar:20}] {percent:>3}% {eta:>3} left: {wide_msg}",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                ),
                Total::Unknown => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {elapsed_precise} {wide_msg}")
                        .expect("a valid template"),
                ),
            };
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
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
                    eprintln!("nsq-pub: {:.0} s: {line}", started.elapsed().as_secs_f64());
                }
            });
            Self {
                task: Some((task, None)),
            }
        }
    }

    /// A printer for lines shown while this display runs.
    pub(crate) fn printer(&self) -> Printer {
        Printer(self.task.as_ref().and_then(|(_, bar)| bar.clone()))
    }

    /// Stops the display and clears the live line.
    pub(crate) fn finish(self) {
        if let Some((task, bar)) = self.task {
            task.abort();
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
        write!(
            f,
            "{} acknowledged ({}, {}/s), {} not stored, {} unknown",
            count(self.acknowledged),
            bytes(self.bytes),
            count(self.rate as u64),
            count(self.failed),
            count(self.unknown),
        )
    }
}
