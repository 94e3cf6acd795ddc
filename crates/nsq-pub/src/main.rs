//! `nsq-pub`: publishes the lines of standard input or of files to an NSQ topic, as nsq's
//! `to_nsq` does, pipelined and batched, with progress, a report of what was stored, and files
//! of what was not.
//!
//! `nsq-pub --help` lists the flags, examples and exit statuses; the crate's README shows a
//! session and the report.

#![forbid(unsafe_code)]

mod args;
mod books;
mod collect;
mod console;
mod goflags;
mod input;
mod logs;
mod outfile;
mod pacer;
mod progress;
mod publisher;
mod report;
mod setup;
mod signals;
mod tally;
mod verify;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use clap::CommandFactory;
use tokio::sync::{mpsc, watch};

use crate::args::Args;
use crate::books::Books;
use crate::console::Printer;
use crate::input::Chunk;
use crate::publisher::Publisher;
use crate::report::{EXIT_CANNOT_START, EXIT_USAGE, Report};
use crate::signals::Interrupts;
use crate::tally::End;

fn main() -> ExitCode {
    let args = Args::parse_go_style();
    if let Some(shell) = args.completions {
        clap_complete::generate(
            shell,
            &mut Args::command(),
            "nsq-pub",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    let plan = match setup::Plan::new(&args) {
        Ok(plan) => plan,
        Err(message) => {
            eprintln!("nsq-pub: error: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let outputs: Vec<(&str, &std::path::Path)> = [
        ("--failed-out", &args.failed_out),
        ("--unknown-out", &args.unknown_out),
        ("--report-json", &args.report_json),
    ]
    .into_iter()
    .filter_map(|(flag, path)| Some((flag, path.as_deref()?)))
    .collect();
    if let Err(message) = outfile::check(&args.files, &outputs) {
        eprintln!("nsq-pub: error: {message}");
        return ExitCode::from(EXIT_USAGE);
    }
    logs::init(args.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("nsq-pub: error: starting the runtime: {e}");
            return ExitCode::from(EXIT_CANNOT_START);
        }
    };
    let code = runtime.block_on(publish(&args, plan));
    // The input thread may be blocked on a read; it does not hold up the exit.
    runtime.shutdown_background();
    ExitCode::from(code)
}

/// Connects, publishes, reports; returns the exit status.
async fn publish(args: &Args, plan: setup::Plan) -> u8 {
    let started = Instant::now();
    // From here on an interrupt ends the run with a report instead of ending the process.
    let stop = match signals::listen() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("nsq-pub: error: installing the signal handlers: {e}");
            return EXIT_CANNOT_START;
        }
    };
    let mut stop_rx = stop.subscribe();
    let (sources, mut books) = match setup::open(args) {
        Ok(opened) => opened,
        Err(message) => {
            eprintln!("nsq-pub: error: {message}");
            return EXIT_CANNOT_START;
        }
    };
    let total = match args.generate {
        Some(n) => progress::Total::Messages(n),
        None => input::Sources::size(&args.files)
            .map_or(progress::Total::Unknown, progress::Total::Bytes),
    };
    let read_bytes = Arc::new(AtomicU64::new(0));
    let names = sources.names();
    let mut input = sources.spawn(args.delimiter, read_bytes.clone());
    let mut prepared = match setup::connect(args, plan, names).await {
        Ok(prepared) => prepared,
        Err(message) => {
            // As to_nsq, which connects for its first message: no message, no error.
            if nothing_to_publish(&mut input, &mut books, &mut stop_rx).await {
                Printer.line(format_args!(
                    "nsq-pub: warning: {message}; the input has nothing to publish"
                ));
                return conclude(args, books, End::Complete, &stop, started, None).await;
            }
            eprintln!("nsq-pub: error: {message}");
            return EXIT_CANNOT_START;
        }
    };
    let progress =
        progress::Progress::start(books.tally().counters(), total, read_bytes, args.quiet);
    let (end, books) = Publisher::new(prepared.job(), input, stop_rx, books)
        .run()
        .await;
    progress.finish();
    conclude(args, books, end, &stop, started, Some(&mut prepared)).await
}

/// Whether the input ends without a message (reading it up to its first message, or until an
/// interrupt).
async fn nothing_to_publish(
    input: &mut mpsc::Receiver<Chunk>,
    books: &mut Books,
    stop: &mut watch::Receiver<Interrupts>,
) -> bool {
    loop {
        let chunk = tokio::select! {
            biased;
            Ok(_) = stop.wait_for(|i| i.count >= 1) => return false,
            chunk = input.recv() => chunk,
        };
        match chunk {
            None => return true,
            Some(Chunk::Messages { msgs, skipped }) if msgs.is_empty() => {
                books.taken(&msgs, skipped);
            }
            Some(_) => return false,
        }
    }
}

/// Writes the report and puts the out files in place; returns the exit status.
async fn conclude(
    args: &Args,
    books: Books,
    end: End,
    stop: &watch::Sender<Interrupts>,
    started: Instant,
    prepared: Option<&mut setup::Prepared>,
) -> u8 {
    let signal = stop.borrow().signal;
    let mut report = Report::new(args.topic(), books.tally(), end, signal, started.elapsed());
    if let Some(prepared) = prepared {
        report.copies_acknowledged = Some(prepared.acked_messages());
        if let Some(counts) = prepared.counts_before.take() {
            if let Some(verified) = prepared.verify(counts, &report).await {
                report.verify(verified);
            }
        }
    }
    for (path, e) in books.close() {
        Printer.line(format_args!(
            "nsq-pub: error: writing {}: {e}",
            path.display()
        ));
    }
    if !args.quiet {
        Printer.line(format_args!("{report}"));
    }
    if let Some(path) = &args.report_json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| (path.clone(), std::io::Error::other(e)))
            .and_then(|json| outfile::write_whole(path, &json));
        if let Err((path, e)) = written {
            Printer.line(format_args!(
                "nsq-pub: error: writing {}: {e}",
                path.display()
            ));
        }
    }
    report.exit_code
}
