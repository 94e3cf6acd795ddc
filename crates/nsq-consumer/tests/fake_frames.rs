//! The consumer against a scripted nsqd that sends malformed frames after the subscription: a
//! message frame shorter than the 26-byte message header, a frame of an unknown type, and a
//! frame whose size field announces 2 GiB. Each time the consumer drops the connection with a
//! warning that names the nsqd and the fault, panics nowhere, answers nothing, and subscribes
//! again on a new connection, where messages flow and are finished.
//!
//! Each test binds a listener on `127.0.0.1:0`, gives its address to the consumer and plays
//! nsqd's side of every accepted connection with [`FakeNsqd`]. The runtime is current-thread so
//! that the consumer's tasks log to the test's [`Warnings`]. `within` only turns a hang into a
//! failure; nothing here depends on timing.

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures::StreamExt;
use nsq_consumer::{Consumer, ConsumerConfig};
use nsq_proto::server::{ClientCommand, encode_message};
use nsq_proto::{Message, MessageId};
use nsq_test_support::{FakeNsqd, Warnings, within};
use tokio::net::TcpListener;

const TOPIC: &str = "t";
const CHANNEL: &str = "c";

/// Accepts the next connection and plays nsqd up to the first RDY above 0.
async fn accept_subscriber(listener: &TcpListener) -> FakeNsqd {
    let (stream, _) = within("the consumer connects", listener.accept())
        .await
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let mut nsqd = FakeNsqd::new(stream);
    within("the handshake", nsqd.accept_plain()).await;
    loop {
        match within("SUB and RDY", nsqd.expect_command()).await {
            ClientCommand::Sub { topic, channel } => {
                assert_eq!((topic.as_str(), channel.as_str()), (TOPIC, CHANNEL));
                nsqd.send_ok().await;
            }
            ClientCommand::Rdy { count } if count > 0 => return nsqd,
            ClientCommand::Rdy { .. } | ClientCommand::Nop => {}
            other => panic!("unexpected command while subscribing: {other:?}"),
        }
    }
}

fn message_frame(id: &[u8; 16], body: &'static [u8]) -> BytesMut {
    let mut frame = BytesMut::new();
    encode_message(
        &mut frame,
        &Message {
            timestamp: 1,
            attempts: 1,
            id: MessageId(*id),
            body: body.into(),
        },
    );
    frame
}

/// Sends `malformed` on a subscribed connection and checks what the consumer does: it closes
/// the connection without answering anything, warns with `expected` in the error, reconnects,
/// and consumes a good message on the new connection.
async fn malformed_frame_drops_the_connection(malformed: &[u8], expected: &str) {
    let warnings = Warnings::default();
    let _guard = warnings.set_default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut config = ConsumerConfig::default();
    config.max_in_flight = 10;
    config.reconnect_backoff_min = Duration::from_millis(20);
    config.reconnect_backoff_max = Duration::from_millis(100);
    let builder = Consumer::builder(TOPIC, CHANNEL)
        .unwrap()
        .config(config)
        .nsqd(addr.clone());
    let connecting = tokio::spawn(builder.connect());
    let mut first = accept_subscriber(&listener).await;
    let mut consumer = within("connect", connecting).await.unwrap().unwrap();
    let handle = consumer.handle();

    first.send_raw(malformed).await;
    while let Some(command) = within("the consumer closes", first.next_command()).await {
        assert!(
            matches!(
                command,
                ClientCommand::Nop | ClientCommand::Rdy { .. } | ClientCommand::Cls
            ),
            "nothing is answered on a connection that sent garbage: {command:?}"
        );
    }

    let mut second = accept_subscriber(&listener).await;
    second
        .send_frames(&message_frame(b"0123456789abcdef", b"good"))
        .await;
    let msg = within("the message on the new connection", consumer.next())
        .await
        .unwrap();
    assert_eq!(&msg.body()[..], b"good");
    assert_eq!(msg.nsqd(), addr);
    msg.finish().unwrap();
    loop {
        match within("the FIN", second.expect_command()).await {
            ClientCommand::Fin { id } => {
                assert_eq!(id, MessageId(*b"0123456789abcdef"));
                break;
            }
            // The connection gets its share of max_in_flight after its first message.
            ClientCommand::Rdy { .. } | ClientCommand::Nop => {}
            other => panic!("expected the FIN, got {other:?}"),
        }
    }

    let stats = handle.stats();
    assert_eq!(stats.received, 1, "{stats:?}");
    assert_eq!(stats.finished, 1, "{stats:?}");
    assert_eq!(stats.connects, 2, "{stats:?}");
    assert_eq!(stats.disconnects, 1, "{stats:?}");
    let lines = warnings.taken();
    eprintln!("{lines:?}");
    assert!(
        lines
            .iter()
            .any(|line| line.contains(&addr) && line.contains(expected)),
        "a warning names the nsqd and {expected:?}: {lines:?}"
    );
    drop(second);
    within("the drain", consumer.drain()).await;
}

#[tokio::test]
async fn a_message_frame_shorter_than_its_header_drops_the_connection() {
    // Size 14: the frame type and 10 bytes, where a message needs 26 for its header alone.
    let mut frame = BytesMut::new();
    frame.put_u32(14);
    frame.put_i32(2);
    frame.put_slice(b"0123456789");
    malformed_frame_drops_the_connection(&frame, "shorter than the 26-byte message header").await;
}

#[tokio::test]
async fn a_frame_of_unknown_type_drops_the_connection() {
    let mut frame = BytesMut::new();
    frame.put_u32(7);
    frame.put_i32(9);
    frame.put_slice(b"abc");
    malformed_frame_drops_the_connection(&frame, "unknown frame type 9").await;
}

#[tokio::test]
async fn a_huge_frame_size_drops_the_connection() {
    // Only the size field: the consumer refuses it without waiting for 2 GiB.
    malformed_frame_drops_the_connection(b"\x7f\xff\xff\xff", "exceeds the maximum").await;
}
