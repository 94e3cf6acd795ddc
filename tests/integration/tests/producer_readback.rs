//! The read-back test against a real nsqd v1.3.0: 64 tasks publish through one producer with
//! PUB, MPUB and DPUB mixed, a consumer reads everything back, and every caller's results are
//! checked against what nsqd delivered, message by message.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use nsq_producer::{ErrorCode, NotSentReason, Producer, PublishError, Topic};
use nsq_test_support::{Nsqd, NsqdOptions, NsqdReader, Rng, channel_number, topic};

use common::{eventually, producer_config};

const TASKS: u64 = 64;
/// Messages per task: 640,000 in all, which a debug build on a 2-core machine publishes and
/// reads back in about 13 seconds. `NSQ_READBACK_PER_TASK` changes it (e.g. 1000 for a quick
/// run while working on the producer).
const PER_TASK_DEFAULT: u64 = 10_000;
/// Largest message body; also nsqd's `--max-msg-size` here.
const MAX_BODY: usize = 2000;
/// Requests each task keeps in flight.
const WINDOW: usize = 16;
/// Tasks that also send one message nsqd refuses (one byte above `--max-msg-size`, with the
/// producer's limit raised on purpose). Each rejection ends a connection with other tasks'
/// requests written behind it, which must come back `NotSent` and not be stored, while the
/// requests before it must be stored: a result delivered to the wrong caller shows up here.
const POISONED_TASKS: u64 = 8;
/// Turns a hang into a failure; far above the expected run time, even for the full size.
const GUARD: Duration = Duration::from_secs(600);

/// A message id: the task in the high half, its sequence number in the low half.
fn id(task: u64, seq: u64) -> u64 {
    (task << 32) | seq
}

/// A body of `len` bytes that names its id and can be checked byte for byte on arrival: a
/// `task:seq:len|` header, then a filler derived from the id. Bodies are at least as long as
/// their header (up to 18 bytes), since a shorter body cannot carry a unique id.
fn body(task: u64, seq: u64, len: usize) -> Bytes {
    let mut body = format!("{task}:{seq}:{len}|").into_bytes();
    let len = len.max(body.len() + 1);
    // The header states the requested length; pad to what it takes to hold it.
    let fill = b'a' + ((task * 31 + seq) % 26) as u8;
    body.resize(len, fill);
    Bytes::from(body)
}

/// The id of a body built by [`body`], if the whole body is as it was built.
fn check(received: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(received).ok()?;
    let (header, _) = text.split_once('|')?;
    let mut parts = header.split(':');
    let task: u64 = parts.next()?.parse().ok()?;
    let seq: u64 = parts.next()?.parse().ok()?;
    let len: usize = parts.next()?.parse().ok()?;
    (body(task, seq, len) == received).then(|| id(task, seq))
}

/// One request and how it ended.
#[derive(Debug)]
struct Outcome {
    task: u64,
    ids: Vec<u64>,
    poison: bool,
    result: Result<(), PublishError>,
}

/// One publisher: `per_task` messages in PUBs, MPUBs of 1 to 20 and DPUBs deferred 0 to 50 ms,
/// with up to [`WINDOW`] requests in flight, and a poison request at `poison_at` if given.
async fn publisher(
    producer: Producer,
    t: Topic,
    task: u64,
    per_task: u64,
    mut rng: Rng,
    poison_at: Option<u64>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let mut window = FuturesOrdered::new();
    let mut seq = 0;
    let mut request = 0;
    while seq < per_task {
        let mut ids = Vec::new();
        let poison = poison_at == Some(request);
        request += 1;
        let queued = if poison {
            producer.publish_async(&t, vec![b'!'; MAX_BODY + 1]).await
        } else {
            match rng.range(0, 3) {
                0 | 1 => {
                    ids.push(id(task, seq));
                    let b = body(task, seq, rng.range(1, MAX_BODY as u64) as usize);
                    seq += 1;
                    producer.publish_async(&t, b).await
                }
                2 => {
                    let n = rng.range(1, 20).min(per_task - seq);
                    let mut bodies = Vec::new();
                    for _ in 0..n {
                        ids.push(id(task, seq));
                        bodies.push(body(task, seq, rng.range(1, MAX_BODY as u64) as usize));
                        seq += 1;
                    }
                    producer.multi_publish_async(&t, bodies).await
                }
                _ => {
                    ids.push(id(task, seq));
                    let b = body(task, seq, rng.range(1, MAX_BODY as u64) as usize);
                    seq += 1;
                    let delay = Duration::from_millis(rng.range(0, 50));
                    producer.deferred_publish_async(&t, delay, b).await
                }
            }
        };
        match queued {
            Ok(publish) => window.push_back(async move {
                Outcome {
                    task,
                    ids,
                    poison,
                    result: publish.await,
                }
            }),
            Err(err) => outcomes.push(Outcome {
                task,
                ids,
                poison,
                result: Err(err),
            }),
        }
        if window.len() >= WINDOW {
            outcomes.push(window.next().await.expect("window not empty"));
        }
    }
    while let Some(outcome) = window.next().await {
        outcomes.push(outcome);
    }
    outcomes
}

/// 64 tasks publish through one producer while a consumer (SUB, RDY 2500, FIN) reads the
/// channel. Every message has a distinct body of random size naming its task and sequence
/// number. Afterwards: every body arrived intact and once; every acknowledged message was read;
/// nothing was read that was not acknowledged or of unknown outcome; requests that were not sent
/// or were rejected were not stored; an MPUB was stored whole or not at all; and the producer's
/// counters agree with what the callers saw.
///
/// One command per publish here, so that each refused message is alone in its command and
/// every rejection can be traced to exactly the request that caused it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readback_many_tasks_mixed_commands() {
    readback("readback", false).await;
}

/// The same with automatic batching (the default): consecutive PUBs share MPUBs, so a refused
/// message takes the other PUBs of its batch down with it. Those must be rejected with nsqd's
/// MPUB text and not stored; everything else is checked as above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readback_many_tasks_mixed_commands_batched() {
    readback("readback_batched", true).await;
}

async fn readback(name: &str, batching: bool) {
    let per_task = std::env::var("NSQ_READBACK_PER_TASK")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(PER_TASK_DEFAULT);
    let mut rng = Rng::from_env_or_clock(name);
    // Everything in memory: the channel's memory queue holds what the consumer has not read.
    let nsqd = Nsqd::start_with(
        NsqdOptions::new()
            .max_msg_size(MAX_BODY as u64)
            .mem_queue_size(10_000_000),
    );
    // Created before publishing, so that every message goes to this channel.
    nsqd.create_channel(name, "ch");
    let mut config = producer_config();
    config.limits.max_msg_size = MAX_BODY as u64 + 1;
    config.publish_timeout = Some(Duration::from_secs(120));
    config.batching = batching;
    let producer = Producer::new(nsqd.tcp_addr().to_string(), config).unwrap();
    let t = topic(name);

    // The reader runs on a thread of its own until it has read what nsqd says it stored, which
    // is known once the publishers are done.
    let target = Arc::new(OnceLock::new());
    let mut reader = NsqdReader::subscribe(nsqd.tcp_addr(), name, "ch");
    let reader = tokio::task::spawn_blocking({
        let target = Arc::clone(&target);
        move || {
            let mut read = Vec::new();
            let mut corrupt = Vec::new();
            while target
                .get()
                .is_none_or(|&target| ((read.len() + corrupt.len()) as u64) < target)
            {
                if let Some(message) = reader.next_within(Duration::from_millis(50)) {
                    match check(&message.body) {
                        Some(id) => read.push(id),
                        None => corrupt.push(message.body),
                    }
                }
            }
            reader.flush();
            (read, corrupt, reader.redeliveries())
        }
    });

    let publishers: Vec<_> = (0..TASKS)
        .map(|task| {
            let mut task_rng = Rng::new(rng.next_u64());
            let poison_at = (task < POISONED_TASKS).then(|| task_rng.range(0, per_task / 4));
            tokio::spawn(publisher(
                producer.clone(),
                t.clone(),
                task,
                per_task,
                task_rng,
                poison_at,
            ))
        })
        .collect();
    let mut outcomes = Vec::new();
    for (task, publisher) in publishers.into_iter().enumerate() {
        let mine = tokio::time::timeout(GUARD, publisher)
            .await
            .unwrap_or_else(|_| panic!("publisher {task} hung"))
            .expect("publisher task");
        // Each caller got its own results, one per request, in its own order.
        assert!(mine.iter().all(|o| o.task == task as u64));
        let published: u64 = mine.iter().map(|o| o.ids.len() as u64).sum();
        assert_eq!(published, per_task);
        outcomes.extend(mine);
    }
    let stats = producer.stats();
    tokio::time::timeout(GUARD, producer.close())
        .await
        .expect("close");

    let stored = nsqd.topic_message_count(name).expect("topic exists");
    target.set(stored).expect("the target is set once");
    let (read, corrupt, redeliveries) = tokio::time::timeout(GUARD, reader)
        .await
        .expect("the consumer reads what nsqd stored")
        .expect("reader task");
    assert!(
        corrupt.is_empty(),
        "corrupt bodies: {:?}",
        &corrupt[..corrupt.len().min(3)]
    );
    assert_eq!(redeliveries, 0, "nsqd redelivered messages");

    let mut times_read: HashMap<u64, u32> = HashMap::new();
    for id in &read {
        *times_read.entry(*id).or_default() += 1;
    }
    assert_eq!(times_read.len(), read.len(), "a message was stored twice");

    let (mut acked, mut unknown, mut not_sent, mut rejected) = (0, 0, 0, 0);
    let mut expected_ids = 0;
    let mut accounted = 0;
    for outcome in &outcomes {
        let found = outcome
            .ids
            .iter()
            .filter(|id| times_read.contains_key(id))
            .count();
        accounted += found;
        let all = outcome.ids.len();
        match &outcome.result {
            Ok(()) => {
                acked += 1;
                expected_ids += all;
                assert!(!outcome.poison, "nsqd acknowledged an oversized message");
                assert_eq!(found, all, "acknowledged but not delivered: {outcome:?}");
            }
            Err(PublishError::TimedOut { .. }) => {
                panic!("a publish timed out after 120 s: the producer stalled: {outcome:?}")
            }
            Err(PublishError::Unknown { .. }) => {
                unknown += 1;
                assert!(
                    found == 0 || found == all,
                    "MPUB stored in part: {outcome:?}"
                );
            }
            Err(PublishError::NotSent(_)) => {
                not_sent += 1;
                assert_eq!(found, 0, "not sent but delivered: {outcome:?}");
            }
            Err(PublishError::Rejected { error: err, .. }) => {
                rejected += 1;
                assert_eq!(found, 0, "rejected but delivered: {outcome:?}");
                assert_eq!(err.code(), &ErrorCode::BadMessage);
                let too_big = |command| {
                    format!(
                        "E_BAD_MESSAGE {command} message too big {} > {MAX_BODY}",
                        MAX_BODY + 1
                    )
                };
                if batching {
                    // Refused alone (a PUB) or with the rest of its batch (an MPUB).
                    assert!(
                        err.to_string() == too_big("PUB") || err.to_string() == too_big("MPUB"),
                        "{outcome:?}"
                    );
                } else {
                    assert!(
                        outcome.poison,
                        "only the oversized messages are refused: {outcome:?}"
                    );
                    assert_eq!(err.to_string(), too_big("PUB"));
                }
            }
            Err(err) => panic!("unexpected outcome {err:?} for {outcome:?}"),
        }
        if outcome.poison {
            // Rejected; or unknown when the connection reset before nsqd's error frame was
            // read; or not sent when it was written behind another task's poison.
            assert!(
                matches!(
                    outcome.result,
                    Err(PublishError::Rejected { .. }
                        | PublishError::Unknown { .. }
                        | PublishError::NotSent(NotSentReason::Aborted))
                ),
                "{outcome:?}"
            );
        }
    }
    assert_eq!(
        accounted,
        read.len(),
        "every message read belongs to a request that was acknowledged or unknown"
    );
    assert!(expected_ids <= read.len());
    assert_eq!(read.len() as u64, stored);
    eprintln!(
        "readback: {} requests, {} messages stored: {acked} acknowledged, {unknown} unknown, \
         {not_sent} not sent, {rejected} rejected; {} reconnects",
        outcomes.len(),
        read.len(),
        stats.reconnects
    );

    assert_eq!(stats.acked, acked);
    assert_eq!(stats.unknown, unknown);
    assert_eq!(stats.timed_out, 0);
    assert_eq!(stats.not_sent, not_sent);
    assert_eq!(
        stats.rejected.get("E_BAD_MESSAGE").copied().unwrap_or(0),
        rejected
    );
    // Each refused message ends the connection it is on, unless an earlier one already did
    // (two can be in flight on one connection when it is lost without nsqd's error frame).
    assert!(
        (1..=POISONED_TASKS).contains(&stats.reconnects),
        "reconnects: {}",
        stats.reconnects
    );
    assert!(stats.bytes_written > 0);
    assert_eq!(stats.in_flight, 0);
    assert_eq!(stats.queued, 0);

    let depth = eventually(0, || channel_number(&nsqd, name, "ch", "depth")).await;
    assert_eq!(depth, 0);
    assert_eq!(channel_number(&nsqd, name, "ch", "deferred_count"), 0);
}
