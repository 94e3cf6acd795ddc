//! The pool's sending again of what nsqd did not execute, against two scripted nsqd: nsqd
//! answers a transient `E_PUB_FAILED` (which a real nsqd gives only when its disk fails) or
//! drops the connection with requests in flight. Requests nsqd aborted or failed without
//! storing go to the other node; with `retry_unknown`, so do those whose outcome is unknown; the
//! retry budget caps how many are sent again.

mod common;

use nsq_producer::{NotSentReason, Pool, PoolConfig, Publish, PublishError, RetryBudget, Strategy};
use nsq_test_support::{FakeNsqd, topic, within};

use common::*;

/// Two nodes, the first always preferred (failover); both connected and past the ping.
async fn two_nodes(config: PoolConfig) -> (Pool, FakeNsqd, FakeNsqd, FakeServer) {
    let first = FakeServer::bind().await;
    let second = FakeServer::bind().await;
    let addrs = [first.addr(), second.addr()];
    let connecting = tokio::spawn(Pool::connect(addrs, config));
    let mut a = first.accept().await;
    let mut b = second.accept().await;
    for nsqd in [&mut a, &mut b] {
        let nop = within("the ping's NOP", nsqd.expect_command()).await;
        assert_eq!(nop, nsq_proto::server::ClientCommand::Nop);
    }
    let pool = within("connect", connecting).await.unwrap().unwrap();
    (pool, a, b, second)
}

fn failover() -> PoolConfig {
    PoolConfig::new(unbatched()).strategy(Strategy::Failover {
        fail_back_after: std::time::Duration::from_secs(60),
    })
}

async fn queue_abc(pool: &Pool) -> Vec<Publish> {
    let mut queued = Vec::new();
    for body in ["a", "b", "c"] {
        queued.push(pool.publish_async(&topic(TOPIC), body).await.unwrap());
    }
    queued
}

/// nsqd fails the first of three pipelined PUBs with `E_PUB_FAILED` (not stored) and closes
/// the connection, so the two behind it were never executed: all three go to the other node
/// and are acknowledged there. Nothing is counted rejected or aborted; three were handed back.
#[tokio::test]
async fn what_nsqd_did_not_store_goes_to_another_node() {
    let (pool, mut a, mut b, _second) = two_nodes(failover()).await;
    let queued = queue_abc(&pool).await;
    for body in ["a", "b", "c"] {
        assert_eq!(expect_pub(&mut a).await, body);
    }
    a.send_error("E_PUB_FAILED PUB failed exiting").await;
    drop(a);
    for body in ["a", "b", "c"] {
        assert_eq!(expect_pub(&mut b).await, body, "sent again, in order");
        b.send_ok().await;
    }
    for publish in queued {
        assert_eq!(within("a publish", publish).await, Ok(()));
    }
    let stats = pool.stats();
    assert_eq!((stats.acked, stats.handed_back), (3, 3));
    assert_eq!(
        (stats.rejected_total(), stats.not_sent, stats.unknown),
        (0, 0, 0)
    );
}

/// A rejection of the message itself (`E_BAD_MESSAGE`) is returned, not sent again; the two
/// PUBs nsqd aborted behind it go to the other node.
#[tokio::test]
async fn a_rejected_message_is_returned_and_what_was_aborted_moves() {
    let (pool, mut a, mut b, _second) = two_nodes(failover()).await;
    let mut queued = queue_abc(&pool).await.into_iter();
    for body in ["a", "b", "c"] {
        assert_eq!(expect_pub(&mut a).await, body);
    }
    a.send_error("E_BAD_MESSAGE PUB invalid message body size 0")
        .await;
    drop(a);
    for body in ["b", "c"] {
        assert_eq!(expect_pub(&mut b).await, body);
        b.send_ok().await;
    }
    let first = within("a", queued.next().unwrap()).await;
    assert!(
        matches!(first, Err(PublishError::Rejected { .. })),
        "{first:?}"
    );
    for publish in queued {
        assert_eq!(within("a publish", publish).await, Ok(()));
    }
    assert_eq!(pool.stats().rejected_total(), 1);
}

/// A retry budget of one token: only the first of the three is sent again; the others end with
/// the outcome they had (the first failed `E_PUB_FAILED`, the rest were aborted).
#[tokio::test]
async fn the_retry_budget_caps_what_is_sent_again() {
    let mut budget = RetryBudget::default();
    budget.ratio = 0.0;
    budget.per_second = 0.0;
    budget.max = 1.0;
    let (pool, mut a, mut b, _second) = two_nodes(failover().retry_budget(budget)).await;
    let mut queued = queue_abc(&pool).await.into_iter();
    for body in ["a", "b", "c"] {
        assert_eq!(expect_pub(&mut a).await, body);
    }
    a.send_error("E_PUB_FAILED PUB failed exiting").await;
    drop(a);
    assert_eq!(expect_pub(&mut b).await, "a");
    b.send_ok().await;
    assert_eq!(within("a", queued.next().unwrap()).await, Ok(()));
    for publish in queued {
        assert_eq!(
            within("a publish", publish).await,
            Err(PublishError::NotSent(NotSentReason::Aborted))
        );
    }
    let stats = pool.stats();
    assert_eq!((stats.acked, stats.not_sent), (1, 2));
}

/// The connection drops with a PUB in flight: its outcome is unknown, and by default it is not
/// sent again; with `retry_unknown` it goes to the other node (at least once).
#[tokio::test]
async fn unknown_outcomes_are_sent_again_only_when_asked() {
    for retry_unknown in [false, true] {
        let config = failover().retry_unknown(retry_unknown);
        let (pool, mut a, mut b, _second) = two_nodes(config).await;
        let publish = pool.publish_async(&topic(TOPIC), "maybe").await.unwrap();
        assert_eq!(expect_pub(&mut a).await, "maybe");
        drop(a);
        if retry_unknown {
            assert_eq!(expect_pub(&mut b).await, "maybe");
            b.send_ok().await;
            assert_eq!(within("the publish", publish).await, Ok(()));
        } else {
            let outcome = within("the publish", publish).await;
            assert!(
                matches!(outcome, Err(PublishError::Unknown { .. })),
                "{outcome:?}"
            );
        }
        pool.close_now().await;
    }
}

/// Fan-out of 2: one copy acknowledged, the other rejected. The publish fails with each node's
/// outcome; the message is stored (on one node), so it is not safe to publish again.
#[tokio::test]
async fn a_fan_out_reports_each_copy() {
    let config = PoolConfig::new(unbatched()).strategy(Strategy::FanOut { copies: 2 });
    let (pool, mut a, mut b, second) = two_nodes(config).await;
    let publish = pool.publish_async(&topic(TOPIC), "twice").await.unwrap();
    assert_eq!(expect_pub(&mut a).await, "twice");
    assert_eq!(expect_pub(&mut b).await, "twice");
    a.send_ok().await;
    b.send_error("E_BAD_MESSAGE PUB invalid message body size 0")
        .await;
    let outcome = within("the publish", publish).await;
    let Err(PublishError::Copies(copies)) = &outcome else {
        panic!("expected each copy's outcome, got {outcome:?}");
    };
    assert_eq!(copies.acknowledged(), 1);
    assert_eq!(copies.copies().len(), 2);
    let rejected = copies
        .copies()
        .iter()
        .find(|(addr, _)| *addr == second.addr());
    assert!(
        matches!(rejected, Some((_, Err(PublishError::Rejected { .. })))),
        "{copies}"
    );
    let err = outcome.unwrap_err();
    assert_eq!(err.delivery(), nsq_producer::Delivery::Unknown);
    assert!(!err.is_retry_safe());
}

/// With `fail_fast`, a pool whose only node cannot be reached fails publishes at once with
/// `NoNodeUp` instead of waiting for the node until their deadline: the first, queued on the
/// untried node and handed back when its dial fails, and the next, which finds no node up.
#[tokio::test]
async fn with_fail_fast_no_node_up_fails_at_once() {
    let closed = FakeServer::bind().await;
    let addr = closed.addr();
    drop(closed);
    let mut producer = unbatched();
    producer.fail_fast = true;
    producer.publish_timeout = Some(std::time::Duration::from_secs(60));
    let pool = Pool::new([addr], PoolConfig::new(producer)).unwrap();
    for body in ["first", "second"] {
        let outcome = within(body, pool.publish(&topic(TOPIC), body)).await;
        assert!(
            matches!(
                outcome,
                Err(PublishError::NotSent(NotSentReason::NoNodeUp(_)))
            ),
            "{body}: {outcome:?}"
        );
    }
    pool.close_now().await;
}
