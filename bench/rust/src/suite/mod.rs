//! `nsq-bench suite`: starts one nsqd through the test harness, runs every (case, client) pair
//! `runs` times interleaved (round by round, each client in its own process), then prints the
//! table and writes `results.json` and `results.md`.

mod child;
mod cli;
mod cluster;
mod consume;
mod execute;
mod facts;
mod failover;
mod forward;
mod outcome;
mod plan;
mod report;
mod tools;

use std::path::Path;
use std::time::Instant;

use nsq_test_support::{Nsqd, NsqdOptions};

use self::execute::Executor;
use self::facts::{Facts, utc_now};
use self::outcome::Outcome;
use self::plan::{Case, Client, Plan};
use self::report::Report;
use self::report::consumer::TITLE as CONSUMER_TITLE;
use self::report::frozen::TITLE as FROZEN_TITLE;
use self::report::goals::render_goals;
use self::report::results::{ResultsFile, Settings};
use crate::flags::Flags;

/// The suite's usage, part of `nsq-bench --help`.
pub(crate) const USAGE: &str = "\
  suite [--quick] [--n N] [--size BYTES] [--runs K] [--clients a,b] [--cases a,b,...]
        [--callers 16] [--window 1000] [--batch 100] [--rss-n 1000000] [--allocs-n N]
        [--warmup N] [--stall-n N] [--failover-n 1000000] [--failover-runs 1]
        [--cli-n 1000000] [--cli-runs 1] [--time-limit SECS] [--go-nsq-bin PATH]
        [--bench-writer-bin PATH] [--tokio-nsq-bin PATH] [--nsq-pub-bin PATH]
        [--to-nsq-bin PATH] [--consumer-n 1000000] [--max-in-flight 2500]
        [--latency-n 2000] [--latency-rate 1000] [--consumer-api stream|run]
        [--bench-reader-bin PATH]
        [--unavailable 'client=reason;...'] [--out PATH] [--out-md PATH] [--command TEXT]
      clients: producer, pool, go-nsq, tokio-nsq, raw, bench_writer, nsq-pub, to_nsq,
               consumer, bench_reader
      cases:   a, b, c, c* (or cstar), d, e, f, g, h, i, j, j0, k, l, m, n";

/// Runs the suite described by `args`.
pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let mut flags = Flags::parse(args, &["quick"])?;
    let plan = Plan::from_flags(&mut flags)?;
    flags.finish()?;
    let began = Instant::now();

    let mem_queue = plan.mem_queue_size();
    eprintln!("==> starting nsqd (--mem-queue-size={mem_queue})");
    let nsqd = Nsqd::start_with(NsqdOptions::new().mem_queue_size(mem_queue));
    let facts = Facts::gather(nsqd.binary());
    eprintln!(
        "    {} at {}, {} cores, load average {}",
        facts.nsqd_version.as_deref().unwrap_or("nsqd"),
        nsqd.tcp_addr(),
        facts.cores,
        facts.load_average.as_deref().unwrap_or("?")
    );

    let this = std::env::current_exe().map_err(|e| format!("finding this binary: {e}"))?;
    let mut executor = Executor {
        plan: &plan,
        nsqd: &nsqd,
        this,
        mpub_rate: None,
        cluster: Vec::new(),
        cli_input: None,
        consume_rate: std::collections::BTreeMap::new(),
    };
    let outcomes = run_rounds(&plan, &mut executor);
    drop(nsqd);

    let report = Report::new(&plan, &outcomes);
    let table = report.table();
    let cpu = report.cpu_table();
    let goals = report.goals();
    let (goals_text, goals_md) = render_goals(&goals);
    let failover = report.failover_table();
    let failover_notes = report.failover_notes();
    let frozen = report.frozen_table();
    let frozen_notes = report.frozen_notes();
    let consumers = report.consumer_table();
    let consumer_notes = report.consumer_notes();
    let wall_clock = began.elapsed().as_secs_f64();
    let date = utc_now();

    println!();
    // Only the consumer cases asked for: the publishers' tables have no rows.
    let publishers = !table.rows.is_empty();
    if publishers {
        println!(
            "nsq producer benchmarks: n={} messages of {} bytes, median (min-max) of {} run(s), \
             {date}",
            plan.n, plan.size, plan.runs
        );
        println!("{}", table.render_text());
        println!(
            "marks: ! count mismatch, + stopped at the time limit, * see notes in results.json"
        );
        println!();
        println!("CPU time while publishing, % of one core (client / nsqd), over all runs:");
        println!("{}", cpu.render_text());
    }
    if let Some(failover) = &failover {
        println!("{FAILOVER_TITLE}");
        println!("{}", failover.render_text());
        for note in &failover_notes {
            println!("  {note}");
        }
        println!();
    }
    if let Some(frozen) = &frozen {
        println!("{}", FROZEN_TITLE);
        println!("{}", frozen.render_text());
        for note in &frozen_notes {
            println!("  {note}");
        }
        println!();
    }
    if let Some(consumers) = &consumers {
        println!(
            "nsq consumer benchmarks: {} messages of {} bytes, median (min-max) of {} run(s), \
             {date}",
            plan.consumer_n, plan.size, plan.runs
        );
        println!("{CONSUMER_TITLE}");
        println!("{}", consumers.render_text());
        for note in &consumer_notes {
            println!("  {note}");
        }
        println!();
    }
    if !goals.is_empty() {
        println!("goals (medians of this run):");
        println!("{goals_text}");
    }

    let results = ResultsFile {
        date: date.clone(),
        command: &plan.command,
        wall_clock_s: wall_clock,
        settings: Settings::of(&plan),
        machine: &facts,
        cells: report.cells(),
        goals,
        runs: &outcomes,
    };
    let json = serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?;
    write(&plan.out_json, &json)?;
    let failover_md = failover.as_ref().map_or_else(String::new, |table| {
        let notes: String = failover_notes
            .iter()
            .map(|note| format!("- {note}\n"))
            .collect();
        format!("{FAILOVER_TITLE}\n\n{}\n{notes}\n", table.render_markdown())
    });
    let frozen_md = frozen.as_ref().map_or_else(String::new, |table| {
        let notes: String = frozen_notes
            .iter()
            .map(|note| format!("- {note}\n"))
            .collect();
        format!("{}\n\n{}\n{notes}\n", FROZEN_TITLE, table.render_markdown())
    });
    let consumers_md = consumers.as_ref().map_or_else(String::new, |table| {
        let notes: String = consumer_notes
            .iter()
            .map(|note| format!("- {note}\n"))
            .collect();
        format!("{CONSUMER_TITLE}\n\n{}\n{notes}\n", table.render_markdown())
    });
    let publishers_md = if publishers {
        format!(
            "{}\nCPU time while publishing, % of one core (client / nsqd), over all runs:\n\n{}\n",
            table.render_markdown(),
            cpu.render_markdown()
        )
    } else {
        String::new()
    };
    let markdown = format!(
        "Measured {date} with `{}` ({} run(s) of {} of {} bytes; cells are \
         median (min-max); {:.0} s in all).\n\nMachine: {} cores{}, load average {} at the \
         start; {}, {}, {}.\n\n{}{}{}{}Goals (medians of this run):\n\n{}",
        plan.command,
        plan.runs,
        if publishers {
            format!("n={} messages", plan.n)
        } else {
            format!("{} timed messages", plan.consumer_n)
        },
        plan.size,
        wall_clock,
        facts.cores,
        facts
            .cpu_model
            .as_deref()
            .map_or_else(String::new, |m| format!(" ({m})")),
        facts.load_average.as_deref().unwrap_or("?"),
        facts.nsqd_version.as_deref().unwrap_or("nsqd ?"),
        facts.go_version.as_deref().unwrap_or("go ?"),
        facts.rustc_version.as_deref().unwrap_or("rustc ?"),
        publishers_md,
        failover_md,
        frozen_md,
        consumers_md,
        goals_md,
    );
    write(&plan.out_md, &markdown)?;
    println!(
        "wrote {} and {} ({wall_clock:.0} s)",
        plan.out_json.display(),
        plan.out_md.display()
    );
    Ok(())
}

/// The heading of the failover table.
const FAILOVER_TITLE: &str = "Failover: 3 nsqd, one killed (SIGKILL) a third of the way in and \
                              restarted 5 s later (j), and the same run without the kill (j0):";

/// Every round runs every case, and within it every client; the order of the clients turns
/// by one each round so that none always runs first. A client that says it cannot do a case
/// is not asked again. j and j0 run together, client by client (j0 first), so that each kill
/// run is compared with a run made just before it.
fn run_rounds(plan: &Plan, executor: &mut Executor<'_>) -> Vec<Outcome> {
    let cases = plan.run_cases();
    let mut outcomes: Vec<Outcome> = Vec::new();
    for round in 1..=plan.runs {
        eprintln!("==> round {round} of {}", plan.runs);
        for &case in cases.iter().filter(|&&c| plan.runs_in_round(c, round)) {
            let together: &[Case] = match case {
                Case::J0 if cases.contains(&Case::J) => continue,
                Case::J if cases.contains(&Case::J0) => &[Case::J0, Case::J],
                _ => std::slice::from_ref(&case),
            };
            let mut clients: Vec<Client> = plan.clients.clone();
            let turn = (round as usize - 1) % clients.len().max(1);
            clients.rotate_left(turn);
            for client in clients {
                for &case in together {
                    let earlier = outcomes.iter().find(|o| {
                        o.case == case.id()
                            && o.client == client.name()
                            && o.unsupported().is_some()
                    });
                    let outcome = match earlier {
                        Some(earlier) => Outcome {
                            round,
                            ..earlier.clone()
                        },
                        None => executor.run(round, case, client),
                    };
                    log(&outcome);
                    outcomes.push(outcome);
                }
            }
        }
    }
    outcomes
}

fn log(outcome: &Outcome) {
    let what = if let Some(why) = outcome.unsupported() {
        why.to_owned()
    } else if let Some(failure) = &outcome.failure {
        format!("FAILED: {failure}")
    } else if let Some(result) = outcome.measured() {
        let mut text = match (result.msgs_per_sec, result.seconds) {
            (Some(rate), Some(seconds)) => format!(
                "{} msgs/s, {} acked in {seconds:.2} s",
                report::text::rate(rate),
                result.acked
            ),
            _ => String::new(),
        };
        if let Some(p99) = result.p99_us {
            text.push_str(&format!(", p99 {p99:.0} µs"));
        }
        if let Some(peak) = result.peak_rss_mib {
            text.push_str(&format!(", peak RSS {peak:.1} MiB"));
        }
        if let (Some(rate), Some(waiting), Some(seconds)) =
            (result.resolved_per_sec, result.waiting, result.seconds)
        {
            text.push_str(&format!(
                "{} waiting calls returned per second, {waiting} in {seconds:.2} s, {} acked",
                report::text::rate(rate),
                result.acked
            ));
        }
        if let Some(out) = &result.outcomes {
            text.push_str(&format!(
                ", {} unknown, {} not sent, {} other, {} resent",
                out.unknown, out.not_sent, out.other, out.resent
            ));
        }
        if let Some(figures) = outcome.failover.as_ref().and_then(|f| f.figures.as_ref()) {
            text.push_str(&format!(
                ", gap {}, pause {} ms (kill at {:.2} s)",
                figures
                    .gap_ms
                    .map_or_else(|| "not closed".to_owned(), |g| format!("{g} ms")),
                figures.pause_ms,
                result.kill_at_s.unwrap_or(f64::NAN)
            ));
        }
        if let Some(allocs) = result.allocs_per_msg {
            text.push_str(&format!(", {allocs:.2} allocs/msg"));
        }
        if let Some(mismatch) = &outcome.mismatch {
            text.push_str(&format!(" (MISMATCH: {mismatch})"));
        }
        if result.truncated {
            text.push_str(" (stopped at the time limit)");
        }
        text
    } else {
        "no result".to_owned()
    };
    eprintln!("    {:<3} {:<13} {what}", outcome.case, outcome.client);
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}
