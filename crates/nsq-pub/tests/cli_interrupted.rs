//! nsq-pub end to end when it is interrupted in the middle of a run, by SIGINT (Ctrl-C), SIGTERM
//! (systemd, Kubernetes, `timeout`) or SIGHUP: it finishes what it sent, exits 130, says where
//! it left its input, and the job can be completed from there without losing or duplicating a
//! line.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use nsq_test_support::{HANG, Nsqd, READBACK, read_all, read_at_least};

use common::{Running, assert_same_messages, count, nsq_pub, numbered_lines, records, report, run};

/// Lines in the input file.
const N: usize = 60_000;

/// The report's error for lines read and not published.
const INTERRUPTED_ERROR: &str = "not published: the run was interrupted first";

/// Slow enough to be interrupted part way (about 4 s for the whole file).
const RATE: &str = "15000";

#[test]
fn a_run_interrupted_by_sigint_can_be_finished_exactly() {
    interrupted_run_can_be_finished_exactly("INT");
}

#[test]
fn a_run_interrupted_by_sigterm_can_be_finished_exactly() {
    interrupted_run_can_be_finished_exactly("TERM");
}

#[test]
fn a_run_interrupted_by_sighup_can_be_finished_exactly() {
    interrupted_run_can_be_finished_exactly("HUP");
}

/// Interrupted by `signal` once a few thousand lines are stored:
/// - the exit status is 130, the report's: the lines read ahead and not published are in
///   `--failed-out`, counted as `not_stored_by.interrupted`, and nothing else failed; nothing
///   is unknown, since nsqd stays up;
/// - the report says interrupted, by which signal, and where it stopped (`file:record`);
/// - what nsqd holds plus `--failed-out` is exactly the input up to that record;
/// - feeding `--failed-out` and then the rest of the file exits 0, and nsqd then holds every
///   line of the input exactly once.
fn interrupted_run_can_be_finished_exactly(signal: &str) {
    let nsqd = Nsqd::start();
    let dir = tempfile::tempdir().unwrap();
    let (input, lines) = numbered_lines("interrupted-", N);
    let input_path = dir.path().join("input.txt");
    std::fs::write(&input_path, &input).unwrap();
    let failed_path = dir.path().join("failed.txt");
    let report_path = dir.path().join("report.json");
    let addr = nsqd.tcp_addr().to_string();

    let mut command = nsq_pub();
    command.args([
        "--topic",
        "interrupted",
        "--nsqd-tcp-address",
        &addr,
        "--rate",
        RATE,
        "--failed-out",
        &failed_path.display().to_string(),
        "--report-json",
        &report_path.display().to_string(),
        &input_path.display().to_string(),
    ]);
    let mut running = Running::spawn(&mut command, Vec::new());
    let deadline = Instant::now() + HANG;
    while nsqd.topic_depth("interrupted").unwrap_or(0) < 5_000 {
        assert!(
            running.is_running(),
            "nsq-pub ended before it was interrupted"
        );
        assert!(Instant::now() < deadline, "nothing stored");
        std::thread::sleep(Duration::from_millis(20));
    }
    running.signal(signal);
    let finished = running.wait();
    finished.assert_code(130);

    let report = report(&report_path);
    assert_eq!(report["interrupted"], true, "{report}");
    assert_eq!(report["signal"], format!("SIG{signal}"), "{report}");
    assert_eq!(count(&report, "unknown"), 0, "{report}");
    assert_eq!(
        count(&report, "read"),
        count(&report, "acknowledged") + count(&report, "not_stored"),
        "every message taken from the input has its outcome: {report}"
    );
    assert_eq!(count(&report, "exit_code"), 130, "{report}");
    assert!(
        finished.stderr.contains("interrupted"),
        "stderr:\n{}",
        finished.stderr
    );
    let stopped = report["stopped_after"]
        .as_str()
        .unwrap_or_else(|| panic!("no stopped_after: {report}"));
    let (source, record) = stopped.rsplit_once(':').expect("source:record");
    assert_eq!(source, input_path.display().to_string());
    let taken: usize = record.parse().expect("a record number");
    assert!(taken < N, "the input was not read to its end: {report}");

    let failed = records(&std::fs::read(&failed_path).unwrap(), b'\n');
    assert_eq!(
        failed.len() as u64,
        count(&report, "not_stored"),
        "{report}"
    );
    assert_eq!(
        failed.len() as u64,
        report["not_stored_by"]["interrupted"].as_u64().unwrap_or(0),
        "every line not stored was read ahead and not sent: {report}"
    );
    assert_eq!(
        report["errors"][INTERRUPTED_ERROR].as_u64().unwrap_or(0),
        failed.len() as u64,
        "{report}"
    );
    let stored = read_all(&nsqd, "interrupted");
    assert_eq!(
        stored.len() as u64,
        count(&report, "acknowledged"),
        "{report}"
    );
    let mut accounted = stored.clone();
    accounted.extend(failed.iter().cloned().map(Bytes::from));
    assert_same_messages(&accounted, &lines[..taken], "stored and failed-out");

    // Finish: the failed-out lines, then the input after the record it stopped at.
    let mut rest = std::fs::read(&failed_path).unwrap();
    for line in &lines[taken..] {
        rest.extend_from_slice(line);
        rest.push(b'\n');
    }
    let finished = run(
        ["--topic", "interrupted", "--nsqd-tcp-address", &addr],
        &rest,
    );
    finished.assert_code(0);
    let mut all = stored;
    all.extend(read_all_again(&nsqd));
    assert_same_messages(&all, &lines, "after finishing");
}

/// What the topic received since the first read-back, through that channel.
fn read_all_again(nsqd: &Nsqd) -> Vec<Bytes> {
    let depth = nsqd
        .channel_stats("interrupted", READBACK)
        .and_then(|c| c["depth"].as_u64())
        .expect("the read-back channel");
    read_at_least(nsqd, "interrupted", READBACK, depth as usize)
}
