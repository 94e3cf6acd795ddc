//! nsq-tail's output against a real nsqd: JSON lines keep any body, raw output is nsq_tail's
//! byte for byte.

mod common;

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use nsq_test_support::{NsqTool, Nsqd};
use serde_json::Value;

use common::{Finished, Running, assert_same_messages, mpub, nsq_tail, wait_for_depth};

/// Bodies that a line-based framing would break: newlines, carriage returns, every byte value,
/// invalid UTF-8, quotes and backslashes.
fn awkward_bodies() -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = vec![
        b"plain".to_vec(),
        b"two\nlines".to_vec(),
        b"\n".to_vec(),
        b"crlf\r\n".to_vec(),
        b"\"quoted\" \\ back".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x80],
        "\u{e9}t\u{e9}".as_bytes().to_vec(),
        (0..=255u8).collect(),
    ];
    bodies.extend((0..50).map(|i| format!("n{i}\n{i}").into_bytes()));
    bodies
}

fn run(mut command: Command, args: &[String]) -> Finished {
    command.args(args);
    let finished = Running::spawn(&mut command, Vec::new()).wait();
    assert_eq!(
        finished.code,
        Some(0),
        "{command:?}: stderr:\n{}",
        finished.stderr
    );
    finished
}

/// Every JSON line parses, names the topic and the nsqd, and its base64 body decodes to a
/// published body: all of them, each once.
#[test]
fn binary_and_newline_bodies_survive_the_json_framing() {
    let nsqd = Nsqd::start();
    let addr = nsqd.tcp_addr().to_string();
    let bodies = awkward_bodies();
    nsqd.create_channel("awkward", "json");
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    mpub(&nsqd, "awkward", &bodies);
    wait_for_depth(&nsqd, "awkward", "json", bodies.len() as u64);
    let args: Vec<String> = [
        "-topic=awkward",
        "-channel=json",
        &format!("-nsqd-tcp-address={addr}"),
        "-output=json",
        &format!("-n={}", bodies.len()),
    ]
    .map(String::from)
    .to_vec();
    let finished = run(nsq_tail(), &args);
    let lines: Vec<&str> = finished.stdout.lines().collect();
    assert_eq!(lines.len(), bodies.len(), "one line per message");
    let mut got = Vec::new();
    for line in lines {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(value["topic"], "awkward", "{line}");
        assert_eq!(value["nsqd"], addr.as_str(), "{line}");
        assert_eq!(value["attempts"], 1, "{line}");
        assert_eq!(value["id"].as_str().map(str::len), Some(16), "{line}");
        let timestamp = value["timestamp"].as_i64().unwrap();
        assert!(timestamp >= before, "{line}");
        got.push(STANDARD.decode(value["body"].as_str().unwrap()).unwrap());
    }
    assert_same_messages(&got, &bodies, "JSON bodies against the published ones");
}

/// The same topic read by nsq_tail v1.3.0 and by nsq-tail, each on a channel of its own, with
/// and without `--print-topic`: the same bytes on standard output.
#[test]
fn raw_output_is_nsq_tail_s_byte_for_byte() {
    let nsqd = Nsqd::start();
    let addr = nsqd.tcp_addr().to_string();
    let bodies = awkward_bodies();
    for channel in ["go", "rs", "go-topic", "rs-topic"] {
        nsqd.create_channel("same", channel);
    }
    mpub(&nsqd, "same", &bodies);
    for channel in ["go", "rs", "go-topic", "rs-topic"] {
        wait_for_depth(&nsqd, "same", channel, bodies.len() as u64);
    }
    for (go, rs, extra) in [
        ("go", "rs", None),
        ("go-topic", "rs-topic", Some("-print-topic")),
    ] {
        let args = |channel: &str| -> Vec<String> {
            let mut args: Vec<String> = [
                "-topic=same".to_owned(),
                format!("-channel={channel}"),
                format!("-nsqd-tcp-address={addr}"),
                format!("-n={}", bodies.len()),
            ]
            .to_vec();
            args.extend(extra.map(String::from));
            args
        };
        let theirs = run(Command::new(NsqTool::NsqTail.path()), &args(go));
        let ours = run(nsq_tail(), &args(rs));
        assert!(!theirs.stdout_bytes.is_empty());
        assert!(
            ours.stdout_bytes == theirs.stdout_bytes,
            "nsq-tail {extra:?}:\n{:?}\nnsq_tail:\n{:?}",
            ours.stdout,
            theirs.stdout
        );
    }
}
