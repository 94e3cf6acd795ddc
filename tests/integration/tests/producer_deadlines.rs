//! nsq-producer against a real nsqd v1.3.0 that is not there yet, or freezes: publishes wait
//! for a connection without a retry loop of the caller's, and every publish resolves within its
//! deadline however long nsqd is gone.

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use nsq_producer::{Producer, PublishError};
use nsq_test_support::{Nsqd, topic, within};

use common::{blocking, eventually, producer_config};

/// How far past its deadline a publish may resolve: scheduling on a busy 2-core machine, not a
/// timer of the producer's.
const MARGIN: Duration = Duration::from_millis(500);

/// A service that starts before its nsqd: the first publishes are made while nothing listens on
/// nsqd's port, and they succeed once nsqd starts a few seconds later, with no retry by the
/// caller. (nsqd is started once and killed straight away, so that the test knows the port it
/// will come back on.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_wait_for_an_nsqd_that_starts_later() {
    const CALLERS: usize = 20;
    let mut nsqd = Nsqd::start();
    blocking(|| nsqd.stop());
    let mut config = producer_config();
    config.publish_timeout = Some(Duration::from_secs(20));
    let producer = Producer::new(nsqd.tcp_addr().to_string(), config).unwrap();
    let t = topic("starts_later");
    let callers: Vec<_> = (0..CALLERS)
        .map(|i| {
            let producer = producer.clone();
            let t = t.clone();
            tokio::spawn(async move { producer.publish(&t, format!("m{i}")).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        producer.stats().connect_failures > 0,
        "the producer tried to connect while nsqd was down"
    );
    assert!(callers.iter().all(|c| !c.is_finished()), "a caller gave up");

    blocking(|| nsqd.restart());
    for caller in callers {
        assert_eq!(within("a caller", caller).await.unwrap(), Ok(()));
    }
    assert_eq!(
        eventually(Some(CALLERS as u64), || nsqd.topic_depth("starts_later")).await,
        Some(CALLERS as u64)
    );
    let stats = producer.close().await;
    assert_eq!((stats.acked, stats.not_sent), (CALLERS as u64, 0));
}

/// nsqd frozen with SIGSTOP for longer than the publish timeout: TCP connections still complete
/// (the kernel accepts them) but nothing is answered, neither publishes on the open connection
/// nor IDENTIFY on a new one. A caller publishing one message after another, and a second
/// producer that has to dial during the freeze, get every result within the 2 s publish timeout.
/// After SIGCONT both publish again, and nsqd holds at least every acknowledged message and at
/// most those plus the ones whose outcome is unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_deadline_holds_while_nsqd_is_frozen() {
    let nsqd = Nsqd::start();
    let addr = nsqd.tcp_addr().to_string();
    let timeout = Duration::from_secs(2);
    let mut config = producer_config();
    config.publish_timeout = Some(timeout);
    config.stall_grace = Duration::from_millis(500);
    let connected = Producer::connect(addr.clone(), config.clone())
        .await
        .unwrap();
    let dialling = Producer::new(addr, config).unwrap();
    let t = topic("frozen");
    for i in 0..10 {
        within(
            "publish before",
            connected.publish(&t, format!("before{i}")),
        )
        .await
        .unwrap();
    }

    nsqd.pause();
    let frozen_for = Duration::from_secs(6);
    let frozen_at = Instant::now();
    let publish_while_frozen = |producer: Producer, name: &'static str| {
        let t = t.clone();
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut i = 0;
            while frozen_at.elapsed() < frozen_for - timeout {
                let started = Instant::now();
                let result = producer.publish(&t, format!("{name}{i}")).await;
                outcomes.push((started.elapsed(), result));
                i += 1;
            }
            outcomes
        })
    };
    let loops = [
        publish_while_frozen(connected.clone(), "connected"),
        publish_while_frozen(dialling.clone(), "dialling"),
    ];
    let mut outcomes = Vec::new();
    for handle in loops {
        outcomes.extend(within("publishing while frozen", handle).await.unwrap());
    }
    tokio::time::sleep(frozen_for.saturating_sub(frozen_at.elapsed())).await;
    nsqd.resume();

    assert!(outcomes.len() >= 4, "{outcomes:?}");
    for (elapsed, result) in &outcomes {
        assert!(
            *elapsed <= timeout + MARGIN,
            "a publish took {elapsed:?} with a {timeout:?} timeout: {result:?}"
        );
        assert!(
            matches!(
                result,
                Err(PublishError::TimedOut { .. }
                    | PublishError::NotSent(_)
                    | PublishError::Unknown { .. })
            ),
            "nothing can be acknowledged while nsqd is frozen: {result:?}"
        );
    }

    // Publishing resumes on both producers without the caller doing anything.
    for producer in [&connected, &dialling] {
        within("publishing after the freeze", producer.publish(&t, "after"))
            .await
            .unwrap();
    }
    let a = connected.close().await;
    let b = dialling.close().await;
    let acked = a.acked + b.acked;
    let unknown = a.unknown + b.unknown;
    let stored = eventually(true, || {
        nsqd.topic_depth("frozen")
            .is_some_and(|depth| depth >= acked)
    })
    .await;
    assert!(stored);
    let depth = nsqd.topic_depth("frozen").unwrap();
    assert!(
        depth <= acked + unknown,
        "nsqd holds {depth}, acked {acked}, unknown {unknown}"
    );
}

/// Deadlines of one's own, for every publish kind, while nsqd is frozen: with the configured
/// timeout at 30 s, each of PUB, MPUB and DPUB and their `_async` forms given 700 ms resolves
/// within 700 ms (plus scheduling), while a publish on the configured timeout still waits.
/// Those short deadlines do not make the producer give up on the connection: after SIGCONT,
/// nsqd's late replies arrive on it, the waiting publish is acknowledged, and nothing was
/// redialled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_call_deadlines_hold_for_every_publish_kind() {
    let nsqd = Nsqd::start();
    let mut config = producer_config();
    config.publish_timeout = Some(Duration::from_secs(30));
    let producer = Producer::connect(nsqd.tcp_addr().to_string(), config)
        .await
        .unwrap();
    let t = topic("own_deadlines");
    within("a first publish", producer.publish(&t, "first"))
        .await
        .unwrap();

    nsqd.pause();
    let patient = {
        let (producer, t) = (producer.clone(), t.clone());
        tokio::spawn(async move { producer.publish(&t, "patient").await })
    };
    let own = Duration::from_millis(700);
    let delay = Duration::from_millis(100);
    let kinds: Vec<(&str, std::pin::Pin<Box<dyn Future<Output = _> + Send>>)> = {
        let p = &producer;
        vec![
            ("publish", Box::pin(p.publish(&t, "a").timeout(own))),
            (
                "multi_publish",
                Box::pin(p.multi_publish(&t, ["b", "c"]).timeout(own)),
            ),
            (
                "deferred_publish",
                Box::pin(p.deferred_publish(&t, delay, "d").timeout(own)),
            ),
            (
                "publish_async",
                Box::pin(async { p.publish_async(&t, "e").timeout(own).await?.await }),
            ),
            (
                "multi_publish_async",
                Box::pin(async {
                    p.multi_publish_async(&t, ["f", "g"])
                        .timeout(own)
                        .await?
                        .await
                }),
            ),
            (
                "deferred_publish_async",
                Box::pin(async {
                    p.deferred_publish_async(&t, delay, "h")
                        .timeout(own)
                        .await?
                        .await
                }),
            ),
        ]
    };
    let started = Instant::now();
    let results = futures::future::join_all(kinds.into_iter().map(|(kind, publish)| async move {
        let result = publish.await;
        (kind, started.elapsed(), result)
    }))
    .await;
    for (kind, elapsed, result) in &results {
        assert!(
            *elapsed <= own + MARGIN,
            "{kind} with a {own:?} deadline took {elapsed:?}: {result:?}"
        );
        assert_eq!(
            *result,
            Err(PublishError::TimedOut {
                addr: producer.addr().into()
            }),
            "{kind} was written before the deadline"
        );
    }
    assert!(!patient.is_finished(), "the configured 30 s is not up");
    nsqd.resume();

    assert_eq!(
        within("the patient publish", patient).await.unwrap(),
        Ok(())
    );
    let stats = producer.close().await;
    assert_eq!(stats.timed_out, 6);
    assert_eq!(
        stats.acked, 8,
        "the first, the patient one and six late replies"
    );
    assert_eq!(stats.reconnects, 0);
}
