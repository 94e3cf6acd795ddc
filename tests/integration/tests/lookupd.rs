//! The nsqlookupd client (nsq-lookupd) against the real nsqlookupd v1.3.0, with real nsqds
//! registered with it: `/nodes`, `/lookup`, `/ping`, and the errors that name nsqd's ports given
//! in place of nsqlookupd's.

use std::future::Future;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use nsq_lookupd::{Lookupd, LookupdError, Node, merge_nodes};
use nsq_test_support::{Nsqd, NsqdOptions, Nsqlookupd};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The node listed for `nsqd`, checked against the addresses the harness knows.
fn node_of<'a>(nodes: &'a [Node], nsqd: &Nsqd) -> &'a Node {
    let matching: Vec<&Node> = nodes
        .iter()
        .filter(|node| node.nsqd.tcp_port == nsqd.tcp_addr().port())
        .collect();
    assert_eq!(
        matching.len(),
        1,
        "one node on tcp port {}: {nodes:?}",
        nsqd.tcp_addr().port()
    );
    let node = matching[0];
    check_nsqd(&node.nsqd, nsqd);
    node
}

/// Checks what nsqlookupd says of `nsqd` against the addresses the harness knows.
fn check_nsqd(listed: &nsq_lookupd::Nsqd, nsqd: &Nsqd) {
    assert_eq!(listed.broadcast_address, "127.0.0.1");
    assert_eq!(listed.tcp_port, nsqd.tcp_addr().port());
    assert_eq!(listed.http_port, nsqd.http_addr().port());
    assert_eq!(listed.tcp_address(), nsqd.tcp_addr().to_string());
    assert_eq!(listed.http_address(), nsqd.http_addr().to_string());
    assert_eq!(listed.version, "1.3.0");
    assert!(!listed.hostname.is_empty());
}

fn client(address: impl ToString) -> Lookupd {
    Lookupd::new(&address.to_string()).unwrap().timeout(TIMEOUT)
}

fn fetch_nodes(
    address: &str,
    timeout: Duration,
) -> impl Future<Output = Result<Vec<Node>, LookupdError>> {
    let lookupd = Lookupd::new(address).map(|lookupd| lookupd.timeout(timeout));
    async move { lookupd?.nodes().await }
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
    assert_ne!(first.nsqd.tcp_port, second.nsqd.tcp_port);
    assert_eq!(first.topics.len(), 1);
    assert_eq!(first.topics[0].name, "only_on_one");
    assert!(!first.topics[0].tombstoned);
    assert!(second.topics.is_empty());

    // The `http://` form of the address works too. nsqlookupd lists nodes in no fixed order.
    let mut with_scheme = fetch_nodes(&format!("http://{}", lookupd.http_addr()), TIMEOUT)
        .await
        .unwrap();
    let mut nodes = nodes;
    with_scheme.sort_by_key(|n| n.nsqd.tcp_port);
    nodes.sort_by_key(|n| n.nsqd.tcp_port);
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

#[tokio::test]
async fn lookup_lists_the_nsqds_of_a_topic_and_its_channels() {
    let lookupd = Nsqlookupd::start();
    let one = Nsqd::start_with(NsqdOptions::new().lookupd(&lookupd));
    let two = Nsqd::start_with(NsqdOptions::new().lookupd(&lookupd));
    for nsqd in [&one, &two] {
        nsqd.create_topic("orders");
        lookupd.wait_for_topic(nsqd, "orders");
    }
    one.create_topic("only_on_one");
    lookupd.wait_for_topic(&one, "only_on_one");
    one.create_channel("orders", "billing");

    let client = client(lookupd.http_addr());
    // nsqd registers the channel with nsqlookupd shortly after creating it.
    let deadline = Instant::now() + TIMEOUT;
    let orders = loop {
        let orders = client.lookup("orders").await.unwrap();
        if !orders.channels.is_empty() || Instant::now() > deadline {
            break orders;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(orders.channels, ["billing"]);
    let mut producers = orders.producers;
    producers.sort_by_key(|nsqd| nsqd.tcp_port == two.tcp_addr().port());
    assert_eq!(producers.len(), 2, "{producers:?}");
    check_nsqd(&producers[0], &one);
    check_nsqd(&producers[1], &two);

    let only = client.lookup("only_on_one").await.unwrap();
    assert_eq!(only.producers.len(), 1, "{only:?}");
    check_nsqd(&only.producers[0], &one);
    assert!(only.channels.is_empty());

    // A topic no nsqd has: nsqlookupd answers 404 TOPIC_NOT_FOUND, which is no producer.
    let unknown = client.lookup("nobody_has_it").await.unwrap();
    assert!(unknown.producers.is_empty() && unknown.channels.is_empty());

    // A tombstoned node is not offered to consumers.
    lookupd.tombstone_topic("orders", &one);
    let orders = client.lookup("orders").await.unwrap();
    assert_eq!(orders.producers.len(), 1, "{orders:?}");
    check_nsqd(&orders.producers[0], &two);
}

#[tokio::test]
async fn ping_answers_while_nsqlookupd_is_up_only() {
    let mut lookupd = Nsqlookupd::start();
    let client = client(lookupd.http_addr()).timeout(Duration::from_millis(500));
    client.ping().await.unwrap();

    lookupd.pause();
    let err = client.ping().await.unwrap_err();
    lookupd.resume();
    assert!(matches!(err, LookupdError::TimedOut { .. }), "{err:?}");
    assert!(err.to_string().contains("GET /ping"), "{err}");
    client.ping().await.unwrap();

    lookupd.stop();
    let err = client.ping().await.unwrap_err();
    assert!(matches!(err, LookupdError::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn nsqds_tcp_port_is_named_as_such() {
    let nsqd = Nsqd::start();
    let address = nsqd.tcp_addr().to_string();
    let client = client(&address);
    for err in [
        client.nodes().await.unwrap_err(),
        client.lookup("orders").await.map(drop).unwrap_err(),
        client.ping().await.unwrap_err(),
    ] {
        assert!(matches!(err, LookupdError::NotHttp { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("this looks like nsqd's TCP port; give nsqlookupd's HTTP address (default port 4161)"),
            "{text}"
        );
        assert!(text.contains(&address), "{text}");
    }
    assert!(nsqd.is_running());
}

#[tokio::test]
async fn nsqds_http_port_is_named_as_such() {
    let nsqd = Nsqd::start();
    let address = nsqd.http_addr().to_string();
    let client = client(&address);
    // nsqd answers /ping as nsqlookupd does ...
    client.ping().await.unwrap();
    // ... and /nodes and /lookup with 404.
    for (err, path) in [
        (client.nodes().await.unwrap_err(), "/nodes"),
        (
            client.lookup("orders").await.map(drop).unwrap_err(),
            "/lookup",
        ),
    ] {
        match &err {
            LookupdError::NsqdHttp {
                lookupd,
                path: failed,
            } => {
                assert_eq!(lookupd, &address);
                assert_eq!(*failed, path);
            }
            other => panic!("expected NsqdHttp, got {other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains("is an nsqd HTTP address, not nsqlookupd's"),
            "{text}"
        );
        assert!(text.contains(&address), "{text}");
    }
}
