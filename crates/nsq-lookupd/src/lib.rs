//! A client of nsqlookupd's HTTP API for tokio, shared by NSQ producers and consumers.
//!
//! nsqlookupd is NSQ's directory: every nsqd registers with it over TCP and announces its
//! topics and channels, and clients ask it over HTTP where to connect. [`Lookupd`] asks one
//! nsqlookupd:
//!
//! - [`Lookupd::nodes`] (`GET /nodes`): every nsqd registered, with its topics and which of them
//!   are tombstoned there; what a pool of producers publishes to;
//! - [`Lookupd::lookup`] (`GET /lookup?topic=`): the nsqd that have a topic, and its channels;
//!   what a consumer connects to;
//! - [`Lookupd::ping`] (`GET /ping`): whether it answers.
//!
//! [`merge_nodes`] merges the lists of several nsqlookupds into one, a node appearing once.
//!
//! ```no_run
//! # async fn run() -> Result<(), nsq_lookupd::LookupdError> {
//! use std::time::Duration;
//!
//! use nsq_lookupd::{Lookupd, merge_nodes};
//!
//! let mut lists = Vec::new();
//! for address in ["10.0.0.1:4161", "10.0.0.2:4161"] {
//!     let lookupd = Lookupd::new(address)?.timeout(Duration::from_secs(2));
//!     lists.push(lookupd.nodes().await?);
//! }
//! for node in merge_nodes(lists) {
//!     println!("{} may take orders: {}", node.tcp_address(), node.may_publish("orders"));
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Replies
//!
//! The v1 JSON replies of nsqlookupd 1.x are asked for (`Accept: application/vnd.nsq;
//! version=1.0`), and the pre-1.0 envelope (`{"status_code":200,"status_txt":"OK","data":{...}}`)
//! is read too. [`parse_nodes`] and [`parse_lookup`] parse a body without any I/O.
//!
//! # Wrong addresses
//!
//! nsqlookupd listens on two ports (TCP 4160 for nsqd, HTTP 4161 for clients) and nsqd on two
//! more (TCP 4150, HTTP 4151), so an address is easily mixed up. Two mistakes get their own
//! error: nsqd's TCP port answers an HTTP request with a binary frame
//! ([`LookupdError::NotHttp`]), and nsqd's HTTP port answers `/ping` but not `/nodes` or
//! `/lookup` ([`LookupdError::NsqdHttp`]). Every error names the address it was given.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod error;
mod reply;

pub use client::{DEFAULT_TIMEOUT, Lookupd};
pub use error::LookupdError;
pub use reply::{Lookup, Node, NodeTopic, Nsqd, merge_nodes, parse_lookup, parse_nodes};

/// The examples of the crate's README, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
