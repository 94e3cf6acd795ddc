//! `nsq-tail`: prints the messages of NSQ topics on standard output, as nsq's `nsq_tail` does,
//! finishing each only once it is written, with an exact `-n` and a JSON-lines framing.
//!
//! `nsq-tail --help` lists the flags, the framing and the exit statuses; the crate's README
//! has the same.

#![forbid(unsafe_code)]

mod args;
// Shared with nsq-pub: the log's output goes through its printer.
#[allow(dead_code)]
#[path = "../../console.rs"]
mod console;
#[path = "../../goflags.rs"]
mod goflags;
#[path = "../../logs.rs"]
mod logs;
mod opts;
mod output;
mod setup;
mod signals;
mod tail;

use std::process::ExitCode;

use crate::args::Args;
use crate::output::Framer;
use crate::tail::{End, Outcome, Tail};

/// Exit statuses.
const EXIT_OUTPUT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_CANNOT_START: u8 = 4;
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let args = Args::parse_go_style();
    if args.version {
        println!("nsq-tail v{}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let plan = match setup::Plan::new(&args) {
        Ok(plan) => plan,
        Err(message) => {
            eprintln!("nsq-tail: error: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    logs::init(args.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("nsq-tail: error: starting the runtime: {e}");
            return ExitCode::from(EXIT_CANNOT_START);
        }
    };
    let code = runtime.block_on(tail(&args, plan));
    runtime.shutdown_background();
    ExitCode::from(code)
}

/// Subscribes, reads, drains; returns the exit status.
async fn tail(args: &Args, plan: setup::Plan) -> u8 {
    let stop = match signals::listen() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("nsq-tail: error: installing the signal handlers: {e}");
            return EXIT_CANNOT_START;
        }
    };
    let consumers = match plan.connect().await {
        Ok(consumers) => consumers,
        Err(message) => {
            eprintln!("nsq-tail: error: {message}");
            return EXIT_CANNOT_START;
        }
    };
    let framer = Framer::new(args.output, args.print_topic, std::io::stdout());
    let outcome = Tail::new(consumers, framer, args.limit(), plan.config.max_in_flight)
        .run(stop)
        .await;
    conclude(&outcome)
}

/// Says what needs saying on standard error; returns the exit status.
fn conclude(outcome: &Outcome) -> u8 {
    if outcome.unfinished > 0 {
        eprintln!(
            "nsq-tail: warning: {} messages were printed but could not be finished ({}); nsqd \
             delivers them again after its msg_timeout",
            outcome.unfinished,
            outcome
                .first_unfinished
                .as_deref()
                .unwrap_or("connection closed")
        );
    }
    tracing::info!("{} messages printed and finished", outcome.shown);
    for (topic, report) in &outcome.drained {
        tracing::info!(topic = topic.as_str(), "drained: {report}");
    }
    match &outcome.end {
        End::Limit | End::OutputClosed => 0,
        End::Interrupted(signal) => {
            tracing::info!("stopped by {signal}");
            EXIT_INTERRUPTED
        }
        End::OutputFailed(e) => {
            eprintln!("nsq-tail: error: writing standard output: {e}");
            EXIT_OUTPUT_FAILED
        }
        End::ConsumersEnded => {
            eprintln!("nsq-tail: error: every consumer stopped");
            EXIT_OUTPUT_FAILED
        }
    }
}
