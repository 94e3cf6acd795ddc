//! The checks of a [`ConnConfigBuilder`]'s values, each on its own and all together.

use std::net::SocketAddr;
use std::time::Duration;

use super::{ConnConfigBuilder, MESSAGE_FRAME_OVERHEAD};
use crate::config_error::ConfigError;

/// The options with a range of their own, in the order [`ConnConfigBuilder::check_values`]
/// checks them.
const CHECKED: &[&str] = &[
    "address",
    "dial_timeout",
    "handshake_timeout",
    "write_timeout",
    "heartbeat_interval",
    "output_buffer_size",
    "msg_timeout",
    "sample_rate",
    "deflate_level",
    "max_msg_size",
    "auth_secret",
];

impl ConnConfigBuilder {
    /// Checks each value on its own, as [`build`](Self::build) does, but not how values combine
    /// (snappy with deflate, a TLS certificate with its key) and without reading TLS files. For
    /// checking one option as it is set, when the options it goes with may come later.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first value out of range.
    pub fn check_values(&self) -> Result<(), ConfigError> {
        CHECKED
            .iter()
            .try_for_each(|option| self.check_value(option))
    }

    /// Checks the value of one option (by its go-nsq name) against that option's own range;
    /// options without one pass.
    pub(crate) fn check_value(&self, option: &str) -> Result<(), ConfigError> {
        let id = &self.identify;
        match option {
            "address" => parse_host(&self.address).map(drop),
            "dial_timeout" => positive("dial_timeout", self.dial_timeout),
            "handshake_timeout" => positive("handshake_timeout", self.handshake_timeout),
            "write_timeout"
                if self.write_timeout < Duration::from_millis(100)
                    || self.write_timeout > Duration::from_secs(300) =>
            {
                Err(invalid(
                    "write_timeout",
                    format!("{:?}", self.write_timeout),
                    "100ms to 5m",
                ))
            }
            "heartbeat_interval" => match id.heartbeat_interval {
                Some(interval) if interval.as_millis() < 1000 => Err(invalid(
                    "heartbeat_interval",
                    format!("{interval:?}"),
                    "at least 1s (or heartbeats disabled)",
                )),
                _ => Ok(()),
            },
            "output_buffer_size" => match id.output_buffer_size {
                Some(size) if size < -1 || (1..64).contains(&size) => Err(invalid(
                    "output_buffer_size",
                    size.to_string(),
                    "-1, 0 or at least 64",
                )),
                _ => Ok(()),
            },
            "msg_timeout" => match id.msg_timeout {
                Some(timeout) if timeout.as_millis() != 0 && timeout.as_millis() < 1000 => {
                    Err(invalid(
                        "msg_timeout",
                        format!("{timeout:?}"),
                        "0 (nsqd's default) or at least 1s",
                    ))
                }
                _ => Ok(()),
            },
            "sample_rate" => match id.sample_rate {
                Some(rate) if rate > 99 => Err(invalid("sample_rate", rate.to_string(), "0 to 99")),
                _ => Ok(()),
            },
            "deflate_level" if !(1..=9).contains(&id.deflate_level) => Err(invalid(
                "deflate_level",
                id.deflate_level.to_string(),
                "1 to 9",
            )),
            "max_msg_size"
                if self.max_msg_size == 0
                    || self.max_msg_size > i32::MAX as u32 - MESSAGE_FRAME_OVERHEAD =>
            {
                Err(invalid(
                    "max_msg_size",
                    self.max_msg_size.to_string(),
                    "1 byte to 2 GiB",
                ))
            }
            "auth_secret" if self.auth_secret.as_ref().is_some_and(|s| s.0.is_empty()) => Err(
                invalid("auth_secret", "\"\"".to_owned(), "a non-empty secret"),
            ),
            _ => Ok(()),
        }
    }
}

fn invalid(option: &'static str, value: String, expected: &'static str) -> ConfigError {
    ConfigError::InvalidValue {
        option,
        value,
        expected,
    }
}

fn positive(option: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(invalid(option, "0s".to_owned(), "more than zero"));
    }
    Ok(())
}

/// The host part of `host:port`, checking that a port is there.
pub(super) fn parse_host(address: &str) -> Result<String, ConfigError> {
    let bad = |reason| ConfigError::InvalidAddress {
        address: address.to_owned(),
        reason,
    };
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return Ok(addr.ip().to_string());
    }
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| bad("expected host:port"))?;
    port.parse::<u16>()
        .map_err(|_| bad("the port is not a number from 0 to 65535"))?;
    let host = match host.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')
            .ok_or_else(|| bad("unbalanced brackets around an IPv6 address"))?,
        None if host.contains(':') => return Err(bad("IPv6 addresses must be in brackets")),
        None => host,
    };
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    Ok(host.to_owned())
}
