//! nsq-pub end to end against real nsqd v1.3.0, when everything goes well: delimited input
//! from stdin and from a file read back byte for byte, fan-out and round-robin over several
//! nsqd, `--rate`, `--generate` and `--help`.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nsq_test_support::{HANG, Nsqd, NsqdOptions, Nsqlookupd, Rng, read_all};
use serde_json::Value;

use common::{Running, assert_same_messages, count, nsq_pub, numbered_lines, report, run};

/// Test input: records separated by a delimiter, some of them empty.
struct Delimited {
    input: Vec<u8>,
    /// The non-empty records, in input order.
    messages: Vec<Vec<u8>>,
    /// How many records are empty.
    empty: u64,
}

/// `count` records, each followed by `delimiter` except the last when `terminated` is false
/// (the last record is then non-empty). A run of empty records at the start, one record in
/// eleven empty and a run of four empty ones every thousand; the others are made of bytes other
/// than the delimiter, among them `\n`, `\r`, NUL, spaces and bytes that are not UTF-8. Some
/// records are just `"\n"` or `" "`, and some repeat.
fn delimited(count: usize, delimiter: u8, terminated: bool, seed: u64) -> Delimited {
    let alphabet: Vec<u8> = b"abcXYZ019 \t\r\n;,.\x1e\x00\xff\xfe\xc3\xa9\"\\"
        .iter()
        .copied()
        .filter(|&b| b != delimiter)
        .collect();
    let mut rng = Rng::new(seed);
    let mut data = Delimited {
        input: Vec::with_capacity(count * 30),
        messages: Vec::with_capacity(count),
        empty: 0,
    };
    for i in 0..count {
        let last = i + 1 == count;
        let record = if !last && (i < 3 || i % 11 == 5 || (500..504).contains(&(i % 1000))) {
            Vec::new()
        } else if i % 97 == 0 {
            b"\n".to_vec()
        } else if i % 89 == 0 {
            b" ".to_vec()
        } else if i % 1009 == 0 {
            b"the same again".to_vec()
        } else {
            let mut record = format!("{i}:").into_bytes();
            let len = rng.below(40);
            record.extend((0..len).map(|_| alphabet[rng.below(alphabet.len() as u64) as usize]));
            record
        };
        data.input.extend_from_slice(&record);
        if !last || terminated {
            data.input.push(delimiter);
        }
        if record.is_empty() {
            data.empty += 1;
        } else {
            data.messages.push(record);
        }
    }
    data
}

/// The counts every successful run reports for `messages`.
fn assert_all_acknowledged(report: &Value, topic: &str, messages: &[Vec<u8>], empty: u64) {
    let n = messages.len() as u64;
    let bytes: u64 = messages.iter().map(|m| m.len() as u64).sum();
    assert_eq!(report["topic"], topic, "{report}");
    assert_eq!(count(report, "read"), n, "{report}");
    assert_eq!(count(report, "skipped_empty"), empty, "{report}");
    assert_eq!(count(report, "acknowledged"), n, "{report}");
    assert_eq!(count(report, "not_stored"), 0, "{report}");
    assert_eq!(count(report, "unknown"), 0, "{report}");
    assert_eq!(count(report, "bytes"), bytes, "{report}");
    assert_eq!(count(report, "exit_code"), 0, "{report}");
    assert_eq!(report["interrupted"], false, "{report}");
}

/// Publishes 100,000 records split on `delimiter`, from stdin or from a file, and checks that
/// nsqd holds exactly the non-empty ones, byte for byte.
fn delimited_records_are_read_back_exactly(delimiter: u8, from_file: bool) {
    let nsqd = Nsqd::start();
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let data = delimited(100_000, delimiter, !from_file, u64::from(delimiter));
    let mut args = vec![
        "--topic".into(),
        "records".into(),
        "--nsqd-tcp-address".into(),
        nsqd.tcp_addr().to_string(),
        "--delimiter".into(),
        char::from(delimiter).to_string(),
        "--report-json".into(),
        report_path.display().to_string(),
    ];
    let stdin = if from_file {
        let file = dir.path().join("records.bin");
        std::fs::write(&file, &data.input).unwrap();
        args.push(file.display().to_string());
        Vec::new()
    } else {
        data.input.clone()
    };

    let finished = run(&args, &stdin);
    finished.assert_code(0);
    let n = data.messages.len() as u64;
    assert_eq!(nsqd.topic_depth("records"), Some(n));
    assert_same_messages(&read_all(&nsqd, "records"), &data.messages, "read back");
    assert_all_acknowledged(&report(&report_path), "records", &data.messages, data.empty);
}

/// 100,000 records on stdin separated by `;` (so `\n` is part of a message), about one in ten
/// empty, the last one followed by the delimiter: nsqd holds exactly the non-empty records,
/// byte for byte (read back as a multiset), the exit code is 0 and the report counts what was
/// read, skipped and acknowledged.
#[test]
fn semicolon_delimited_stdin_is_read_back_exactly() {
    delimited_records_are_read_back_exactly(b';', false);
}

/// The same with the records in a file given as argument, separated by the byte 0x1e, and the
/// last record not followed by the delimiter (it is still published).
#[test]
fn record_separator_delimited_file_is_read_back_exactly() {
    delimited_records_are_read_back_exactly(0x1e, true);
}

/// Two `--nsqd-tcp-address` and no `--mode`: fan-out, every line on both nsqd.
#[test]
fn two_addresses_fan_out_every_line_to_both() {
    const N: usize = 5_000;
    let nodes = [Nsqd::start(), Nsqd::start()];
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let (input, lines) = numbered_lines("fan-", N);
    let finished = run(
        [
            "--topic",
            "fan",
            "--nsqd-tcp-address",
            &nodes[0].tcp_addr().to_string(),
            "--nsqd-tcp-address",
            &nodes[1].tcp_addr().to_string(),
            "--report-json",
            &report_path.display().to_string(),
        ],
        &input,
    );
    finished.assert_code(0);
    for node in &nodes {
        assert_eq!(node.topic_depth("fan"), Some(N as u64), "{node:?}");
        assert_same_messages(&read_all(node, "fan"), &lines, "one nsqd's copy");
    }
    let report = report(&report_path);
    assert_eq!(count(&report, "read"), N as u64, "{report}");
    assert_eq!(count(&report, "not_stored"), 0, "{report}");
    assert_eq!(count(&report, "unknown"), 0, "{report}");
    // A message is acknowledged once all its copies are; the copies are counted apart.
    assert_eq!(count(&report, "acknowledged"), N as u64, "{report}");
    assert_eq!(
        count(&report, "copies_acknowledged"),
        2 * N as u64,
        "{report}"
    );
}

/// `--mode round-robin` over three nsqd: each gets some of the lines, none twice, and together
/// they hold every line once.
#[test]
fn round_robin_spreads_lines_over_three_nsqd() {
    const N: usize = 6_000;
    let nodes = [Nsqd::start(), Nsqd::start(), Nsqd::start()];
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let (input, lines) = numbered_lines("rr-", N);
    let mut args = vec![
        "--topic".to_owned(),
        "spread".to_owned(),
        "--mode".to_owned(),
        "round-robin".to_owned(),
        "--report-json".to_owned(),
        report_path.display().to_string(),
    ];
    for node in &nodes {
        args.push("--nsqd-tcp-address".to_owned());
        args.push(node.tcp_addr().to_string());
    }
    let finished = run(&args, &input);
    finished.assert_code(0);
    let depths: Vec<u64> = nodes
        .iter()
        .map(|node| node.topic_depth("spread").unwrap_or(0))
        .collect();
    assert_eq!(depths.iter().sum::<u64>(), N as u64, "depths {depths:?}");
    assert!(depths.iter().all(|&d| d > 0), "depths {depths:?}");
    let stored: Vec<_> = nodes
        .iter()
        .flat_map(|node| read_all(node, "spread"))
        .collect();
    assert_same_messages(&stored, &lines, "the three nsqd together");
    let report = report(&report_path);
    assert_all_acknowledged(&report, "spread", &lines, 0);
}

/// `--rate 2000` with 6,000 lines: nsqd's depth, sampled while nsq-pub runs, never exceeds
/// what the rate allows since the spawn (2000 × t + 201), the whole run takes long enough for
/// the 6,000 to fit under the same bound, and every line is acknowledged.
#[test]
fn rate_limits_what_is_handed_over() {
    const RATE: f64 = 2000.0;
    const BURST: f64 = RATE / 10.0 + 1.0;
    const N: usize = 6_000;
    let nsqd = Nsqd::start();
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let (input, lines) = numbered_lines("rate-", N);
    let mut command = nsq_pub();
    command.args([
        "--topic",
        "rated",
        "--nsqd-tcp-address",
        &nsqd.tcp_addr().to_string(),
        "--rate",
        "2000",
        "--report-json",
        &report_path.display().to_string(),
    ]);
    let mut running = Running::spawn(&mut command, input);
    let mut samples = Vec::new();
    while running.is_running() {
        let depth = nsqd.topic_depth("rated").unwrap_or(0);
        // Taken after the answer: the depth was read at or before this instant.
        let t = running.started().elapsed().as_secs_f64();
        assert!(
            depth as f64 <= RATE * t + BURST,
            "depth {depth} at {t:.3} s exceeds {RATE} × t + {BURST}; earlier: {samples:?}"
        );
        samples.push((t, depth));
        std::thread::sleep(Duration::from_millis(150));
    }
    let finished = running.wait();
    finished.assert_code(0);
    let elapsed = finished.elapsed.as_secs_f64();
    assert!(
        N as f64 <= RATE * elapsed + BURST,
        "{N} messages in {elapsed:.3} s: faster than {RATE}/s"
    );
    assert!(
        samples.iter().filter(|(_, depth)| *depth > 0).count() >= 3,
        "the run was sampled while publishing: {samples:?}"
    );
    assert_eq!(nsqd.topic_depth("rated"), Some(N as u64));
    assert_same_messages(&read_all(&nsqd, "rated"), &lines, "read back");
    assert_all_acknowledged(&report(&report_path), "rated", &lines, 0);
}

/// `--generate 10000 --size 50`: 10,000 messages of 50 bytes, and standard input is not read.
#[test]
fn generate_publishes_messages_of_the_given_size() {
    let nsqd = Nsqd::start();
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let finished = run(
        [
            "--topic",
            "generated",
            "--nsqd-tcp-address",
            &nsqd.tcp_addr().to_string(),
            "--generate",
            "10000",
            "--size",
            "50",
            "--nsqd-http-address",
            &nsqd.http_addr().to_string(),
            "--report-json",
            &report_path.display().to_string(),
        ],
        b"not a generated message\n",
    );
    finished.assert_code(0);
    assert_eq!(nsqd.topic_depth("generated"), Some(10_000));
    let stored = read_all(&nsqd, "generated");
    assert_eq!(stored.len(), 10_000);
    for message in &stored {
        assert_eq!(message.len(), 50, "{:?}", String::from_utf8_lossy(message));
    }
    let report = report(&report_path);
    assert_eq!(count(&report, "read"), 10_000, "{report}");
    assert_eq!(count(&report, "acknowledged"), 10_000, "{report}");
    assert_eq!(count(&report, "bytes"), 500_000, "{report}");
    assert_eq!(count(&report, "exit_code"), 0, "{report}");
    // nsqd's own count, taken through --nsqd-http-address, matches the acknowledgements.
    assert_eq!(count(&report, "verified.counted"), 10_000, "{report}");
    assert_eq!(report["verified"]["matches"], true, "{report}");
}

/// `--lookupd-http-address` alone: nsq-pub finds both nsqd through nsqlookupd and spreads the
/// lines over them round-robin; every line is stored once.
#[test]
fn lookupd_finds_the_nsqd_to_publish_to() {
    let lookupd = Nsqlookupd::start();
    let nodes: Vec<Nsqd> = (0..2)
        .map(|_| {
            let nsqd = Nsqd::start_with(NsqdOptions::new().lookupd(&lookupd));
            lookupd.wait_for_nsqd(&nsqd);
            nsqd
        })
        .collect();
    let (input, lines) = numbered_lines("found-", 4_000);
    let finished = run(
        [
            "--topic",
            "found",
            "--lookupd-http-address",
            &lookupd.http_addr().to_string(),
            "--mode",
            "round-robin",
        ],
        &input,
    );
    finished.assert_code(0);
    let mut stored = Vec::new();
    for nsqd in &nodes {
        let here = read_all(nsqd, "found");
        assert!(!here.is_empty(), "every nsqd found gets lines");
        stored.extend(here);
    }
    assert_same_messages(&stored, &lines, "read back from both nsqd");
}

/// A line from a slow source (`tail -F`) is published as soon as it is read, not when more
/// input comes: with the producer's batching and with explicit MPUBs of 10, the first line is
/// stored while standard input is still open, and the second after it.
#[test]
fn lines_from_a_slow_source_go_out_as_they_come() {
    let nsqd = Nsqd::start();
    for batch in ["auto", "10"] {
        let topic = format!("slow-{batch}");
        let mut child = nsq_pub()
            .args([
                "--topic",
                &topic,
                "--nsqd-tcp-address",
                &nsqd.tcp_addr().to_string(),
                "--batch",
                batch,
                "--quiet",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nsq-pub");
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(b"first\n").unwrap();
        stdin.flush().unwrap();
        let deadline = Instant::now() + HANG;
        while nsqd.topic_depth(&topic) != Some(1) {
            assert!(
                child.try_wait().unwrap().is_none(),
                "nsq-pub ended with its input still open"
            );
            assert!(
                Instant::now() < deadline,
                "the first line was not published"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        stdin.write_all(b"second\n").unwrap();
        drop(stdin);
        let status = child.wait().unwrap();
        assert!(status.success(), "--batch {batch}: {status}");
        assert_same_messages(
            &read_all(&nsqd, &topic),
            &[b"first".to_vec(), b"second".to_vec()],
            "read back",
        );
    }
}

/// `--help` succeeds and says the tool stands in for to_nsq.
#[test]
fn help_mentions_to_nsq() {
    let finished = run(["--help"], b"");
    finished.assert_code(0);
    assert!(
        finished.stdout.contains("to_nsq"),
        "--help does not mention to_nsq:\n{}",
        finished.stdout
    );
}

/// `--completions SHELL` prints a script without `--topic` or an address.
#[test]
fn completions_need_no_topic() {
    for shell in ["bash", "zsh", "fish"] {
        let finished = run(["--completions", shell], b"");
        finished.assert_code(0);
        assert!(
            finished.stdout.contains("nsq-pub") && finished.stdout.contains("failed-out"),
            "--completions {shell}:\n{}",
            finished.stdout
        );
    }
}

/// The `--mode` names are the producer's strategy names (`round-robin`, `failover`,
/// `least-outstanding`, `fan-out`); the old `least-loaded` and `fanout` still work.
#[test]
fn modes_take_the_strategy_names() {
    let nsqd = Nsqd::start();
    let addr = nsqd.tcp_addr().to_string();
    for mode in [
        "round-robin",
        "failover",
        "least-outstanding",
        "fan-out",
        "least-loaded",
        "fanout",
    ] {
        let topic = format!("mode-{mode}");
        let finished = run(
            [
                "--topic",
                &topic,
                "--nsqd-tcp-address",
                &addr,
                "--mode",
                mode,
            ],
            b"one\ntwo\n",
        );
        finished.assert_code(0);
        assert_eq!(nsqd.topic_depth(&topic), Some(2), "--mode {mode}");
    }
}

/// `-v` (or `RUST_LOG`) shows the producer's log on stderr: here, its connection to nsqd,
/// with the address; without either, the log is not shown.
#[test]
fn verbose_shows_the_producer_log() {
    let nsqd = Nsqd::start();
    let addr = nsqd.tcp_addr().to_string();
    let args = ["--topic", "logged", "--nsqd-tcp-address", addr.as_str()];
    let logged = |finished: &common::Finished| {
        finished
            .stderr
            .lines()
            .any(|l| l.contains("connected to nsqd") && l.contains(&addr))
    };
    let quiet = run(args, b"one\n");
    quiet.assert_code(0);
    assert!(!logged(&quiet), "without -v:\n{}", quiet.stderr);
    let verbose = run(args.iter().copied().chain(["-v"]), b"one\n");
    verbose.assert_code(0);
    assert!(logged(&verbose), "with -v:\n{}", verbose.stderr);
    let mut command = common::nsq_pub();
    command.args(args).env("RUST_LOG", "nsq_producer=info");
    let from_env = common::Running::spawn(&mut command, b"one\n".to_vec()).wait();
    from_env.assert_code(0);
    assert!(logged(&from_env), "with RUST_LOG:\n{}", from_env.stderr);
}
