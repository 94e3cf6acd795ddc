//! Names and addresses the tests use.

use std::net::SocketAddr;

use nsq_proto::Topic;

/// The topic called `name`.
///
/// # Panics
///
/// When `name` is not a valid topic name; a test's topic names are written in the test.
pub fn topic(name: &str) -> Topic {
    Topic::new(name).unwrap_or_else(|err| panic!("{name:?} should be a valid topic: {err}"))
}

/// A loopback address where nothing listens: a port just bound and released, so that a dial to
/// it is refused.
pub fn closed_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("the bound port's address")
}
