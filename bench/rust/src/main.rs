//! The benchmark clients of this workspace and the runner behind `cargo xtask bench`.
//!
//! Each client subcommand publishes to an nsqd, then prints one JSON line with its result on
//! stdout (see `record.rs`); `suite` runs them all, with the Go and tokio-nsq clients, against
//! one nsqd it starts, and prints the table. `docs/performance.md` describes the cases.

mod allocs;
mod consume;
mod cpu;
mod flags;
mod memory;
mod pace;
mod pool;
mod producer;
mod raw;
mod record;
mod stall;
mod suite;

use std::process::ExitCode;

use crate::flags::{ClientOptions, Flags};

#[global_allocator]
static ALLOCATOR: allocs::CountingAllocator = allocs::CountingAllocator;

const USAGE: &str = "\
usage: nsq-bench <command> [options]

client commands print one JSON line with the result:
  producer --case a|b|c|cstar|d   this workspace's producer
  pool --case a|b|c|cstar|d       the same loops through a Pool of one node (--addr)
  pool --case j|j0 --addrs A,B,C [--kill-index 1] [--nsqd-pid PID]
                                  failover: --callers callers publish --n messages over a
                                  round-robin pool; in j the nsqd at --addrs[--kill-index]
                                  (pid --nsqd-pid) is killed a third of the way in
  raw      --case a|c|d           a blocking loop on nsq-proto (the raw limit)
  rss                             case f: peak RSS of a burst of --n publish_async
  allocs [--warmup N]             case g: allocations per message, pipelined as case c
  stall --case h|i --nsqd-pid PID cases h and i: callers waiting for room while nsqd is
                                  stopped (SIGSTOP), rate of their return once it resumes
    common options: --addr HOST:PORT --topic T --n N --size BYTES --callers 16
                    --window 1000 --batch 100 --time-limit SECS
  consume --case m|n --addrs A[,B,C] --n N [--filled N] [--channel bench]
          [--max-in-flight 2500] [--latency-n 2000] [--latency-rate 1000] [--size 100]
          [--nsqd-pids P,Q] [--api stream|run] [--concurrency 1] [--time-limit SECS]
                                  cases m and n: this workspace's consumer reads N messages
                                  already in the channel (timed; then the rest of --filled),
                                  then times --latency-n paced ones
  pace --addrs A[,B,C] --n N --rate R [--topic T] [--size 100]
                                  publishes N messages at R per second, each stamped with the
                                  time it was written (the latency phase of m and n)

runner:
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}{}", suite::USAGE);
        return ExitCode::from(2);
    };
    let outcome = match command.as_str() {
        "-h" | "--help" | "help" => {
            println!("{USAGE}{}", suite::USAGE);
            return ExitCode::SUCCESS;
        }
        "suite" => suite::run(rest),
        "pace" => pace::run(rest),
        "consume" => consume_client(rest),
        "producer" | "pool" | "rss" | "allocs" | "raw" | "stall" => client(command, rest),
        other => Err(format!("unknown command `{other}`; try --help")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("nsq-bench {command}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `nsq-bench consume`: the consumer on a multi-threaded runtime, in a spawned task.
fn consume_client(args: &[String]) -> Result<(), String> {
    let options = consume::ConsumeOptions::parse(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let result = runtime.block_on(async move {
        tokio::spawn(consume::run(options))
            .await
            .map_err(|e| format!("the benchmark task failed: {e}"))?
    })?;
    result.emit();
    Ok(())
}

fn client(command: &str, args: &[String]) -> Result<(), String> {
    let mut flags = Flags::parse(args, &[])?;
    let options = ClientOptions::from_flags(&mut flags)?;
    let warmup = flags.get("warmup", 20_000)?;
    flags.finish()?;
    let result = if command == "raw" {
        raw::run(&options)?
    } else {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("starting the runtime: {e}"))?;
        // The workload runs in a spawned task, on the runtime's workers, as application code
        // usually does; only the wait for it is on the main thread.
        let command = command.to_owned();
        runtime.block_on(async move {
            let work = tokio::spawn(async move {
                match command.as_str() {
                    "producer" => producer::run(&options).await,
                    "pool" => pool::run(&options).await,
                    "rss" => memory::run(&options).await,
                    "stall" => stall::run(&options).await,
                    _ => allocs::run(&options, warmup).await,
                }
            });
            work.await
                .map_err(|e| format!("the benchmark task failed: {e}"))?
        })?
    };
    result.emit();
    Ok(())
}
