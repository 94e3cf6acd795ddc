//! A generated run's check: nsqd's own count of the messages the topic gained, against the
//! acknowledgements.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The longest a stats request may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP address of the nsqd at `tcp`: the one given, or its TCP port plus one (nsqd's
/// defaults are 4150 and 4151).
pub(crate) fn http_address(tcp: &str, given: Option<&String>) -> Option<String> {
    if let Some(given) = given {
        return Some(given.clone());
    }
    let (host, port) = tcp.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    Some(format!("{host}:{}", port.checked_add(1)?))
}

/// How many messages `topic` has received on the nsqd at `http` since it was created (0 when it
/// does not exist).
pub(crate) async fn message_count(http: &str, topic: &str) -> Result<u64, String> {
    tokio::time::timeout(TIMEOUT, fetch(http, topic))
        .await
        .map_err(|_| format!("nsqd at {http} did not answer within {TIMEOUT:?}"))?
}

async fn fetch(http: &str, topic: &str) -> Result<u64, String> {
    let uri = format!("http://{http}/stats?format=json&topic={topic}")
        .parse::<hyper::Uri>()
        .map_err(|e| format!("{http}: {e}"))?;
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(TIMEOUT));
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let mut request = Request::new(Empty::new());
    *request.uri_mut() = uri;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("asking nsqd at {http} for its stats: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("nsqd at {http} answered {}", response.status()));
    }
    let body = Limited::new(response.into_body(), 16 * 1024 * 1024)
        .collect()
        .await
        .map_err(|e| format!("reading nsqd's stats from {http}: {e}"))?
        .to_bytes();
    parse(&body, topic).map_err(|e| format!("nsqd's stats from {http}: {e}"))
}

/// The topic's `message_count` in a `/stats?format=json` answer.
fn parse(body: &[u8], topic: &str) -> Result<u64, String> {
    let stats: serde_json::Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    // nsqd 1.x answers the object itself; older ones wrapped it in `data`.
    let stats = stats.get("data").unwrap_or(&stats);
    // `null` when nsqd has no topic yet.
    let topics = match stats.get("topics") {
        Some(serde_json::Value::Array(topics)) => topics.as_slice(),
        Some(serde_json::Value::Null) => &[],
        _ => return Err("no `topics` list".to_owned()),
    };
    Ok(topics
        .iter()
        .find(|t| t.get("topic_name").and_then(|n| n.as_str()) == Some(topic))
        .and_then(|t| t.get("message_count"))
        .and_then(|c| c.as_u64())
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_port_defaults_to_the_tcp_port_plus_one() {
        assert_eq!(
            http_address("127.0.0.1:4150", None).as_deref(),
            Some("127.0.0.1:4151")
        );
        let given = "10.0.0.1:80".to_owned();
        assert_eq!(
            http_address("127.0.0.1:4150", Some(&given)).as_deref(),
            Some("10.0.0.1:80")
        );
        assert_eq!(http_address("nowhere", None), None);
    }

    #[test]
    fn the_topic_count_is_read_from_stats() {
        let body = br#"{"version":"1.3.0","topics":[{"topic_name":"a","message_count":7},{"topic_name":"b","message_count":9}]}"#;
        assert_eq!(parse(body, "b"), Ok(9));
        assert_eq!(parse(body, "c"), Ok(0));
        assert_eq!(parse(br#"{"topics":null}"#, "a"), Ok(0));
        assert!(parse(b"{}", "a").is_err());
    }
}
