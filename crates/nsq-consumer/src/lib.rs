//! An NSQ consumer for tokio.
//!
//! [`Consumer::builder`] names the topic and channel; [`ConsumerBuilder::nsqd`] and
//! [`ConsumerBuilder::lookupd`] say where to read; [`ConsumerBuilder::connect`] subscribes and
//! returns a [`Consumer`]. Read it as a [`Stream`](futures::Stream) of [`Message`]s and answer
//! each, or give [`Consumer::run`] a [`Handler`] and a concurrency. [`ConsumerHandle`] changes
//! `max_in_flight` at run time, tells whether the consumer is starved, reads [`Stats`] and
//! stops it; a stop drains and yields a [`DrainReport`].
//!
//! The guarantees (at least once, what requeue, drop and drain do, no ordering), RDY and
//! backoff are described in the crate README, included below.
//!
//! # Structure
//!
//! - [`RdyPlanner`] decides every RDY count, as plain data (no sockets, no clock).
//! - Each connection has a task that reads frames, writes answers and RDY counts, and never
//!   waits on the application: delivered messages go to an unbounded channel, which RDY bounds
//!   (nsqd sends no more than the RDY count unanswered).
//! - One coordinator task dials and redials nsqd, ticks the planner, ends backoff windows, polls
//!   nsqlookupd and drains.
//!
//! # Metrics
//!
//! With the `metrics` feature, every connection reports with the labels `nsqd`, `topic` and
//! `channel`:
//!
//! | name | type | what |
//! |---|---|---|
//! | `nsq_consumer_messages_total` | counter | messages, by `outcome`: `received`, `finished`, `requeued`, `dropped` (of requeued: dropped unanswered), `given_up`, `requeued_by_drain`, `lost_with_connection`, `timed_out` (delivered again after nsqd's `msg_timeout`) |
//! | `nsq_consumer_answers_refused_total` | counter | `FIN`, `REQ` or `TOUCH` refused by nsqd, by `code` (`E_FIN_FAILED`, `E_REQ_FAILED`, `E_TOUCH_FAILED`) |
//! | `nsq_consumer_connects_total` | counter | connections subscribed |
//! | `nsq_consumer_disconnects_total` | counter | connections closed or lost |
//! | `nsq_consumer_rdy` | gauge | the connection's RDY count |
//! | `nsq_consumer_in_flight` | gauge | messages delivered on the connection and not yet answered |
//!
//! Tracing events carry the nsqd's address (`nsqd`); connection-level events come from
//! `nsq-conn`'s span.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backoff;
mod config;
mod conn;
mod consumer;
mod coordinator;
#[cfg(feature = "lookupd")]
mod discovery;
mod error;
mod handle;
mod handler;
mod inbox;
mod message;
#[cfg(feature = "metrics")]
mod metrics;
mod rdy;
mod shared;
mod stats;

pub use config::{BackoffStrategy, ConsumerConfig};
pub use conn::ConnectionError;
pub use consumer::{Consumer, ConsumerBuilder};
pub use error::{ConsumerError, NodeError};
pub use handle::ConsumerHandle;
pub use handler::{Handler, HandlerError};
pub use message::{AnswerError, Message};
pub use nsq_conn::ConfigError;
pub use nsq_proto::MessageId;
pub use rdy::{ConnId, RdyPlanner};
pub use stats::{DrainReport, Stats};

/// The examples of the crate's README, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
