//! One connection to nsqd on tokio: the codec, the IDENTIFY handshake, TLS and compression
//! upgrades, AUTH and heartbeats.
//!
//! This crate is being built; its API is not usable yet.
#![forbid(unsafe_code)]
