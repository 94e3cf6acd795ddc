//! An NSQ consumer, in progress.
//!
//! What exists now is [`RdyPlanner`], a sans-IO planner that decides the RDY count of every
//! connection of a consumer: it never lets the sum exceed `max_in_flight` nor any connection's
//! count exceed nsqd's `max_rdy_count`, spreads the remainder of `max_in_flight` over the
//! connections, demotes idle connections to RDY 1 in favour of active ones, rotates RDY 1 slots
//! when there are more connections than `max_in_flight`, and pauses everything during backoff.
//! It opens no sockets and reads no clock: the caller feeds it events and the current time, and
//! sends the RDY changes it drains.
#![forbid(unsafe_code)]

mod rdy;

pub use rdy::{ConnId, RdyPlanner};
