//! An NSQ consumer for tokio, in progress.
//!
//! [`RdyPlanner`] is the sans-IO planner that decides the RDY count of every connection of a
//! consumer: it never lets the sum exceed `max_in_flight` nor any connection's count exceed
//! nsqd's `max_rdy_count`, spreads the remainder of `max_in_flight` over the connections,
//! demotes idle connections to RDY 1 in favour of active ones, rotates RDY 1 slots when there
//! are more connections than `max_in_flight`, and pauses everything during backoff.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod rdy;

pub use config::{BackoffStrategy, ConsumerConfig};
pub use nsq_conn::ConfigError;
pub use rdy::{ConnId, RdyPlanner};
