//! The producer's nsqlookupd client (`lookupd` feature) against the real nsqlookupd v1.3.0,
//! with real nsqds registered with it.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use nsq_producer::__lookupd::{LookupdError, Node, fetch_nodes, merge_nodes};
use nsq_test_support::{Nsqd, NsqdOptions, Nsqlookupd};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The node listed for `nsqd`, checked against the addresses the harness knows.
fn node_of<'a>(nodes: &'a [Node], nsqd: &Nsqd) -> &'a Node {
    let matching: Vec<&Node> = nodes
        .iter()
        .filter(|node| node.tcp_port == nsqd.tcp_addr().port())
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "one node on tcp port {}: {nodes:?}",
        nsqd.tcp_addr().port()
    );
    let node = matching[0];
    assert_eq!(node.broadcast_address, "127.0.0.1");
    assert_eq!(node.http_port, nsqd.http_addr().port());
    assert_eq!(node.tcp_address(), nsqd.tcp_addr().to_string());
    assert_eq!(node.version, "1.3.0");
    assert!(!node.hostname.is_empty());
    node
}

async fn fetch(lookupd: &Nsqlookupd) -> Vec<Node> {
    let address = lookupd.http_addr().to_string();
    fetch_nodes(&address, TIMEOUT)
        .await
        .unwrap_or_else(|err| panic!("fetching the nodes of {address}: {err}"))
}

#[tokio::test]
async fn fetch_lists_both_nsqds_with_their_ports() {
    let lookupd = Nsqlookupd::start();
    assert!(fetch(&lookupd).await.is_empty(), "nothing registered yet");

    let one = Nsqd::start_with(NsqdOptions::new().lookupd(&lookupd));
    let two = Nsqd::start_with(NsqdOptions::new().lookupd(&lookupd));
    lookupd.wait_for_nsqd(&one);
    lookupd.wait_for_nsqd(&two);
    one.create_topic("only_on_one");
    lookupd.wait_for_topic(&one, "only_on_one");

    let nodes = fetch(&lookupd).await;
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    let first = node_of(&nodes, &one);
    let second = node_of(&nodes, &two);
    assert_ne!(first.tcp_port, second.tcp_port);
    assert_eq!(first.topics.len(), 1);
    assert_eq!(first.topics[0].name, "only_on_one");
    assert!(!first.topics[0].tombstoned);
    assert!(second.topics.is_empty());

    // The `http://` form of the address works too. nsqlookupd lists nodes in no fixed order.
    let mut with_scheme = fetch_nodes(&format!("http://{}", lookupd.http_addr()), TIMEOUT)
        .await
        .unwrap();
    let mut nodes = nodes;
    with_scheme.sort_by_key(|n| n.tcp_port);
    nodes.sort_by_key(|n| n.tcp_port);
    assert_eq!(with_scheme, nodes);
}

#[tokio::test]
async fn a_topic_tombstoned_on_one_node_shows_on_that_node_only() {
    let lookupd = Nsqlookupd::start();
    let one = Nsqd::start_with(NsqdOptions::new().lookupd(&lookupd));
    let two = Nsqd::start_with(NsqdOptions::new().lookupd(&lookupd));
    for nsqd in [&one, &two] {
        nsqd.create_topic("orders");
        nsqd.create_topic("audit");
        lookupd.wait_for_topic(nsqd, "orders");
        lookupd.wait_for_topic(nsqd, "audit");
    }
    let before = fetch(&lookupd).await;
    assert!(before.iter().all(|node| node.may_publish("orders")));

    lookupd.tombstone_topic("orders", &one);

    let nodes = fetch(&lookupd).await;
    let first = node_of(&nodes, &one);
    assert!(first.is_tombstoned("orders"));
    assert!(!first.may_publish("orders"));
    assert!(first.may_publish("audit"), "only that topic is tombstoned");
    let second = node_of(&nodes, &two);
    assert!(!second.is_tombstoned("orders"));
    assert!(second.may_publish("orders"));
}

#[tokio::test]
async fn lists_of_two_lookupds_merge_into_one_node_each() {
    let a = Nsqlookupd::start();
    let b = Nsqlookupd::start();
    let one = Nsqd::start_with(NsqdOptions::new().lookupd(&a).lookupd(&b));
    let two = Nsqd::start_with(NsqdOptions::new().lookupd(&a).lookupd(&b));
    for nsqd in [&one, &two] {
        nsqd.create_topic("orders");
        a.wait_for_topic(nsqd, "orders");
        b.wait_for_topic(nsqd, "orders");
    }
    // Only lookupd `b` tombstones the topic on the second nsqd.
    b.tombstone_topic("orders", &two);

    let from_a = fetch(&a).await;
    let from_b = fetch(&b).await;
    assert_eq!((from_a.len(), from_b.len()), (2, 2));
    assert!(node_of(&from_a, &two).may_publish("orders"));
    let merged = merge_nodes([from_a, from_b]);
    assert_eq!(merged.len(), 2, "{merged:?}");
    assert!(node_of(&merged, &one).may_publish("orders"));
    assert!(!node_of(&merged, &two).may_publish("orders"));
}

#[tokio::test]
async fn failures_name_the_lookupd_and_what_failed() {
    // Nothing listens: a connection error.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let err = fetch_nodes(&closed, TIMEOUT).await.unwrap_err();
    assert!(matches!(err, LookupdError::Connect { .. }), "{err:?}");
    assert_eq!(err.lookupd(), closed);
    assert!(err.to_string().contains(&closed), "{err}");

    // nsqd's HTTP API has no /nodes: an HTTP status error with nsqd's text.
    let nsqd = Nsqd::start();
    let address = nsqd.http_addr().to_string();
    let err = fetch_nodes(&address, TIMEOUT).await.unwrap_err();
    match &err {
        LookupdError::Status { status, body, .. } => {
            assert_eq!(*status, 404);
            assert!(body.contains("NOT_FOUND"), "{body}");
        }
        other => panic!("expected a status error, got {other:?}"),
    }
    assert!(err.to_string().contains(&address), "{err}");

    // A frozen nsqlookupd accepts the connection and never answers: the timeout holds.
    let lookupd = Nsqlookupd::start();
    lookupd.pause();
    let started = Instant::now();
    let err = fetch_nodes(&lookupd.http_addr().to_string(), Duration::from_millis(500))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    lookupd.resume();
    assert!(matches!(err, LookupdError::TimedOut { .. }), "{err:?}");
    assert!(waited < Duration::from_secs(5), "gave up after {waited:?}");
    assert!(
        fetch(&lookupd).await.is_empty(),
        "it answers again after SIGCONT"
    );

    // Only plain http.
    let err = fetch_nodes("https://127.0.0.1:1", TIMEOUT)
        .await
        .unwrap_err();
    assert!(
        matches!(err, LookupdError::InvalidAddress { .. }),
        "{err:?}"
    );
}
