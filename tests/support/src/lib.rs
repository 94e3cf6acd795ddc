//! Test support for the NSQ workspace.
//!
//! - [`Nsqd`] runs a real nsqd v1.3.0 on ephemeral loopback ports with a temporary data
//!   directory, exposes its addresses and statistics, restarts it on the same ports, and cleans
//!   up after itself. The integration tests in `tests/integration` use it.
//! - [`Nsqlookupd`] does the same for nsqlookupd v1.3.0; [`NsqdOptions::lookupd`] registers an
//!   nsqd with one or more of them.
//! - [`NsqTool`] finds the nsq v1.3.0 binaries, among them `to_nsq`, `nsq_tail`,
//!   `nsq_to_nsq` and `bench_reader`.
//! - [`NsqdReader`] reads messages back from a real nsqd; [`read_exactly`], [`read_all`] and
//!   the other `read_*` functions check what a topic or channel holds.
//! - [`Nsqd::channel_snapshot`] and [`channel_snapshot_at`] read one channel's statistics with
//!   each subscribed client's (RDY count, in flight, finished, requeued), typed.
//! - [`FakeNsqd`] plays nsqd's side of one connection over an in-memory pipe, scripted step by
//!   step (including snappy, deflate and TLS), for tests of what a real nsqd never sends.
//! - [`DelayProxy`] delays what a server sends, to make a real nsqd answer slowly.
//! - [`TestPki`] generates a CA, server and client certificates at run time.
//! - [`within`] turns a hang into a failure after [`HANG`]; [`topic`] and [`closed_addr`] give a
//!   test's topic and a loopback address where nothing listens.
//! - [`Warnings`] records the warnings the code under test logs through `tracing`.
//!
//! Nothing here is published; it exists only for this workspace's tests.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod daemon;
mod fake;
mod hang;
mod http;
mod logs;
mod names;
mod nsqd;
mod nsqlookupd;
mod proxy;
mod reader;
mod rng;
mod stats;
mod tls;
mod tools;

pub use fake::{FakeCompression, FakeNsqd};
pub use hang::{HANG, within};
pub use http::HttpResponse;
pub use logs::Warnings;
pub use names::{closed_addr, topic};
pub use nsqd::{Nsqd, NsqdOptions, topic_depth_at};
pub use nsqlookupd::{Nsqlookupd, NsqlookupdOptions};
pub use proxy::DelayProxy;
pub use reader::{
    NsqdReader, READBACK, channel_number, read_all, read_at_least, read_exactly, read_until_quiet,
};
pub use rng::Rng;
pub use stats::{ChannelSnapshot, ClientSnapshot, channel_snapshot_at};
pub use tls::TestPki;
pub use tools::NsqTool;
