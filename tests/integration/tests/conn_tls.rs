//! nsq-conn's TLS against a real nsqd, with certificates generated for the test.

mod conn_common;

use conn_common::{connect, connect_err, publish_one};
use nsq_conn::{ConnConfig, ConnError, Connection, TlsConfig};
use nsq_proto::{Command, ErrorCode, Frame, NegotiationError};
use nsq_test_support::{Nsqd, NsqdOptions, TestPki, topic, within};

fn tls_nsqd(pki: &TestPki, options: NsqdOptions) -> Nsqd {
    Nsqd::start_with(
        options
            .tls_cert(pki.server_cert())
            .tls_key(pki.server_key()),
    )
}

fn tls_config(nsqd: &Nsqd, tls: TlsConfig) -> ConnConfig {
    ConnConfig::builder(nsqd.tcp_addr().to_string())
        .tls_v1(tls)
        .build()
        .unwrap()
}

#[tokio::test]
async fn conn_tls() {
    let pki = TestPki::generate();
    let nsqd = tls_nsqd(&pki, NsqdOptions::new());
    let config = tls_config(&nsqd, TlsConfig::new().root_ca_file(pki.ca_cert()));
    let mut conn = connect(&config).await;
    assert!(conn.info().identify.tls_v1);
    assert!(conn.info().upgrades.tls);
    publish_one(&mut conn, "conn_tls").await;
    assert_eq!(nsqd.topic_depth("conn_tls"), Some(1));
    let stats = nsqd.stats();
    let client = &stats["producers"][0];
    assert_eq!(client["tls"], true, "{client}");
    assert_eq!(client["tls_version"], "TLS1.3", "{client}");
}

#[tokio::test]
async fn conn_tls_with_a_dns_server_name() {
    let pki = TestPki::generate();
    let nsqd = tls_nsqd(&pki, NsqdOptions::new());
    let config = ConnConfig::builder(format!("localhost:{}", nsqd.tcp_addr().port()))
        .tls_v1(TlsConfig::new().root_ca_file(pki.ca_cert()))
        .build()
        .unwrap();
    let mut conn = connect(&config).await;
    publish_one(&mut conn, "conn_tls_dns").await;
}

#[tokio::test]
async fn conn_tls_required() {
    let pki = TestPki::generate();
    // "tcp-https": TLS is required on the TCP port; the plain HTTP API stays for the checks.
    let nsqd = tls_nsqd(&pki, NsqdOptions::new().tls_required("tcp-https"));
    let config = tls_config(&nsqd, TlsConfig::new().root_ca_file(pki.ca_cert()));
    let mut conn = connect(&config).await;
    publish_one(&mut conn, "conn_tls_required").await;
    assert_eq!(nsqd.topic_depth("conn_tls_required"), Some(1));

    // Without TLS nsqd still answers IDENTIFY, then refuses the first real command.
    let plain = ConnConfig::builder(nsqd.tcp_addr().to_string())
        .build()
        .unwrap();
    let mut conn = connect(&plain).await;
    let topic = topic("conn_tls_required");
    conn.send(Command::Pub {
        topic: &topic,
        body: b"plaintext",
    })
    .await
    .unwrap();
    match within("reply", conn.recv()).await.unwrap() {
        Frame::Error(err) => {
            assert_eq!(err.code(), &ErrorCode::Invalid);
            assert_eq!(
                err.to_string(),
                "E_INVALID cannot PUB in current state (TLS required)"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(nsqd.topic_depth("conn_tls_required"), Some(1));
}

/// nsqd started with `--tls-required` answers IDENTIFY without TLS as usual; the TLS check at
/// the end of the handshake finds the refusal, so connecting fails naming TLS.
#[tokio::test]
async fn conn_tls_required_fails_the_checked_handshake() {
    let pki = TestPki::generate();
    let nsqd = tls_nsqd(&pki, NsqdOptions::new().tls_required("tcp-https"));
    let addr = nsqd.tcp_addr().to_string();
    let plain = ConnConfig::builder(addr.clone())
        .check_tls_required(true)
        .build()
        .unwrap();
    let err = connect_err(&plain).await;
    assert!(matches!(err, ConnError::TlsRequired { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("nsqd at {addr} requires TLS: set tls_v1")
    );
    assert_eq!(
        err.server_error().unwrap().to_string(),
        "E_INVALID cannot NOP in current state (TLS required)"
    );
}

#[tokio::test]
async fn conn_tls_client_certificate_require_verify() {
    let pki = TestPki::generate();
    let nsqd = tls_nsqd(
        &pki,
        NsqdOptions::new()
            .tls_root_ca_file(pki.ca_cert())
            .tls_client_auth_policy("require-verify")
            .tls_required("tcp-https"),
    );
    let with_cert = TlsConfig::new()
        .root_ca_file(pki.ca_cert())
        .client_cert(pki.client_cert(), pki.client_key());
    let mut conn = within(
        "connect",
        Connection::connect(&tls_config(&nsqd, with_cert)),
    )
    .await
    .unwrap();
    publish_one(&mut conn, "conn_tls_client_cert").await;
    assert_eq!(nsqd.topic_depth("conn_tls_client_cert"), Some(1));

    let without_cert = TlsConfig::new().root_ca_file(pki.ca_cert());
    let err = within(
        "connect",
        Connection::connect(&tls_config(&nsqd, without_cert)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ConnError::Tls(_)), "{err}");
}

#[tokio::test]
async fn conn_tls_untrusted_server_certificate_is_refused() {
    let pki = TestPki::generate();
    let nsqd = tls_nsqd(&pki, NsqdOptions::new());
    for tls in [
        TlsConfig::new(),
        TlsConfig::new().root_ca_file(pki.unrelated_ca_cert()),
    ] {
        let err = within("connect", Connection::connect(&tls_config(&nsqd, tls)))
            .await
            .unwrap_err();
        assert!(matches!(err, ConnError::Tls(_)), "{err}");
        assert!(
            err.to_string().contains("not signed by a trusted CA"),
            "{err}"
        );
    }
    // The explicitly named opt-out connects anyway.
    let config = tls_config(&nsqd, TlsConfig::new().danger_accept_invalid_certs());
    let mut conn = connect(&config).await;
    publish_one(&mut conn, "conn_tls_danger").await;
}

#[tokio::test]
async fn conn_tls_requested_from_nsqd_without_tls_fails() {
    let pki = TestPki::generate();
    let nsqd = Nsqd::start();
    let config = tls_config(&nsqd, TlsConfig::new().root_ca_file(pki.ca_cert()));
    let err = connect_err(&config).await;
    assert!(
        matches!(err, ConnError::Negotiation(NegotiationError::TlsNotGranted)),
        "{err}"
    );
    // Nothing was published in plaintext.
    assert_eq!(nsqd.topic_depth("conn_tls_downgrade"), None);
}
