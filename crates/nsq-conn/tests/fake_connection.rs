//! A connection after its handshake, against a scripted fake nsqd: heartbeats, liveness,
//! write stalls, malformed frames, failures.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use nsq_conn::{ConnConfig, ConnConfigBuilder, ConnError, Connection};
use nsq_proto::server::ClientCommand;
use nsq_proto::{Command, DecodeError, Frame, HEARTBEAT, OK, Response, Topic};
use nsq_test_support::FakeNsqd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

fn builder() -> ConnConfigBuilder {
    ConnConfig::builder("127.0.0.1:4150")
}

/// A connection through a completed plain handshake.
async fn connected(config: ConnConfig) -> (Connection, FakeNsqd) {
    connected_with_capacity(config, 64 * 1024).await
}

async fn connected_with_capacity(config: ConnConfig, capacity: usize) -> (Connection, FakeNsqd) {
    let (io, mut nsqd) = FakeNsqd::pair_with_capacity(capacity);
    let client = tokio::spawn(async move { Connection::handshake(io, &config).await });
    nsqd.accept_plain().await;
    (client.await.unwrap().unwrap(), nsqd)
}

fn topic() -> Topic {
    Topic::new("t").unwrap()
}

#[tokio::test]
async fn fake_heartbeat_between_two_responses_is_answered_and_not_surfaced() {
    let (mut conn, mut nsqd) = connected(builder().build().unwrap()).await;
    let topic = topic();
    for body in [&b"one"[..], b"two"] {
        conn.buffer_command(&Command::Pub {
            topic: &topic,
            body,
        })
        .unwrap();
    }
    conn.send(Command::Pub {
        topic: &topic,
        body: b"three",
    })
    .await
    .unwrap();
    for _ in 0..3 {
        assert!(matches!(
            nsqd.expect_command().await,
            ClientCommand::Pub { .. }
        ));
    }
    let mut frames = FakeNsqd::response_frame(OK);
    frames.extend_from_slice(&FakeNsqd::response_frame(HEARTBEAT));
    frames.extend_from_slice(&FakeNsqd::response_frame(OK));
    frames.extend_from_slice(&FakeNsqd::response_frame(HEARTBEAT));
    frames.extend_from_slice(&FakeNsqd::response_frame(OK));
    nsqd.send_frames(&frames).await;
    for _ in 0..3 {
        assert_eq!(conn.recv().await.unwrap(), Frame::Response(Response::Ok));
    }
    assert_eq!(nsqd.expect_command().await, ClientCommand::Nop);
    assert_eq!(nsqd.expect_command().await, ClientCommand::Nop);
    // Nothing else surfaces.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), conn.recv())
            .await
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn fake_silent_peer_is_detected_within_twice_the_heartbeat() {
    let config = builder()
        .heartbeat_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    let (mut conn, _nsqd) = connected(config).await;
    let started = Instant::now();
    let err = conn.recv().await.unwrap_err();
    assert!(
        matches!(err, ConnError::HeartbeatTimeout(d) if d == Duration::from_secs(2)),
        "{err}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1900) && waited <= Duration::from_millis(2100),
        "{waited:?}"
    );
    // The failure is sticky.
    assert!(matches!(
        conn.recv().await,
        Err(ConnError::HeartbeatTimeout(_))
    ));
    assert!(matches!(
        conn.buffer_command(&Command::Nop),
        Err(ConnError::HeartbeatTimeout(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn fake_regular_heartbeats_keep_an_idle_connection_alive() {
    let config = builder()
        .heartbeat_interval(Duration::from_secs(1))
        .build()
        .unwrap();
    let (mut conn, mut nsqd) = connected(config).await;
    let fake = async {
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            nsqd.send_heartbeat().await;
            assert_eq!(nsqd.expect_command().await, ClientCommand::Nop);
        }
        nsqd.send_ok().await;
    };
    let (frame, ()) = tokio::join!(conn.recv(), fake);
    assert_eq!(frame.unwrap(), Frame::Response(Response::Ok));
}

#[tokio::test(start_paused = true)]
async fn fake_heartbeats_disabled_means_no_idle_timeout() {
    let (mut conn, _nsqd) = connected(builder().disable_heartbeats().build().unwrap()).await;
    assert!(conn.info().heartbeat_interval.is_none());
    assert!(
        tokio::time::timeout(Duration::from_secs(24 * 3600), conn.recv())
            .await
            .is_err(),
        "no frame and no error in a day of silence"
    );
    assert!(conn.error().is_none());
}

#[tokio::test]
async fn fake_malformed_frame_ends_the_connection_with_a_decode_error() {
    let (mut conn, mut nsqd) = connected(builder().build().unwrap()).await;
    nsqd.send_ok().await;
    nsqd.send_raw(b"\x00\x00\x00\x06\x00\x00\x00\x07xx").await;
    assert_eq!(
        conn.next().await.unwrap().unwrap(),
        Frame::Response(Response::Ok)
    );
    let err = conn.next().await.unwrap().unwrap_err();
    assert!(
        matches!(err, ConnError::Decode(DecodeError::UnknownFrameType(7))),
        "{err}"
    );
    // The stream yields the error once, then ends; the error stays.
    assert!(conn.next().await.is_none());
    assert!(matches!(
        conn.recv().await,
        Err(ConnError::Decode(DecodeError::UnknownFrameType(7)))
    ));
}

#[tokio::test]
async fn fake_short_message_frame_is_a_decode_error() {
    let (mut conn, mut nsqd) = connected(builder().build().unwrap()).await;
    nsqd.send_raw(b"\x00\x00\x00\x08\x00\x00\x00\x02abcd").await;
    assert!(matches!(
        conn.recv().await,
        Err(ConnError::Decode(DecodeError::MalformedMessage { len: 4 }))
    ));
}

#[tokio::test]
async fn fake_peer_closing_is_closed() {
    let (mut conn, mut nsqd) = connected(builder().build().unwrap()).await;
    nsqd.send_raw(b"\x00\x00\x00\x06\x00\x00").await;
    drop(nsqd);
    assert!(matches!(conn.recv().await, Err(ConnError::Closed)));
}

#[tokio::test]
async fn fake_error_frame_before_a_failed_write_is_still_delivered() {
    let (mut conn, mut nsqd) = connected(builder().build().unwrap()).await;
    nsqd.send_error("E_BAD_MESSAGE PUB invalid message body size 0")
        .await;
    drop(nsqd);
    let topic = topic();
    let sent = conn
        .send(Command::Pub {
            topic: &topic,
            body: b"x",
        })
        .await;
    assert!(sent.is_err());
    match conn.recv().await.unwrap() {
        Frame::Error(err) => assert_eq!(
            err.to_string(),
            "E_BAD_MESSAGE PUB invalid message body size 0"
        ),
        other => panic!("{other:?}"),
    }
    assert!(conn.recv().await.is_err());
}

#[tokio::test(start_paused = true)]
async fn fake_peer_that_stops_reading_is_a_write_timeout() {
    let config = builder()
        .write_timeout(Duration::from_secs(2))
        .disable_heartbeats()
        .build()
        .unwrap();
    let (mut conn, _nsqd) = connected_with_capacity(config, 4096).await;
    let topic = topic();
    let body = vec![b'x'; 256 * 1024];
    let started = Instant::now();
    let err = conn
        .send(Command::Pub {
            topic: &topic,
            body: &body,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, ConnError::WriteTimeout(d) if d == Duration::from_secs(2)),
        "{err}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn fake_large_write_to_a_slow_reader_is_not_cut_off() {
    let config = builder()
        .write_timeout(Duration::from_secs(1))
        .disable_heartbeats()
        .build()
        .unwrap();
    let (mut conn, mut nsqd) = connected_with_capacity(config, 1024).await;
    nsqd.set_slow_reads(Some((1024, Duration::from_millis(700))));
    let topic = topic();
    let body = vec![b'y'; 64 * 1024];
    let started = Instant::now();
    let (sent, command) = tokio::join!(
        conn.send(Command::Pub {
            topic: &topic,
            body: &body,
        }),
        nsqd.expect_command()
    );
    sent.unwrap();
    assert!(
        started.elapsed() > Duration::from_secs(30),
        "the write took many write timeouts"
    );
    assert_eq!(
        command,
        ClientCommand::Pub {
            topic: "t".into(),
            body: Bytes::from(body)
        }
    );
}

/// A pipe end that counts the write calls reaching it and, once `broken` is set, fails every
/// write (as after nsqd reset the connection) while reads go on.
struct TestIo {
    inner: tokio::io::DuplexStream,
    writes: Arc<AtomicUsize>,
    broken: Arc<std::sync::atomic::AtomicBool>,
}

impl TestIo {
    fn new(inner: tokio::io::DuplexStream) -> Self {
        Self {
            inner,
            writes: Arc::default(),
            broken: Arc::default(),
        }
    }
}

impl AsyncRead for TestIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TestIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.broken.load(Ordering::Relaxed) {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        self.writes.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// nsqd's replies can still be on their way when a write fails (it resets the connection after
/// an error while unread bytes remain): the connection keeps reading until nsqd's side ends, so
/// an acknowledgement and the error frame that explains the failure are not lost.
#[tokio::test]
async fn fake_replies_arriving_after_a_failed_write_are_still_delivered() {
    let (io, mut nsqd) = FakeNsqd::pair();
    let io = TestIo::new(io);
    let broken = io.broken.clone();
    let config = builder().build().unwrap();
    let client = tokio::spawn(async move { Connection::handshake(io, &config).await });
    nsqd.accept_plain().await;
    let mut conn = client.await.unwrap().unwrap();

    broken.store(true, Ordering::Relaxed);
    let topic = topic();
    conn.buffer_command(&Command::Pub {
        topic: &topic,
        body: b"x",
    })
    .unwrap();
    let flushed = std::future::poll_fn(|cx| conn.poll_flush(cx)).await;
    assert!(matches!(flushed, Err(ConnError::Io(_))), "{flushed:?}");
    assert!(
        conn.buffer_command(&Command::Nop).is_err(),
        "writing is over"
    );

    // Only now do nsqd's replies arrive, then it goes away.
    let mut frames = FakeNsqd::response_frame(OK);
    frames.extend_from_slice(&FakeNsqd::error_frame(
        "E_BAD_MESSAGE PUB message too big 105 > 100",
    ));
    nsqd.send_frames(&frames).await;
    drop(nsqd);

    assert_eq!(conn.recv().await.unwrap(), Frame::Response(Response::Ok));
    match conn.recv().await.unwrap() {
        Frame::Error(err) => assert_eq!(err.description(), "PUB message too big 105 > 100"),
        other => panic!("expected the error frame, got {other:?}"),
    }
    // The connection ends with the write error that started it.
    assert!(matches!(conn.recv().await, Err(ConnError::Io(_))));
}

#[tokio::test(start_paused = true)]
async fn fake_failed_write_reads_no_longer_than_the_write_timeout() {
    let (io, mut nsqd) = FakeNsqd::pair();
    let io = TestIo::new(io);
    let broken = io.broken.clone();
    let config = builder()
        .write_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let client = tokio::spawn(async move { Connection::handshake(io, &config).await });
    nsqd.accept_plain().await;
    let mut conn = client.await.unwrap().unwrap();
    broken.store(true, Ordering::Relaxed);
    conn.buffer_command(&Command::Nop).unwrap();
    assert!(
        std::future::poll_fn(|cx| conn.poll_flush(cx))
            .await
            .is_err()
    );
    // The peer neither answers nor closes: reading gives up instead of waiting for ever.
    let ended = tokio::time::timeout(Duration::from_secs(30), conn.recv()).await;
    assert!(matches!(ended, Ok(Err(ConnError::Io(_)))), "{ended:?}");
    drop(nsqd);
}

#[tokio::test]
async fn fake_buffered_commands_go_out_in_one_write() {
    let (io, mut nsqd) = FakeNsqd::pair_with_capacity(1 << 20);
    let io = TestIo::new(io);
    let writes = io.writes.clone();
    let config = builder().build().unwrap();
    let client = tokio::spawn(async move { Connection::handshake(io, &config).await });
    nsqd.accept_plain().await;
    let mut conn = client.await.unwrap().unwrap();
    assert_eq!(
        writes.load(Ordering::Relaxed),
        1,
        "magic and IDENTIFY in one write"
    );

    let topic = topic();
    for i in 0..100u32 {
        conn.buffer_command(&Command::Pub {
            topic: &topic,
            body: &i.to_be_bytes(),
        })
        .unwrap();
    }
    assert_eq!(conn.write_buffer_len(), 100 * (6 + 4 + 4));
    assert_eq!(
        writes.load(Ordering::Relaxed),
        1,
        "buffering writes nothing"
    );
    std::future::poll_fn(|cx| conn.poll_flush(cx))
        .await
        .unwrap();
    assert_eq!(conn.write_buffer_len(), 0);
    assert_eq!(
        writes.load(Ordering::Relaxed),
        2,
        "100 commands in one write"
    );
    for i in 0..100u32 {
        assert_eq!(
            nsqd.expect_command().await,
            ClientCommand::Pub {
                topic: "t".into(),
                body: Bytes::copy_from_slice(&i.to_be_bytes())
            }
        );
    }
}

#[tokio::test]
async fn fake_close_shuts_down_the_write_side() {
    let (mut conn, mut nsqd) = connected(builder().build().unwrap()).await;
    conn.buffer_command(&Command::Nop).unwrap();
    conn.close().await.unwrap();
    assert_eq!(nsqd.expect_command().await, ClientCommand::Nop);
    nsqd.expect_eof().await;
    assert!(matches!(
        conn.buffer_command(&Command::Nop),
        Err(ConnError::Closed)
    ));
    // Reading still works until nsqd closes its side.
    nsqd.send_ok().await;
    assert_eq!(conn.recv().await.unwrap(), Frame::Response(Response::Ok));
    drop(nsqd);
    assert!(matches!(conn.recv().await, Err(ConnError::Closed)));
}
