//! nsq-to-nsq end to end against real nsqd: a destination nsqd killed and restarted mid-run,
//! the whole destination down for 10 s, and a SIGTERM mid-run. Every message must end at the
//! destination, once unless the report counted its outcome unknown, and the source channel
//! must end empty with nothing in flight.

mod common;
mod forward;

use std::collections::HashSet;
use std::path::Path;
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use nsq_test_support::{Nsqd, NsqdOptions};

use common::{Running, nsq_pub, numbered_lines};
use forward::{channel_state, count, nsq_to_nsq, read_back, report, tally, wait_until};

const TOPIC: &str = "fwd";
const CHANNEL: &str = "fwd";

/// An nsqd that writes every message to disk before it acknowledges it (`--mem-queue-size=0
/// --sync-every=1`), so that what it acknowledged survives a SIGKILL.
fn durable_nsqd() -> Nsqd {
    Nsqd::start_with(
        NsqdOptions::new()
            .mem_queue_size(0)
            .arg("--sync-every=1")
            .data_in_memory(true),
    )
}

/// Publishes `input`'s lines to the source topic with nsq-pub.
fn fill(source: &Nsqd, input: Vec<u8>, n: usize) {
    let mut command = nsq_pub();
    command.args([
        "--topic",
        TOPIC,
        "--nsqd-tcp-address",
        &source.tcp_addr().to_string(),
        "--quiet",
    ]);
    Running::spawn(&mut command, input)
        .wait_within(Duration::from_secs(120))
        .assert_code(0);
    assert_eq!(
        source.topic_depth(TOPIC),
        Some(n as u64),
        "the source holds the input"
    );
}

/// Starts nsq-to-nsq from `source` to `destinations`, with `extra` flags, its JSON report to
/// `report_path`.
fn start_forwarding(
    source: &Nsqd,
    destinations: &[&Nsqd],
    report_path: &Path,
    extra: &[&str],
) -> Running {
    let mut command = nsq_to_nsq();
    command.args([
        "--topic",
        TOPIC,
        "--channel",
        CHANNEL,
        "--nsqd-tcp-address",
        &source.tcp_addr().to_string(),
        "--max-in-flight",
        "1000",
        "--status-every",
        "0",
        "--report-json",
        &report_path.display().to_string(),
        // Quick redials of a restarted nsqd, and a quick return of what was requeued.
        "--producer-opt",
        "reconnect_backoff_max,200ms",
        "--consumer-opt",
        "default_requeue_delay,100ms",
        "--consumer-opt",
        "backoff_multiplier,100ms",
        "--consumer-opt",
        "max_backoff_duration,1s",
    ]);
    for d in destinations {
        command.args(["--destination-nsqd-tcp-address", &d.tcp_addr().to_string()]);
    }
    command.args(extra);
    Running::spawn(&mut command, Vec::new())
}

/// The messages the destination topic gained on `nsqds`.
fn stored(nsqds: &[&Nsqd]) -> u64 {
    nsqds
        .iter()
        .filter(|n| n.is_running())
        .map(|n| n.topic_message_count(TOPIC).unwrap_or(0))
        .sum()
}

/// Waits until the source channel has nothing left: no depth, nothing in flight, nothing
/// deferred (a requeued message waits in the deferred queue).
fn wait_source_empty(source: &Nsqd, running: &mut Running) {
    wait_until(
        Duration::from_secs(180),
        "the source channel empties",
        || {
            assert!(running.is_running(), "nsq-to-nsq ended on its own");
            let (depth, in_flight) = channel_state(source, TOPIC, CHANNEL);
            let deferred = source
                .channel_stats(TOPIC, CHANNEL)
                .and_then(|c| c["deferred_count"].as_u64())
                .unwrap_or(0);
            // Messages move from the topic's queue to the channel's as nsqd pumps them.
            let topic_depth = source.topic_depth(TOPIC).unwrap_or(0);
            topic_depth == 0 && depth == 0 && in_flight == 0 && deferred == 0
        },
    );
}

/// Reads back every destination and checks that each input line arrived at least once, at
/// most twice, and twice only as often as the report allows; returns how many arrived twice.
fn assert_each_once_but_unknown(
    destinations: &[&Nsqd],
    lines: &[Vec<u8>],
    unknown: u64,
    what: &str,
) -> usize {
    let got: Vec<Bytes> = read_back(destinations, TOPIC, lines.len());
    let counts = tally(&got);
    let input: HashSet<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    for (body, n) in &counts {
        assert!(
            input.contains(body),
            "{what}: {:?} is not an input line",
            String::from_utf8_lossy(body)
        );
        assert!(
            *n <= 2,
            "{what}: {:?} arrived {n} times",
            String::from_utf8_lossy(body)
        );
    }
    let missing = lines
        .iter()
        .filter(|l| !counts.contains_key(l.as_slice()))
        .count();
    assert_eq!(missing, 0, "{what}: input lines missing at the destination");
    let twice = counts.values().filter(|n| **n == 2).count();
    assert!(
        twice as u64 <= unknown,
        "{what}: {twice} lines arrived twice, only {unknown} outcomes were unknown"
    );
    assert_eq!(got.len(), lines.len() + twice, "{what}: read back");
    twice
}

/// 500,000 messages forwarded to 3 destination nsqd; one of them is killed (SIGKILL, by the
/// pid the test started) once a third of the messages arrived, and restarted a second later.
/// Every message is finished at the source exactly once, after a destination acknowledged
/// it; at the destinations each arrives once, except for messages whose outcome the report
/// counts as unknown, which arrive at most twice.
#[test]
fn a_destination_killed_and_restarted_loses_nothing() {
    const N: usize = 500_000;
    let source = Nsqd::start();
    let mut destinations = [durable_nsqd(), durable_nsqd(), durable_nsqd()];
    let (input, lines) = numbered_lines("kill", N);
    fill(&source, input, N);
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let mut running = {
        let refs: Vec<&Nsqd> = destinations.iter().collect();
        start_forwarding(&source, &refs, &report_path, &[])
    };

    wait_until(Duration::from_secs(120), "a third forwarded", || {
        assert!(running.is_running(), "nsq-to-nsq ended on its own");
        stored(&destinations.iter().collect::<Vec<_>>()) >= (N / 3) as u64
    });
    destinations[1].stop();
    thread::sleep(Duration::from_secs(1));
    destinations[1].restart();
    wait_source_empty(&source, &mut running);

    running.signal("TERM");
    let finished = running.wait_within(Duration::from_secs(300));
    assert_eq!(finished.code, Some(130), "stderr:\n{}", finished.stderr);
    let report = report(&report_path);
    let unknown = count(&report, "unknown_requeued");
    eprintln!("kill run: {report}");
    assert_eq!(
        count(&report, "forwarded"),
        N as u64,
        "each message finished once: {report}"
    );
    assert_eq!(count(&report, "finish_lost"), 0, "{report}");
    assert_eq!(count(&report, "source.left_in_flight"), 0, "{report}");
    assert_eq!(channel_state(&source, TOPIC, CHANNEL), (0, 0));

    let refs: Vec<&Nsqd> = destinations.iter().collect();
    let twice = assert_each_once_but_unknown(&refs, &lines, unknown, "kill run");
    eprintln!("kill run: {unknown} unknown, {twice} read back twice");
}

/// The only destination nsqd killed for 10 s: publishes fail at their 2 s deadline and the
/// source messages are requeued (the report counts them); once it is back, every message
/// arrives, once unless its outcome was unknown.
#[test]
fn the_whole_destination_down_for_ten_seconds_loses_nothing() {
    const N: usize = 100_000;
    let source = Nsqd::start();
    let mut destination = durable_nsqd();
    let (input, lines) = numbered_lines("down", N);
    fill(&source, input, N);
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let mut running = start_forwarding(
        &source,
        &[&destination],
        &report_path,
        &["--producer-opt", "publish_timeout,2s"],
    );

    wait_until(Duration::from_secs(60), "a fifth forwarded", || {
        assert!(running.is_running(), "nsq-to-nsq ended on its own");
        stored(&[&destination]) >= (N / 5) as u64
    });
    destination.stop();
    thread::sleep(Duration::from_secs(10));
    destination.restart();
    wait_source_empty(&source, &mut running);

    running.signal("TERM");
    let finished = running.wait_within(Duration::from_secs(300));
    assert_eq!(finished.code, Some(130), "stderr:\n{}", finished.stderr);
    let report = report(&report_path);
    eprintln!("outage run: {report}");
    assert!(
        count(&report, "requeued") > 0,
        "10 s without a destination, 2 s publish deadline, yet nothing requeued: {report}"
    );
    assert_eq!(count(&report, "forwarded"), N as u64, "{report}");
    assert_eq!(count(&report, "source.left_in_flight"), 0, "{report}");
    let unknown = count(&report, "unknown_requeued");
    let twice = assert_each_once_but_unknown(&[&destination], &lines, unknown, "outage run");
    eprintln!(
        "outage run: {} requeued, {unknown} unknown, {twice} read back twice",
        count(&report, "requeued")
    );
}

/// SIGTERM once a tenth of the messages arrived: nsq-to-nsq stops taking messages, finishes
/// the publishes under way, answers every message it holds, prints the report and exits 130.
/// The destination holds exactly the messages the report counts as forwarded, and the source
/// channel the rest, none in flight.
#[test]
fn sigterm_mid_run_drains_and_reports() {
    const N: usize = 200_000;
    let source = Nsqd::start();
    let destination = Nsqd::start();
    let (input, lines) = numbered_lines("term", N);
    fill(&source, input, N);
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let mut running = start_forwarding(&source, &[&destination], &report_path, &[]);
    wait_until(Duration::from_secs(60), "a tenth forwarded", || {
        assert!(running.is_running(), "nsq-to-nsq ended on its own");
        stored(&[&destination]) >= (N / 10) as u64
    });
    running.signal("TERM");
    let finished = running.wait_within(Duration::from_secs(60));
    assert_eq!(finished.code, Some(130), "stderr:\n{}", finished.stderr);
    assert!(
        finished.stderr.contains("stopped by SIGTERM"),
        "the report on stderr:\n{}",
        finished.stderr
    );
    let report = report(&report_path);
    eprintln!("SIGTERM run: {report}");
    let forwarded = count(&report, "forwarded");
    assert!(
        forwarded > 0 && forwarded < N as u64,
        "stopped mid-run: {report}"
    );
    assert_eq!(count(&report, "unknown_requeued"), 0, "{report}");
    assert_eq!(count(&report, "source.left_in_flight"), 0, "{report}");
    // nsqd moves the topic's messages to the channel in the background: once it is done,
    // the channel's counts say it all.
    wait_until(
        Duration::from_secs(30),
        "the source topic's queue empties",
        || source.topic_depth(TOPIC) == Some(0),
    );
    let (depth, in_flight) = channel_state(&source, TOPIC, CHANNEL);
    assert_eq!(in_flight, 0, "nothing left in flight at the source");
    let deferred = source
        .channel_stats(TOPIC, CHANNEL)
        .and_then(|c| c["deferred_count"].as_u64())
        .unwrap_or(0);
    assert_eq!(
        depth + deferred,
        N as u64 - forwarded,
        "the source keeps what was not forwarded: {report}"
    );
    assert_eq!(destination.topic_message_count(TOPIC), Some(forwarded));
    let got = read_back(&[&destination], TOPIC, forwarded as usize);
    let counts = tally(&got);
    assert_eq!(
        got.len() as u64,
        forwarded,
        "the destination holds what was forwarded"
    );
    assert_eq!(counts.len(), got.len(), "each forwarded message once");
    let input: HashSet<&[u8]> = lines.iter().map(Vec::as_slice).collect();
    assert!(counts.keys().all(|b| input.contains(b)));
}

/// As the kill run with one durable destination and `--unknown-out`: messages whose outcome
/// became unknown when it was killed are written to the file and finished instead of
/// requeued. Every input line ends at the destination or in the file, nothing arrives at the
/// destination twice, and the file holds exactly the report's `unknown_written` lines.
#[test]
fn unknown_out_takes_the_unknown_messages_instead_of_a_requeue() {
    const N: usize = 100_000;
    let source = Nsqd::start();
    let mut destination = durable_nsqd();
    let (input, lines) = numbered_lines("file", N);
    fill(&source, input, N);
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let unknown_path = dir.path().join("unknown.out");
    let mut running = start_forwarding(
        &source,
        &[&destination],
        &report_path,
        &["--unknown-out", &unknown_path.display().to_string()],
    );
    wait_until(Duration::from_secs(60), "a fifth forwarded", || {
        assert!(running.is_running(), "nsq-to-nsq ended on its own");
        stored(&[&destination]) >= (N / 5) as u64
    });
    destination.stop();
    thread::sleep(Duration::from_secs(1));
    destination.restart();
    wait_source_empty(&source, &mut running);
    running.signal("TERM");
    let finished = running.wait_within(Duration::from_secs(60));
    assert_eq!(finished.code, Some(130), "stderr:\n{}", finished.stderr);
    let report = report(&report_path);
    eprintln!("unknown-out run: {report}");
    let written = count(&report, "unknown_written");
    assert_eq!(count(&report, "unknown_requeued"), 0, "{report}");
    assert_eq!(
        count(&report, "forwarded") + written,
        N as u64,
        "each message forwarded or written: {report}"
    );
    let file = std::fs::read(&unknown_path).unwrap();
    let in_file: Vec<&[u8]> = file
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        in_file.len() as u64,
        written,
        "--unknown-out against {report}"
    );

    let got = read_back(&[&destination], TOPIC, N - in_file.len());
    let counts = tally(&got);
    assert!(
        counts.values().all(|n| *n == 1),
        "nothing arrives twice when unknown messages go to the file"
    );
    let file_set: HashSet<&[u8]> = in_file.iter().copied().collect();
    let missing: Vec<&Vec<u8>> = lines
        .iter()
        .filter(|l| !counts.contains_key(l.as_slice()) && !file_set.contains(l.as_slice()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} input lines neither at the destination nor in --unknown-out",
        missing.len()
    );
}
