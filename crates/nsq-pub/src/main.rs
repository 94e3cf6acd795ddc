//! `nsq-pub`: publishes the lines of standard input or of files to an NSQ topic, as nsq's
//! `to_nsq` does, pipelined and batched, with progress, a report of what was stored, and files
//! of what was not.
//!
//! `nsq-pub --help` lists the flags, examples and exit statuses; the crate's README shows a
//! session and the report.

#![forbid(unsafe_code)]

mod args;
mod collect;
mod input;
mod progress;
mod report;
mod run;
mod setup;
mod tally;
mod verify;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use clap::{CommandFactory, Parser};

use crate::args::Args;
use crate::report::{EXIT_CANNOT_START, EXIT_USAGE, Report};

fn main() -> ExitCode {
    let args = Args::parse();
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
    let (mut prepared, mut tally) = match setup::prepare(args, plan).await {
        Ok(prepared) => prepared,
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
    let progress = progress::Progress::start(
        tally.counters.clone(),
        total,
        read_bytes.clone(),
        args.quiet,
    );
    tally.printer = progress.printer();
    let stop = setup::interrupts(progress.printer());
    let mut stop_rx = stop.subscribe();
    let input = prepared
        .sources
        .take()
        .expect("sources")
        .spawn(args.delimiter, read_bytes);
    let end = run::publish_all(&prepared.job(), input, &mut tally, &mut stop_rx).await;
    progress.finish();
    let mut report = Report::new(&args.topic, &tally, end, started.elapsed());
    if let Some(counts) = prepared.counts_before.take() {
        if let Some(verified) = prepared.verify(counts, &report).await {
            report.verify(verified);
        }
    }
    if let Err((path, e)) = tally.finish() {
        eprintln!("nsq-pub: error: writing {}: {e}", path.display());
    }
    if !args.quiet {
        eprintln!("{report}");
    }
    if let Some(path) = &args.report_json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(path, json));
        if let Err(e) = written {
            eprintln!("nsq-pub: error: writing {}: {e}", path.display());
        }
    }
    drop(stop);
    report.exit_code
}
