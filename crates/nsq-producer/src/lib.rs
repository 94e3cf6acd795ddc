//! An NSQ producer for tokio.
//!
//! This crate is being built; its API is not usable yet.
#![forbid(unsafe_code)]
