//! The consumer finding nsqd through a real nsqlookupd v1.3.0 and surviving nsqd failures: a
//! node that registers later is connected, one whose topic is tombstoned or that dies is
//! dropped after the grace period, a lookupd address that is really nsqd's TCP port is refused
//! with an error that says so, and an nsqd killed mid-run and restarted on its port is
//! reconnected to with nothing handled twice that nsqd did not deliver twice.

mod consumer_common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nsq_consumer::{Consumer, Message};
use nsq_test_support::{Nsqd, NsqdOptions, Nsqlookupd, within};

use consumer_common::{
    CHANNEL, consumer_config, fill, number_of, numbered, snapshot, until, until_drained,
};

/// An nsqd registered with `lookupd` that has `topic`, once nsqlookupd lists it.
fn registered_with_topic(lookupd: &Nsqlookupd, topic: &str) -> Nsqd {
    let nsqd = Nsqd::start_with(NsqdOptions::new().lookupd(lookupd));
    nsqd.create_topic(topic);
    lookupd.wait_for_topic(&nsqd, topic);
    nsqd
}

fn clients(nsqd: &Nsqd, topic: &str) -> usize {
    nsqd.channel_snapshot(topic, CHANNEL)
        .map_or(0, |s| s.clients.len())
}

/// Two nsqd are found at start; a third that registers later is connected within a few polls
/// and its messages are handled; the topic tombstoned on the second is dropped, but not before
/// the grace period; the first, killed (its registration goes with its connection to
/// nsqlookupd), is dropped too and only the third remains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookupd_discovery_connects_new_nodes_and_drops_vanished_ones() {
    const TOPIC: &str = "consumer_discovery";
    const GRACE: Duration = Duration::from_secs(2);
    let lookupd = Nsqlookupd::start();
    let (mut first, second) = tokio::task::block_in_place(|| {
        (
            registered_with_topic(&lookupd, TOPIC),
            registered_with_topic(&lookupd, TOPIC),
        )
    });
    let mut config = consumer_config();
    config.lookupd_poll_interval = Duration::from_millis(200);
    config.lookupd_grace_period = GRACE;
    let consumer = within(
        "connect",
        Consumer::builder(TOPIC, CHANNEL)
            .unwrap()
            .config(config)
            .lookupd(lookupd.http_addr().to_string())
            .connect(),
    )
    .await
    .unwrap();
    let handle = consumer.handle();
    let handled: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let run = tokio::spawn(consumer.run(4, {
        let handled = Arc::clone(&handled);
        move |msg: Message| {
            let handled = Arc::clone(&handled);
            async move {
                let body = String::from_utf8_lossy(msg.body()).into_owned();
                handled.lock().unwrap().push((msg.nsqd().to_owned(), body));
                Ok::<(), std::io::Error>(())
            }
        }
    }));
    until("both nsqd have our client", || {
        clients(&first, TOPIC) == 1 && clients(&second, TOPIC) == 1
    })
    .await;
    assert_eq!(handle.stats().connections, 2);

    let third = tokio::task::block_in_place(|| registered_with_topic(&lookupd, TOPIC));
    until("the late nsqd is connected", || clients(&third, TOPIC) == 1).await;
    tokio::task::block_in_place(|| third.http_publish(TOPIC, b"from the third"));
    let third_addr = third.tcp_addr().to_string();
    until("its message is handled", || {
        handled
            .lock()
            .unwrap()
            .contains(&(third_addr.clone(), "from the third".to_owned()))
    })
    .await;
    assert_eq!(handle.stats().connections, 3);

    tokio::task::block_in_place(|| lookupd.tombstone_topic(TOPIC, &second));
    // Several polls have seen the tombstone, the grace period has not passed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        clients(&second, TOPIC),
        1,
        "still connected within the grace period"
    );
    until("the tombstoned nsqd is dropped", || {
        clients(&second, TOPIC) == 0
    })
    .await;

    tokio::task::block_in_place(|| first.stop());
    until("only the third nsqd is left", || {
        handle.stats().connections == 1
    })
    .await;
    // Well past the grace period: the killed nsqd is not dialled back into the set.
    tokio::time::sleep(GRACE + Duration::from_millis(500)).await;
    let stats = handle.stats();
    assert_eq!(stats.connections, 1, "{stats:?}");
    assert_eq!(clients(&second, TOPIC), 0);
    assert_eq!(clients(&third, TOPIC), 1);
    tokio::task::block_in_place(|| third.http_publish(TOPIC, b"still consuming"));
    until("the consumer still consumes", || {
        handled
            .lock()
            .unwrap()
            .iter()
            .any(|(_, body)| body == "still consuming")
    })
    .await;
    handle.stop();
    within("the drain", run).await.unwrap();
}

/// Given nsqd's TCP port as an nsqlookupd address, the consumer does not start, and its error
/// names the mistake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookupd_address_that_is_nsqd_tcp_is_named() {
    let nsqd = Nsqd::start();
    let result = within(
        "connect",
        Consumer::builder("consumer_wrong_port", CHANNEL)
            .unwrap()
            .config(consumer_config())
            .lookupd(nsqd.tcp_addr().to_string())
            .connect(),
    )
    .await;
    let Err(err) = result else {
        panic!("a consumer started with nsqd's TCP port as its nsqlookupd");
    };
    let text = err.to_string();
    assert!(text.contains("nsqd's TCP port"), "{text}");
    assert!(text.contains(&nsqd.tcp_addr().to_string()), "{text}");
}

/// Per number, each handling: the delivery's attempts, and whether the handler started before
/// the restarted nsqd was up.
type Handled = HashMap<usize, Vec<(u16, bool)>>;

/// 2,000 messages kept on disk (`--mem-queue-size=0`, synced on every message), nsqd killed
/// with SIGKILL after 500 are handled and restarted on the same port. The consumer reconnects
/// and handles the rest. A message handled twice must have been delivered again by nsqd: with
/// attempts > 1 (a requeue or timeout), or once before the kill and once after, when the
/// restarted nsqd reads it again from its disk queue (the queue's read position is synced
/// after the read, and SIGKILL can fall in between; such a delivery has attempts 1 again).
/// Messages never handled can only be those in flight when nsqd died (nsqd keeps in-flight
/// messages in memory only), at most `max_in_flight` of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsqd_killed_mid_run_is_reconnected_and_the_rest_consumed() {
    const TOPIC: &str = "consumer_killed";
    const TOTAL: usize = 2000;
    const MAX_IN_FLIGHT: u32 = 20;
    let mut nsqd = Nsqd::start_with(
        NsqdOptions::new()
            .mem_queue_size(0)
            .data_in_memory(true)
            .arg("--sync-every=1"),
    );
    fill(&nsqd, TOPIC, CHANNEL, (0..TOTAL).map(numbered)).await;
    until("the topic has handed everything to the channel", || {
        nsqd.topic_depth(TOPIC) == Some(0)
    })
    .await;

    let mut config = consumer_config();
    config.max_in_flight = MAX_IN_FLIGHT;
    let consumer = within(
        "connect",
        Consumer::builder(TOPIC, CHANNEL)
            .unwrap()
            .config(config)
            .nsqd(nsqd.tcp_addr().to_string())
            .connect(),
    )
    .await
    .unwrap();
    let handle = consumer.handle();
    // Per number, the attempts of each delivery handled, and whether its handler started
    // before the restarted nsqd was up.
    let handled: Arc<Mutex<Handled>> = Arc::default();
    let killed = Arc::new(AtomicBool::new(false));
    let run = tokio::spawn(consumer.run(8, {
        let handled = Arc::clone(&handled);
        let killed = Arc::clone(&killed);
        move |msg: Message| {
            let handled = Arc::clone(&handled);
            let before_kill = !killed.load(Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_micros(500)).await;
                handled
                    .lock()
                    .unwrap()
                    .entry(number_of(msg.body()))
                    .or_default()
                    .push((msg.attempts(), before_kill));
                Ok::<(), std::io::Error>(())
            }
        }
    }));
    until("500 are handled", || handled.lock().unwrap().len() >= 500).await;
    tokio::task::block_in_place(|| nsqd.restart());
    // Set once the new nsqd is up: what the old one delivered was handled while it was being
    // killed and restarted (at most 20 messages, 8 handlers of 0.5 ms), and what the new one
    // delivers comes after the consumer reconnected.
    killed.store(true, Ordering::SeqCst);
    until("the consumer is connected again", || {
        let stats = handle.stats();
        stats.connects >= 2 && stats.connections == 1
    })
    .await;
    until_drained(&[&nsqd], TOPIC, CHANNEL).await;
    let stats = handle.stats();
    handle.stop();
    let report = within("the drain", run).await.unwrap();

    let handled = handled.lock().unwrap();
    let missing: Vec<usize> = (0..TOTAL).filter(|i| !handled.contains_key(i)).collect();
    let duplicates: Vec<(&usize, &Vec<(u16, bool)>)> =
        handled.iter().filter(|(_, a)| a.len() > 1).collect();
    eprintln!(
        "{} handled, {} missing, {} handled more than once; {stats:?}; {report}",
        handled.len(),
        missing.len(),
        duplicates.len()
    );
    for (number, deliveries) in &duplicates {
        let again = deliveries.iter().any(|&(attempts, _)| attempts > 1);
        let across_the_kill = deliveries.iter().any(|&(_, before)| before)
            && deliveries.iter().any(|&(_, before)| !before);
        assert!(
            again || across_the_kill,
            "message {number} was handled {} times without nsqd delivering it again \
             (attempts, handler started before the kill): {deliveries:?}",
            deliveries.len()
        );
    }
    // nsqd keeps in-flight messages in memory only, so a SIGKILL loses what was in flight:
    // at most the RDY count, which never exceeds max_in_flight. Everything else is on disk.
    assert!(
        missing.len() <= MAX_IN_FLIGHT as usize,
        "{} messages were never handled, more than could be in flight when nsqd died \
         ({} counted as lost with the connection): {missing:?}",
        missing.len(),
        stats.lost_with_connection
    );
    assert!(stats.disconnects >= 1, "{stats:?}");
    assert_eq!(report.left_in_flight, 0, "{report}");
    let channel = snapshot(&nsqd, TOPIC, CHANNEL);
    assert_eq!(channel.in_flight_count, 0, "{channel:?}");
}
