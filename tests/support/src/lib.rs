//! Test support for the NSQ workspace.
//!
//! - [`Nsqd`] runs a real nsqd v1.3.0 on ephemeral loopback ports with a temporary data
//!   directory, exposes its addresses and statistics, restarts it on the same ports, and cleans
//!   up after itself. The integration tests in `tests/integration` use it.
//!
//! Nothing here is published; it exists only for this workspace's tests.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod nsqd;

pub use nsqd::{HttpResponse, Nsqd, NsqdOptions};
