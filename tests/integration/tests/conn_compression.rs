//! nsq-conn's snappy and deflate layers against a real nsqd, alone and inside TLS: each
//! connection publishes a 4 MiB MPUB and small PUBs, and nsqd's depth is checked.

mod conn_common;

use conn_common::{connect, publish_burst};
use nsq_conn::{ConnConfig, ConnConfigBuilder, TlsConfig};
use nsq_proto::Compression;
use nsq_test_support::{Nsqd, NsqdOptions, TestPki};

fn builder(nsqd: &Nsqd) -> ConnConfigBuilder {
    ConnConfig::builder(nsqd.tcp_addr().to_string())
}

#[tokio::test]
async fn conn_snappy_publishes_4mib_mpub_and_pubs() {
    let nsqd = Nsqd::start();
    let config = builder(&nsqd).snappy(true).build().unwrap();
    let mut conn = connect(&config).await;
    assert_eq!(conn.info().upgrades.compression, Some(Compression::Snappy));
    publish_burst(&mut conn, &nsqd, "conn_snappy").await;
}

#[tokio::test]
async fn conn_deflate_level_1_publishes_4mib_mpub_and_pubs() {
    let nsqd = Nsqd::start();
    let config = builder(&nsqd)
        .deflate(true)
        .deflate_level(1)
        .build()
        .unwrap();
    let mut conn = connect(&config).await;
    assert_eq!(
        conn.info().upgrades.compression,
        Some(Compression::Deflate { level: 1 })
    );
    assert_eq!(conn.info().identify.deflate_level, 1);
    publish_burst(&mut conn, &nsqd, "conn_deflate_1").await;
}

#[tokio::test]
async fn conn_deflate_level_9_publishes_4mib_mpub_and_pubs() {
    let nsqd = Nsqd::start_with(NsqdOptions::new().max_deflate_level(9));
    let config = builder(&nsqd)
        .deflate(true)
        .deflate_level(9)
        .build()
        .unwrap();
    let mut conn = connect(&config).await;
    assert_eq!(conn.info().identify.deflate_level, 9);
    publish_burst(&mut conn, &nsqd, "conn_deflate_9").await;
}

#[tokio::test]
async fn conn_deflate_level_above_nsqds_maximum_is_capped_by_nsqd() {
    let nsqd = Nsqd::start();
    let config = builder(&nsqd)
        .deflate(true)
        .deflate_level(9)
        .build()
        .unwrap();
    let mut conn = connect(&config).await;
    // nsqd compresses at its --max-deflate-level (6); the client still compresses at 9.
    assert_eq!(conn.info().identify.deflate_level, 6);
    assert_eq!(
        conn.info().upgrades.compression,
        Some(Compression::Deflate { level: 9 })
    );
    publish_burst(&mut conn, &nsqd, "conn_deflate_capped").await;
}

#[tokio::test]
async fn conn_compression_refused_by_nsqd_continues_uncompressed() {
    let nsqd = Nsqd::start_with(NsqdOptions::new().snappy(false));
    let config = builder(&nsqd).snappy(true).build().unwrap();
    let mut conn = connect(&config).await;
    assert_eq!(conn.info().upgrades.compression, None);
    publish_burst(&mut conn, &nsqd, "conn_snappy_refused").await;
}

#[tokio::test]
async fn conn_tls_snappy_publishes_4mib_mpub_and_pubs() {
    let pki = TestPki::generate();
    let nsqd = Nsqd::start_with(
        NsqdOptions::new()
            .tls_cert(pki.server_cert())
            .tls_key(pki.server_key()),
    );
    let config = builder(&nsqd)
        .tls_v1(TlsConfig::new().root_ca_file(pki.ca_cert()))
        .snappy(true)
        .build()
        .unwrap();
    let mut conn = connect(&config).await;
    assert!(conn.info().upgrades.tls);
    assert_eq!(conn.info().upgrades.compression, Some(Compression::Snappy));
    publish_burst(&mut conn, &nsqd, "conn_tls_snappy").await;
}

#[tokio::test]
async fn conn_tls_deflate_publishes_4mib_mpub_and_pubs() {
    let pki = TestPki::generate();
    let nsqd = Nsqd::start_with(
        NsqdOptions::new()
            .tls_cert(pki.server_cert())
            .tls_key(pki.server_key()),
    );
    let config = builder(&nsqd)
        .tls_v1(TlsConfig::new().root_ca_file(pki.ca_cert()))
        .deflate(true)
        .build()
        .unwrap();
    let mut conn = connect(&config).await;
    assert!(conn.info().upgrades.tls);
    assert_eq!(
        conn.info().upgrades.compression,
        Some(Compression::Deflate { level: 6 })
    );
    publish_burst(&mut conn, &nsqd, "conn_tls_deflate").await;
}

/// The TLS check at the end of a plaintext handshake (a `NOP` and a second IDENTIFY asking for
/// no upgrade) goes through the compression layer and leaves it working.
#[tokio::test]
async fn conn_compression_with_the_tls_check_publishes() {
    let nsqd = Nsqd::start();
    for (config, topic) in [
        (builder(&nsqd).snappy(true), "conn_checked_snappy"),
        (builder(&nsqd).deflate(true), "conn_checked_deflate"),
    ] {
        let config = config.check_tls_required(true).build().unwrap();
        let mut conn = connect(&config).await;
        assert!(conn.info().upgrades.compression.is_some());
        publish_burst(&mut conn, &nsqd, topic).await;
    }
}
