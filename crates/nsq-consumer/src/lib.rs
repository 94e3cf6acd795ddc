//! An NSQ consumer for tokio.
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
mod handler;
mod message;
mod rdy;
mod shared;
mod stats;

pub use config::{BackoffStrategy, ConsumerConfig};
pub use conn::ConnectionError;
pub use consumer::{Consumer, ConsumerBuilder, ConsumerHandle};
pub use error::{ConsumerError, NodeError};
pub use handler::{Handler, HandlerError};
pub use message::{AnswerError, Message};
pub use nsq_conn::ConfigError;
pub use nsq_proto::MessageId;
pub use rdy::{ConnId, RdyPlanner};
pub use stats::{DrainReport, Stats};
