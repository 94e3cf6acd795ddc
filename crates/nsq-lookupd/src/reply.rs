//! nsqlookupd's JSON replies, parsed: `/nodes` into [`Node`]s, `/lookup?topic=` into a
//! [`Lookup`], and the node lists of several nsqlookupds merged into one.
//!
//! nsqlookupd v1.x answers `/nodes` with
//!
//! ```json
//! {"producers": [{"remote_address": "10.0.0.5:51234", "hostname": "host-a",
//!   "broadcast_address": "host-a", "tcp_port": 4150, "http_port": 4151, "version": "1.3.0",
//!   "tombstones": [false, true], "topics": ["orders", "audit"]}]}
//! ```
//!
//! where `tombstones[i]` says whether `topics[i]` is tombstoned on that node: an operator asked
//! nsqlookupd to stop sending clients to that node for that topic, usually before deleting the
//! topic there. `/lookup?topic=orders` answers `{"channels": [...], "producers": [...]}` with
//! the same entries minus `topics` and `tombstones` (nsqlookupd leaves tombstoned nodes out).
//! Versions before 1.0 wrap either object as
//! `{"status_code": 200, "status_txt": "OK", "data": {...}}`; both forms are accepted.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Where to reach one nsqd that nsqlookupd lists.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Nsqd {
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
}

impl Nsqd {
    /// An nsqd at `broadcast_address` with these ports; its host name and version empty.
    pub fn new(broadcast_address: impl Into<String>, tcp_port: u16, http_port: u16) -> Self {
        Self {
            broadcast_address: broadcast_address.into(),
            hostname: String::new(),
            tcp_port,
            http_port,
            version: String::new(),
        }
    }

    /// `broadcast_address:tcp_port`, the address producers and consumers connect to; an IPv6
    /// address is put in brackets.
    pub fn tcp_address(&self) -> String {
        join_host_port(&self.broadcast_address, self.tcp_port)
    }

    /// `broadcast_address:http_port`, which is also how nsqlookupd's `/topic/tombstone` names
    /// the node.
    pub fn http_address(&self) -> String {
        join_host_port(&self.broadcast_address, self.http_port)
    }
}

/// One nsqd as an nsqlookupd lists it in `/nodes`: where to reach it and its topics.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Node {
    /// Where to reach it.
    pub nsqd: Nsqd,
    /// The topics it has registered, each with whether it is tombstoned there.
    pub topics: Vec<NodeTopic>,
}

/// One topic of a [`Node`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeTopic {
    /// The topic's name.
    pub name: String,
    /// Whether nsqlookupd has tombstoned the topic on this node.
    pub tombstoned: bool,
}

impl NodeTopic {
    /// A topic named `name`, tombstoned or not.
    pub fn new(name: impl Into<String>, tombstoned: bool) -> Self {
        Self {
            name: name.into(),
            tombstoned,
        }
    }
}

impl Node {
    /// A node at `nsqd` with `topics`; a topic listed twice is kept once, tombstoned if either
    /// entry is.
    pub fn new(nsqd: Nsqd, topics: impl IntoIterator<Item = NodeTopic>) -> Self {
        let mut node = Self {
            nsqd,
            topics: Vec::new(),
        };
        for topic in topics {
            node.add_topic(topic);
        }
        node
    }

    /// The nsqd's TCP address, as [`Nsqd::tcp_address`].
    pub fn tcp_address(&self) -> String {
        self.nsqd.tcp_address()
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

    /// The names of the topics tombstoned on this node.
    pub fn tombstoned_topics(&self) -> impl Iterator<Item = &str> {
        self.topics
            .iter()
            .filter(|topic| topic.tombstoned)
            .map(|topic| topic.name.as_str())
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

/// What `/lookup?topic=` tells of one topic: the nsqd that have it (its producers, in
/// nsqlookupd's words) and its channels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lookup {
    /// The nsqd that have registered the topic and where it is not tombstoned.
    pub producers: Vec<Nsqd>,
    /// The topic's channels, as registered by those nsqd.
    pub channels: Vec<String>,
}

/// Parses a `/nodes` reply, in the v1 form or the pre-1.0 envelope.
///
/// A topic without an entry in `tombstones` counts as not tombstoned; `null` lists count as
/// empty.
///
/// # Errors
///
/// When the body is not JSON, lacks a node list, is an envelope whose `status_code` is not 200,
/// or a node lacks its `broadcast_address`, `tcp_port` or `http_port`.
pub fn parse_nodes(body: &[u8]) -> Result<Vec<Node>, serde_json::Error> {
    let reply: NodesReply = unwrap(body)?;
    Ok(reply
        .producers
        .into_iter()
        .map(RawNsqd::into_node)
        .collect())
}

/// Parses a `/lookup?topic=` reply, in the v1 form or the pre-1.0 envelope.
///
/// # Errors
///
/// As [`parse_nodes`], for a body without a `producers` list.
pub fn parse_lookup(body: &[u8]) -> Result<Lookup, serde_json::Error> {
    let reply: LookupReply = unwrap(body)?;
    Ok(Lookup {
        producers: reply
            .producers
            .into_iter()
            .map(|raw| raw.into_node().nsqd)
            .collect(),
        channels: reply.channels,
    })
}

/// Merges the node lists of several nsqlookupds: a node listed by more than one (the same
/// `broadcast_address:tcp_port`) appears once, in the place it was first seen, with the
/// topics of every listing; a topic is tombstoned on it if any nsqlookupd says so.
pub fn merge_nodes(lists: impl IntoIterator<Item = Vec<Node>>) -> Vec<Node> {
    let mut merged: Vec<Node> = Vec::new();
    let mut seen: HashMap<(String, u16), usize> = HashMap::new();
    for node in lists.into_iter().flatten() {
        match seen.entry((node.nsqd.broadcast_address.clone(), node.nsqd.tcp_port)) {
            Entry::Occupied(entry) => merged[*entry.get()].absorb(node),
            Entry::Vacant(entry) => {
                entry.insert(merged.len());
                merged.push(node);
            }
        }
    }
    merged
}

/// The status text of a pre-1.0 envelope whose `status_code` is `status`, e.g.
/// `TOPIC_NOT_FOUND`; `None` for anything else.
pub(crate) fn envelope_status(body: &[u8], status: u16) -> Option<String> {
    let Value::Object(map) = serde_json::from_slice(body).ok()? else {
        return None;
    };
    let code = map.get("status_code")?.as_u64()?;
    (code == u64::from(status)).then(|| {
        map.get("status_txt")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    })
}

/// Reads `T` from a v1 reply, or from the `data` of a pre-1.0 envelope (an object with
/// `status_code` and `data`), which must say 200.
fn unwrap<T: DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    let value: Value = serde_json::from_slice(body)?;
    let value = match value {
        Value::Object(mut map) if map.contains_key("status_code") && map.contains_key("data") => {
            let code = map.get("status_code").and_then(Value::as_u64);
            if code != Some(200) {
                return Err(serde_json::Error::custom(format!(
                    "the envelope says status_code {} ({})",
                    map["status_code"],
                    map.get("status_txt").unwrap_or(&Value::Null)
                )));
            }
            map.remove("data").unwrap_or_default()
        }
        other => other,
    };
    T::deserialize(value)
}

/// A `/nodes` reply; `producers` must be present, `null` reads as empty.
#[derive(Deserialize)]
struct NodesReply {
    #[serde(deserialize_with = "null_as_empty")]
    producers: Vec<RawNsqd>,
}

/// A `/lookup` reply.
#[derive(Deserialize)]
struct LookupReply {
    #[serde(deserialize_with = "null_as_empty")]
    producers: Vec<RawNsqd>,
    #[serde(default, deserialize_with = "null_as_empty")]
    channels: Vec<String>,
}

/// One nsqd as nsqlookupd sends it; unknown fields (`remote_address`) are ignored, and
/// `/lookup` has no `topics` or `tombstones`.
#[derive(Deserialize)]
struct RawNsqd {
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

impl RawNsqd {
    fn into_node(self) -> Node {
        let tombstones = self.tombstones;
        let topics = self.topics.into_iter().enumerate().map(|(index, name)| {
            let tombstoned = tombstones.get(index).copied().unwrap_or(false);
            NodeTopic { name, tombstoned }
        });
        let nsqd = Nsqd {
            broadcast_address: self.broadcast_address,
            hostname: self.hostname,
            tcp_port: self.tcp_port,
            http_port: self.http_port,
            version: self.version,
        };
        Node::new(nsqd, topics)
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

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// What nsqlookupd v1.3.0 answered to `/nodes` for one nsqd with topics `a` and `b`, `b`
    /// tombstoned.
    pub(crate) const NODES_V1: &str = r#"{"producers":[{"remote_address":"127.0.0.1:56738","hostname":"vm","broadcast_address":"127.0.0.1","tcp_port":14150,"http_port":14151,"version":"1.3.0","tombstones":[false,true],"topics":["a","b"]}]}"#;

    /// What nsqlookupd v1.3.0 answered to `/lookup?topic=a` for the same nsqd, with a channel.
    const LOOKUP_V1: &str = r#"{"channels":["ch"],"producers":[{"remote_address":"127.0.0.1:56738","hostname":"vm","broadcast_address":"127.0.0.1","tcp_port":14150,"http_port":14151,"version":"1.3.0"}]}"#;

    fn nsqd_v1() -> Nsqd {
        Nsqd {
            hostname: "vm".to_owned(),
            version: "1.3.0".to_owned(),
            ..Nsqd::new("127.0.0.1", 14150, 14151)
        }
    }

    pub(crate) fn node_v1() -> Node {
        Node::new(
            nsqd_v1(),
            [NodeTopic::new("a", false), NodeTopic::new("b", true)],
        )
    }

    fn node(address: &str, tcp_port: u16, topics: &[(&str, bool)]) -> Node {
        Node::new(
            Nsqd::new(address, tcp_port, tcp_port + 1),
            topics
                .iter()
                .map(|&(name, tombstoned)| NodeTopic::new(name, tombstoned)),
        )
    }

    fn wrapped(v1: &str) -> String {
        format!(r#"{{"status_code":200,"status_txt":"OK","data":{v1}}}"#)
    }

    #[test]
    fn parses_the_v1_nodes_reply() {
        let nodes = parse_nodes(NODES_V1.as_bytes()).unwrap();
        assert_eq!(nodes, [node_v1()]);
        let node = &nodes[0];
        assert_eq!(node.tcp_address(), "127.0.0.1:14150");
        assert_eq!(node.nsqd.http_address(), "127.0.0.1:14151");
        assert!(!node.is_tombstoned("a"));
        assert!(node.is_tombstoned("b"));
        assert!(node.may_publish("a"));
        assert!(!node.may_publish("b"));
        assert!(node.may_publish("not_registered_yet"));
        assert_eq!(node.tombstoned_topics().collect::<Vec<_>>(), ["b"]);
    }

    #[test]
    fn parses_the_pre_1_0_envelope_of_nodes() {
        assert_eq!(
            parse_nodes(wrapped(NODES_V1).as_bytes()).unwrap(),
            [node_v1()]
        );
        let empty = r#"{"status_code":200,"status_txt":"OK","data":{"producers":null}}"#;
        assert!(parse_nodes(empty.as_bytes()).unwrap().is_empty());
    }

    #[test]
    fn parses_the_lookup_reply_in_both_forms() {
        let expected = Lookup {
            producers: vec![nsqd_v1()],
            channels: vec!["ch".to_owned()],
        };
        assert_eq!(parse_lookup(LOOKUP_V1.as_bytes()).unwrap(), expected);
        assert_eq!(
            parse_lookup(wrapped(LOOKUP_V1).as_bytes()).unwrap(),
            expected
        );
        let bare = br#"{"producers":null,"channels":null}"#;
        assert_eq!(parse_lookup(bare).unwrap(), Lookup::default());
        let no_channels = br#"{"producers":[]}"#;
        assert_eq!(parse_lookup(no_channels).unwrap(), Lookup::default());
    }

    #[test]
    fn an_envelope_that_is_not_200_is_an_error() {
        let not_found = br#"{"status_code":404,"status_txt":"TOPIC_NOT_FOUND","data":null}"#;
        let err = parse_lookup(not_found).unwrap_err().to_string();
        assert!(
            err.contains("404") && err.contains("TOPIC_NOT_FOUND"),
            "{err}"
        );
        assert!(parse_nodes(not_found).is_err());
        assert_eq!(
            envelope_status(not_found, 404).as_deref(),
            Some("TOPIC_NOT_FOUND")
        );
        assert_eq!(envelope_status(not_found, 500), None);
        assert_eq!(envelope_status(b"not json", 404), None);
    }

    #[test]
    fn null_and_missing_lists_are_empty() {
        assert!(parse_nodes(br#"{"producers":[]}"#).unwrap().is_empty());
        assert!(parse_nodes(br#"{"producers":null}"#).unwrap().is_empty());
        let bare = br#"{"producers":[{"broadcast_address":"h","tcp_port":1,"http_port":2,"topics":null,"tombstones":null}]}"#;
        let nodes = parse_nodes(bare).unwrap();
        assert_eq!(nodes[0].topics, []);
        assert_eq!(nodes[0].nsqd.hostname, "");
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
            br#"{"status_code":500,"status_txt":"INTERNAL_ERROR","data":{"producers":[]}}"#,
        ] {
            let text = String::from_utf8_lossy(bad);
            assert!(parse_nodes(bad).is_err(), "{text:?} parsed as nodes");
            assert!(parse_lookup(bad).is_err(), "{text:?} parsed as a lookup");
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
        assert_eq!(node.nsqd.http_address(), "[::1]:4151");
        assert_eq!(Nsqd::new("[::1]", 1, 2).tcp_address(), "[::1]:1");
    }
}
