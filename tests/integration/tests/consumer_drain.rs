//! Stopping a consumer mid-run against a real nsqd v1.3.0: what is in handlers finishes, what
//! was delivered and not yet handled is requeued, the report adds up, and nsqd is left with
//! nothing in flight and no client of ours.

mod consumer_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nsq_consumer::{Consumer, Message};
use nsq_test_support::{Nsqd, within};
use tokio::sync::watch;

use consumer_common::{CHANNEL, consumer_config, fill, snapshot, until};

/// 1,000 messages waiting, `max_in_flight` 600 and a run with concurrency 500 whose handler
/// waits for a signal: 500 messages sit in handlers and 100 more are delivered and waiting.
/// The consumer is stopped: nsqd sees RDY 0; the handlers are then released and finish their
/// 500 messages, the drain requeues the 100 others, and the report says so (received =
/// finished + requeued + given up, nothing left in flight). nsqd has nothing in flight
/// afterwards, no client of ours, and the 500 unhandled messages back in the channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_finishes_handlers_and_requeues_the_rest() {
    const TOPIC: &str = "consumer_drain";
    const TOTAL: u64 = 1000;
    const IN_HANDLERS: u64 = 500;
    const MAX_IN_FLIGHT: u64 = 600;
    let nsqd = Nsqd::start();
    fill(&nsqd, TOPIC, CHANNEL, (0..TOTAL).map(|i| format!("m{i}"))).await;

    let mut config = consumer_config();
    config.max_in_flight = MAX_IN_FLIGHT as u32;
    config.drain_timeout = Duration::from_secs(30);
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
    let (release, released) = watch::channel(false);
    let entered = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let run = tokio::spawn(consumer.run(IN_HANDLERS as usize, {
        let (entered, done) = (Arc::clone(&entered), Arc::clone(&done));
        move |_msg: Message| {
            let (entered, done, mut released) =
                (Arc::clone(&entered), Arc::clone(&done), released.clone());
            async move {
                entered.fetch_add(1, Ordering::Relaxed);
                released.wait_for(|go| *go).await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
                Ok::<(), std::io::Error>(())
            }
        }
    }));
    until(
        "500 messages are in handlers and 100 more delivered",
        || {
            entered.load(Ordering::Relaxed) == IN_HANDLERS
                && handle.stats().received == MAX_IN_FLIGHT
        },
    )
    .await;
    assert_eq!(
        snapshot(&nsqd, TOPIC, CHANNEL).in_flight_count,
        MAX_IN_FLIGHT
    );

    handle.stop();
    until("nsqd sees RDY 0", || {
        let channel = nsqd.channel_snapshot(TOPIC, CHANNEL).unwrap();
        channel.clients.iter().all(|c| c.ready_count == 0)
    })
    .await;
    assert_eq!(
        entered.load(Ordering::Relaxed),
        IN_HANDLERS,
        "no handler starts once the consumer is stopped"
    );
    assert_eq!(done.load(Ordering::Relaxed), 0);
    release.send(true).unwrap();
    let report = within("the drain", run).await.unwrap();
    eprintln!("{report}");

    assert_eq!(done.load(Ordering::Relaxed), IN_HANDLERS);
    assert_eq!(report.received, MAX_IN_FLIGHT, "{report}");
    assert_eq!(report.finished, IN_HANDLERS, "{report}");
    assert_eq!(report.requeued, MAX_IN_FLIGHT - IN_HANDLERS, "{report}");
    assert_eq!(report.given_up, 0, "{report}");
    assert_eq!(report.left_in_flight, 0, "{report}");
    assert_eq!(
        report.received,
        report.finished + report.requeued + report.given_up,
        "{report}"
    );
    assert!(report.within_deadline, "{report}");

    until("nsqd has nothing in flight and no client of ours", || {
        let channel = nsqd.channel_snapshot(TOPIC, CHANNEL).unwrap();
        channel.in_flight_count == 0 && channel.clients.is_empty()
    })
    .await;
    let channel = snapshot(&nsqd, TOPIC, CHANNEL);
    assert_eq!(
        channel.depth + channel.deferred_count,
        TOTAL - IN_HANDLERS,
        "{channel:?}"
    );
    assert_eq!(channel.requeue_count, MAX_IN_FLIGHT - IN_HANDLERS);
}
