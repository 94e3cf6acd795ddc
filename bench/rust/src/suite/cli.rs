//! Case k: the command-line publishers. One file of `--cli-n` lines of `--size` bytes (plus the
//! newline), written once per suite run, is published by `nsq-pub` (this workspace) and by
//! nsq's `to_nsq` v1.3.0, each run to a fresh topic of the suite's nsqd:
//!
//! - `to_nsq --topic T --nsqd-tcp-address A < FILE`
//! - `nsq-pub --topic T --nsqd-tcp-address A --quiet --report-json R FILE`
//!
//! The rate is lines over the wall-clock time of the whole process, start-up and shutdown
//! included, timed by the suite the same way for both. After each run nsqd's topic depth must
//! equal the number of lines; for nsq-pub its report's `read` and `acknowledged` must too.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::Deserialize;
use serde_json::Value;

use nsq_test_support::Nsqd;

use super::child::{GRACE, run_child_with};
use super::outcome::{CliRun, Outcome};
use super::plan::{Case, Client, Plan};
use super::report::text::thousands;
use crate::cpu::{children_cpu, process_cpu};
use crate::record::RunResult;

/// The name of the file of lines, in the directory of `results.json`.
const INPUT_NAME: &str = "k-lines.txt";

/// The printable bytes that fill each line after its number.
const FILLER: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// The fields of nsq-pub's `--report-json` that the suite checks.
#[derive(Debug, Deserialize)]
struct PubReport {
    read: u64,
    acknowledged: u64,
    #[serde(default)]
    not_stored: u64,
    #[serde(default)]
    unknown: u64,
}

/// Runs `client` once in case k against `nsqd`, and checks the topic depth. The file of lines
/// is written at the first run; `input` keeps its path, or why it could not be written.
pub(super) fn run(
    plan: &Plan,
    nsqd: &Nsqd,
    input: &mut Option<Result<PathBuf, String>>,
    round: u32,
    client: Client,
) -> Outcome {
    let n = plan.cli_n;
    let mut outcome = Outcome::new(round, Case::K, client);
    let tools = [
        (Client::NsqPub, &plan.nsq_pub_bin),
        (Client::ToNsq, &plan.to_nsq_bin),
    ];
    let Some(bin) = outcome.cli_binary(plan, (Case::K, client, n), tools, "n/a (not built)") else {
        return outcome;
    };
    let input = match input.get_or_insert_with(|| prepare_input(plan)) {
        Ok(path) => path.clone(),
        Err(why) => {
            outcome.failure = Some(why.clone());
            return outcome;
        }
    };

    let topic = format!("k-{}-{round}", client.name());
    let addr = nsqd.tcp_addr().to_string();
    let report_path = input.with_file_name(format!("k-nsq-pub-report-{round}.json"));
    let mut command = Command::new(&bin);
    command.args(["--topic", &topic, "--nsqd-tcp-address", &addr]);
    let (stdin, shown) = if client == Client::NsqPub {
        let _ = fs::remove_file(&report_path);
        command
            .args(["--quiet", "--report-json"])
            .arg(&report_path)
            .arg(&input);
        (Stdio::null(), String::new())
    } else {
        match File::open(&input) {
            Ok(file) => (Stdio::from(file), format!(" < {}", input.display())),
            Err(err) => {
                outcome.failure = Some(format!("opening {}: {err}", input.display()));
                return outcome;
            }
        }
    };
    let mut record = CliRun {
        topic: topic.clone(),
        command: format!("{}{shown}", shown_command(&command)),
        report: None,
    };

    // A fresh topic, created before the clock starts, as in the other cases.
    nsqd.delete_topic(&topic);
    nsqd.create_topic(&topic);
    let nsqd_pid = nsqd.pid().map(|pid| pid.to_string());
    let nsqd_before = nsqd_pid.as_deref().and_then(process_cpu);
    let children_before = children_cpu();
    let started = Instant::now();
    let output = run_child_with(
        &mut command,
        stdin,
        plan.time_limit_of(Case::K) + GRACE,
        || {},
    );
    let seconds = started.elapsed().as_secs_f64();
    outcome.process_s = seconds;
    if let (Some(before), Some(after)) = (nsqd_before, nsqd_pid.as_deref().and_then(process_cpu)) {
        outcome.nsqd_cpu_s = Some(after.saturating_sub(before).as_secs_f64());
    }
    // The suite has waited for the client: its CPU time is now in this process's children's.
    let client_cpu = children_before
        .zip(children_cpu())
        .map(|(before, after)| after.saturating_sub(before).as_secs_f64());

    let stats = nsqd.topic_stats(&topic);
    let depth = stats.as_ref().and_then(|s| s["depth"].as_u64());
    outcome.topic_depth = depth;
    outcome.backend_depth = stats.as_ref().and_then(|s| s["backend_depth"].as_u64());
    nsqd.delete_topic(&topic);

    let report = (client == Client::NsqPub).then(|| read_report(&report_path));
    if let Some(Ok(value)) = &report {
        record.report = Some(value.clone());
    }
    outcome.cli = Some(record);
    if let Err(failure) = output {
        outcome.failure = Some(failure);
        return outcome;
    }

    let mut result = RunResult::new(client.name(), Case::K.arg(), n);
    result.seconds = Some(seconds);
    result.cpu_s = client_cpu;
    let mut problems = Vec::new();
    match report {
        Some(Ok(value)) => match serde_json::from_value::<PubReport>(value) {
            Ok(report) => {
                result.acked = report.acknowledged;
                result.errors = report.not_stored + report.unknown;
                if report.read != n || report.acknowledged != n {
                    problems.push(format!(
                        "nsq-pub reported {} lines read and {} acknowledged of {n}",
                        report.read, report.acknowledged
                    ));
                }
            }
            Err(err) => {
                outcome.failure = Some(format!("reading nsq-pub's report: {err}"));
                return outcome;
            }
        },
        Some(Err(why)) => {
            outcome.failure = Some(why);
            return outcome;
        }
        // to_nsq stops at the first publish that fails, with an error status: having ended
        // well, it had every line acknowledged.
        None => result.acked = n,
    }
    if depth != Some(n) {
        problems.push(format!(
            "nsqd holds {} messages of the {n} lines",
            depth.map_or_else(|| "no topic and no".to_owned(), |d| d.to_string())
        ));
    }
    result.msgs_per_sec = Some(result.acked as f64 / seconds.max(f64::EPSILON));
    outcome.mismatch = (!problems.is_empty()).then(|| problems.join("; "));
    outcome.result = Some(result);
    outcome
}

/// Writes the file of lines next to `results.json`, once per suite run.
fn prepare_input(plan: &Plan) -> Result<PathBuf, String> {
    let dir = plan
        .out_json
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let path = dir.join(INPUT_NAME);
    eprintln!(
        "==> writing {} lines of {} bytes to {}",
        thousands(plan.cli_n),
        plan.size,
        path.display()
    );
    write_lines(&path, plan.cli_n, plan.size)
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path)
}

/// Writes `n` distinct lines of exactly `size` printable bytes, each followed by `\n`: the
/// line's number, zero-padded to the width of the largest, then letters and digits that shift
/// by one from a line to the next.
fn write_lines(path: &Path, n: u64, size: usize) -> std::io::Result<()> {
    let width = n.saturating_sub(1).to_string().len();
    if size < width {
        return Err(std::io::Error::other(format!(
            "lines of {size} bytes cannot hold {n} distinct numbers (they need {width} bytes)"
        )));
    }
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut line = Vec::with_capacity(size + 1);
    for i in 0..n {
        line.clear();
        write!(line, "{i:0width$}")?;
        let shift = (i % FILLER.len() as u64) as usize;
        line.extend((width..size).map(|k| FILLER[(shift + k) % FILLER.len()]));
        line.push(b'\n');
        out.write_all(&line)?;
    }
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// nsq-pub's `--report-json`, as JSON.
fn read_report(path: &Path) -> Result<Value, String> {
    let text = fs::read_to_string(path)
        .map_err(|e| format!("nsq-pub wrote no report at {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("nsq-pub's report at {} is not JSON: {e}", path.display()))
}

/// The command as a shell would show it (no quoting: no argument here has spaces).
fn shown_command(command: &Command) -> String {
    let mut shown = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        shown.push(' ');
        shown.push_str(&arg.to_string_lossy());
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_distinct_printable_and_of_the_size() {
        let path = std::env::temp_dir().join(format!("nsq-bench-k-{}.txt", std::process::id()));
        write_lines(&path, 1000, 100).unwrap();
        let text = fs::read(&path).unwrap();
        fs::remove_file(&path).unwrap();
        assert_eq!(text.len(), 1000 * 101);
        let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), 1001);
        assert!(lines[1000].is_empty());
        let lines = &lines[..1000];
        assert!(lines.iter().all(|l| l.len() == 100));
        assert!(
            lines
                .iter()
                .flat_map(|l| l.iter())
                .all(u8::is_ascii_graphic)
        );
        assert!(lines[7].starts_with(b"007klm"));
        let mut sorted = lines.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 1000);
        assert!(write_lines(&path, 1000, 2).is_err());
        let _ = fs::remove_file(&path);
    }

    #[test]
    fn the_report_fields_the_suite_reads() {
        let value: Value = serde_json::from_str(
            r#"{"topic":"t","read":5,"skipped_empty":0,"acknowledged":4,"not_stored":1,
                "unknown":0,"rejected":{},"bytes":400,"elapsed_s":0.1,"rate":40.0,
                "interrupted":false,"exit_code":1}"#,
        )
        .unwrap();
        let report: PubReport = serde_json::from_value(value).unwrap();
        assert_eq!((report.read, report.acknowledged), (5, 4));
        assert_eq!((report.not_stored, report.unknown), (1, 0));
    }
}
