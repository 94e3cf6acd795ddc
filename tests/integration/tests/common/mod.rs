//! Helpers shared by the `producer_*` and `pool_*` tests: their producer configuration, a way
//! to run blocking harness calls, and a poll of nsqd's statistics. The hang guard, the topic
//! names and the reader of messages are nsq-test-support's.
//!
//! Each test file uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use nsq_producer::ProducerConfig;
use nsq_test_support::HANG;

/// A producer configuration for tests: the defaults with quick reconnects.
pub fn producer_config() -> ProducerConfig {
    let mut config = ProducerConfig::default();
    config.reconnect_backoff_min = Duration::from_millis(20);
    config.reconnect_backoff_max = Duration::from_millis(500);
    config
}

/// Runs the blocking harness call `f` without stalling the runtime's other tasks (for calls
/// that take a while, such as a restart). Needs the multi-threaded runtime.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Polls `read` until it returns `want` or [`HANG`] passes; returns the last value. For nsqd's
/// statistics, which some operations update asynchronously.
pub async fn eventually<T: PartialEq>(want: T, mut read: impl FnMut() -> T) -> T {
    let deadline = Instant::now() + HANG;
    loop {
        let got = read();
        if got == want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
