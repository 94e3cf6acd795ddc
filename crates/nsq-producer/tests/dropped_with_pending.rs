//! Nothing vanishes without a word at exit: dropping the last handle of a producer or a pool
//! with publishes queued logs a warning with their count, and so does a runtime that shuts
//! down (a program returning from `main`) while the producer's task still holds them.
//!
//! nsqd is absent (a closed port), so every publish stays queued until the test drops the
//! runtime; the warnings are read back through a subscriber that records them.

mod common;

use nsq_producer::{Pool, PoolConfig, Producer, ProducerConfig};
use nsq_test_support::{Warnings, closed_addr, topic};

use common::*;

/// A runtime on this thread, so that its tasks log to this thread's subscriber and are dropped
/// here when it is.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

const PUBLISHES: usize = 100;

/// 100 fire-and-forget publishes to an absent nsqd, then the last producer handle dropped: a
/// warning names the 100 queued. The runtime then shuts down with the router still holding
/// them: a second warning says 100 were not sent.
#[test]
fn a_producer_dropped_with_publishes_queued_says_how_many() {
    let warnings = Warnings::default();
    let _guard = warnings.set_default();
    let rt = runtime();
    let addr = closed_addr().to_string();
    rt.block_on(async {
        let producer = Producer::new(addr.clone(), ProducerConfig::default()).unwrap();
        for i in 0..PUBLISHES {
            drop(
                producer
                    .publish_async(&topic(TOPIC), format!("m{i}"))
                    .await
                    .unwrap(),
            );
        }
        drop(producer);
    });
    let dropped = warnings.taken();
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert!(
        dropped[0].contains(&format!(
            "dropped with {PUBLISHES} publishes queued or in flight"
        )),
        "{dropped:?}"
    );
    assert!(dropped[0].contains(&addr), "{dropped:?}");

    drop(rt);
    let shut_down = warnings.taken();
    assert_eq!(shut_down.len(), 1, "{shut_down:?}");
    assert!(
        shut_down[0].contains(&format!(
            "with {PUBLISHES} publishes unanswered: {PUBLISHES} not sent, 0 written"
        )),
        "{shut_down:?}"
    );
}

/// The same for a pool: one warning for the pool, with the count over its nodes.
#[test]
fn a_pool_dropped_with_publishes_queued_says_how_many() {
    let warnings = Warnings::default();
    let _guard = warnings.set_default();
    let rt = runtime();
    rt.block_on(async {
        let pool = Pool::new(
            [closed_addr().to_string(), closed_addr().to_string()],
            PoolConfig::default(),
        )
        .unwrap();
        for i in 0..PUBLISHES {
            drop(
                pool.publish_async(&topic(TOPIC), format!("m{i}"))
                    .await
                    .unwrap(),
            );
        }
        drop(pool);
    });
    let dropped = warnings.taken();
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    assert!(
        dropped[0].contains(&format!(
            "the last handle of the pool was dropped with {PUBLISHES} publishes"
        )),
        "{dropped:?}"
    );
    drop(rt);
}

/// A producer closed before its last handle goes says nothing: nothing was pending.
#[test]
fn a_closed_producer_dropped_says_nothing() {
    let warnings = Warnings::default();
    let _guard = warnings.set_default();
    let rt = runtime();
    rt.block_on(async {
        let producer = Producer::new(closed_addr().to_string(), ProducerConfig::default()).unwrap();
        drop(producer.publish_async(&topic(TOPIC), "m").await.unwrap());
        producer.close_now().await;
        drop(producer);
    });
    drop(rt);
    let said = warnings.taken();
    assert!(said.iter().all(|w| !w.contains("dropped")), "{said:?}");
}
