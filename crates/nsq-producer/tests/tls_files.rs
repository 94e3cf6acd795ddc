//! go-nsq's TLS options by name, with real certificate files: the files named are the ones the
//! producer uses. A scripted nsqd that requires a client certificate signed by the test CA
//! accepts the producer's TLS handshake whichever order the certificate and its key are set in
//! (they are checked as a pair when the producer is built), and a producer told to trust an
//! unrelated CA refuses the server's certificate.
//!
//! The files come from nsq-test-support, which is not published, so this file is left out of
//! the package (see `exclude` in Cargo.toml).

use std::path::PathBuf;

use nsq_producer::{Producer, ProducerConfig, PublishError, Topic};
use nsq_proto::server::ClientCommand;
use nsq_test_support::{FakeNsqd, TestPki, within};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

fn path(p: PathBuf) -> String {
    p.to_str().unwrap().to_owned()
}

/// A configuration with TLS on and the options set by name, in the order given.
fn by_name(options: &[(&str, String)]) -> ProducerConfig {
    let mut config = ProducerConfig::default();
    config.batching = false;
    config.fail_fast = true;
    config.set("tls_v1", "true").unwrap();
    for (option, value) in options {
        config.set(option, value).unwrap();
    }
    config.validate().unwrap();
    config
}

/// A producer with `config` on a fresh loopback listener, publishing `body` from a task of its
/// own; the listener plays nsqd.
async fn publish_through(
    config: ProducerConfig,
    body: &'static str,
) -> (TcpListener, Producer, JoinHandle<Result<(), PublishError>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let producer = Producer::new(addr, config).unwrap();
    let publish = tokio::spawn({
        let producer = producer.clone();
        async move {
            let topic = Topic::new("tls_files").unwrap();
            producer.publish(&topic, body).await
        }
    });
    (listener, producer, publish)
}

/// The fake's side of the connection up to TLS: the magic, then IDENTIFY (which must ask for
/// TLS) answered granting it.
async fn grant_tls(listener: &TcpListener) -> FakeNsqd {
    let (stream, _) = within("a connection", listener.accept()).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut nsqd = FakeNsqd::new(stream);
    within("the magic", nsqd.expect_magic()).await;
    let identify = within("IDENTIFY", nsqd.expect_identify()).await;
    assert_eq!(identify["tls_v1"], true, "{identify}");
    let reply = FakeNsqd::identify_reply(&identify).to_string();
    nsqd.send_response(reply.as_bytes()).await;
    nsqd
}

#[tokio::test]
async fn cert_and_key_in_either_order_are_presented_to_the_server() {
    let pki = TestPki::generate();
    let ca = ("tls_root_ca_file", path(pki.ca_cert()));
    let cert = ("tls_cert", path(pki.client_cert()));
    let key = ("tls_key", path(pki.client_key()));
    for options in [
        [ca.clone(), cert.clone(), key.clone()],
        [key.clone(), cert.clone(), ca.clone()],
    ] {
        let (listener, producer, publish) = publish_through(by_name(&options), "over tls").await;
        let mut nsqd = grant_tls(&listener).await;
        // Fails unless the producer trusts the server through the CA file and presents the
        // client certificate and key from the files.
        within(
            "the TLS handshake",
            nsqd.start_tls(pki.mutual_server_config()),
        )
        .await;
        nsqd.send_ok().await;
        match within("the PUB", nsqd.expect_command()).await {
            ClientCommand::Pub { body, .. } => assert_eq!(body, "over tls"),
            other => panic!("expected a PUB, got {other:?}"),
        }
        nsqd.send_ok().await;
        assert_eq!(within("the publish", publish).await.unwrap(), Ok(()));
        producer.close_now().await;
    }
}

#[tokio::test]
async fn an_unrelated_ca_file_refuses_the_server() {
    let pki = TestPki::generate();
    let config = by_name(&[
        ("tls_root_ca_file", path(pki.unrelated_ca_cert())),
        ("tls_cert", path(pki.client_cert())),
        ("tls_key", path(pki.client_key())),
    ]);
    let (listener, producer, publish) = publish_through(config, "refused").await;
    let mut nsqd = grant_tls(&listener).await;
    within(
        "the refused handshake",
        nsqd.fail_tls(pki.mutual_server_config()),
    )
    .await;
    let result = within("the publish", publish).await.unwrap();
    let err = result.expect_err("a server the CA file does not vouch for is refused");
    assert!(
        matches!(err, PublishError::NotSent(_)),
        "never written: {err:?}"
    );
    let text = format!("{err:?}");
    assert!(
        text.contains("Tls") || text.contains("certificate"),
        "{text}"
    );
    producer.close_now().await;
}
