//! What the pool's errors say, against real nsqd and nsqlookupd v1.3.0: the node a failure
//! happened on, how many copies a fan-out could store and the real state of each node, every
//! node's error when none connects, the nsqlookupd that could not be reached, and addresses of
//! one nsqd counted as one node.

mod common;

use std::time::Duration;

use nsq_producer::{
    ConfigError, ConnectError, NotSentReason, Pool, PoolConfig, ProducerState, PublishError,
    Strategy,
};
use nsq_test_support::{Nsqd, closed_addr, topic, within};

use common::{blocking, eventually, producer_config};

fn fan_out(copies: usize) -> PoolConfig {
    let mut config = producer_config();
    config.publish_timeout = Some(Duration::from_secs(1));
    PoolConfig::new(config).strategy(Strategy::FanOut { copies })
}

/// Three copies over three nsqd, one of them killed: a publish fails at its deadline saying
/// that 2 of 3 copies are possible with 2 nodes up, the two live nodes listed as connected and
/// the dead one as down with its connection error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_short_of_nodes_says_how_many_copies_are_possible() {
    let mut nodes: Vec<Nsqd> = (0..3).map(|_| Nsqd::start()).collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.tcp_addr().to_string()).collect();
    let pool = Pool::connect(addrs.clone(), fan_out(3)).await.unwrap();
    let t = topic("fan_out_short");
    within("three copies", pool.publish(&t, "first"))
        .await
        .unwrap();
    blocking(|| nodes[2].stop());
    eventually(false, || pool.nodes()[2].up).await;

    let err = within("a publish with a node down", pool.publish(&t, "second"))
        .await
        .unwrap_err();
    let PublishError::NotSent(NotSentReason::TooFewNodesUp(too_few)) = &err else {
        panic!("expected TooFewNodesUp, got {err:?}");
    };
    assert_eq!((too_few.copies(), too_few.up()), (3, 2), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("2 of 3 copies possible: 2 nodes up"),
        "{text}"
    );
    for addr in &addrs[..2] {
        assert!(text.contains(&format!("{addr}: connected")), "{text}");
    }
    assert!(text.contains(&format!("{}: down: ", addrs[2])), "{text}");
    assert!(!text.contains("not connected"), "{text}");
    let states: Vec<&ProducerState> = too_few.nodes().iter().map(|n| &n.state).collect();
    assert_eq!(states[..2], [&ProducerState::Connected; 2]);
    pool.close().await;
}

/// Without nsqlookupd the nodes are known when the pool is built: more copies than nsqd is
/// refused then, and two spellings of one nsqd count once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_beyond_the_nsqd_given_are_refused_when_the_pool_is_built() {
    let nsqd = Nsqd::start();
    let port = nsqd.tcp_addr().port();
    let one_nsqd = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
    for addrs in [
        vec![closed_addr().to_string(), closed_addr().to_string()],
        one_nsqd.to_vec(),
        vec![one_nsqd[0].clone(), one_nsqd[0].clone()],
    ] {
        let err = Pool::new(addrs.clone(), fan_out(3)).map(drop).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::InvalidValue {
                    option: "copies",
                    ..
                }
            ),
            "{addrs:?}: {err:?}"
        );
        assert!(err.to_string().contains("3 copies"), "{err}");
    }
    let err = Pool::new(one_nsqd.to_vec(), fan_out(2))
        .map(drop)
        .unwrap_err();
    assert!(err.to_string().contains("over 1 distinct nsqd"), "{err}");

    // One node, for both spellings: every publish lands on the one nsqd once.
    let pool = Pool::connect(one_nsqd.to_vec(), PoolConfig::new(producer_config()))
        .await
        .unwrap();
    assert_eq!(pool.nodes().len(), 1);
    let t = topic("one_nsqd_twice");
    for i in 0..4 {
        within("a publish", pool.publish(&t, format!("m{i}")))
            .await
            .unwrap();
    }
    pool.close().await;
    assert_eq!(nsqd.topic_depth("one_nsqd_twice"), Some(4));
}

/// `Pool::connect` with every nsqd down reports each node's connection error, not only the
/// first's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_with_every_node_down_names_each_node() {
    let mut nodes: Vec<Nsqd> = (0..2).map(|_| Nsqd::start()).collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.tcp_addr().to_string()).collect();
    for node in &mut nodes {
        blocking(|| node.stop());
    }
    let err = within(
        "connect",
        Pool::connect(addrs.clone(), PoolConfig::new(producer_config())),
    )
    .await
    .map(drop)
    .unwrap_err();
    let ConnectError::NoNodeConnected(down) = &err else {
        panic!("expected NoNodeConnected, got {err:?}");
    };
    assert_eq!(down.nodes().len(), 2, "{err}");
    let text = err.to_string();
    for (node, addr) in down.nodes().iter().zip(&addrs) {
        assert_eq!(&node.addr, addr);
        assert!(node.last_error.is_some(), "{err}");
        assert!(
            text.contains(&format!("{addr}: down: could not connect to {addr}")),
            "{text}"
        );
    }
}

/// A pool that finds its nodes through nsqlookupd, which is not there: `connect` names it and
/// why, rather than saying the pool has no node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_names_the_nsqlookupd_it_could_not_reach() {
    let lookupd = closed_addr().to_string();
    let config = PoolConfig::new(producer_config()).lookupd([format!("http://{lookupd}")]);
    let err = within("connect", Pool::connect(Vec::<String>::new(), config))
        .await
        .map(drop)
        .unwrap_err();
    assert!(matches!(err, ConnectError::Lookupd(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("nsqlookupd http://{lookupd} unreachable")),
        "{text}"
    );
    assert!(text.to_lowercase().contains("connection refused"), "{text}");
}

/// Errors from one node of a pool name it: nsqd's rejection (`--max-msg-size` below the
/// message), and a timeout on a frozen (SIGSTOP) node. After close, publishing says the pool
/// is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_from_a_node_of_the_pool_name_it() {
    let nodes: Vec<Nsqd> = (0..2)
        .map(|_| Nsqd::start_with(nsq_test_support::NsqdOptions::new().max_msg_size(100)))
        .collect();
    let addrs: Vec<String> = nodes.iter().map(|n| n.tcp_addr().to_string()).collect();
    let mut config = producer_config();
    config.publish_timeout = Some(Duration::from_millis(500));
    let config = PoolConfig::new(config).strategy(Strategy::Failover {
        fail_back_after: Duration::from_secs(60),
    });
    let pool = Pool::connect(addrs.clone(), config).await.unwrap();
    let t = topic("named_node");

    let err = within("a rejected publish", pool.publish(&t, vec![b'x'; 200]))
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::Rejected { .. }), "{err:?}");
    let rejected_on = err.addr().expect("the node that rejected it").to_owned();
    assert!(addrs.contains(&rejected_on), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("rejected by nsqd {rejected_on}: E_BAD_MESSAGE")),
        "{err}"
    );

    // Failover keeps to one node while it is up: freeze it, and the publish times out there.
    eventually(true, || pool.nodes().iter().all(|n| n.up)).await;
    within("a publish", pool.publish(&t, "ok")).await.unwrap();
    let preferred = pool
        .nodes()
        .iter()
        .position(|n| n.stats.acked == 1)
        .expect("the node that took the publish");
    nodes[preferred].pause();
    let err = within("a publish to a frozen node", pool.publish(&t, "frozen"))
        .await
        .unwrap_err();
    nodes[preferred].resume();
    assert!(matches!(err, PublishError::TimedOut { .. }), "{err:?}");
    assert_eq!(err.addr(), Some(addrs[preferred].as_str()));
    assert!(err.to_string().contains(&addrs[preferred]), "{err}");

    pool.close().await;
    let err = pool.publish(&t, "late").await.unwrap_err();
    assert_eq!(err.to_string(), "the pool is closed");
}
