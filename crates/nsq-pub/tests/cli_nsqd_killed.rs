//! nsq-pub end to end when its nsqd is killed (SIGKILL) in the middle of a run: the exit code
//! and report agree, what was acknowledged is what nsqd kept, `--failed-out` and
//! `--unknown-out` account for the rest, and re-feeding them completes the set.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use nsq_test_support::{HANG, Nsqd, NsqdOptions, READBACK, read_all, read_at_least};

use common::{
    Running, assert_same_messages, count, multiset, nsq_pub, numbered_lines, records, report, run,
};

/// 60,000 distinct lines fed on stdin at `--rate 15000` to an nsqd that syncs every message to
/// disk (`--mem-queue-size=0 --sync-every=1`), so what it acknowledged survives a SIGKILL. Once
/// its depth passes 10,000, the test kills it (by the pid it started); nsq-pub runs on (with
/// a 2 s publish timeout) and finishes. Then:
///
/// - the exit code is 3 if the report counts unknown messages, else 1, and the report says the
///   same; `--failed-out` and `--unknown-out` hold as many lines as `not_stored` and `unknown`;
/// - acknowledged, failed-out and unknown-out lines together are exactly the input;
/// - restarted on the same data, nsqd holds every acknowledged line once, no failed-out line,
///   and nothing else but unknown-out lines;
/// - re-feeding both files to it exits 0, and then every input line is stored: the acknowledged
///   and failed-out ones exactly once, the unknown ones once or twice.
#[test]
fn nsqd_killed_mid_run_loses_nothing_unaccounted() {
    const N: usize = 60_000;
    const KILL_AT_DEPTH: u64 = 10_000;
    let durable = NsqdOptions::new()
        .mem_queue_size(0)
        .arg("--sync-every=1")
        .data_in_memory(true);
    let mut nsqd = Nsqd::start_with(durable);
    let dir = tempfile::tempdir().unwrap();
    let failed_path = dir.path().join("failed.out");
    let unknown_path = dir.path().join("unknown.out");
    let report_path = dir.path().join("report.json");
    let (input, lines) = numbered_lines("k", N);

    let mut command = nsq_pub();
    command.args([
        "--topic",
        "killed",
        "--nsqd-tcp-address",
        &nsqd.tcp_addr().to_string(),
        "--rate",
        "15000",
        "--producer-opt",
        "publish_timeout,2s",
        "--producer-opt",
        "reconnect_backoff_max,200ms",
        "--failed-out",
        &failed_path.display().to_string(),
        "--unknown-out",
        &unknown_path.display().to_string(),
        "--report-json",
        &report_path.display().to_string(),
    ]);
    let mut running = Running::spawn(&mut command, input);
    let deadline = Instant::now() + HANG;
    loop {
        let depth = nsqd.topic_depth("killed").unwrap_or(0);
        if depth > KILL_AT_DEPTH {
            break;
        }
        assert!(
            running.is_running(),
            "nsq-pub ended before nsqd's depth passed {KILL_AT_DEPTH} (it is {depth})"
        );
        assert!(Instant::now() < deadline, "depth stuck at {depth}");
        std::thread::sleep(Duration::from_millis(5));
    }
    nsqd.stop();
    assert!(
        running.is_running(),
        "nsq-pub was still running when nsqd was killed"
    );
    // 45,000 lines or so are left at the kill: 3 s at the rate, once nsq-pub knows that its
    // only nsqd is gone.
    let finished = running.wait_within(Duration::from_secs(30));
    let report = report(&report_path);
    let (not_stored, unknown) = (count(&report, "not_stored"), count(&report, "unknown"));
    let expected_code = if unknown > 0 { 3 } else { 1 };
    finished.assert_code(expected_code);
    assert_eq!(
        count(&report, "exit_code"),
        expected_code as u64,
        "{report}"
    );
    assert!(finished.fed.is_ok(), "nsq-pub read all of its input");

    let failed = records(&std::fs::read(&failed_path).unwrap(), b'\n');
    let unknown_lines = records(&std::fs::read(&unknown_path).unwrap(), b'\n');
    assert_eq!(failed.len() as u64, not_stored, "--failed-out vs {report}");
    assert_eq!(
        unknown_lines.len() as u64,
        unknown,
        "--unknown-out vs {report}"
    );
    assert!(not_stored > 0, "nsqd died with input left, yet: {report}");

    // Acknowledged, failed-out and unknown-out lines together are exactly the input.
    let input_set: HashSet<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    let mut outcome: HashSet<&[u8]> = HashSet::new();
    for line in failed.iter().chain(&unknown_lines) {
        assert!(
            input_set.contains(line.as_slice()),
            "{:?} is not an input line",
            String::from_utf8_lossy(line)
        );
        assert!(
            outcome.insert(line),
            "{:?} is in --failed-out or --unknown-out twice",
            String::from_utf8_lossy(line)
        );
    }
    let acknowledged: Vec<Vec<u8>> = lines
        .iter()
        .filter(|line| !outcome.contains(line.as_slice()))
        .cloned()
        .collect();
    assert_eq!(
        count(&report, "acknowledged"),
        acknowledged.len() as u64,
        "input {N} minus failed-out and unknown-out: {report}"
    );
    assert_eq!(count(&report, "read"), N as u64, "{report}");

    // What the killed nsqd kept: the acknowledged lines, plus perhaps some unknown ones.
    nsqd.restart();
    let stored = read_all(&nsqd, "killed");
    let unknown_set: HashSet<&[u8]> = unknown_lines.iter().map(Vec::as_slice).collect();
    let (stored_unknown, stored_known): (Vec<Bytes>, Vec<Bytes>) = stored
        .into_iter()
        .partition(|line| unknown_set.contains(line.as_ref()));
    assert_same_messages(
        &stored_known,
        &acknowledged,
        "kept by the killed nsqd, unknown-out lines aside",
    );
    assert!(
        multiset(&stored_unknown).values().all(|&n| n == 1),
        "an unknown line stored twice"
    );

    // Re-feeding what was not stored, and what might not be, completes the set.
    let refeed = run(
        [
            "--topic",
            "killed",
            "--nsqd-tcp-address",
            &nsqd.tcp_addr().to_string(),
            &failed_path.display().to_string(),
            &unknown_path.display().to_string(),
        ],
        b"",
    );
    refeed.assert_code(0);
    let refed = read_at_least(
        &nsqd,
        "killed",
        READBACK,
        failed.len() + unknown_lines.len(),
    );
    let expected_refed: Vec<Vec<u8>> = failed.iter().chain(&unknown_lines).cloned().collect();
    assert_same_messages(&refed, &expected_refed, "re-fed");
    let all: Vec<Bytes> = stored_known
        .into_iter()
        .chain(stored_unknown)
        .chain(refed)
        .collect();
    let copies = multiset(&all);
    for line in &lines {
        let n = copies.get(line.as_slice()).copied().unwrap_or(0);
        let allowed = if unknown_set.contains(line.as_slice()) {
            1..=2
        } else {
            1..=1
        };
        assert!(
            allowed.contains(&n),
            "{:?} stored {n} times",
            String::from_utf8_lossy(line)
        );
    }
    assert_eq!(copies.len(), N, "nothing but input lines is stored");
}
