//! [`Lookupd`]: the requests to one nsqlookupd over HTTP/1.1 (hyper), each within a timeout,
//! and the naming of the two usual wrong addresses (nsqd's TCP port, nsqd's HTTP port).

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::{ACCEPT, HeaderValue, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::LookupdError;
use crate::reply::{Lookup, Node, envelope_status, parse_lookup, parse_nodes};

/// The media type that asks nsqlookupd for its v1 answers (plain JSON, no envelope).
const ACCEPT_V1: &str = "application/vnd.nsq; version=1.0";

/// The largest body read; a larger one is a [`LookupdError::Body`].
const MAX_BODY: usize = 16 * 1024 * 1024;

/// How much of an error answer's body goes into [`LookupdError::Status`].
const MAX_ERROR_TEXT: usize = 200;

/// How long a request may take unless [`Lookupd::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

const NODES: &str = "/nodes";
const LOOKUP: &str = "/lookup";
const PING: &str = "/ping";

/// A client of one nsqlookupd's HTTP API.
///
/// Each request opens its own connection (none is kept idle between polls) and must be answered
/// in full within the [timeout](Self::timeout), connecting included. Cloning is cheap.
///
/// ```no_run
/// # async fn run() -> Result<(), nsq_lookupd::LookupdError> {
/// use nsq_lookupd::Lookupd;
///
/// let lookupd = Lookupd::new("127.0.0.1:4161")?;
/// for nsqd in lookupd.lookup("orders").await?.producers {
///     println!("orders is on {}", nsqd.tcp_address());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Lookupd {
    /// The address as given, for errors.
    address: String,
    /// `host:port`.
    authority: String,
    timeout: Duration,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl fmt::Debug for Lookupd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lookupd")
            .field("address", &self.address)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Lookupd {
    /// A client of the nsqlookupd whose HTTP API is at `address`: `host:port` or
    /// `http://host:port` (a trailing `/` allowed), e.g. `127.0.0.1:4161`.
    ///
    /// # Errors
    ///
    /// [`LookupdError::InvalidAddress`] when the address has another scheme, a path, a query,
    /// user information or no port.
    pub fn new(address: &str) -> Result<Self, LookupdError> {
        Ok(Self {
            address: address.to_owned(),
            authority: authority(address)?,
            timeout: DEFAULT_TIMEOUT,
            client: client(DEFAULT_TIMEOUT),
        })
    }

    /// Sets how long each request may take, connecting included ([`DEFAULT_TIMEOUT`], 5 s,
    /// unless set).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.client = client(timeout);
        self
    }

    /// The address as given to [`new`](Self::new).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// `GET /nodes`: every nsqd registered with this nsqlookupd, with its topics and which of
    /// them are tombstoned there.
    ///
    /// # Errors
    ///
    /// [`LookupdError`] says what failed: the connection, the request, the time, the status,
    /// the body or the JSON; [`LookupdError::NotHttp`] and [`LookupdError::NsqdHttp`] name an
    /// address that is nsqd's.
    pub async fn nodes(&self) -> Result<Vec<Node>, LookupdError> {
        let body = self.get(NODES, NODES).await?;
        parse_nodes(&body).map_err(|source| self.json(NODES, source))
    }

    /// `GET /lookup?topic=`: the nsqd that have `topic` (where it is not tombstoned) and its
    /// channels; what a consumer connects to.
    ///
    /// A topic this nsqlookupd has never heard of (nsqlookupd answers 404 `TOPIC_NOT_FOUND`)
    /// gives an empty [`Lookup`]: no nsqd has it yet.
    ///
    /// # Errors
    ///
    /// As [`nodes`](Self::nodes).
    pub async fn lookup(&self, topic: &str) -> Result<Lookup, LookupdError> {
        let target = format!("{LOOKUP}?topic={}", percent_encode(topic));
        match self.get(LOOKUP, &target).await {
            Ok(body) => parse_lookup(&body).map_err(|source| self.json(LOOKUP, source)),
            Err(LookupdError::Status {
                status: 404, body, ..
            }) if body.contains("TOPIC_NOT_FOUND") => Ok(Lookup::default()),
            Err(err) => Err(err),
        }
    }

    /// `GET /ping`: whether this address answers as nsqlookupd does when it is up (HTTP 200).
    /// nsqd's HTTP API answers `/ping` the same way, so this alone does not tell them apart;
    /// [`nodes`](Self::nodes) and [`lookup`](Self::lookup) do.
    ///
    /// # Errors
    ///
    /// As [`nodes`](Self::nodes), except that nsqd's HTTP address passes.
    pub async fn ping(&self) -> Result<(), LookupdError> {
        self.fetch(PING, PING).await.map(drop)
    }

    /// A GET whose answer must be 200, within the timeout. A 404 `NOT_FOUND` is checked
    /// against `/ping`: nsqd's HTTP API answers that one.
    async fn get(&self, path: &'static str, target: &str) -> Result<Bytes, LookupdError> {
        match self.fetch(path, target).await {
            Err(LookupdError::Status {
                status: 404, body, ..
            }) if body.contains("\"NOT_FOUND\"") && self.ping().await.is_ok() => {
                Err(LookupdError::NsqdHttp {
                    lookupd: self.address.clone(),
                    path,
                })
            }
            other => other,
        }
    }

    /// A GET whose answer must be 200, within the timeout.
    async fn fetch(&self, path: &'static str, target: &str) -> Result<Bytes, LookupdError> {
        match tokio::time::timeout(self.timeout, self.exchange(path, target)).await {
            Ok(result) => result,
            Err(_) => Err(LookupdError::TimedOut {
                lookupd: self.address.clone(),
                path,
                timeout: self.timeout,
            }),
        }
    }

    async fn exchange(&self, path: &'static str, target: &str) -> Result<Bytes, LookupdError> {
        let uri: Uri = format!("http://{}{target}", self.authority)
            .parse()
            .map_err(|err| LookupdError::InvalidAddress {
                lookupd: self.address.clone(),
                reason: format!("{err}"),
            })?;
        let mut request = Request::new(Empty::new());
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_V1));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("nsq-rs/", env!("CARGO_PKG_VERSION"))),
        );

        let response = self
            .client
            .request(request)
            .await
            .map_err(|source| self.request_failed(path, source))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map(|collected| collected.to_bytes());
        if status != StatusCode::OK {
            let body = body.map_or_else(|_| String::new(), |body| error_text(&body, status));
            return Err(LookupdError::Status {
                lookupd: self.address.clone(),
                path,
                status: status.as_u16(),
                body,
            });
        }
        body.map_err(|source| LookupdError::Body {
            lookupd: self.address.clone(),
            path,
            source,
        })
    }

    /// Names a failed request: no connection, an answer that is not HTTP, or another failure.
    fn request_failed(
        &self,
        path: &'static str,
        source: hyper_util::client::legacy::Error,
    ) -> LookupdError {
        let lookupd = self.address.clone();
        if source.is_connect() {
            LookupdError::Connect { lookupd, source }
        } else if is_not_http(&source) {
            LookupdError::NotHttp {
                lookupd,
                path,
                source,
            }
        } else {
            LookupdError::Request {
                lookupd,
                path,
                source,
            }
        }
    }

    fn json(&self, path: &'static str, source: serde_json::Error) -> LookupdError {
        LookupdError::Json {
            lookupd: self.address.clone(),
            path,
            source,
        }
    }
}

/// A client that connects within `timeout` and keeps no idle connection.
fn client(timeout: Duration) -> Client<HttpConnector, Empty<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(timeout));
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector)
}

/// Whether hyper could not read the answer as HTTP (nsqd's TCP port answers a binary frame).
fn is_not_http(err: &hyper_util::client::legacy::Error) -> bool {
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            return hyper.is_parse();
        }
        source = cause.source();
    }
    false
}

/// `host:port` from `host:port` or `http://host:port` (a trailing `/` allowed).
fn authority(lookupd: &str) -> Result<String, LookupdError> {
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
    let uri: Uri = format!("http://{authority}/")
        .parse()
        .map_err(|err| invalid(format!("{err}")))?;
    if uri.port_u16().is_none() {
        return Err(invalid("the port is missing".to_owned()));
    }
    Ok(authority.to_owned())
}

/// `text` with every byte but ASCII letters, digits, `.`, `_` and `-` as `%XX`; an ephemeral
/// topic's `#` becomes `%23`.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// The start of an error answer's body, as text; a pre-1.0 envelope's status text when the
/// body is one.
fn error_text(body: &[u8], status: StatusCode) -> String {
    if let Some(text) = envelope_status(body, status.as_u16()) {
        return text;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(MAX_ERROR_TEXT) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::thread;

    use super::*;
    use crate::reply::tests::{NODES_V1, node_v1};

    const TIMEOUT: Duration = Duration::from_secs(10);

    #[test]
    fn lookupd_addresses() {
        for good in [
            "127.0.0.1:4161",
            "http://127.0.0.1:4161",
            "http://127.0.0.1:4161/",
            " lookupd.internal:4161 ",
            "[::1]:4161",
        ] {
            let authority = authority(good).unwrap_or_else(|err| panic!("{good:?}: {err}"));
            assert!(authority.ends_with(":4161"), "{good:?}");
            assert!(!authority.contains("http"), "{good:?}");
        }
        for bad in [
            "",
            "127.0.0.1",
            "https://127.0.0.1:4161",
            "http://127.0.0.1:4161/nodes",
            "user@127.0.0.1:4161",
            "127.0.0.1:4161?x=1",
        ] {
            let err = Lookupd::new(bad).unwrap_err();
            assert!(
                matches!(err, LookupdError::InvalidAddress { .. }),
                "{bad:?}"
            );
            assert_eq!(err.lookupd(), bad);
        }
    }

    #[test]
    fn topics_are_percent_encoded() {
        assert_eq!(percent_encode("orders.v2_a-b"), "orders.v2_a-b");
        assert_eq!(percent_encode("tmp#ephemeral"), "tmp%23ephemeral");
        assert_eq!(percent_encode("a b&c=é"), "a%20b%26c%3D%C3%A9");
    }

    #[test]
    fn error_texts_are_cut() {
        assert_eq!(
            error_text(b" {\"message\":\"NOT_FOUND\"}\n", StatusCode::NOT_FOUND),
            r#"{"message":"NOT_FOUND"}"#
        );
        let long = "x".repeat(500);
        assert_eq!(
            error_text(long.as_bytes(), StatusCode::NOT_FOUND).len(),
            MAX_ERROR_TEXT + 3
        );
        let wrapped = br#"{"status_code":404,"status_txt":"TOPIC_NOT_FOUND","data":null}"#;
        assert_eq!(
            error_text(wrapped, StatusCode::NOT_FOUND),
            "TOPIC_NOT_FOUND"
        );
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

    fn http(status: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn client(addr: SocketAddr) -> Lookupd {
        Lookupd::new(&format!("http://{addr}"))
            .unwrap()
            .timeout(TIMEOUT)
    }

    #[tokio::test]
    async fn nodes_reads_the_envelope_and_asks_for_v1() {
        let legacy = format!(r#"{{"status_code":200,"status_txt":"OK","data":{NODES_V1}}}"#);
        let (addr, server) = answer_once(http("200 OK", &legacy));
        assert_eq!(client(addr).nodes().await.unwrap(), [node_v1()]);
        let request = server.join().unwrap().to_ascii_lowercase();
        assert!(request.starts_with("get /nodes http/1.1\r\n"), "{request}");
        assert!(
            request.contains("accept: application/vnd.nsq; version=1.0\r\n"),
            "{request}"
        );
    }

    #[tokio::test]
    async fn lookup_of_an_unknown_topic_in_the_old_envelope_is_empty() {
        let body = r#"{"status_code":404,"status_txt":"TOPIC_NOT_FOUND","data":null}"#;
        let (addr, server) = answer_once(http("404 Not Found", body));
        let lookup = client(addr).lookup("tmp#ephemeral").await.unwrap();
        assert_eq!(lookup, Lookup::default());
        let request = server.join().unwrap();
        assert!(
            request.starts_with("GET /lookup?topic=tmp%23ephemeral HTTP/1.1\r\n"),
            "{request}"
        );
    }

    #[tokio::test]
    async fn json_errors_name_the_lookupd_and_the_request() {
        let (addr, server) = answer_once(http("200 OK", r#"{"topics":["a"]}"#));
        let lookupd = addr.to_string();
        let err = Lookupd::new(&lookupd).unwrap().nodes().await.unwrap_err();
        assert!(matches!(err, LookupdError::Json { .. }), "{err:?}");
        assert_eq!(err.lookupd(), lookupd);
        let text = err.to_string();
        assert!(text.contains(&lookupd), "{text}");
        assert!(text.contains("GET /nodes"), "{text}");
        assert!(text.contains("producers"), "{text}");
        server.join().unwrap();
    }

    #[tokio::test]
    async fn a_truncated_body_is_a_body_error() {
        let reply =
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"pro".to_vec();
        let (addr, server) = answer_once(reply);
        let err = client(addr).nodes().await.unwrap_err();
        assert!(matches!(err, LookupdError::Body { .. }), "{err:?}");
        server.join().unwrap();
    }

    #[tokio::test]
    async fn a_reply_that_is_not_http_names_nsqds_tcp_port() {
        // What nsqd's TCP port sends to a client whose first bytes are not its magic.
        let mut frame = Vec::new();
        frame.extend_from_slice(&18u32.to_be_bytes());
        frame.extend_from_slice(&1u32.to_be_bytes());
        frame.extend_from_slice(b"E_BAD_PROTOCOL");
        let (addr, server) = answer_once(frame);
        let err = client(addr).nodes().await.unwrap_err();
        assert!(matches!(err, LookupdError::NotHttp { .. }), "{err:?}");
        assert!(err.to_string().contains("nsqd's TCP port"), "{err}");
        server.join().unwrap();
    }
}
