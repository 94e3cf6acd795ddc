//! The handshake against a scripted fake nsqd: upgrades, leftovers, AUTH, refusals, timeouts.

use std::time::Duration;

use bytes::Bytes;
use nsq_conn::{ConnConfig, ConnConfigBuilder, ConnError, Connection, TlsConfig};
use nsq_proto::server::ClientCommand;
use nsq_proto::{Command, ErrorCode, Frame, NegotiationError, OK, Response, Topic};
use nsq_test_support::{FakeCompression, FakeNsqd, TestPki};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

fn builder() -> ConnConfigBuilder {
    ConnConfig::builder("127.0.0.1:4150")
}

fn start(
    io: tokio::io::DuplexStream,
    config: ConnConfig,
) -> JoinHandle<Result<Connection, ConnError>> {
    tokio::spawn(async move { Connection::handshake(io, &config).await })
}

/// Publishes once and expects nsqd's `OK`, with the fake checking what arrived.
async fn publish_round_trip(conn: &mut Connection, nsqd: &mut FakeNsqd) {
    let topic = Topic::new("t").unwrap();
    let send = conn.send(Command::Pub {
        topic: &topic,
        body: b"hello",
    });
    // Concurrently: with a tiny pipe the write only completes as the fake reads.
    let (sent, command) = tokio::join!(send, nsqd.expect_command());
    sent.unwrap();
    assert_eq!(
        command,
        ClientCommand::Pub {
            topic: "t".into(),
            body: Bytes::from_static(b"hello")
        }
    );
    let ((), frame) = tokio::join!(nsqd.send_ok(), conn.recv());
    assert_eq!(frame.unwrap(), Frame::Response(Response::Ok));
}

/// nsqd's compressed `OK` usually arrives in the same read as the IDENTIFY reply; the bytes
/// must reach the new decompressor.
async fn identify_reply_and_compressed_ok_in_one_write(
    config: ConnConfig,
    compression: FakeCompression,
) {
    let (io, mut nsqd) = FakeNsqd::pair();
    let client = start(io, config);
    nsqd.expect_magic().await;
    let identify = nsqd.expect_identify().await;
    let reply = FakeNsqd::identify_reply(&identify);
    let mut bytes = FakeNsqd::response_frame(reply.to_string().as_bytes()).to_vec();
    nsqd.start_compression(compression);
    bytes.extend(nsqd.encode(&FakeNsqd::response_frame(OK)));
    nsqd.send_raw(&bytes).await;
    let mut conn = client.await.unwrap().unwrap();
    assert!(conn.info().upgrades.compression.is_some());
    publish_round_trip(&mut conn, &mut nsqd).await;
}

#[tokio::test]
async fn fake_identify_reply_and_snappy_ok_in_one_write() {
    let config = builder().snappy(true).build().unwrap();
    identify_reply_and_compressed_ok_in_one_write(config, FakeCompression::Snappy).await;
}

#[tokio::test]
async fn fake_identify_reply_and_deflate_ok_in_one_write() {
    for level in [1, 9] {
        let config = builder()
            .deflate(true)
            .deflate_level(level)
            .build()
            .unwrap();
        identify_reply_and_compressed_ok_in_one_write(config, FakeCompression::Deflate(6)).await;
    }
}

#[tokio::test]
async fn fake_every_frame_one_byte_at_a_time() {
    for snappy in [false, true] {
        let (io, mut nsqd) = FakeNsqd::pair_with_capacity(1);
        nsqd.set_byte_at_a_time(true);
        let client = start(io, builder().snappy(snappy).build().unwrap());
        nsqd.expect_magic().await;
        let identify = nsqd.expect_identify().await;
        nsqd.send_response(FakeNsqd::identify_reply(&identify).to_string().as_bytes())
            .await;
        if snappy {
            nsqd.start_compression(FakeCompression::Snappy);
            nsqd.send_ok().await;
        }
        let mut conn = client.await.unwrap().unwrap();
        assert_eq!(conn.info().identify.version.as_deref(), Some("1.3.0"));
        publish_round_trip(&mut conn, &mut nsqd).await;
        // Both sides at once: with a one-byte pipe, nothing moves unless the other side reads.
        let fake = async {
            nsqd.send_heartbeat().await;
            nsqd.send_error("E_BAD_TOPIC PUB topic name \"a b\" is not valid")
                .await;
        };
        let (frame, ()) = tokio::join!(conn.recv(), fake);
        match frame.unwrap() {
            Frame::Error(err) => assert_eq!(err.code(), &ErrorCode::BadTopic),
            other => panic!("{other:?}"),
        }
        // The NOP for the heartbeat is flushed while the connection is polled.
        let (command, _) = tokio::join!(
            nsqd.expect_command(),
            tokio::time::timeout(Duration::from_millis(300), conn.recv())
        );
        assert_eq!(command, ClientCommand::Nop);
    }
}

#[tokio::test]
async fn fake_identify_json_fields_follow_the_config() {
    let (io, mut nsqd) = FakeNsqd::pair();
    let config = builder()
        .client_id("app01")
        .hostname("app01.example.com")
        .heartbeat_interval(Duration::from_millis(1500))
        .deflate(true)
        .deflate_level(3)
        .msg_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let client = start(io, config);
    let identify = nsqd.accept_plain().await;
    let _conn = client.await.unwrap().unwrap();
    assert_eq!(identify["client_id"], "app01");
    assert_eq!(identify["hostname"], "app01.example.com");
    assert_eq!(identify["feature_negotiation"], true);
    assert_eq!(identify["heartbeat_interval"], 1500);
    assert_eq!(identify["deflate"], true);
    assert_eq!(identify["deflate_level"], 3);
    assert_eq!(identify["msg_timeout"], 5000);
    assert_eq!(identify["tls_v1"], false);
    assert!(
        identify["user_agent"]
            .as_str()
            .unwrap()
            .starts_with("nsq-rs/")
    );
    assert!(identify.get("sample_rate").is_none());
    assert!(identify.get("output_buffer_size").is_none());
}

#[tokio::test]
async fn fake_identify_rejected_carries_nsqds_error() {
    let (io, mut nsqd) = FakeNsqd::pair();
    let client = start(io, builder().build().unwrap());
    nsqd.expect_magic().await;
    nsqd.expect_identify().await;
    nsqd.send_error("E_BAD_BODY IDENTIFY heartbeat interval (999) is invalid")
        .await;
    let err = client.await.unwrap().unwrap_err();
    let server = err.server_error().expect("nsqd's error");
    assert_eq!(server.code(), &ErrorCode::BadBody);
    assert!(matches!(err, ConnError::IdentifyRejected(_)));
}

#[tokio::test]
async fn fake_plain_ok_reply_means_no_negotiation() {
    let (io, mut nsqd) = FakeNsqd::pair();
    let client = start(io, builder().build().unwrap());
    nsqd.expect_magic().await;
    nsqd.expect_identify().await;
    nsqd.send_ok().await;
    let conn = client.await.unwrap().unwrap();
    assert!(!conn.info().identify.negotiated);
    assert_eq!(conn.info().identify.max_rdy_count, 2500);
}

#[tokio::test]
async fn fake_heartbeat_during_handshake_is_answered_after_it() {
    let (io, mut nsqd) = FakeNsqd::pair();
    let client = start(io, builder().build().unwrap());
    nsqd.expect_magic().await;
    let identify = nsqd.expect_identify().await;
    nsqd.send_heartbeat().await;
    nsqd.send_response(FakeNsqd::identify_reply(&identify).to_string().as_bytes())
        .await;
    let _conn = client.await.unwrap().unwrap();
    assert_eq!(nsqd.expect_command().await, ClientCommand::Nop);
}

#[tokio::test]
async fn fake_unrequested_feature_is_refused() {
    let (io, mut nsqd) = FakeNsqd::pair();
    let client = start(io, builder().build().unwrap());
    nsqd.expect_magic().await;
    let identify = nsqd.expect_identify().await;
    let mut reply = FakeNsqd::identify_reply(&identify);
    reply["snappy"] = json!(true);
    nsqd.send_response(reply.to_string().as_bytes()).await;
    let err = client.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            ConnError::Negotiation(NegotiationError::NotRequested("snappy"))
        ),
        "{err}"
    );
}

#[tokio::test]
async fn fake_auth_sends_the_secret_and_parses_the_reply() {
    let (io, mut nsqd) = FakeNsqd::pair();
    let client = start(io, builder().auth_secret("s3cret").build().unwrap());
    nsqd.expect_magic().await;
    let identify = nsqd.expect_identify().await;
    let mut reply = FakeNsqd::identify_reply(&identify);
    reply["auth_required"] = json!(true);
    nsqd.send_response(reply.to_string().as_bytes()).await;
    assert_eq!(
        nsqd.expect_command().await,
        ClientCommand::Auth {
            secret: Bytes::from_static(b"s3cret")
        }
    );
    nsqd.send_response(
        br#"{"identity":"alice","identity_url":"http://x/alice","permission_count":2}"#,
    )
    .await;
    let conn = client.await.unwrap().unwrap();
    let auth = conn.info().auth.clone().expect("AUTH reply");
    assert_eq!(auth.identity, "alice");
    assert_eq!(auth.identity_url, "http://x/alice");
    assert_eq!(auth.permission_count, 2);
}

#[tokio::test]
async fn fake_auth_rejected() {
    let (io, mut nsqd) = FakeNsqd::pair();
    let client = start(io, builder().auth_secret("nope").build().unwrap());
    nsqd.expect_magic().await;
    let identify = nsqd.expect_identify().await;
    let mut reply = FakeNsqd::identify_reply(&identify);
    reply["auth_required"] = json!(true);
    nsqd.send_response(reply.to_string().as_bytes()).await;
    nsqd.expect_command().await;
    nsqd.send_error("E_AUTH_FAILED AUTH failed").await;
    let err = client.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, ConnError::AuthRejected(e) if e.code() == &ErrorCode::AuthFailed),
        "{err}"
    );
}

#[tokio::test]
async fn fake_auth_required_without_secret_sends_nothing() {
    let (io, mut nsqd) = FakeNsqd::pair();
    let client = start(io, builder().build().unwrap());
    nsqd.expect_magic().await;
    let identify = nsqd.expect_identify().await;
    let mut reply = FakeNsqd::identify_reply(&identify);
    reply["auth_required"] = json!(true);
    nsqd.send_response(reply.to_string().as_bytes()).await;
    let err = client.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            ConnError::Negotiation(NegotiationError::AuthSecretMissing)
        ),
        "{err}"
    );
    nsqd.expect_eof().await;
}

#[tokio::test(start_paused = true)]
async fn fake_silent_handshake_times_out() {
    let (io, mut nsqd) = FakeNsqd::pair();
    let config = builder()
        .handshake_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let client = start(io, config);
    nsqd.expect_magic().await;
    nsqd.expect_identify().await;
    let err = client.await.unwrap().unwrap_err();
    assert!(
        matches!(err, ConnError::HandshakeTimeout(d) if d == Duration::from_secs(3)),
        "{err}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test]
async fn fake_closed_during_handshake() {
    let (io, mut nsqd) = FakeNsqd::pair();
    let client = start(io, builder().build().unwrap());
    nsqd.expect_magic().await;
    drop(nsqd);
    let err = client.await.unwrap().unwrap_err();
    assert!(matches!(err, ConnError::Closed | ConnError::Io(_)), "{err}");
}

#[tokio::test]
async fn fake_http_port_is_recognised() {
    let (io, mut nsqd) = FakeNsqd::pair();
    let client = start(io, builder().build().unwrap());
    nsqd.send_raw(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n400 Bad Request")
        .await;
    let err = client.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("HTTP port"), "{err}");
}

fn tls_config(pki: &TestPki) -> TlsConfig {
    TlsConfig::new().root_ca_file(pki.ca_cert())
}

/// Answers IDENTIFY granting TLS and runs the server side of TLS with `versions`.
async fn grant_tls(
    nsqd: &mut FakeNsqd,
    pki: &TestPki,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> (Value, rustls::ProtocolVersion) {
    nsqd.expect_magic().await;
    let identify = nsqd.expect_identify().await;
    assert_eq!(identify["tls_v1"], true);
    nsqd.send_response(FakeNsqd::identify_reply(&identify).to_string().as_bytes())
        .await;
    let version = nsqd.start_tls(pki.server_config(versions)).await;
    (identify, version)
}

#[tokio::test]
async fn fake_tls_1_2_and_1_3() {
    let pki = TestPki::generate();
    for (versions, expected) in [
        (
            &[&rustls::version::TLS12][..],
            rustls::ProtocolVersion::TLSv1_2,
        ),
        (
            &[&rustls::version::TLS13][..],
            rustls::ProtocolVersion::TLSv1_3,
        ),
    ] {
        let (io, mut nsqd) = FakeNsqd::pair();
        let client = start(io, builder().tls_v1(tls_config(&pki)).build().unwrap());
        let (_, version) = grant_tls(&mut nsqd, &pki, versions).await;
        assert_eq!(version, expected);
        nsqd.send_ok().await;
        let mut conn = client.await.unwrap().unwrap();
        assert!(conn.info().upgrades.tls);
        publish_round_trip(&mut conn, &mut nsqd).await;
    }
}

#[tokio::test]
async fn fake_tls_ok_and_compressed_ok_in_one_record() {
    let pki = TestPki::generate();
    for compression in [FakeCompression::Snappy, FakeCompression::Deflate(6)] {
        let (io, mut nsqd) = FakeNsqd::pair();
        let builder = builder().tls_v1(tls_config(&pki));
        let builder = match compression {
            FakeCompression::Snappy => builder.snappy(true),
            FakeCompression::Deflate(_) => builder.deflate(true),
        };
        let client = start(io, builder.build().unwrap());
        grant_tls(&mut nsqd, &pki, &[&rustls::version::TLS13]).await;
        let mut bytes = FakeNsqd::response_frame(OK).to_vec();
        nsqd.start_compression(compression);
        bytes.extend(nsqd.encode(&FakeNsqd::response_frame(OK)));
        nsqd.send_raw(&bytes).await;
        let mut conn = client.await.unwrap().unwrap();
        assert!(conn.info().upgrades.tls && conn.info().upgrades.compression.is_some());
        publish_round_trip(&mut conn, &mut nsqd).await;
    }
}

#[tokio::test]
async fn fake_tls_not_granted_fails() {
    let pki = TestPki::generate();
    let (io, mut nsqd) = FakeNsqd::pair();
    let client = start(io, builder().tls_v1(tls_config(&pki)).build().unwrap());
    nsqd.expect_magic().await;
    let identify = nsqd.expect_identify().await;
    let mut reply = FakeNsqd::identify_reply(&identify);
    reply["tls_v1"] = json!(false);
    nsqd.send_response(reply.to_string().as_bytes()).await;
    let err = client.await.unwrap().unwrap_err();
    assert!(
        matches!(err, ConnError::Negotiation(NegotiationError::TlsNotGranted)),
        "{err}"
    );
    // Nothing was sent in plaintext after the refusal.
    nsqd.expect_eof().await;
}

#[tokio::test]
async fn fake_bytes_before_tls_are_refused() {
    let pki = TestPki::generate();
    let (io, mut nsqd) = FakeNsqd::pair();
    let client = start(io, builder().tls_v1(tls_config(&pki)).build().unwrap());
    nsqd.expect_magic().await;
    let identify = nsqd.expect_identify().await;
    let mut bytes =
        FakeNsqd::response_frame(FakeNsqd::identify_reply(&identify).to_string().as_bytes());
    bytes.extend_from_slice(&FakeNsqd::response_frame(OK));
    nsqd.send_raw(&bytes).await;
    let err = client.await.unwrap().unwrap_err();
    assert!(
        matches!(err, ConnError::BytesBeforeTls { len: 10 }),
        "{err}"
    );
}

#[tokio::test]
async fn fake_tls_untrusted_certificate_is_refused() {
    let pki = TestPki::generate();
    for tls in [
        TlsConfig::new(),
        TlsConfig::new().root_ca_file(pki.unrelated_ca_cert()),
        tls_config(&pki).server_name("nsqd.example.com"),
    ] {
        let (io, mut nsqd) = FakeNsqd::pair();
        let client = start(io, builder().tls_v1(tls).build().unwrap());
        nsqd.expect_magic().await;
        let identify = nsqd.expect_identify().await;
        nsqd.send_response(FakeNsqd::identify_reply(&identify).to_string().as_bytes())
            .await;
        nsqd.fail_tls(pki.server_config(&[&rustls::version::TLS13]))
            .await;
        let err = client.await.unwrap().unwrap_err();
        assert!(matches!(err, ConnError::Tls(_)), "{err}");
    }
}

#[tokio::test]
async fn fake_tls_danger_accept_invalid_certs() {
    let pki = TestPki::generate();
    let (io, mut nsqd) = FakeNsqd::pair();
    let tls = TlsConfig::new().danger_accept_invalid_certs();
    let client = start(io, builder().tls_v1(tls).build().unwrap());
    grant_tls(&mut nsqd, &pki, &[&rustls::version::TLS12]).await;
    nsqd.send_ok().await;
    let mut conn = client.await.unwrap().unwrap();
    publish_round_trip(&mut conn, &mut nsqd).await;
}

/// nsqd answers a protocol magic it does not know with `E_BAD_PROTOCOL` before reading
/// anything else: the error says the magic was refused, not IDENTIFY.
#[tokio::test]
async fn fake_bad_protocol_says_the_magic_was_refused() {
    let (io, mut nsqd) = FakeNsqd::pair();
    let client = start(io, builder().build().unwrap());
    nsqd.expect_magic().await;
    nsqd.expect_identify().await;
    nsqd.send_error("E_BAD_PROTOCOL").await;
    let err = client.await.unwrap().unwrap_err();
    assert!(matches!(err, ConnError::ProtocolRejected { .. }), "{err:?}");
    assert_eq!(err.server_error().unwrap().code(), &ErrorCode::BadProtocol);
    assert_eq!(
        err.to_string(),
        "the server at 127.0.0.1:4150 rejected the protocol magic (E_BAD_PROTOCOL): is it the \
         TCP port of an nsqd?"
    );
}

/// With the TLS check, a plaintext handshake ends with `NOP` and a second IDENTIFY asking for
/// no upgrade; nsqd that requires TLS refuses the `NOP`, and the handshake fails naming TLS.
#[tokio::test]
async fn fake_tls_required_fails_the_checked_handshake() {
    let (io, mut nsqd) = FakeNsqd::pair();
    let config = builder().check_tls_required(true).build().unwrap();
    let client = start(io, config);
    nsqd.accept_plain().await;
    assert_eq!(nsqd.expect_command().await, ClientCommand::Nop);
    nsqd.expect_identify().await;
    nsqd.send_error("E_INVALID cannot NOP in current state (TLS required)")
        .await;
    let err = client.await.unwrap().unwrap_err();
    assert!(matches!(err, ConnError::TlsRequired { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "nsqd at 127.0.0.1:4150 requires TLS: set tls_v1"
    );
}

/// An nsqd that does not require TLS answers the check's IDENTIFY; the second IDENTIFY asks
/// for no upgrade, so a compressed connection is not compressed twice.
#[tokio::test]
async fn fake_tls_check_passes_on_a_compressed_connection() {
    let (io, mut nsqd) = FakeNsqd::pair();
    let config = builder()
        .snappy(true)
        .check_tls_required(true)
        .build()
        .unwrap();
    let client = start(io, config);
    nsqd.expect_magic().await;
    let identify = nsqd.expect_identify().await;
    let reply = FakeNsqd::identify_reply(&identify);
    nsqd.send_response(reply.to_string().as_bytes()).await;
    nsqd.start_compression(FakeCompression::Snappy);
    nsqd.send_ok().await;
    let again = nsqd.answer_tls_check().await;
    for feature in ["tls_v1", "snappy", "deflate"] {
        assert_eq!(again[feature], json!(false), "{again}");
    }
    assert_eq!(again["client_id"], identify["client_id"]);
    let mut conn = client.await.unwrap().unwrap();
    assert!(conn.info().upgrades.compression.is_some());
    publish_round_trip(&mut conn, &mut nsqd).await;
}
