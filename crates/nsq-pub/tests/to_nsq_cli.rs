//! nsq-to-nsq against nsq v1.3.0's nsq_to_nsq: the same flags on the same source topic (each
//! through a channel of its own) forward the same messages.

mod common;
mod forward;

use std::process::Command;
use std::time::Duration;

use nsq_test_support::{NsqTool, Nsqd};

use common::{Running, assert_same_messages};
use forward::{channel_state, nsq_to_nsq, read_back, wait_until};

/// `--require-json-field`, `--require-json-value` (a string, then a number) and
/// `--whitelist-json-field`, given Go-style (`-flag=value`) to both binaries: the destination
/// topics end with the same messages, byte for byte. Bodies that are not JSON objects, and
/// objects without the field or with another value, are not forwarded by either.
#[test]
fn json_flags_forward_what_nsq_to_nsq_forwards() {
    let source = Nsqd::start();
    let destination = Nsqd::start();
    let bodies: &[&str] = &[
        r#"{"kind":"click","n":1,"extra":"x"}"#,
        r#"{"kind":"click","n":2.5}"#,
        r#"{"kind":"click","n":3.0,"extra":[1,2]}"#,
        r#"{"kind":"view","n":4}"#,
        r#"{"kind":7,"n":5}"#,
        r#"{"n":6}"#,
        "not json",
        "[1,2,3]",
        r#"{"kind":"click"}"#,
    ];
    let number_bodies: &[&str] = &[r#"{"kind":2,"n":1}"#, r#"{"kind":"2"}"#, r#"{"kind":3}"#];
    for (topic, bodies, value, passing) in [
        ("strings", bodies, "click", 4),
        ("numbers", number_bodies, "2", 2),
    ] {
        // Both channels exist before the messages are published, so each gets every one.
        source.create_channel(topic, "go");
        source.create_channel(topic, "rs");
        for body in bodies {
            source.http_publish(topic, body.as_bytes());
        }
        let args = |channel: &str, out: &str| -> Vec<String> {
            vec![
                format!("-topic={topic}"),
                format!("-channel={channel}"),
                format!("-nsqd-tcp-address={}", source.tcp_addr()),
                format!("-destination-nsqd-tcp-address={}", destination.tcp_addr()),
                format!("-destination-topic={out}"),
                "-require-json-field=kind".to_owned(),
                format!("-require-json-value={value}"),
                "-whitelist-json-field=kind".to_owned(),
                "-whitelist-json-field=n".to_owned(),
            ]
        };
        let go_out = format!("{topic}_go");
        let rs_out = format!("{topic}_rs");
        let mut go = Command::new(NsqTool::NsqToNsq.path());
        go.args(args("go", &go_out));
        let mut rs = nsq_to_nsq();
        rs.args(args("rs", &rs_out));
        let go = Running::spawn(&mut go, Vec::new());
        let mut rs = Running::spawn(&mut rs, Vec::new());
        wait_until(
            Duration::from_secs(30),
            "nsq-to-nsq answers every message",
            || {
                assert!(rs.is_running(), "nsq-to-nsq ended on its own");
                channel_state(&source, topic, "rs") == (0, 0)
                    && destination.topic_message_count(&rs_out) == Some(passing)
            },
        );
        wait_until(Duration::from_secs(30), "nsq_to_nsq forwards", || {
            destination.topic_message_count(&go_out) == Some(passing)
        });
        go.signal("TERM");
        rs.signal("TERM");
        let go = go.wait_within(Duration::from_secs(30));
        let rs = rs.wait_within(Duration::from_secs(30));
        assert_eq!(rs.code, Some(130), "nsq-to-nsq's stderr:\n{}", rs.stderr);
        assert!(
            rs.stderr.contains(&format!(
                "filtered:   {:>12}",
                bodies.len() as u64 - passing
            )),
            "the report counts what was filtered:\n{}",
            rs.stderr
        );
        assert_eq!(go.code, Some(0), "nsq_to_nsq's stderr:\n{}", go.stderr);
        let got = read_back(&[&destination], &rs_out, passing as usize);
        let want = read_back(&[&destination], &go_out, passing as usize);
        assert_same_messages(
            &got,
            &want,
            &format!("{topic}: nsq-to-nsq against nsq_to_nsq"),
        );
    }
}

/// Flags nsq-to-nsq cannot act on are usage errors (exit 2) that name the flag, found before
/// anything is dialled: a missing destination, a mode of no strategy, an option value that does
/// not parse, a source given both ways, a topic name nsqd refuses.
#[test]
fn bad_flags_are_usage_errors_that_name_the_flag() {
    let source = ["-topic=t", "-nsqd-tcp-address=127.0.0.1:1"];
    let dest = "-destination-nsqd-tcp-address=127.0.0.1:2";
    let cases: [(&[&str], &str); 6] = [
        (&source, "--destination-nsqd-tcp-address"),
        (&[source[0], source[1], dest, "-mode=random"], "--mode"),
        (&[source[0], source[1], dest, "-mode=fan-out"], "--mode"),
        (
            &[
                source[0],
                source[1],
                dest,
                "-consumer-opt=max_attempts,many",
            ],
            "--consumer-opt",
        ),
        (
            &[
                source[0],
                source[1],
                dest,
                "-lookupd-http-address=127.0.0.1:3",
            ],
            "--lookupd-http-address",
        ),
        (&["-topic=no good", source[1], dest], "--topic"),
    ];
    for (args, flag) in cases {
        let finished = Running::spawn(nsq_to_nsq().args(args), Vec::new())
            .wait_within(Duration::from_secs(10));
        assert_eq!(
            finished.code,
            Some(2),
            "{args:?}: stderr:\n{}",
            finished.stderr
        );
        assert!(
            finished.stderr.contains(flag),
            "{args:?}: the error names {flag}:\n{}",
            finished.stderr
        );
    }
}
