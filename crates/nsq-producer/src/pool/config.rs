//! How a pool is built: its nodes, how it routes, and the producer configuration each node
//! gets.

use std::time::Duration;

use super::budget::RetryBudget;
use crate::config::ProducerConfig;

/// How a [`Pool`](crate::Pool) picks the node for each publish, among the nodes that are up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// Each node in turn (the default). The turn of a node that cannot take a publish (down, or
    /// the topic tombstoned there) goes to the nodes that can, each in turn, so that they share
    /// its traffic evenly.
    #[default]
    RoundRobin,
    /// Always the first node, in the order given, that is up. A node that comes back gets
    /// traffic again once it has been up for `fail_back_after`, so that a node flapping up and
    /// down does not pull traffic back and forth.
    Failover {
        /// How long a node that came back must stay up before it is preferred again.
        fail_back_after: Duration,
    },
    /// The less loaded of two nodes picked at random, load being the requests queued and in
    /// flight on each ("power of two choices"): a slow node gets less traffic without the pool
    /// having to measure latency.
    LeastOutstanding,
    /// Each message to `copies` distinct nodes (taken in turn), for durability: nsqd does not
    /// replicate. A publish is `Ok` when every copy is acknowledged; otherwise it fails with
    /// [`PublishError::Copies`](crate::PublishError::Copies), each node's outcome. It waits,
    /// until its deadline, for `copies` nodes to be up. A copy moves only to a node holding no
    /// other copy. Consumers read every copy: deduplicate downstream.
    FanOut {
        /// How many distinct nodes get each message (at least 1).
        copies: usize,
    },
}

/// The configuration of a [`Pool`](crate::Pool).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolConfig {
    /// The configuration of every node's producer: timeouts, queue sizes, TLS, AUTH. Its
    /// `publish_timeout` (or a publish's own deadline) bounds a publish across every node it
    /// is tried on.
    pub producer: ProducerConfig,
    /// How publishes are spread over the nodes that are up.
    pub strategy: Strategy,
    /// How many nodes one publish may be queued on, counting the first, when nodes go down
    /// before it is written or nsqd does not execute it. At least 1.
    pub max_attempts: u32,
    /// Also send again, on another node, publishes whose outcome is unknown (written, then the
    /// connection was lost before the reply, or part of an MPUB that nsqd answered
    /// `E_MPUB_FAILED`): at-least-once delivery, where a message may be stored twice. Off by
    /// default: such publishes end [`Unknown`](crate::PublishError::Unknown) or
    /// [`MaybeStored`](crate::PublishError::MaybeStored).
    pub retry_unknown: bool,
    /// How many written publishes may be sent again (see [`RetryBudget`]).
    pub retry_budget: RetryBudget,
    /// nsqlookupd HTTP addresses (`host:port`) whose `/nodes` are polled for nsqd nodes, in
    /// addition to the addresses given to the pool.
    #[cfg(feature = "lookupd")]
    #[cfg_attr(docsrs, doc(cfg(feature = "lookupd")))]
    pub lookupd: Vec<String>,
    /// How often the nsqlookupds are polled; each wait is shortened by a random part of up to a
    /// fifth, so that many pools started together do not poll in step.
    #[cfg(feature = "lookupd")]
    #[cfg_attr(docsrs, doc(cfg(feature = "lookupd")))]
    pub lookupd_poll_interval: Duration,
    /// How long a node found through nsqlookupd stays in the pool once no nsqlookupd lists it,
    /// while it is up (60 s by default). A node no longer listed leaves the pool when it has
    /// gone unlisted this long (as seen by the polls), or at once when it is down (its
    /// connection failed and it waits to redial). The wait is for an nsqlookupd that restarted:
    /// it lists no node until each nsqd registers again, which nsqd does at its next ping but
    /// one (nsqd pings every 15 s, so up to 30 s later); an nsqlookupd that lost some
    /// registrations lists fewer nodes the same way. A node that is connected and acknowledging
    /// is never removed because one poll did not list it, unless this is zero, which removes a
    /// node at the first poll that does not list it.
    #[cfg(feature = "lookupd")]
    #[cfg_attr(docsrs, doc(cfg(feature = "lookupd")))]
    pub lookupd_grace_period: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            producer: ProducerConfig::default(),
            strategy: Strategy::default(),
            max_attempts: 3,
            retry_unknown: false,
            retry_budget: RetryBudget::default(),
            #[cfg(feature = "lookupd")]
            lookupd: Vec::new(),
            #[cfg(feature = "lookupd")]
            lookupd_poll_interval: Duration::from_secs(30),
            #[cfg(feature = "lookupd")]
            lookupd_grace_period: Duration::from_secs(60),
        }
    }
}

impl PoolConfig {
    /// A pool configuration with `producer` for every node and the other settings at their
    /// defaults.
    pub fn new(producer: ProducerConfig) -> Self {
        Self {
            producer,
            ..Self::default()
        }
    }

    /// Sets the strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Discovers nodes through the nsqlookupds at `lookupd` (HTTP addresses).
    #[cfg(feature = "lookupd")]
    #[cfg_attr(docsrs, doc(cfg(feature = "lookupd")))]
    pub fn lookupd<I>(mut self, lookupd: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.lookupd = lookupd.into_iter().map(Into::into).collect();
        self
    }

    /// Sets how often the nsqlookupds are polled.
    #[cfg(feature = "lookupd")]
    #[cfg_attr(docsrs, doc(cfg(feature = "lookupd")))]
    pub fn lookupd_poll_interval(mut self, interval: Duration) -> Self {
        self.lookupd_poll_interval = interval;
        self
    }

    /// Sets how long a node that is up stays in the pool once no nsqlookupd lists it (see the
    /// field of the same name).
    #[cfg(feature = "lookupd")]
    #[cfg_attr(docsrs, doc(cfg(feature = "lookupd")))]
    pub fn lookupd_grace_period(mut self, grace: Duration) -> Self {
        self.lookupd_grace_period = grace;
        self
    }

    /// Sends publishes whose outcome is unknown again on another node (at least once, with
    /// possible duplicates).
    pub fn retry_unknown(mut self, retry_unknown: bool) -> Self {
        self.retry_unknown = retry_unknown;
        self
    }

    /// Sets the retry budget.
    pub fn retry_budget(mut self, budget: RetryBudget) -> Self {
        self.retry_budget = budget;
        self
    }

    /// Sets the number of nodes one publish may be queued on.
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }
}
