//! nsq-pub end to end against real nsqd v1.3.0, when something is wrong: bad flags and topic
//! names (exit 2), no nsqd or an input file that cannot be opened (exit 4), and messages over
//! nsqd's size limit among good ones (exit 1, the rest published).

mod common;

use nsq_test_support::{Nsqd, NsqdOptions, closed_addr, read_all};

use common::{Finished, assert_same_messages, count, records, report, run, topic_names};

const INPUT: &[u8] = b"one\ntwo\nthree\n";

/// Runs nsq-pub with `args` and the three lines of [`INPUT`], expecting a refusal with
/// `code` and nothing published on `nsqd`.
fn refused(nsqd: &Nsqd, args: &[&str], code: i32) -> Finished {
    let finished = run(args, INPUT);
    assert_eq!(
        finished.code,
        Some(code),
        "nsq-pub {args:?}: exit code; stderr:\n{}",
        finished.stderr
    );
    assert!(
        topic_names(nsqd).is_empty(),
        "nsq-pub {args:?} published something: {:?}",
        topic_names(nsqd)
    );
    finished
}

/// Usage errors exit with 2, say what is wrong on stderr and publish nothing: an unknown flag,
/// a two-byte `--delimiter`, an unknown `--producer-opt` and one with an invalid value, an
/// unknown `--mode`, no address, no topic.
#[test]
fn bad_flags_exit_2_and_publish_nothing() {
    let nsqd = Nsqd::start();
    let addr = nsqd.tcp_addr().to_string();
    let base = ["--topic", "t", "--nsqd-tcp-address", addr.as_str()];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    let cases: [(Vec<&str>, &str); 7] = [
        (with(&["--no-such-flag"]), "--no-such-flag"),
        (with(&["--delimiter", "ab"]), "delimiter"),
        (
            with(&["--producer-opt", "no_such_option,1"]),
            "no_such_option",
        ),
        (
            with(&["--producer-opt", "heartbeat_interval,999ms"]),
            "heartbeat_interval",
        ),
        (with(&["--mode", "sideways"]), "sideways"),
        (vec!["--topic", "t"], "address"),
        (vec!["--nsqd-tcp-address", addr.as_str()], "topic"),
    ];
    for (args, named) in &cases {
        let finished = refused(&nsqd, args, 2);
        assert!(
            finished.stderr.contains(named),
            "nsq-pub {args:?}: stderr does not name {named:?}:\n{}",
            finished.stderr
        );
    }
}

/// Topic names nsqd would refuse (a space and `!`, 65 characters) exit with 2 and an error
/// line, and publish nothing; 64 characters is fine.
#[test]
fn invalid_topic_names_exit_2_and_publish_nothing() {
    let nsqd = Nsqd::start();
    let addr = nsqd.tcp_addr().to_string();
    let too_long = "a".repeat(65);
    for topic in ["bad topic!", too_long.as_str()] {
        let finished = refused(&nsqd, &["--topic", topic, "--nsqd-tcp-address", &addr], 2);
        assert!(
            finished.stderr.contains("nsq-pub: error:"),
            "topic {topic:?}: no error line on stderr:\n{}",
            finished.stderr
        );
    }
    let longest = "b".repeat(64);
    run(["--topic", &longest, "--nsqd-tcp-address", &addr], INPUT).assert_code(0);
    assert_eq!(nsqd.topic_depth(&longest), Some(3));
}

/// No nsqd at the address (a closed port): exit 4, and stderr names the address.
#[test]
fn unreachable_nsqd_exits_4_naming_the_address() {
    let addr = closed_addr().to_string();
    let finished = run(["--topic", "t", "--nsqd-tcp-address", &addr], INPUT);
    finished.assert_code(4);
    assert!(
        finished.stderr.contains(&addr),
        "stderr does not name {addr}:\n{}",
        finished.stderr
    );
}

/// An input file that cannot be opened, after one that can: exit 4, stderr names the missing
/// file, and nothing is published, not even the first file's lines.
#[test]
fn missing_input_file_exits_4_and_publishes_nothing() {
    let nsqd = Nsqd::start();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.txt");
    std::fs::write(&good, INPUT).unwrap();
    let missing = dir.path().join("missing.txt");
    let finished = refused(
        &nsqd,
        &[
            "--topic",
            "t",
            "--nsqd-tcp-address",
            &nsqd.tcp_addr().to_string(),
            &good.display().to_string(),
            &missing.display().to_string(),
        ],
        4,
    );
    assert!(
        finished.stderr.contains(&missing.display().to_string()),
        "stderr does not name {}:\n{}",
        missing.display(),
        finished.stderr
    );
}

/// nsqd started with `--max-msg-size=1024` and nsq-pub told the same limit: among 40 lines
/// (one empty), one of 1025 bytes and one of 2000 are refused, each reported on stderr with
/// its file and record number, written to `--failed-out` and counted as `too_large`; the other
/// 37, one of exactly 1024 bytes among them, are all acknowledged and stored; exit 1. The same
/// with the producer's batching (`--batch auto`), one PUB per line (`--batch 1`) and explicit
/// MPUBs of 7 (`--batch 7`), where an oversize line must not take its MPUB down with it.
#[test]
fn oversize_lines_are_refused_and_the_rest_published() {
    let nsqd = Nsqd::start_with(NsqdOptions::new().max_msg_size(1024));
    for batch in ["auto", "1", "7"] {
        oversize_lines_with(&nsqd, batch);
    }
}

fn oversize_lines_with(nsqd: &Nsqd, batch: &str) {
    let topic = format!("sized-{batch}");
    let dir = tempfile::tempdir().unwrap();
    let input_path = dir.path().join("lines.txt");
    let failed_path = dir.path().join("failed.out");
    let report_path = dir.path().join("report.json");
    let (mut input, mut good, mut oversize) = (Vec::new(), Vec::new(), Vec::new());
    for record in 1..=40 {
        let line = match record {
            7 => Vec::new(),
            10 => vec![b'x'; 1025],
            20 => vec![b'y'; 1024],
            30 => vec![b'z'; 2000],
            _ => format!("line {record}").into_bytes(),
        };
        input.extend_from_slice(&line);
        input.push(b'\n');
        match line.len() {
            0 => {}
            1..=1024 => good.push(line),
            _ => oversize.push(line),
        }
    }
    std::fs::write(&input_path, &input).unwrap();
    let finished = run(
        [
            "--topic",
            &topic,
            "--nsqd-tcp-address",
            &nsqd.tcp_addr().to_string(),
            "--batch",
            batch,
            "--producer-opt",
            "max_msg_size,1024",
            "--failed-out",
            &failed_path.display().to_string(),
            "--report-json",
            &report_path.display().to_string(),
            &input_path.display().to_string(),
        ],
        b"",
    );
    finished.assert_code(1);
    for (record, len) in [(10, 1025), (30, 2000)] {
        let line = format!(
            "nsq-pub: {}:{record}: message of {len} bytes is over the limit of 1024 bytes; not sent",
            input_path.display()
        );
        assert!(
            finished.stderr.lines().any(|l| l == line),
            "stderr lacks {line:?}:\n{}",
            finished.stderr
        );
    }
    let failed = records(&std::fs::read(&failed_path).unwrap(), b'\n');
    assert_same_messages(&failed, &oversize, "--failed-out");
    assert_eq!(nsqd.topic_depth(&topic), Some(good.len() as u64));
    assert_same_messages(&read_all(nsqd, &topic), &good, "read back");
    let report = report(&report_path);
    assert_eq!(count(&report, "acknowledged"), 37, "{report}");
    assert_eq!(count(&report, "skipped_empty"), 1, "{report}");
    assert_eq!(count(&report, "not_stored"), 2, "{report}");
    assert_eq!(count(&report, "not_stored_by.too_large"), 2, "{report}");
    assert_eq!(count(&report, "unknown"), 0, "{report}");
    assert_eq!(count(&report, "exit_code"), 1, "{report}");
}
