//! Blocking HTTP/1.1 requests to nsqd's and nsqlookupd's HTTP APIs, through hyper's client.
//!
//! The harnesses are synchronous and are called from plain tests and from inside
//! `#[tokio::test]` alike. A runtime cannot be started (or blocked on) inside another one, so
//! every request runs on a thread of its own with its own current-thread runtime, and the
//! caller waits for that thread.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{ACCEPT, HeaderValue, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The whole request, from connecting to the end of the body.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The status and body of one response from nsqd's or nsqlookupd's HTTP API.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The HTTP status code, e.g. `200`.
    pub status: u16,
    /// The body, with any chunked transfer encoding removed.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text, with invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("body", &self.text())
            .finish()
    }
}

/// Sends one request to `addr` and reads the whole response, blocking the calling thread.
///
/// `target` is the path with its query string, e.g. `/stats?format=json`.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    body: &[u8],
) -> io::Result<HttpResponse> {
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|err| invalid_input(format!("bad method {method:?}: {err}")))?;
    let uri: Uri = format!("http://{addr}{target}")
        .parse()
        .map_err(|err| invalid_input(format!("bad request target {target:?}: {err}")))?;
    let body = Bytes::copy_from_slice(body);
    thread::Builder::new()
        .name("nsq-test-support-http".to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                tokio::time::timeout(REQUEST_TIMEOUT, send(method, uri, body))
                    .await
                    .unwrap_or_else(|_| {
                        Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("no complete response within {REQUEST_TIMEOUT:?}"),
                        ))
                    })
            })
        })?
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the HTTP request thread panicked")))
}

async fn send(method: Method, uri: Uri, body: Bytes) -> io::Result<HttpResponse> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector);
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(USER_AGENT, HeaderValue::from_static("nsq-test-support"));
    headers.insert(
        ACCEPT,
        HeaderValue::from_static("application/vnd.nsq; version=1.0"),
    );

    let response = client.request(request).await.map_err(|err| {
        let kind = if err.is_connect() {
            io::ErrorKind::ConnectionRefused
        } else {
            io::ErrorKind::Other
        };
        io::Error::new(kind, format!("{err} ({})", error_chain(&err)))
    })?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|err| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("reading the body: {err}"),
            )
        })?
        .to_bytes();
    Ok(HttpResponse {
        status,
        body: body.to_vec(),
    })
}

/// The causes of `err`, innermost last: hyper's own messages say little ("client error
/// (Connect)") without them.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut causes = Vec::new();
    let mut source = err.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    if causes.is_empty() {
        "no further cause".to_owned()
    } else {
        causes.join(": ")
    }
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Percent-encodes a query-string value (everything but RFC 3986 unreserved characters), so
/// that e.g. `#` in `topic#ephemeral` survives.
pub(crate) fn encode_query_value(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// Serves one connection on loopback with `reply`, and returns the request it read.
    fn serve_once(reply: &'static [u8]) -> (SocketAddr, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "the client closed before the end of its headers");
                request.extend_from_slice(&buf[..n]);
            }
            stream.write_all(reply).unwrap();
            String::from_utf8_lossy(&request).into_owned()
        });
        (addr, server)
    }

    #[test]
    fn reads_a_content_length_response_and_sends_the_headers() {
        let (addr, server) = serve_once(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nOK",
        );
        let response = request(addr, "GET", "/ping?x=%23", b"").unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.text(), "OK");
        assert!(response.is_success());
        let sent = server.join().unwrap().to_ascii_lowercase();
        assert!(sent.starts_with("get /ping?x=%23 http/1.1\r\n"), "{sent}");
        assert!(
            sent.contains("accept: application/vnd.nsq; version=1.0\r\n"),
            "{sent}"
        );
        assert!(sent.contains(&format!("host: {addr}\r\n")), "{sent}");
    }

    #[test]
    fn decodes_a_chunked_body() {
        let (addr, server) = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              4\r\n{\"a\"\r\n3;ext=1\r\n:1}\r\n0\r\n\r\n",
        );
        let response = request(addr, "POST", "/topic/create?topic=t", b"").unwrap();
        assert_eq!(response.text(), r#"{"a":1}"#);
        assert!(
            server
                .join()
                .unwrap()
                .starts_with("POST /topic/create?topic=t HTTP/1.1")
        );
    }

    #[test]
    fn returns_an_error_status_with_its_body() {
        let (addr, server) = serve_once(
            b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n{\"message\":\"TOPIC_NOT_FOUND\"}",
        );
        let response = request(addr, "GET", "/stats", b"").unwrap();
        assert_eq!(response.status, 404);
        assert!(!response.is_success());
        assert_eq!(response.text(), r#"{"message":"TOPIC_NOT_FOUND"}"#);
        server.join().unwrap();
    }

    #[test]
    fn garbage_and_refused_connections_are_errors() {
        let (addr, server) = serve_once(b"SSH-2.0-OpenSSH\r\n\r\n");
        assert!(request(addr, "GET", "/", b"").is_err());
        server.join().unwrap();

        let (addr, server) =
            serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nOK");
        assert!(
            request(addr, "GET", "/", b"").is_err(),
            "a body shorter than announced"
        );
        server.join().unwrap();

        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = request(closed, "GET", "/", b"").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    }

    #[test]
    fn works_from_inside_a_runtime() {
        let (addr, server) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let response = runtime.block_on(async { request(addr, "GET", "/ping", b"") });
        assert_eq!(response.unwrap().text(), "OK");
        server.join().unwrap();
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(encode_query_value("orders.v1_x-y"), "orders.v1_x-y");
        assert_eq!(encode_query_value("t#ephemeral"), "t%23ephemeral");
        assert_eq!(encode_query_value("a b&c=d"), "a%20b%26c%3Dd");
    }
}
