//! `nsq-to-nsq`: forwards the messages of NSQ topics to other nsqd, as nsq's `nsq_to_nsq`
//! does, finishing each source message only once a destination nsqd acknowledged it.
//!
//! `nsq-to-nsq --help` lists the flags, the guarantees and the exit statuses; the crate's
//! README shows the report.

#![forbid(unsafe_code)]

mod args;
#[path = "../../console.rs"]
#[allow(dead_code)]
mod console;
mod filter;
mod forward;
#[path = "../../goflags.rs"]
mod goflags;
#[path = "../../logs.rs"]
mod logs;
mod report;
#[path = "../../signals.rs"]
mod signals;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use nsq_consumer::Consumer;
use nsq_producer::{Pool, ProducerState};

use crate::args::{Args, Plan};
use crate::console::{Notices, Printer};
use crate::filter::Filter;
use crate::forward::{Forwarder, UnknownOut};
use crate::report::{Counters, EXIT_CANNOT_START, EXIT_USAGE, Report};

fn main() -> ExitCode {
    let args = Args::parse_go_style();
    let plan = match Plan::new(&args) {
        Ok(plan) => plan,
        Err(message) => {
            eprintln!("nsq-to-nsq: error: {message}");
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
            eprintln!("nsq-to-nsq: error: starting the runtime: {e}");
            return ExitCode::from(EXIT_CANNOT_START);
        }
    };
    let code = runtime.block_on(forward(&args, plan));
    runtime.shutdown_background();
    ExitCode::from(code)
}

/// Connects to both sides, forwards until interrupted, reports; returns the exit status.
async fn forward(args: &Args, plan: Plan) -> u8 {
    let started = Instant::now();
    let stop = match signals::listen() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("nsq-to-nsq: error: installing the signal handlers: {e}");
            return EXIT_CANNOT_START;
        }
    };
    let unknown_out = match args.unknown_out.clone().map(UnknownOut::create).transpose() {
        Ok(out) => out,
        Err(message) => {
            eprintln!("nsq-to-nsq: error: {message}");
            return EXIT_CANNOT_START;
        }
    };
    // The destination first: nothing is taken from the source before there is somewhere to
    // put it. A destination nsqd that is down is dialled again in the background.
    let pool = match Pool::connect(plan.destination.iter().cloned(), plan.pool).await {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("nsq-to-nsq: error: destination: {e}");
            return EXIT_CANNOT_START;
        }
    };
    let down: Vec<String> = pool
        .nodes()
        .into_iter()
        .filter(|n| n.state != ProducerState::Connected)
        .map(|n| n.addr)
        .collect();
    if !down.is_empty() {
        Printer.line(format_args!(
            "nsq-to-nsq: warning: not connected to destination nsqd at {}; forwarding to the \
             others",
            down.join(", ")
        ));
    }
    let mut consumers = Vec::with_capacity(plan.routes.len());
    for (topic, _) in &plan.routes {
        match connect_source(args, topic, &plan.consumer).await {
            Ok(consumer) => consumers.push(consumer),
            Err(message) => {
                eprintln!("nsq-to-nsq: error: source topic {topic:?}: {message}");
                for consumer in consumers {
                    consumer.drain().await;
                }
                pool.close().await;
                return EXIT_CANNOT_START;
            }
        }
    }
    let counters = Arc::new(Counters::default());
    let forwarder = Forwarder {
        pool,
        destinations: plan.routes.iter().map(|(_, to)| to.clone()).collect(),
        filter: Filter::new(
            args.require_json_field.as_deref(),
            args.require_json_value.as_deref(),
            &args.whitelist_json_field,
        ),
        counters: Arc::clone(&counters),
        unknown_out,
        status_every: if args.quiet { 0 } else { args.status_every },
        started,
        notices: Notices::default(),
    };
    let (drain, pool) = forwarder.run(consumers, stop.subscribe()).await;
    if counters.read().abandoned > 0 {
        // A second interrupt: no more waiting for the destination either.
        pool.close_now().await;
    } else {
        pool.close().await;
    }
    let report = Report {
        counts: counters.read(),
        elapsed: started.elapsed(),
        signal: stop.borrow().signal,
        drain,
        unknown_out: args.unknown_out.as_ref().map(|p| p.display().to_string()),
    };
    if !args.quiet {
        Printer.line(format_args!("{report}"));
    }
    if let Some(path) = &args.report_json {
        let written = serde_json::to_vec_pretty(&report.to_json())
            .map_err(std::io::Error::other)
            .and_then(|json| std::fs::write(path, json));
        if let Err(e) = written {
            Printer.line(format_args!(
                "nsq-to-nsq: error: writing {}: {e}",
                path.display()
            ));
        }
    }
    report.exit_code()
}

/// Subscribes to `topic` on the source nsqd.
async fn connect_source(
    args: &Args,
    topic: &str,
    config: &nsq_consumer::ConsumerConfig,
) -> Result<Consumer, String> {
    let mut builder = Consumer::builder(topic, &args.channel)
        .map_err(|e| e.to_string())?
        .config(config.clone());
    for addr in &args.nsqd {
        builder = builder.nsqd(addr.clone());
    }
    #[cfg(feature = "lookupd")]
    for addr in &args.lookupd {
        builder = builder.lookupd(addr.clone());
    }
    builder.connect().await.map_err(|e| e.to_string())
}
