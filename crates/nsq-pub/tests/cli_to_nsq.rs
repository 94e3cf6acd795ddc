//! nsq-pub as a drop-in for nsq's to_nsq v1.3.0: the same argument lists and the same input go
//! through both binaries against one real nsqd, each to a topic of its own, and must end the
//! same way (exit status, and what nsqd stored).

mod common;

use std::process::Command;

use nsq_test_support::{NsqTool, Nsqd, closed_addr, read_all};

use common::{Finished, Running, assert_same_messages, nsq_pub};

/// Runs `command` with `args` (`{T}` replaced with `topic`, `{A}` with `addr`) and `stdin`.
fn run_with(
    mut command: Command,
    args: &[&str],
    topic: &str,
    addr: &str,
    stdin: &[u8],
) -> Finished {
    command.args(
        args.iter()
            .map(|a| a.replace("{T}", topic).replace("{A}", addr)),
    );
    Running::spawn(&mut command, stdin.to_vec()).wait()
}

/// Both binaries, each on a topic of its own; asserts that both exit with `code`, and returns
/// what each stored.
fn both(nsqd: &Nsqd, case: usize, args: &[&str], stdin: &[u8], code: i32) {
    let addr = nsqd.tcp_addr().to_string();
    let (go_topic, rs_topic) = (format!("go{case}"), format!("rs{case}"));
    let go = run_with(
        Command::new(NsqTool::ToNsq.path()),
        args,
        &go_topic,
        &addr,
        stdin,
    );
    let rs = run_with(nsq_pub(), args, &rs_topic, &addr, stdin);
    assert_eq!(
        go.code,
        Some(code),
        "to_nsq {args:?}: exit status; stderr:\n{}",
        go.stderr
    );
    assert_eq!(
        rs.code,
        Some(code),
        "nsq-pub {args:?}: exit status (to_nsq's is {code}); stderr:\n{}",
        rs.stderr
    );
    assert_same_messages(
        &read_all(nsqd, &rs_topic),
        &read_all(nsqd, &go_topic),
        &format!("nsq-pub {args:?} against to_nsq"),
    );
}

/// Every spelling Go's flag package takes, for each of to_nsq's flags: one dash or two, the
/// value after `=` or as the next argument, a value that starts with a dash (`-rate -1`: no
/// limit), `--` ending the flags, and the same address given twice (one nsqd, each message
/// stored once). nsq-pub exits 0 as to_nsq does and stores the same messages.
#[test]
fn every_to_nsq_spelling_publishes_what_to_nsq_publishes() {
    let nsqd = Nsqd::start();
    let lines: &[u8] = b"alpha\nbeta;gamma\n\n-dash\nlast\n";
    let fields: &[u8] = b"alpha;beta\ngamma;;-dash;last;";
    let cases: [(&[&str], &[u8]); 10] = [
        (&["-topic={T}", "-nsqd-tcp-address={A}"], lines),
        (&["-topic", "{T}", "-nsqd-tcp-address", "{A}"], lines),
        (&["--topic={T}", "--nsqd-tcp-address={A}"], lines),
        (&["--topic", "{T}", "--nsqd-tcp-address", "{A}"], lines),
        (
            &["-topic", "{T}", "--nsqd-tcp-address={A}", "-delimiter", ";"],
            fields,
        ),
        (
            &["-topic={T}", "-nsqd-tcp-address", "{A}", "--delimiter=;"],
            fields,
        ),
        (
            &["-topic={T}", "-nsqd-tcp-address", "{A}", "-rate", "-1"],
            lines,
        ),
        (
            &[
                "-topic",
                "{T}",
                "-nsqd-tcp-address",
                "{A}",
                "--rate=0",
                "-producer-opt",
                "write_timeout,2s",
                "--producer-opt=dial_timeout,3s",
            ],
            lines,
        ),
        (
            &[
                "-topic",
                "{T}",
                "-nsqd-tcp-address",
                "{A}",
                "--nsqd-tcp-address={A}",
            ],
            lines,
        ),
        (&["-topic", "{T}", "-nsqd-tcp-address", "{A}", "--"], lines),
    ];
    for (case, (args, stdin)) in cases.iter().enumerate() {
        both(&nsqd, case, args, stdin, 0);
    }
}

/// Flags to_nsq refuses (a flag without its value, an unknown flag) are usage errors for both:
/// exit status 2, nothing published.
#[test]
fn what_to_nsq_refuses_as_usage_nsq_pub_refuses_too() {
    let nsqd = Nsqd::start();
    let cases: [&[&str]; 3] = [
        &["-nsqd-tcp-address", "{A}", "-topic"],
        &["-topic", "{T}", "-nsqd-tcp-address", "{A}", "-no-such-flag"],
        &["-topic", "{T}", "-nsqd-tcp-address"],
    ];
    for (case, args) in cases.iter().enumerate() {
        both(&nsqd, 100 + case, args, b"one\n", 2);
    }
    assert!(common::topic_names(&nsqd).is_empty());
}

/// With nothing to publish (empty input, or only empty lines), no nsqd up is no error: exit 0,
/// as to_nsq, which connects for its first message.
#[test]
fn empty_input_with_nsqd_down_exits_0_as_to_nsq_does() {
    let addr = closed_addr().to_string();
    for stdin in [&b""[..], b"\n\n"] {
        for (name, command) in [
            ("to_nsq", Command::new(NsqTool::ToNsq.path())),
            ("nsq-pub", nsq_pub()),
        ] {
            let finished = run_with(
                command,
                &["-topic", "{T}", "-nsqd-tcp-address", "{A}"],
                "empty",
                &addr,
                stdin,
            );
            assert_eq!(
                finished.code,
                Some(0),
                "{name} with input {stdin:?} and nsqd down; stderr:\n{}",
                finished.stderr
            );
        }
    }
    // One line to publish and no nsqd: an error, for both (to_nsq 1, nsq-pub 4).
    for command in [Command::new(NsqTool::ToNsq.path()), nsq_pub()] {
        let finished = run_with(
            command,
            &["-topic", "{T}", "-nsqd-tcp-address", "{A}"],
            "empty",
            &addr,
            b"one\n",
        );
        assert_ne!(finished.code, Some(0), "stderr:\n{}", finished.stderr);
    }
}
