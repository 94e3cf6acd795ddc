//! Typed snapshots of one channel's statistics, with each subscribed client, from nsqd's
//! `GET /stats?format=json`.

use std::io;
use std::net::SocketAddr;

use serde_json::Value;

use crate::Nsqd;
use crate::http;

/// One channel of one topic as nsqd reports it: its counters and every client subscribed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSnapshot {
    /// Messages waiting in the channel (in memory and on disk).
    pub depth: u64,
    /// Messages delivered and not yet finished, requeued or timed out.
    pub in_flight_count: u64,
    /// Messages requeued with a delay, or published deferred, that are not due yet.
    pub deferred_count: u64,
    /// Messages the channel has received since nsqd started.
    pub message_count: u64,
    /// Requeues (`REQ`) since nsqd started.
    pub requeue_count: u64,
    /// Messages that timed out in flight (`msg_timeout` passed) since nsqd started.
    pub timeout_count: u64,
    /// The clients subscribed to the channel now.
    pub clients: Vec<ClientSnapshot>,
}

/// One subscribed client (one connection) as nsqd reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSnapshot {
    /// The `client_id` from IDENTIFY.
    pub client_id: String,
    /// The `user_agent` from IDENTIFY.
    pub user_agent: String,
    /// The client's address as nsqd sees it (`ip:port`): one value per connection.
    pub remote_address: String,
    /// When the client connected (Unix seconds).
    pub connect_ts: i64,
    /// The client's last RDY count.
    pub ready_count: u64,
    /// Messages delivered to this client and not yet answered.
    pub in_flight_count: u64,
    /// Messages delivered to this client.
    pub message_count: u64,
    /// `FIN`s from this client.
    pub finish_count: u64,
    /// `REQ`s from this client.
    pub requeue_count: u64,
    /// Whether the connection negotiated TLS.
    pub tls: bool,
    /// Whether the connection negotiated snappy compression.
    pub snappy: bool,
    /// Whether the connection negotiated deflate compression.
    pub deflate: bool,
}

impl ChannelSnapshot {
    /// The sum of the clients' RDY counts.
    pub fn total_ready(&self) -> u64 {
        self.clients.iter().map(|c| c.ready_count).sum()
    }

    fn from_json(stats: &Value, name: &str) -> io::Result<Self> {
        let clients = match &stats["clients"] {
            Value::Null => Vec::new(),
            Value::Array(clients) => clients
                .iter()
                .map(|client| ClientSnapshot::from_json(client, name))
                .collect::<io::Result<_>>()?,
            other => return Err(invalid(format!("{name}: `clients` is not a list: {other}"))),
        };
        Ok(Self {
            depth: field(stats, "depth", name)?,
            in_flight_count: field(stats, "in_flight_count", name)?,
            deferred_count: field(stats, "deferred_count", name)?,
            message_count: field(stats, "message_count", name)?,
            requeue_count: field(stats, "requeue_count", name)?,
            timeout_count: field(stats, "timeout_count", name)?,
            clients,
        })
    }
}

impl ClientSnapshot {
    fn from_json(client: &Value, channel: &str) -> io::Result<Self> {
        let text = |key: &str| client[key].as_str().unwrap_or_default().to_owned();
        let name = format!("a client of {channel}");
        let flag = |key: &str| client[key].as_bool().unwrap_or_default();
        Ok(Self {
            client_id: text("client_id"),
            user_agent: text("user_agent"),
            remote_address: text("remote_address"),
            connect_ts: client["connect_ts"].as_i64().unwrap_or_default(),
            ready_count: field(client, "ready_count", &name)?,
            in_flight_count: field(client, "in_flight_count", &name)?,
            message_count: field(client, "message_count", &name)?,
            finish_count: field(client, "finish_count", &name)?,
            requeue_count: field(client, "requeue_count", &name)?,
            tls: flag("tls"),
            snappy: flag("snappy"),
            deflate: flag("deflate"),
        })
    }
}

impl Nsqd {
    /// The statistics of `channel` on `topic`, with its clients; `None` if the topic or the
    /// channel does not exist.
    ///
    /// # Panics
    ///
    /// When nsqd does not answer with its statistics.
    pub fn channel_snapshot(&self, topic: &str, channel: &str) -> Option<ChannelSnapshot> {
        channel_snapshot_at(self.http_addr(), topic, channel).unwrap_or_else(|err| {
            panic!(
                "the statistics of {topic}/{channel} from nsqd at {}: {err}",
                self.http_addr()
            )
        })
    }
}

/// The statistics of `channel` on `topic` from the nsqd whose HTTP API is at `http_addr`, for
/// code that cannot borrow the [`Nsqd`] (a sampling thread, say). `Ok(None)` if the topic or
/// the channel does not exist.
///
/// # Errors
///
/// When the request fails (nsqd is down, say) or the answer is not nsqd's statistics.
pub fn channel_snapshot_at(
    http_addr: SocketAddr,
    topic: &str,
    channel: &str,
) -> io::Result<Option<ChannelSnapshot>> {
    let target = format!(
        "/stats?format=json&include_mem=false&topic={}&channel={}",
        http::encode_query_value(topic),
        http::encode_query_value(channel)
    );
    let response = http::request(http_addr, "GET", &target, b"")?;
    if !response.is_success() {
        return Err(invalid(format!("GET {target}: {response:?}")));
    }
    let stats: Value = serde_json::from_slice(&response.body)
        .map_err(|err| invalid(format!("GET {target}: {err}")))?;
    let Some(topic_stats) = named(&stats["topics"], "topic_name", topic) else {
        return Ok(None);
    };
    named(&topic_stats["channels"], "channel_name", channel)
        .map(|channel_stats| ChannelSnapshot::from_json(channel_stats, channel))
        .transpose()
}

fn named<'a>(list: &'a Value, key: &str, name: &str) -> Option<&'a Value> {
    list.as_array()?
        .iter()
        .find(|item| item[key].as_str() == Some(name))
}

fn field(stats: &Value, key: &str, name: &str) -> io::Result<u64> {
    stats[key]
        .as_u64()
        .ok_or_else(|| invalid(format!("{name} has no numeric {key:?}: {stats}")))
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_a_channel_and_its_clients() {
        // Trimmed from nsqd 1.3.0's answer with one subscribed client.
        let stats = json!({
            "channel_name": "c", "depth": 2, "backend_depth": 0, "in_flight_count": 1,
            "deferred_count": 0, "message_count": 3, "requeue_count": 4, "timeout_count": 5,
            "client_count": 1,
            "clients": [{
                "client_id": "me", "hostname": "h", "version": "V2",
                "remote_address": "127.0.0.1:43018", "state": 3, "ready_count": 3,
                "in_flight_count": 1, "message_count": 1, "finish_count": 6,
                "requeue_count": 7, "connect_ts": 1796656931, "user_agent": "ua",
                "tls": true, "snappy": false, "deflate": true
            }]
        });
        let snapshot = ChannelSnapshot::from_json(&stats, "c").unwrap();
        assert_eq!(snapshot.depth, 2);
        assert_eq!(snapshot.requeue_count, 4);
        assert_eq!(snapshot.timeout_count, 5);
        assert_eq!(snapshot.total_ready(), 3);
        let client = &snapshot.clients[0];
        assert_eq!(client.client_id, "me");
        assert_eq!(client.user_agent, "ua");
        assert_eq!(client.remote_address, "127.0.0.1:43018");
        assert_eq!(client.finish_count, 6);
        assert_eq!(client.requeue_count, 7);
        assert!(client.tls && !client.snappy && client.deflate);
    }

    #[test]
    fn no_clients_and_missing_fields() {
        let stats = json!({
            "depth": 0, "in_flight_count": 0, "deferred_count": 0, "message_count": 0,
            "requeue_count": 0, "timeout_count": 0, "clients": null
        });
        assert!(
            ChannelSnapshot::from_json(&stats, "c")
                .unwrap()
                .clients
                .is_empty()
        );
        let err = ChannelSnapshot::from_json(&json!({"depth": 0}), "c").unwrap_err();
        assert!(err.to_string().contains("in_flight_count"), "{err}");
    }
}
