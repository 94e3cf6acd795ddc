//! nsq-tail through nsqlookupd, on its default ephemeral channel: it finds the nsqd that has
//! the topic and reads what the topic holds.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use nsq_test_support::{Nsqd, NsqdOptions, Nsqlookupd};

use common::{Running, mpub, nsq_tail};

/// Three messages in a topic with no channel yet; nsq-tail given only the nsqlookupd subscribes
/// on `tail<6 digits>#ephemeral`, prints the three and exits 0; nsqd then deletes the channel
/// (it was ephemeral), and the topic is left with none.
#[test]
fn lookupd_finds_the_nsqd_and_the_default_channel_is_ephemeral() {
    let lookupd = Nsqlookupd::start();
    let nsqd = Nsqd::start_with(NsqdOptions::new().lookupd(&lookupd));
    mpub(
        &nsqd,
        "found",
        &[b"one".to_vec(), b"two".to_vec(), b"three".to_vec()],
    );
    lookupd.wait_for_topic(&nsqd, "found");
    let mut command = nsq_tail();
    command.args([
        "-topic=found",
        &format!("-lookupd-http-address={}", lookupd.http_addr()),
        "-n=3",
    ]);
    let finished = Running::spawn(&mut command, Vec::new()).wait();
    assert_eq!(finished.code, Some(0), "stderr:\n{}", finished.stderr);
    assert_eq!(finished.stdout, "one\ntwo\nthree\n");
    // An ephemeral channel goes when its last reader leaves; a durable one would stay.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = nsqd.topic_stats("found").expect("the topic");
        let names: Vec<String> = stats["channels"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|c| c["channel_name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if names.is_empty() {
            break;
        }
        assert!(
            names
                .iter()
                .all(|n| n.starts_with("tail") && n.ends_with("#ephemeral")),
            "{names:?}"
        );
        assert!(
            Instant::now() < deadline,
            "{names:?} still there after 10 s"
        );
        thread::sleep(Duration::from_millis(20));
    }
}
