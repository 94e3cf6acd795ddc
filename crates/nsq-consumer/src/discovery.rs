//! Discovery of the topic's nsqd through nsqlookupd.
//!
//! Every nsqlookupd's `/lookup?topic=` is polled at once, at `lookupd_poll_interval` spread by
//! `lookupd_poll_jitter`, and the union of what they list is wanted. An nsqd none of them lists
//! stays wanted for `lookupd_grace_period` after it was last listed, so that an nsqlookupd that
//! restarts (and lists nothing until the nsqd register again) does not drop connections. While
//! every nsqlookupd fails, nothing is dropped.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use nsq_lookupd::{Lookupd, LookupdError, Nsqd};

use crate::config::ConsumerConfig;
use crate::error::ConsumerError;

/// What one poll found.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// The nsqd to be connected: listed now, or within the grace period.
    pub(crate) wanted: Vec<String>,
    /// The nsqlookupd that failed.
    pub(crate) errors: Vec<LookupdError>,
}

pub(crate) struct Discovery {
    lookupds: Vec<Lookupd>,
    topic: String,
    interval: Duration,
    jitter: f64,
    grace: Duration,
    last_listed: HashMap<String, Instant>,
    seed: u64,
}

/// nsqd's TCP address as nsqlookupd lists it.
pub(crate) fn tcp_address(nsqd: &Nsqd) -> String {
    if nsqd.broadcast_address.contains(':') && !nsqd.broadcast_address.starts_with('[') {
        format!("[{}]:{}", nsqd.broadcast_address, nsqd.tcp_port)
    } else {
        format!("{}:{}", nsqd.broadcast_address, nsqd.tcp_port)
    }
}

impl Discovery {
    pub(crate) fn new(
        addresses: &[String],
        topic: &str,
        config: &ConsumerConfig,
    ) -> Result<Self, ConsumerError> {
        let lookupds = addresses
            .iter()
            .map(|address| {
                Lookupd::new(address)
                    .map(|l| l.timeout(config.lookupd_poll_timeout))
                    .map_err(|source| ConsumerError::Lookupd {
                        address: address.clone(),
                        source: Box::new(source),
                    })
            })
            .collect::<Result<_, _>>()?;
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        Ok(Self {
            lookupds,
            topic: topic.to_owned(),
            interval: config.lookupd_poll_interval,
            jitter: config.lookupd_poll_jitter,
            grace: config.lookupd_grace_period,
            last_listed: HashMap::new(),
            seed,
        })
    }

    /// The delay before the next poll: the interval, less up to `jitter` of it at random.
    pub(crate) fn next_delay(&mut self) -> Duration {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let fraction = (self.seed % 10_000) as f64 / 10_000.0;
        self.interval.mul_f64(1.0 - self.jitter * fraction)
    }

    /// How many nsqlookupd are polled.
    pub(crate) fn len(&self) -> usize {
        self.lookupds.len()
    }

    /// Polls every nsqlookupd once.
    pub(crate) async fn poll(&mut self) -> Found {
        let topic = &self.topic;
        let replies =
            futures::future::join_all(self.lookupds.iter().map(|l| l.lookup(topic))).await;
        let now = Instant::now();
        let mut found = Found::default();
        let mut any_ok = false;
        for reply in replies {
            match reply {
                Ok(lookup) => {
                    any_ok = true;
                    for nsqd in &lookup.producers {
                        self.last_listed.insert(tcp_address(nsqd), now);
                    }
                }
                Err(err) => found.errors.push(err),
            }
        }
        if any_ok {
            let grace = self.grace;
            self.last_listed
                .retain(|_, seen| now.duration_since(*seen) <= grace);
        }
        found.wanted = self.last_listed.keys().cloned().collect();
        found.wanted.sort();
        found
    }

    /// Whether an error means the address is not nsqlookupd at all (nsqd's TCP or HTTP port).
    pub(crate) fn is_wrong_address(err: &LookupdError) -> bool {
        matches!(
            err,
            LookupdError::NotHttp { .. } | LookupdError::NsqdHttp { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_jitter() {
        assert_eq!(
            tcp_address(&Nsqd::new("10.0.0.1", 4150, 4151)),
            "10.0.0.1:4150"
        );
        assert_eq!(tcp_address(&Nsqd::new("::1", 4150, 4151)), "[::1]:4150");
        let config = ConsumerConfig {
            lookupd_poll_interval: Duration::from_secs(10),
            lookupd_poll_jitter: 0.3,
            ..ConsumerConfig::default()
        };
        let mut d = Discovery::new(&["127.0.0.1:4161".into()], "t", &config).unwrap();
        let delays: Vec<_> = (0..100).map(|_| d.next_delay()).collect();
        assert!(
            delays
                .iter()
                .all(|d| *d >= Duration::from_secs(7) && *d <= Duration::from_secs(10))
        );
        assert!(delays.windows(2).any(|w| w[0] != w[1]), "spread at random");
    }
}
