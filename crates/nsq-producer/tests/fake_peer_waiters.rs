//! Publishers waiting for room in a full queue, against a scripted peer: every one gets in, in
//! the order it started waiting, and one whose deadline passes first is not sent.

mod common;

use nsq_test_support::{topic, within};
use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use nsq_producer::{NotSentReason, ProducerConfig, PublishError};
use nsq_proto::server::ClientCommand;
use tokio::sync::oneshot;

/// Callers started against a peer that reads nothing until told.
const CALLERS: usize = 50_000;
const QUEUE: usize = 1024;
const WINDOW: usize = 4096;

/// 50,000 `publish_async` calls driven from one `FuturesUnordered` in one task, nearly all of
/// them waiting for room behind a peer that does not read. Once it reads, every call returns a
/// publish, each waiting call is polled once more, every publish is acknowledged, and the
/// bodies of the callers that waited arrive in call order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_callers_in_one_futures_unordered_all_get_in_in_order() {
    let server = FakeServer::bind().await;
    let mut config = ProducerConfig::default();
    config.queue_capacity = QUEUE;
    config.max_pipelined = WINDOW;
    // Long enough never to pass here; it keeps the deadline wait in the path.
    config.publish_timeout = Some(Duration::from_secs(3600));
    let (producer, mut nsqd) = connect(&server, config).await;

    let (go, wait) = oneshot::channel::<()>();
    let fake = tokio::spawn(async move {
        wait.await.unwrap();
        let mut bodies = Vec::with_capacity(CALLERS);
        while bodies.len() < CALLERS {
            match within("a command", nsqd.expect_command()).await {
                ClientCommand::Pub { body, .. } => bodies.push(body),
                ClientCommand::Mpub { bodies: more, .. } => bodies.extend(more),
                other => panic!("expected a PUB or MPUB, got {other:?}"),
            }
            nsqd.send_ok().await;
        }
        bodies
    });

    let topic = topic(TOPIC);
    let started = AtomicUsize::new(0);
    let polls = AtomicUsize::new(0);
    let mut calls: FuturesUnordered<_> = (0..CALLERS)
        .map(|i| {
            let (topic, started, polls) = (&topic, &started, &polls);
            let mut call = Box::pin(producer.publish_async(topic, i.to_string()));
            let mut first = true;
            poll_fn(move |cx| {
                if std::mem::take(&mut first) {
                    started.fetch_add(1, Ordering::Relaxed);
                }
                polls.fetch_add(1, Ordering::Relaxed);
                call.as_mut().poll(cx).map(|result| (i, result))
            })
        })
        .collect();

    // Drive the calls until every one was polled and the queue is full.
    let mut returned = Vec::with_capacity(CALLERS);
    within("the calls to start", async {
        loop {
            tokio::select! {
                biased;
                Some(call) = calls.next() => returned.push(call),
                () = tokio::time::sleep(Duration::from_millis(20)) => {
                    if started.load(Ordering::Relaxed) == CALLERS
                        && producer.stats().queued >= QUEUE as u64
                    {
                        break;
                    }
                }
            }
        }
    })
    .await;
    let before = returned.len();
    assert!(
        (QUEUE..=QUEUE + WINDOW + 1).contains(&before),
        "{before} calls returned against a stalled peer"
    );
    let waiting = CALLERS - before;
    let mut got_in = vec![false; CALLERS];
    for (i, _) in &returned {
        got_in[*i] = true;
    }

    let polls_before = polls.load(Ordering::Relaxed);
    go.send(()).unwrap();
    within("every call to return", async {
        while let Some(call) = calls.next().await {
            returned.push(call);
        }
    })
    .await;
    let polls_after = polls.load(Ordering::Relaxed) - polls_before;
    // Each waiting call is woken once, when it is admitted, and then gets in.
    assert!(
        polls_after <= 2 * waiting,
        "{polls_after} polls for {waiting} waiting calls"
    );

    assert_eq!(returned.len(), CALLERS);
    let mut publishes = Vec::with_capacity(CALLERS);
    for (i, result) in returned {
        match result {
            Ok(publish) => publishes.push(publish),
            Err(err) => panic!("call {i} failed: {err}"),
        }
    }
    within("every result", async {
        for publish in publishes {
            assert_eq!(publish.await, Ok(()));
        }
    })
    .await;
    let bodies = within("the fake", fake).await.unwrap();
    let order: Vec<usize> = bodies
        .iter()
        .map(|body| std::str::from_utf8(body).unwrap().parse().unwrap())
        .collect();
    let mut seen = order.clone();
    seen.sort_unstable();
    assert!(
        seen.into_iter().eq(0..CALLERS),
        "every body exactly once on the wire"
    );
    // The callers that waited were admitted in the order they started waiting, which is call
    // order, and nothing else was admitted after them. (Under tokio's cooperative budget, a
    // woken call could be put off to a later pass and enter the queue behind later ones.)
    let waited: Vec<usize> = order.into_iter().filter(|i| !got_in[*i]).collect();
    assert_eq!(waited.len(), waiting);
    if let Some(at) = waited.windows(2).position(|w| w[0] > w[1]) {
        panic!(
            "waiting callers got in out of order: {} before {}",
            waited[at],
            waited[at + 1]
        );
    }
    let stats = producer.stats();
    assert_eq!((stats.acked, stats.queued), (CALLERS as u64, 0));
}

/// A publisher waiting for room whose publish timeout passes fails `DeadlineExpired`, and takes
/// no room with it: the next publisher gets in.
#[tokio::test(start_paused = true)]
async fn waiting_caller_past_its_deadline_is_not_sent() {
    let server = FakeServer::bind().await;
    let mut config = unbatched();
    config.queue_capacity = 2;
    config.max_pipelined = 1;
    config.publish_timeout = Some(Duration::from_secs(2));
    config.stall_grace = Duration::from_secs(60);
    let (producer, mut nsqd) = connect(&server, config).await;
    let topic = topic(TOPIC);

    // One written and unanswered, two queued: full.
    let mut pending = Vec::new();
    for body in ["1", "2", "3"] {
        pending.push(
            within(
                "publish_async with room",
                producer.publish_async(&topic, body),
            )
            .await
            .unwrap(),
        );
    }
    assert_eq!(expect_pub(&mut nsqd).await, "1");
    let late = within(
        "the waiting publish",
        producer.publish_async(&topic, "late"),
    )
    .await;
    assert_eq!(
        late.map(drop),
        Err(PublishError::NotSent(NotSentReason::DeadlineExpired))
    );
    // The others passed their deadlines too: "1" on the wire times out; "2" and "3", queued
    // behind the full window, fail when nsqd's late answer to "1" lets them reach it.
    nsqd.send_ok().await;
    let results: Vec<_> = within("the earlier publishes", async {
        let mut results = Vec::new();
        for publish in pending {
            results.push(publish.await);
        }
        results
    })
    .await;
    let expired = Err(PublishError::NotSent(NotSentReason::DeadlineExpired));
    assert_eq!(
        results,
        vec![timed_out(&producer), expired.clone(), expired]
    );
    assert_eq!(producer.stats().not_sent, 3);

    // Room again: the next publish gets in and through.
    let next = within(
        "a publish after the wait",
        producer.publish_async(&topic, "4"),
    )
    .await
    .unwrap();
    assert_eq!(expect_pub(&mut nsqd).await, "4");
    nsqd.send_ok().await;
    assert_eq!(within("4", next).await, Ok(()));
}
