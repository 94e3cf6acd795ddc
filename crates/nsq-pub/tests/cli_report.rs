//! nsq-pub's report adds up: with the only nsqd killed part way, most messages end without an
//! nsqd to go to, and every count of the text and JSON reports still sums exactly.

mod common;

use std::time::{Duration, Instant};

use nsq_test_support::{HANG, Nsqd};

use common::{Running, count, nsq_pub, numbered_lines, records, report};

/// 40,000 lines at `--rate 20000`, nsqd killed (by the pid the test started) once it holds
/// 2,000. Then, in the JSON report: `read = acknowledged + not_stored + unknown`, the
/// `not_stored_by` counts sum to `not_stored` (most of them `no_node_up`), the `errors` counts
/// sum to `not_stored + unknown`, and every documented field is present (`null` when it does
/// not apply). In the text report, the error lines sum to the same total, and `--failed-out`
/// holds `not_stored` lines.
#[test]
fn every_count_adds_up_when_nsqd_goes_away() {
    let mut nsqd = Nsqd::start();
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let failed_path = dir.path().join("failed.txt");
    let (input, _) = numbered_lines("gone-", 40_000);
    let mut command = nsq_pub();
    command.args([
        "--topic",
        "gone",
        "--nsqd-tcp-address",
        &nsqd.tcp_addr().to_string(),
        "--rate",
        "20000",
        "--producer-opt",
        "publish_timeout,1s",
        "--producer-opt",
        "reconnect_backoff_max,200ms",
        "--failed-out",
        &failed_path.display().to_string(),
        "--report-json",
        &report_path.display().to_string(),
    ]);
    let mut running = Running::spawn(&mut command, input);
    let deadline = Instant::now() + HANG;
    while nsqd.topic_depth("gone").unwrap_or(0) < 2_000 {
        assert!(running.is_running(), "nsq-pub ended before nsqd was killed");
        assert!(Instant::now() < deadline, "nothing stored");
        std::thread::sleep(Duration::from_millis(5));
    }
    nsqd.stop();
    let finished = running.wait();

    let report = report(&report_path);
    let (acknowledged, not_stored, unknown) = (
        count(&report, "acknowledged"),
        count(&report, "not_stored"),
        count(&report, "unknown"),
    );
    assert_eq!(count(&report, "read"), 40_000, "{report}");
    assert_eq!(acknowledged + not_stored + unknown, 40_000, "{report}");
    let sum = |field: &str| -> u64 {
        report[field]
            .as_object()
            .unwrap_or_else(|| panic!("{field} is an object: {report}"))
            .values()
            .map(|n| n.as_u64().expect("a count"))
            .sum()
    };
    assert_eq!(sum("not_stored_by"), not_stored, "{report}");
    assert_eq!(sum("errors"), not_stored + unknown, "{report}");
    assert!(
        count(&report, "not_stored_by.no_node_up") > 10_000,
        "most lines found no nsqd up: {report}"
    );
    for field in [
        "schema",
        "topic",
        "skipped_empty",
        "bytes",
        "elapsed_s",
        "rate",
        "interrupted",
        "signal",
        "input_failed",
        "stopped_after",
        "verified",
        "exit_code",
    ] {
        assert!(
            report.get(field).is_some(),
            "the report has no {field:?}: {report}"
        );
    }
    assert!(
        report["verified"].is_null() && report["signal"].is_null(),
        "{report}"
    );
    finished.assert_code(count(&report, "exit_code") as i32);

    let failed = records(&std::fs::read(&failed_path).unwrap(), b'\n');
    assert_eq!(failed.len() as u64, not_stored, "{report}");
    let text_errors: u64 = finished
        .stderr
        .lines()
        .skip_while(|l| l.trim() != "errors:")
        .skip(1)
        .filter_map(|l| l.trim().split_once(" x "))
        .map(|(n, _)| n.replace(',', "").parse::<u64>().expect("a count"))
        .sum();
    assert_eq!(
        text_errors,
        not_stored + unknown,
        "the text report's errors:\n{}",
        finished.stderr
    );
}
