//! Helpers shared by the `conn_*` tests: connecting, and a publish burst checked against nsqd's
//! statistics.
#![allow(dead_code)]

use bytes::Bytes;
use nsq_conn::{ConnConfig, ConnError, Connection};
use nsq_proto::{Command, Frame, Response};
use nsq_test_support::{Nsqd, topic, within};

/// Connects with `config`; the connection must be made.
pub async fn connect(config: &ConnConfig) -> Connection {
    within("connect", Connection::connect(config))
        .await
        .unwrap_or_else(|err| panic!("connecting to {}: {err}", config.address()))
}

/// Connects with `config`; the attempt must fail. Returns its error.
pub async fn connect_err(config: &ConnConfig) -> ConnError {
    match within("connect", Connection::connect(config)).await {
        Ok(_) => panic!("connecting to {} was expected to fail", config.address()),
        Err(err) => err,
    }
}

/// Eight messages of 512 KiB: one 4 MiB MPUB (under nsqd's 5 MiB body limit, each message at
/// nsqd's 1 MiB message limit or below). Half of each body compresses well, half does not.
pub fn big_batch() -> Vec<Bytes> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..8u8)
        .map(|i| {
            let mut body = vec![i; 512 * 1024];
            for byte in &mut body[256 * 1024..] {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = state as u8;
            }
            Bytes::from(body)
        })
        .collect()
}

/// Publishes one 4 MiB MPUB and ten small PUBs in one pipelined write, expects eleven `OK`s on
/// the same connection, and checks that nsqd holds all eighteen messages.
pub async fn publish_burst(conn: &mut Connection, nsqd: &Nsqd, name: &str) {
    let topic = topic(name);
    let batch = big_batch();
    conn.buffer_command(&Command::Mpub {
        topic: &topic,
        bodies: &batch,
    })
    .expect("buffer the MPUB");
    for i in 0..9u8 {
        conn.buffer_command(&Command::Pub {
            topic: &topic,
            body: &[b'p', i],
        })
        .expect("buffer a PUB");
    }
    within(
        "sending the burst",
        conn.send(Command::Pub {
            topic: &topic,
            body: b"last",
        }),
    )
    .await
    .expect("send the burst");
    for i in 0..11 {
        let frame = within("a reply", conn.recv()).await.expect("a reply");
        assert_eq!(frame, Frame::Response(Response::Ok), "reply {i}");
    }
    assert_eq!(nsqd.topic_depth(name), Some(18), "messages held by nsqd");
}

/// Publishes one small message and expects `OK`.
pub async fn publish_one(conn: &mut Connection, name: &str) {
    let topic = topic(name);
    within(
        "sending a PUB",
        conn.send(Command::Pub {
            topic: &topic,
            body: b"hello",
        }),
    )
    .await
    .expect("send a PUB");
    let frame = within("the PUB reply", conn.recv()).await.expect("a reply");
    assert_eq!(frame, Frame::Response(Response::Ok));
}
