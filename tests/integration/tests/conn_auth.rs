//! nsq-conn's AUTH against a real nsqd whose `--auth-http-address` points at a small HTTP auth
//! service run by the test itself.

mod conn_common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread;

use conn_common::{connect, connect_err, publish_one};
use nsq_conn::{ConnConfig, ConnError, TlsConfig};
use nsq_proto::{Command, ErrorCode, Frame, NegotiationError};
use nsq_test_support::{Nsqd, NsqdOptions, TestPki, topic, within};

/// The secrets the auth service knows.
const PUBLISHER: &str = "publisher-secret";
const NOBODY: &str = "no-authorizations";
const ONLY_ALLOWED: &str = "only-allowed-topic";

/// A minimal auth service: `GET /auth?remote_ip=..&tls=..&secret=..&common_name=..` answered
/// with nsqd's JSON format. Every request's query is recorded.
struct AuthService {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

impl AuthService {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the auth service");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // Skip the headers.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let target = request_line.split(' ').nth(1).unwrap_or_default();
                let query = parse_query(target.split_once('?').map_or("", |(_, q)| q));
                let (status, body) = answer(target, &query);
                recorded.lock().unwrap().push(query);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { addr, requests }
    }

    fn requests(&self) -> Vec<HashMap<String, String>> {
        self.requests.lock().unwrap().clone()
    }
}

fn answer(target: &str, query: &HashMap<String, String>) -> (&'static str, String) {
    if !target.starts_with("/auth?") {
        return ("404 Not Found", "{}".to_owned());
    }
    let secret = query.get("secret").map(String::as_str).unwrap_or_default();
    let body = match secret {
        PUBLISHER => serde_json::json!({
            "ttl": 3600,
            "identity": "publisher",
            "identity_url": "http://auth.example/publisher",
            "authorizations": [
                {"topic": ".*", "channels": [".*"], "permissions": ["subscribe", "publish"]}
            ]
        }),
        ONLY_ALLOWED => serde_json::json!({
            "ttl": 3600,
            "identity": "limited",
            // nsqd checks a publish against the channel patterns too, with an empty channel
            // name: a publish-only authorization still needs a pattern that matches "".
            "authorizations": [
                {"topic": "^conn_auth_allowed$", "channels": [".*"], "permissions": ["publish"]}
            ]
        }),
        NOBODY => serde_json::json!({"ttl": 3600, "identity": "nobody", "authorizations": []}),
        _ => {
            return (
                "403 Forbidden",
                r#"{"message":"unknown secret"}"#.to_owned(),
            );
        }
    };
    ("200 OK", body.to_string())
}

fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn auth_nsqd(auth: &AuthService, options: NsqdOptions) -> Nsqd {
    Nsqd::start_with(options.auth_http_address(auth.addr.to_string()))
}

#[tokio::test]
async fn conn_auth_accepted_then_publish() {
    let auth = AuthService::start();
    let nsqd = auth_nsqd(&auth, NsqdOptions::new());
    // With the TLS check, whose second IDENTIFY comes after AUTH.
    let config = ConnConfig::builder(nsqd.tcp_addr().to_string())
        .auth_secret(PUBLISHER)
        .check_tls_required(true)
        .build()
        .unwrap();
    let mut conn = connect(&config).await;
    assert!(conn.info().identify.auth_required);
    assert!(conn.info().upgrades.auth);
    let reply = conn.info().auth.clone().expect("the AUTH reply");
    assert_eq!(reply.identity, "publisher");
    assert_eq!(reply.identity_url, "http://auth.example/publisher");
    assert_eq!(reply.permission_count, 1);
    publish_one(&mut conn, "conn_auth").await;
    assert_eq!(nsqd.topic_depth("conn_auth"), Some(1));

    let requests = auth.requests();
    let request = requests.last().expect("nsqd asked the auth service");
    assert_eq!(request["secret"], PUBLISHER);
    assert_eq!(request["tls"], "false");
    assert_eq!(request["remote_ip"], "127.0.0.1");
}

#[tokio::test]
async fn conn_auth_over_tls_passes_the_client_certificate_name() {
    let auth = AuthService::start();
    let pki = TestPki::generate();
    let nsqd = auth_nsqd(
        &auth,
        NsqdOptions::new()
            .tls_cert(pki.server_cert())
            .tls_key(pki.server_key())
            .tls_root_ca_file(pki.ca_cert())
            .tls_client_auth_policy("require-verify")
            .tls_required("tcp-https"),
    );
    let config = ConnConfig::builder(nsqd.tcp_addr().to_string())
        .tls_v1(
            TlsConfig::new()
                .root_ca_file(pki.ca_cert())
                .client_cert(pki.client_cert(), pki.client_key()),
        )
        .snappy(true)
        .auth_secret(PUBLISHER)
        .build()
        .unwrap();
    let mut conn = connect(&config).await;
    let upgrades = conn.info().upgrades;
    assert!(upgrades.tls && upgrades.compression.is_some() && upgrades.auth);
    publish_one(&mut conn, "conn_auth_tls").await;
    let requests = auth.requests();
    let request = requests.last().expect("nsqd asked the auth service");
    assert_eq!(request["tls"], "true");
    assert_eq!(request["common_name"], TestPki::CLIENT_COMMON_NAME);
}

#[tokio::test]
async fn conn_auth_without_authorizations_is_unauthorized() {
    let auth = AuthService::start();
    let nsqd = auth_nsqd(&auth, NsqdOptions::new());
    let config = ConnConfig::builder(nsqd.tcp_addr().to_string())
        .auth_secret(NOBODY)
        .build()
        .unwrap();
    let err = connect_err(&config).await;
    let ConnError::AuthRejected(server) = &err else {
        panic!("expected an AUTH rejection, got {err}");
    };
    assert_eq!(server.code(), &ErrorCode::Unauthorized);
    assert_eq!(
        server.to_string(),
        "E_UNAUTHORIZED AUTH no authorizations found"
    );
}

#[tokio::test]
async fn conn_auth_with_an_unknown_secret_fails() {
    let auth = AuthService::start();
    let nsqd = auth_nsqd(&auth, NsqdOptions::new());
    let config = ConnConfig::builder(nsqd.tcp_addr().to_string())
        .auth_secret("wrong")
        .build()
        .unwrap();
    let err = connect_err(&config).await;
    let server = err
        .server_error()
        .unwrap_or_else(|| panic!("nsqd's error, got {err}"));
    assert_eq!(server.to_string(), "E_AUTH_FAILED AUTH failed");
    assert!(matches!(err, ConnError::AuthRejected(_)));
}

#[tokio::test]
async fn conn_auth_required_without_a_secret_fails_before_auth() {
    let auth = AuthService::start();
    let nsqd = auth_nsqd(&auth, NsqdOptions::new());
    let config = ConnConfig::builder(nsqd.tcp_addr().to_string())
        .build()
        .unwrap();
    let err = connect_err(&config).await;
    assert!(
        matches!(
            err,
            ConnError::Negotiation(NegotiationError::AuthSecretMissing)
        ),
        "{err}"
    );
    assert!(auth.requests().is_empty(), "no AUTH was sent");
}

#[tokio::test]
async fn conn_auth_topic_not_permitted_is_unauthorized() {
    let auth = AuthService::start();
    let nsqd = auth_nsqd(&auth, NsqdOptions::new());
    let config = ConnConfig::builder(nsqd.tcp_addr().to_string())
        .auth_secret(ONLY_ALLOWED)
        .build()
        .unwrap();
    let mut conn = connect(&config).await;
    publish_one(&mut conn, "conn_auth_allowed").await;
    let denied = topic("conn_auth_denied");
    conn.send(Command::Pub {
        topic: &denied,
        body: b"x",
    })
    .await
    .unwrap();
    match within("reply", conn.recv()).await.unwrap() {
        Frame::Error(err) => assert_eq!(
            err.to_string(),
            "E_UNAUTHORIZED AUTH failed for PUB on \"conn_auth_denied\" \"\""
        ),
        other => panic!("{other:?}"),
    }
}
