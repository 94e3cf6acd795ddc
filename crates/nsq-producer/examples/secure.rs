//! TLS with a private CA and a client certificate, AUTH and snappy compression.
//!
//! ```sh
//! cargo run -p nsq-producer --example secure -- nsqd.example.com:4150 ca.pem client.pem client.key
//! ```
//! The AUTH secret is read from the `NSQ_AUTH_SECRET` environment variable.

use std::time::Duration;

use nsq_producer::{Producer, ProducerConfig, TlsConfig, Topic};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: secure ADDR CA_FILE CERT_FILE KEY_FILE";
    let addr = args.next().ok_or(usage)?;
    let ca = args.next().ok_or(usage)?;
    let cert = args.next().ok_or(usage)?;
    let key = args.next().ok_or(usage)?;

    let tls = TlsConfig::new().root_ca_file(ca).client_cert(cert, key);
    let mut config = ProducerConfig::default();
    config.conn = config
        .conn
        .tls_v1(tls)
        .snappy(true)
        .heartbeat_interval(Duration::from_secs(10));
    if let Ok(secret) = std::env::var("NSQ_AUTH_SECRET") {
        config.conn = config.conn.auth_secret(secret);
    }
    // The same, from strings (flags or a file), with go-nsq's option names, in any order:
    //   config.set("tls_v1", "true")?; config.set("tls_root_ca_file", "ca.pem")?;
    //   config.set("tls_cert", "client.pem")?; config.set("tls_key", "client.key")?;
    //   config.set("snappy", "true")?; config.set("auth_secret", "...")?;

    // `connect` fails here, not at the first publish, if TLS, AUTH or the address is wrong.
    let producer = Producer::connect(addr, config).await?;
    producer
        .publish(&Topic::new("secure-example")?, "hello over TLS")
        .await?;
    producer.close().await;
    Ok(())
}
