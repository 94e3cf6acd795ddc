//! Discovering nsqd nodes through nsqlookupd's HTTP API: `GET /nodes` from one nsqlookupd,
//! parsed into [`Node`]s, and the lists of several nsqlookupds merged into one.
//!
//! nsqlookupd v1.x answers
//!
//! ```json
//! {"producers": [{"remote_address": "10.0.0.5:51234", "hostname": "host-a",
//!   "broadcast_address": "host-a", "tcp_port": 4150, "http_port": 4151, "version": "1.3.0",
//!   "tombstones": [false, true], "topics": ["orders", "audit"]}]}
//! ```
//!
//! where `tombstones[i]` says whether `topics[i]` is tombstoned on that node: an operator asked
//! nsqlookupd to stop sending clients to that node for that topic, usually before deleting the
//! topic there. Versions before 1.0 wrap the same object as
//! `{"status_code": 200, "status_txt": "OK", "data": {...}}`; both are accepted.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::error::Error as StdError;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::{ACCEPT, HeaderValue, USER_AGENT};
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Deserializer};

/// The media type that asks nsqlookupd for its v1 answers (plain JSON, no envelope).
const ACCEPT_V1: &str = "application/vnd.nsq; version=1.0";

/// The largest `/nodes` body read; a larger one is a [`LookupdError::Body`].
const MAX_BODY: usize = 16 * 1024 * 1024;

/// How much of an error answer's body goes into [`LookupdError::Status`].
const MAX_ERROR_TEXT: usize = 200;

/// One nsqd as an nsqlookupd lists it in `/nodes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The address the nsqd announced (`--broadcast-address`), which clients connect to.
    pub broadcast_address: String,
    /// The nsqd's host name.
    pub hostname: String,
    /// The port of its TCP protocol, for producers and consumers.
    pub tcp_port: u16,
    /// The port of its HTTP API.
    pub http_port: u16,
    /// Its version, e.g. `1.3.0`.
    pub version: String,
    /// The topics it has registered, each with whether it is tombstoned there.
    pub topics: Vec<NodeTopic>,
}

/// One topic of a [`Node`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTopic {
    /// The topic's name.
    pub name: String,
    /// Whether nsqlookupd has tombstoned the topic on this node.
    pub tombstoned: bool,
}

impl Node {
    /// `broadcast_address:tcp_port`, the address a producer connects to; an IPv6 address is
    /// put in brackets.
    pub fn tcp_address(&self) -> String {
        join_host_port(&self.broadcast_address, self.tcp_port)
    }

    /// `broadcast_address:http_port`, which is also how nsqlookupd's `/topic/tombstone` names
    /// the node.
    pub fn http_address(&self) -> String {
        join_host_port(&self.broadcast_address, self.http_port)
    }

    /// Whether `topic` is tombstoned on this node.
    pub fn is_tombstoned(&self, topic: &str) -> bool {
        self.topics
            .iter()
            .any(|entry| entry.name == topic && entry.tombstoned)
    }

    /// Whether a producer may send `topic` to this node: unless the topic is tombstoned here.
    /// A node that has not registered the topic yet may receive it; nsqd creates a topic at
    /// its first publish.
    pub fn may_publish(&self, topic: &str) -> bool {
        !self.is_tombstoned(topic)
    }

    /// Adds the topics of another listing of the same node: a topic is tombstoned if either
    /// listing says so.
    fn absorb(&mut self, other: Self) {
        for topic in other.topics {
            self.add_topic(topic);
        }
    }

    fn add_topic(&mut self, topic: NodeTopic) {
        match self
            .topics
            .iter_mut()
            .find(|known| known.name == topic.name)
        {
            Some(known) => known.tombstoned |= topic.tombstoned,
            None => self.topics.push(topic),
        }
    }
}

/// Why the nodes of one nsqlookupd could not be fetched. Each variant names the nsqlookupd
/// address it was given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LookupdError {
    /// The address is not `host:port` or `http://host:port`.
    #[error("nsqlookupd address {lookupd:?} is not usable: {reason}")]
    InvalidAddress {
        /// The address as given.
        lookupd: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made.
    #[error("nsqlookupd {lookupd} unreachable: {}", chain(.source))]
    Connect {
        /// The address as given.
        lookupd: String,
        /// The connection error.
        source: hyper_util::client::legacy::Error,
    },
    /// The connection was made but the request failed before an answer arrived.
    #[error("GET /nodes to nsqlookupd at {lookupd} failed: {}", chain(.source))]
    Request {
        /// The address as given.
        lookupd: String,
        /// The request error.
        source: hyper_util::client::legacy::Error,
    },
    /// No complete answer arrived in time.
    #[error("nsqlookupd at {lookupd} did not answer GET /nodes within {timeout:?}")]
    TimedOut {
        /// The address as given.
        lookupd: String,
        /// The time allowed.
        timeout: Duration,
    },
    /// The answer's status was not 200.
    #[error("nsqlookupd at {lookupd} answered GET /nodes with HTTP {status}: {body}")]
    Status {
        /// The address as given.
        lookupd: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the body, e.g. `{"message":"NOT_FOUND"}`.
        body: String,
    },
    /// The body could not be read, or was larger than 16 MiB.
    #[error("cannot read the GET /nodes answer of nsqlookupd at {lookupd}: {source}")]
    Body {
        /// The address as given.
        lookupd: String,
        /// The read error.
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The body was not the JSON of a node list.
    #[error("nsqlookupd at {lookupd} answered GET /nodes with no node list: {source}")]
    Json {
        /// The address as given.
        lookupd: String,
        /// The parse error.
        source: serde_json::Error,
    },
}

impl LookupdError {
    /// The nsqlookupd address the failed fetch was given.
    pub fn lookupd(&self) -> &str {
        match self {
            Self::InvalidAddress { lookupd, .. }
            | Self::Connect { lookupd, .. }
            | Self::Request { lookupd, .. }
            | Self::TimedOut { lookupd, .. }
            | Self::Status { lookupd, .. }
            | Self::Body { lookupd, .. }
            | Self::Json { lookupd, .. } => lookupd,
        }
    }
}

/// Fetches `GET /nodes` from the nsqlookupd whose HTTP API is at `lookupd` (`host:port` or
/// `http://host:port`), all within `timeout`.
///
/// # Errors
///
/// [`LookupdError`] says what failed: the address, the connection, the request, the time, the
/// status, the body or the JSON.
pub async fn fetch_nodes(lookupd: &str, timeout: Duration) -> Result<Vec<Node>, LookupdError> {
    let uri = nodes_uri(lookupd)?;
    match tokio::time::timeout(timeout, fetch(lookupd, uri, timeout)).await {
        Ok(result) => result,
        Err(_) => Err(LookupdError::TimedOut {
            lookupd: lookupd.to_owned(),
            timeout,
        }),
    }
}

/// Parses a `/nodes` answer, in the v1 form or the pre-1.0 envelope.
///
/// A topic without an entry in `tombstones` counts as not tombstoned; `null` lists count as
/// empty.
///
/// # Errors
///
/// When the body is not JSON, lacks a node list, or a node lacks its `broadcast_address`,
/// `tcp_port` or `http_port`.
pub fn parse_nodes(body: &[u8]) -> Result<Vec<Node>, serde_json::Error> {
    let document: Document = serde_json::from_slice(body)?;
    let raw = match (document.producers, document.data) {
        (Some(producers), _) => producers,
        (None, Some(Data { producers })) => producers,
        (None, None) => {
            return Err(serde::de::Error::custom(
                "neither `producers` nor `data.producers` is present",
            ));
        }
    };
    Ok(raw.into_iter().map(RawNode::into_node).collect())
}

/// Merges the node lists of several nsqlookupds: a node listed by more than one (the same
/// `broadcast_address:tcp_port`) appears once, in the place it was first seen, with the
/// topics of every listing; a topic is tombstoned on it if any nsqlookupd says so.
pub fn merge_nodes(lists: impl IntoIterator<Item = Vec<Node>>) -> Vec<Node> {
    let mut merged: Vec<Node> = Vec::new();
    let mut seen: HashMap<(String, u16), usize> = HashMap::new();
    for node in lists.into_iter().flatten() {
        match seen.entry((node.broadcast_address.clone(), node.tcp_port)) {
            Entry::Occupied(entry) => merged[*entry.get()].absorb(node),
            Entry::Vacant(entry) => {
                entry.insert(merged.len());
                merged.push(node);
            }
        }
    }
    merged
}

async fn fetch(lookupd: &str, uri: Uri, timeout: Duration) -> Result<Vec<Node>, LookupdError> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(timeout));
    connector.set_nodelay(true);
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector);
    let mut request = Request::new(Empty::new());
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_V1));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("nsq-rs/", env!("CARGO_PKG_VERSION"))),
    );

    let response = client.request(request).await.map_err(|source| {
        let lookupd = lookupd.to_owned();
        if source.is_connect() {
            LookupdError::Connect { lookupd, source }
        } else {
            LookupdError::Request { lookupd, source }
        }
    })?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map(|collected| collected.to_bytes());
    if status != hyper::StatusCode::OK {
        let text = body.map_or_else(|_| String::new(), |body| error_text(&body));
        return Err(LookupdError::Status {
            lookupd: lookupd.to_owned(),
            status: status.as_u16(),
            body: text,
        });
    }
    let body = body.map_err(|source| LookupdError::Body {
        lookupd: lookupd.to_owned(),
        source,
    })?;
    parse_nodes(&body).map_err(|source| LookupdError::Json {
        lookupd: lookupd.to_owned(),
        source,
    })
}

/// `http://<host:port>/nodes` for `host:port` or `http://host:port` (a trailing `/` allowed).
fn nodes_uri(lookupd: &str) -> Result<Uri, LookupdError> {
    let invalid = |reason: String| LookupdError::InvalidAddress {
        lookupd: lookupd.to_owned(),
        reason,
    };
    let trimmed = lookupd.trim();
    let authority = match trimmed.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err(invalid(format!(
                "only plain http is supported, not {scheme:?}"
            )));
        }
        None => trimmed,
    };
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return Err(invalid(
            "expected host:port or http://host:port, without a path".to_owned(),
        ));
    }
    let uri: Uri = format!("http://{authority}/nodes")
        .parse()
        .map_err(|err| invalid(format!("{err}")))?;
    if uri.port_u16().is_none() {
        return Err(invalid("the port is missing".to_owned()));
    }
    Ok(uri)
}

/// The start of an error answer's body, as text.
fn error_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An error and its causes, which hyper's own messages ("client error (Connect)") need.
fn chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The `/nodes` document in either form.
#[derive(Deserialize)]
struct Document {
    #[serde(default, deserialize_with = "present_list")]
    producers: Option<Vec<RawNode>>,
    #[serde(default)]
    data: Option<Data>,
}

/// The pre-1.0 envelope's `data`.
#[derive(Deserialize)]
struct Data {
    #[serde(default, deserialize_with = "null_as_empty")]
    producers: Vec<RawNode>,
}

/// One node as nsqlookupd sends it; unknown fields (`remote_address`) are ignored.
#[derive(Deserialize)]
struct RawNode {
    broadcast_address: String,
    tcp_port: u16,
    http_port: u16,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    version: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    topics: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    tombstones: Vec<bool>,
}

impl RawNode {
    fn into_node(self) -> Node {
        let mut node = Node {
            broadcast_address: self.broadcast_address,
            hostname: self.hostname,
            tcp_port: self.tcp_port,
            http_port: self.http_port,
            version: self.version,
            topics: Vec::with_capacity(self.topics.len()),
        };
        for (index, name) in self.topics.into_iter().enumerate() {
            let tombstoned = self.tombstones.get(index).copied().unwrap_or(false);
            node.add_topic(NodeTopic { name, tombstoned });
        }
        node
    }
}

/// A list that may be `null` (Go's nil slice), read as empty.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// Like [`null_as_empty`], but tells a field that is present (`Some`, even when `null`) from
/// one that is missing (`None`, through `#[serde(default)]`).
fn present_list<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    null_as_empty(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::thread;

    use super::*;

    /// What nsqlookupd v1.3.0 answered for one nsqd with topics `a` and `b`, `b` tombstoned.
    const V1: &str = r#"{"producers":[{"remote_address":"127.0.0.1:56738","hostname":"vm","broadcast_address":"127.0.0.1","tcp_port":14150,"http_port":14151,"version":"1.3.0","tombstones":[false,true],"topics":["a","b"]}]}"#;

    fn node(address: &str, tcp_port: u16, topics: &[(&str, bool)]) -> Node {
        Node {
            broadcast_address: address.to_owned(),
            hostname: "h".to_owned(),
            tcp_port,
            http_port: tcp_port + 1,
            version: "1.3.0".to_owned(),
            topics: topics
                .iter()
                .map(|&(name, tombstoned)| NodeTopic {
                    name: name.to_owned(),
                    tombstoned,
                })
                .collect(),
        }
    }

    #[test]
    fn parses_the_v1_answer() {
        let nodes = parse_nodes(V1.as_bytes()).unwrap();
        assert_eq!(nodes, [node_v1()]);
        let node = &nodes[0];
        assert_eq!(node.tcp_address(), "127.0.0.1:14150");
        assert_eq!(node.http_address(), "127.0.0.1:14151");
        assert!(!node.is_tombstoned("a"));
        assert!(node.is_tombstoned("b"));
        assert!(node.may_publish("a"));
        assert!(!node.may_publish("b"));
        assert!(node.may_publish("not_registered_yet"));
    }

    fn node_v1() -> Node {
        Node {
            broadcast_address: "127.0.0.1".to_owned(),
            hostname: "vm".to_owned(),
            tcp_port: 14150,
            http_port: 14151,
            version: "1.3.0".to_owned(),
            topics: vec![
                NodeTopic {
                    name: "a".to_owned(),
                    tombstoned: false,
                },
                NodeTopic {
                    name: "b".to_owned(),
                    tombstoned: true,
                },
            ],
        }
    }

    #[test]
    fn parses_the_pre_1_0_envelope() {
        let legacy = format!(r#"{{"status_code":200,"status_txt":"OK","data":{V1}}}"#);
        assert_eq!(parse_nodes(legacy.as_bytes()).unwrap(), [node_v1()]);
        let empty = r#"{"status_code":200,"status_txt":"OK","data":{"producers":null}}"#;
        assert!(parse_nodes(empty.as_bytes()).unwrap().is_empty());
    }

    #[test]
    fn null_and_missing_lists_are_empty() {
        assert!(parse_nodes(br#"{"producers":[]}"#).unwrap().is_empty());
        assert!(parse_nodes(br#"{"producers":null}"#).unwrap().is_empty());
        let bare = br#"{"producers":[{"broadcast_address":"h","tcp_port":1,"http_port":2,"topics":null,"tombstones":null}]}"#;
        let nodes = parse_nodes(bare).unwrap();
        assert_eq!(nodes[0].topics, []);
        assert_eq!(nodes[0].hostname, "");
        let no_lists = br#"{"producers":[{"broadcast_address":"h","tcp_port":1,"http_port":2}]}"#;
        assert_eq!(parse_nodes(no_lists).unwrap()[0].topics, []);
    }

    #[test]
    fn tombstones_follow_the_topics_by_position() {
        // Fewer flags than topics: the rest are not tombstoned; extra flags are ignored.
        let short = br#"{"producers":[{"broadcast_address":"h","tcp_port":1,"http_port":2,
            "topics":["x","y","z"],"tombstones":[false,true]}]}"#;
        let node = &parse_nodes(short).unwrap()[0];
        let flags: Vec<(&str, bool)> = node
            .topics
            .iter()
            .map(|topic| (topic.name.as_str(), topic.tombstoned))
            .collect();
        assert_eq!(flags, [("x", false), ("y", true), ("z", false)]);
        let long = br#"{"producers":[{"broadcast_address":"h","tcp_port":1,"http_port":2,
            "topics":["x"],"tombstones":[true,true,true]}]}"#;
        assert_eq!(parse_nodes(long).unwrap()[0].topics.len(), 1);
        // A topic listed twice is tombstoned if either entry is.
        let twice = br#"{"producers":[{"broadcast_address":"h","tcp_port":1,"http_port":2,
            "topics":["x","x"],"tombstones":[false,true]}]}"#;
        let node = &parse_nodes(twice).unwrap()[0];
        assert_eq!(node.topics.len(), 1);
        assert!(node.is_tombstoned("x"));
    }

    #[test]
    fn refuses_what_is_not_a_node_list() {
        for bad in [
            &b"not json"[..],
            b"[]",
            b"{}",
            br#"{"topics":["a"]}"#,
            br#"{"producers":{"a":1}}"#,
            br#"{"producers":[{"tcp_port":1,"http_port":2}]}"#,
            br#"{"producers":[{"broadcast_address":"h","http_port":2}]}"#,
            br#"{"producers":[{"broadcast_address":"h","tcp_port":70000,"http_port":2}]}"#,
            br#"{"producers":[{"broadcast_address":"h","tcp_port":1,"http_port":2,"tombstones":["yes"]}]}"#,
        ] {
            assert!(
                parse_nodes(bad).is_err(),
                "{:?} parsed",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn merging_dedupes_on_address_and_port_and_unites_tombstones() {
        let from_a = vec![
            node("10.0.0.1", 4150, &[("orders", false), ("audit", false)]),
            node("10.0.0.2", 4150, &[("orders", false)]),
        ];
        let from_b = vec![
            node("10.0.0.2", 4150, &[("orders", true), ("extra", false)]),
            node("10.0.0.1", 4150, &[("orders", false)]),
            // Same host, another port: another nsqd.
            node("10.0.0.1", 4250, &[("orders", false)]),
        ];
        let merged = merge_nodes([from_a, from_b]);
        let keys: Vec<String> = merged.iter().map(Node::tcp_address).collect();
        assert_eq!(keys, ["10.0.0.1:4150", "10.0.0.2:4150", "10.0.0.1:4250"]);

        assert!(merged[0].may_publish("orders"));
        assert_eq!(merged[0].topics.len(), 2);
        // Tombstoned by the second lookupd only: tombstoned.
        assert!(merged[1].is_tombstoned("orders"));
        assert!(!merged[1].may_publish("orders"));
        assert!(merged[1].may_publish("extra"));
        assert!(merged[2].may_publish("orders"));

        // The other order gives the same verdicts.
        let merged = merge_nodes([
            vec![node("10.0.0.2", 4150, &[("orders", true)])],
            vec![node("10.0.0.2", 4150, &[("orders", false)])],
        ]);
        assert_eq!(merged.len(), 1);
        assert!(merged[0].is_tombstoned("orders"));
        assert!(merge_nodes(Vec::<Vec<Node>>::new()).is_empty());
    }

    #[test]
    fn addresses_of_ipv6_nodes_are_bracketed() {
        let node = node("::1", 4150, &[]);
        assert_eq!(node.tcp_address(), "[::1]:4150");
        assert_eq!(node.http_address(), "[::1]:4151");
    }

    #[test]
    fn lookupd_addresses() {
        for good in [
            "127.0.0.1:4161",
            "http://127.0.0.1:4161",
            "http://127.0.0.1:4161/",
            " lookupd.internal:4161 ",
            "[::1]:4161",
        ] {
            let uri = nodes_uri(good).unwrap_or_else(|err| panic!("{good:?}: {err}"));
            assert_eq!(uri.path(), "/nodes", "{good:?}");
            assert_eq!(uri.port_u16(), Some(4161), "{good:?}");
        }
        for bad in [
            "",
            "127.0.0.1",
            "https://127.0.0.1:4161",
            "http://127.0.0.1:4161/nodes",
            "user@127.0.0.1:4161",
            "127.0.0.1:4161?x=1",
        ] {
            let err = nodes_uri(bad).unwrap_err();
            assert!(
                matches!(err, LookupdError::InvalidAddress { .. }),
                "{bad:?}"
            );
            assert_eq!(err.lookupd(), bad);
        }
    }

    #[test]
    fn error_texts_are_cut() {
        assert_eq!(
            error_text(b" {\"message\":\"NOT_FOUND\"}\n"),
            r#"{"message":"NOT_FOUND"}"#
        );
        let long = "x".repeat(500);
        assert_eq!(error_text(long.as_bytes()).len(), MAX_ERROR_TEXT + 3);
    }

    /// Answers one HTTP request on loopback with `reply`, for answers nsqlookupd v1.3.0 never
    /// gives; returns the request it read.
    fn answer_once(reply: Vec<u8>) -> (SocketAddr, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "the client closed before the end of its headers");
                request.extend_from_slice(&buf[..n]);
            }
            stream.write_all(&reply).unwrap();
            String::from_utf8_lossy(&request).into_owned()
        });
        (addr, server)
    }

    fn http_ok(body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[tokio::test]
    async fn fetch_reads_the_envelope_and_asks_for_v1() {
        let legacy = format!(r#"{{"status_code":200,"status_txt":"OK","data":{V1}}}"#);
        let (addr, server) = answer_once(http_ok(&legacy));
        let nodes = fetch_nodes(&format!("http://{addr}"), Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(nodes, [node_v1()]);
        let request = server.join().unwrap().to_ascii_lowercase();
        assert!(request.starts_with("get /nodes http/1.1\r\n"), "{request}");
        assert!(
            request.contains("accept: application/vnd.nsq; version=1.0\r\n"),
            "{request}"
        );
    }

    #[tokio::test]
    async fn fetch_names_the_lookupd_in_json_errors() {
        let (addr, server) = answer_once(http_ok(r#"{"topics":["a"]}"#));
        let lookupd = addr.to_string();
        let err = fetch_nodes(&lookupd, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(matches!(err, LookupdError::Json { .. }), "{err:?}");
        assert_eq!(err.lookupd(), lookupd);
        assert!(err.to_string().contains(&lookupd), "{err}");
        assert!(err.to_string().contains("no node list"), "{err}");
        server.join().unwrap();
    }

    #[tokio::test]
    async fn fetch_reports_a_truncated_body() {
        let reply =
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"pro".to_vec();
        let (addr, server) = answer_once(reply);
        let err = fetch_nodes(&addr.to_string(), Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(matches!(err, LookupdError::Body { .. }), "{err:?}");
        server.join().unwrap();
    }
}
