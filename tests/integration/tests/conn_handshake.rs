//! nsq-conn against a real nsqd: plain connections, the IDENTIFY reply, heartbeats, refusals.

mod conn_common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use conn_common::{connect, connect_err, publish_one};
use futures::FutureExt;
use nsq_conn::{ConfigError, ConnConfig, ConnError, Connection};
use nsq_proto::{Command, DecodeError, ErrorCode, Frame};
use nsq_test_support::{Nsqd, NsqdOptions, closed_addr, topic, within};

#[tokio::test]
async fn conn_plain_connect_parses_the_identify_reply() {
    let nsqd = Nsqd::start();
    let config = ConnConfig::builder(nsqd.tcp_addr().to_string())
        .build()
        .unwrap();
    let mut conn = connect(&config).await;
    let info = conn.info().clone();
    assert!(info.identify.negotiated);
    assert_eq!(info.identify.version.as_deref(), Some("1.3.0"));
    assert_eq!(info.identify.max_rdy_count, 2500);
    assert_eq!(info.identify.max_msg_timeout, 900_000);
    assert_eq!(info.identify.msg_timeout, 60_000);
    assert_eq!(info.identify.max_deflate_level, 6);
    assert_eq!(info.identify.output_buffer_size, 16384);
    assert_eq!(info.identify.output_buffer_timeout, 250);
    assert!(!info.identify.tls_v1 && !info.identify.snappy && !info.identify.deflate);
    assert!(!info.identify.auth_required);
    assert_eq!(info.peer_addr, Some(nsqd.tcp_addr()));
    assert_eq!(info.heartbeat_interval, Some(Duration::from_secs(30)));
    assert!(info.auth.is_none());

    publish_one(&mut conn, "conn_plain").await;
    assert_eq!(nsqd.topic_depth("conn_plain"), Some(1));

    // nsqd lists the client with the identity we sent.
    let stats = nsqd.stats();
    let producers = stats["producers"].as_array().expect("producers");
    let client = producers
        .iter()
        .find(|p| {
            p["user_agent"]
                .as_str()
                .is_some_and(|ua| ua.starts_with("nsq-rs/"))
        })
        .unwrap_or_else(|| panic!("our client in {producers:?}"));
    assert_eq!(client["hostname"].as_str().map(str::is_empty), Some(false));
    conn.close().await.unwrap();
}

#[tokio::test]
async fn conn_consumer_fields_are_echoed_when_set() {
    let nsqd = Nsqd::start();
    let config = ConnConfig::builder(nsqd.tcp_addr().to_string())
        .output_buffer_size(8192)
        .output_buffer_timeout(Duration::from_millis(100))
        .msg_timeout(Duration::from_secs(5))
        .sample_rate(10)
        .build()
        .unwrap();
    let conn = connect(&config).await;
    let identify = &conn.info().identify;
    assert_eq!(identify.output_buffer_size, 8192);
    assert_eq!(identify.output_buffer_timeout, 100);
    assert_eq!(identify.msg_timeout, 5000);
    assert_eq!(identify.sample_rate, 10);
}

/// The connection comes from the local address it was given: nsqd sees it there. A port of
/// the test's choosing is seen exactly; with port 0 on another loopback address (127.0.0.2,
/// which a connection to nsqd would not come from unbound), nsqd sees that address and a port
/// the system chose.
#[tokio::test]
async fn conn_local_address_is_bound() {
    let nsqd = Nsqd::start();
    let chosen = closed_addr();
    let other_loopback: SocketAddr = "127.0.0.2:0".parse().unwrap();
    for (i, local) in [chosen, other_loopback].into_iter().enumerate() {
        let client_id = format!("conn_local_addr_{i}");
        let config = ConnConfig::builder(nsqd.tcp_addr().to_string())
            .client_id(client_id.clone())
            .local_addr(local)
            .build()
            .unwrap();
        let mut conn = connect(&config).await;
        publish_one(&mut conn, "conn_local_addr").await;
        let seen = peer_address(&nsqd, &client_id);
        assert!(seen.ip().is_loopback(), "{seen}");
        assert_ne!(seen.port(), 0, "{seen}");
        assert_eq!(seen.ip(), local.ip(), "nsqd sees the bound address");
        if local.port() != 0 {
            assert_eq!(seen, local, "nsqd sees the bound port");
        }
    }
}

/// The address nsqd sees the producer connection of `client_id` come from (its `/stats`).
fn peer_address(nsqd: &Nsqd, client_id: &str) -> SocketAddr {
    let stats = nsqd.stats();
    let producer = stats["producers"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["client_id"] == client_id))
        .unwrap_or_else(|| panic!("no producer {client_id:?} in {stats}"));
    producer["remote_address"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no remote_address in {producer}"))
}

#[tokio::test]
async fn conn_heartbeat_1000ms_idle_3s_then_publish() {
    let nsqd = Nsqd::start();
    let config = ConnConfig::builder(nsqd.tcp_addr().to_string())
        .heartbeat_interval(Duration::from_millis(1000))
        .build()
        .unwrap();
    let mut conn = connect(&config).await;
    // Idle for 3 s while the connection is polled: nsqd sends a heartbeat every second and
    // would close the connection after 2 s without the NOPs. None of them surfaces.
    let idle = tokio::time::timeout(Duration::from_secs(3), conn.recv()).await;
    assert!(idle.is_err(), "nothing surfaces while idle: {idle:?}");
    publish_one(&mut conn, "conn_heartbeat").await;
    assert_eq!(nsqd.topic_depth("conn_heartbeat"), Some(1));
}

#[tokio::test]
async fn conn_heartbeat_999ms_is_refused_locally() {
    let err = ConnConfig::builder("127.0.0.1:4150")
        .heartbeat_interval(Duration::from_millis(999))
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::InvalidValue {
                option: "heartbeat_interval",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn conn_heartbeat_above_nsqds_maximum_reports_nsqds_text() {
    let nsqd = Nsqd::start_with(NsqdOptions::new().max_heartbeat_interval(Duration::from_secs(2)));
    let config = ConnConfig::builder(nsqd.tcp_addr().to_string())
        .heartbeat_interval(Duration::from_millis(2001))
        .build()
        .unwrap();
    let err = connect_err(&config).await;
    let server = err
        .server_error()
        .unwrap_or_else(|| panic!("nsqd's error, got {err}"));
    assert_eq!(server.code(), &ErrorCode::BadBody);
    assert_eq!(
        server.to_string(),
        "E_BAD_BODY IDENTIFY heartbeat interval (2001) is invalid"
    );
    assert!(matches!(err, ConnError::IdentifyRejected(_)));
}

#[tokio::test]
async fn conn_heartbeats_disabled() {
    let nsqd = Nsqd::start();
    let config = ConnConfig::builder(nsqd.tcp_addr().to_string())
        .disable_heartbeats()
        .build()
        .unwrap();
    let mut conn = connect(&config).await;
    assert_eq!(conn.info().heartbeat_interval, None);
    let idle = tokio::time::timeout(Duration::from_secs(1), conn.recv()).await;
    assert!(idle.is_err(), "{idle:?}");
    publish_one(&mut conn, "conn_no_heartbeat").await;
}

#[tokio::test]
async fn conn_http_port_fails_fast() {
    let nsqd = Nsqd::start();
    let config = ConnConfig::builder(nsqd.http_addr().to_string())
        .build()
        .unwrap();
    let started = Instant::now();
    let err = connect_err(&config).await;
    assert!(
        matches!(err, ConnError::Decode(DecodeError::HttpResponse)),
        "{err}"
    );
    assert!(err.to_string().contains("HTTP port"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn conn_snappy_and_deflate_together_are_refused() {
    let err = ConnConfig::builder("127.0.0.1:4150")
        .snappy(true)
        .deflate(true)
        .build()
        .unwrap_err();
    assert!(matches!(err, ConfigError::BothCompressions), "{err}");
}

#[tokio::test]
async fn conn_refused_connection_fails_fast() {
    let nsqd = Nsqd::start();
    let mut config = ConnConfig::builder(nsqd.tcp_addr().to_string());
    drop(nsqd);
    config = config.dial_timeout(Duration::from_secs(5));
    let started = Instant::now();
    let err = within("connect", Connection::connect(&config.build().unwrap()))
        .await
        .unwrap_err();
    assert!(matches!(err, ConnError::Connect { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn conn_error_frame_is_delivered_before_the_close() {
    let nsqd = Nsqd::start_with(NsqdOptions::new().max_msg_size(10));
    let config = ConnConfig::builder(nsqd.tcp_addr().to_string())
        .build()
        .unwrap();
    let mut conn = connect(&config).await;
    let topic = topic("conn_reject");
    conn.send(Command::Pub {
        topic: &topic,
        body: b"more than ten bytes",
    })
    .await
    .unwrap();
    match within("reply", conn.recv()).await.unwrap() {
        Frame::Error(err) => {
            assert_eq!(err.to_string(), "E_BAD_MESSAGE PUB message too big 19 > 10")
        }
        other => panic!("{other:?}"),
    }
    let closed = within("close", conn.recv()).await.unwrap_err();
    assert!(
        matches!(closed, ConnError::Closed | ConnError::Io(_)),
        "{closed}"
    );
    // Nothing else arrives, and the connection stays failed.
    assert!(conn.recv().now_or_never().is_some_and(|r| r.is_err()));
}
