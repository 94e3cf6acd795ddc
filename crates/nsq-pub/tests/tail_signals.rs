//! nsq-tail's ends against a real nsqd: an interrupt drains and exits 130 with nothing left in
//! flight; a closed output ends the run with status 0; a node that cannot be reached is named.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use nsq_test_support::{Nsqd, closed_addr};

use common::{Running, channel_count, mpub, nsq_tail, wait_for_depth, wait_nothing_in_flight};

/// nsq-tail prints everything the channel holds and waits; SIGTERM (and SIGINT) make it drain
/// and exit 130, leaving nothing in flight, and what is published later stays in the channel.
#[test]
fn an_interrupt_drains_and_exits_130() {
    let nsqd = Nsqd::start();
    let addr = nsqd.tcp_addr().to_string();
    for (signal, channel) in [("TERM", "term"), ("INT", "int")] {
        let topic = format!("interrupted-{channel}");
        nsqd.create_channel(&topic, channel);
        let bodies: Vec<Vec<u8>> = (0..100).map(|i| format!("b{i}").into_bytes()).collect();
        mpub(&nsqd, &topic, &bodies);
        let mut command = nsq_tail();
        command.args([
            "--topic",
            &topic,
            "--channel",
            channel,
            "--nsqd-tcp-address",
            &addr,
        ]);
        let running = Running::spawn(&mut command, Vec::new());
        let deadline = Instant::now() + Duration::from_secs(20);
        while channel_count(&nsqd, &topic, channel, "depth") > 0
            || channel_count(&nsqd, &topic, channel, "in_flight_count") > 0
        {
            assert!(
                Instant::now() < deadline,
                "nsq-tail did not read the channel"
            );
            thread::sleep(Duration::from_millis(20));
        }
        running.signal(signal);
        let finished = running.wait();
        assert_eq!(finished.code, Some(130), "stderr:\n{}", finished.stderr);
        assert_eq!(finished.stdout.lines().count(), 100);
        assert!(
            finished.stderr.contains(&format!("SIG{signal}")),
            "{}",
            finished.stderr
        );
        wait_nothing_in_flight(&nsqd, &topic, channel);
        // The channel is still there, durable, and nothing else reads it.
        mpub(&nsqd, &topic, &bodies[..3]);
        wait_for_depth(&nsqd, &topic, channel, 3);
    }
}

/// No nsqd at the address given: exit status 4, and the error names the address.
#[test]
fn an_unreachable_nsqd_is_named_and_exits_4() {
    let addr = closed_addr().to_string();
    let mut command = nsq_tail();
    command.args(["-topic=t", &format!("-nsqd-tcp-address={addr}")]);
    let finished = Running::spawn(&mut command, Vec::new()).wait();
    assert_eq!(finished.code, Some(4), "stderr:\n{}", finished.stderr);
    assert!(
        finished.stderr.contains(&format!("nsqd {addr}")),
        "{}",
        finished.stderr
    );
    assert!(finished.stdout.is_empty());
}

/// Standard output's reader goes away after one line (as `nsq-tail ... | head -1` does) while
/// nsq-tail still has 2 MB to write: it exits 0, leaves nothing in flight, and what it did not
/// write is back in the channel.
#[test]
fn a_closed_output_ends_the_run_with_status_0_and_requeues_the_rest() {
    let nsqd = Nsqd::start();
    let (topic, channel) = ("closed", "durable");
    nsqd.create_channel(topic, channel);
    let bodies: Vec<Vec<u8>> = (0..20_000)
        .map(|i| format!("{i:0100}").into_bytes())
        .collect();
    mpub(&nsqd, topic, &bodies);
    wait_for_depth(&nsqd, topic, channel, 20_000);
    let mut child = nsq_tail()
        .args([
            "--topic",
            topic,
            "--channel",
            channel,
            "--nsqd-tcp-address",
            &nsqd.tcp_addr().to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nsq-tail");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("a line");
    assert_eq!(line.len(), 101);
    drop(stdout);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("nsq-tail still running 30 s after its output closed");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr);
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    wait_nothing_in_flight(&nsqd, topic, channel);
    let depth = channel_count(&nsqd, topic, channel, "depth");
    assert!(depth > 0 && depth < 20_000, "depth {depth}");
}
