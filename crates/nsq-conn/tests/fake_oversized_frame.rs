//! A frame header announcing a huge frame fails at once, without a large allocation.
//!
//! Alone in its own test binary because it measures the process's peak virtual memory.

use std::time::Duration;

use nsq_conn::{ConnConfig, ConnError, Connection};
use nsq_proto::DecodeError;
use nsq_test_support::FakeNsqd;

/// Peak virtual memory of this process in KiB (Linux), if known.
fn vm_peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmPeak:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn fake_oversized_frame_header_causes_no_large_allocation() {
    let config = ConnConfig::builder("127.0.0.1:4150")
        .max_msg_size(1024 * 1024)
        .build()
        .unwrap();
    let before = vm_peak_kib();

    // During the handshake: the header arrives instead of the IDENTIFY reply.
    let (io, mut nsqd) = FakeNsqd::pair();
    let handshake_config = config.clone();
    let client = tokio::spawn(async move { Connection::handshake(io, &handshake_config).await });
    nsqd.expect_magic().await;
    nsqd.expect_identify().await;
    nsqd.send_raw(b"\x7f\xff\xff\xf0\x00\x00\x00\x00").await;
    let err = tokio::time::timeout(Duration::from_secs(5), client)
        .await
        .expect("fails at once, without waiting for the announced bytes")
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnError::Decode(DecodeError::FrameTooLarge {
                size: 0x7fff_fff0,
                max
            }) if max == config.max_frame_size()
        ),
        "{err}"
    );

    // After the handshake.
    let (io, mut nsqd) = FakeNsqd::pair();
    let handshake_config = config.clone();
    let client = tokio::spawn(async move { Connection::handshake(io, &handshake_config).await });
    nsqd.accept_plain().await;
    let mut conn = client.await.unwrap().unwrap();
    nsqd.send_raw(b"\x40\x00\x00\x00\x00\x00\x00\x02").await;
    let err = tokio::time::timeout(Duration::from_secs(5), conn.recv())
        .await
        .expect("fails at once")
        .unwrap_err();
    assert!(
        matches!(
            err,
            ConnError::Decode(DecodeError::FrameTooLarge {
                size: 0x4000_0000,
                ..
            })
        ),
        "{err}"
    );

    if let (Some(before), Some(after)) = (before, vm_peak_kib()) {
        let grown_mib = after.saturating_sub(before) / 1024;
        assert!(
            grown_mib < 256,
            "peak virtual memory grew by {grown_mib} MiB"
        );
    }
}
