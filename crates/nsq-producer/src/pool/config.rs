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

impl Strategy {
    /// How long a node that came back must stay up before it is preferred again, for
    /// `failover` given by name without `fail_back_after`.
    pub const DEFAULT_FAIL_BACK_AFTER: Duration = Duration::from_secs(30);
    /// How many nodes get each message, for `fan-out` given by name without `copies`.
    pub const DEFAULT_COPIES: usize = 2;

    /// The strategy's name: `round-robin`, `failover`, `least-outstanding` or `fan-out`, as
    /// [`Display`](std::fmt::Display) writes it and [`FromStr`](std::str::FromStr) reads it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RoundRobin => "round-robin",
            Self::Failover { .. } => "failover",
            Self::LeastOutstanding => "least-outstanding",
            Self::FanOut { .. } => "fan-out",
        }
    }
}

/// Writes the strategy's [`name`](Strategy::name); its parameter (`fail_back_after`, `copies`)
/// is not written.
impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Reads a strategy's name: `round-robin`, `failover`, `least-outstanding` or `fan-out` (case
/// and `_` for `-` do not matter). `failover` waits
/// [`DEFAULT_FAIL_BACK_AFTER`](Strategy::DEFAULT_FAIL_BACK_AFTER) to fail back and `fan-out`
/// makes [`DEFAULT_COPIES`](Strategy::DEFAULT_COPIES) copies; by name, a pool's
/// `fail_back_after` and `copies` options set them ([`PoolConfig::set`]).
///
/// ```
/// use nsq_producer::Strategy;
///
/// let strategy: Strategy = "least-outstanding".parse().unwrap();
/// assert_eq!(strategy, Strategy::LeastOutstanding);
/// assert_eq!(strategy.to_string(), "least-outstanding");
/// assert!("least-loaded".parse::<Strategy>().is_err());
/// ```
impl std::str::FromStr for Strategy {
    type Err = nsq_conn::ConfigError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "round-robin" => Ok(Self::RoundRobin),
            "failover" => Ok(Self::Failover {
                fail_back_after: Self::DEFAULT_FAIL_BACK_AFTER,
            }),
            "least-outstanding" => Ok(Self::LeastOutstanding),
            "fan-out" => Ok(Self::FanOut {
                copies: Self::DEFAULT_COPIES,
            }),
            _ => Err(nsq_conn::ConfigError::InvalidValue {
                option: "strategy",
                value: format!("{text:?}"),
                expected: "round-robin, failover, least-outstanding or fan-out",
            }),
        }
    }
}

/// Reads a strategy's name, as [`FromStr`](std::str::FromStr) does.
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> serde::Deserialize<'de> for Strategy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// The configuration of a [`Pool`](crate::Pool).
///
/// Start from [`PoolConfig::new`] and the builder methods, or set options by name with
/// [`set`](Self::set): the pool's own (`strategy`, `copies`, `lookupd`, `max_attempts`, ...)
/// and every option of [`ProducerConfig::set`]. With the `serde` feature it also deserializes
/// from one map of those names.
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
    /// When a connected node counts as slow, and gets no new publishes. Each node measures its
    /// nsqd's pace (the time spent waiting for replies per request acknowledged, over about a
    /// second) and the longest it recently went without a reply while requests were
    /// outstanding. While another node is up, a node with a request outstanding is slow when it
    /// has answered nothing for longer than `slow_after` and 4 times that longest silence (a
    /// frozen nsqd), or when its pace is [`slow_factor`](Self::slow_factor) times the fastest
    /// node's or more and its oldest request has waited longer than `slow_after` (an nsqd far
    /// slower than the others, e.g. stuck on its disk).
    ///
    /// A slow node hands back what it has not written, to go to the other nodes; what it has
    /// written ends on its own deadline (`TimedOut`, or `Unknown` if the connection is then
    /// dropped after the stall grace). It gets publishes again once it has answered everything
    /// written to it; a node judged far slower again soon after waits longer each time, from
    /// 100 ms doubling up to 2 s. `None`: never; a node is then out of rotation only while its
    /// connection is down. Default: 20 ms.
    pub slow_after: Option<Duration>,
    /// See [`slow_after`](Self::slow_after): how many times the fastest node's pace a node's
    /// pace must be to count as slow. At least 1. Default: 10.
    pub slow_factor: u32,
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
    /// `copies` and `fail_back_after` as set by name, for the strategy set by name in any
    /// order.
    pub(super) by_name: Parameters,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            producer: ProducerConfig::default(),
            strategy: Strategy::default(),
            max_attempts: 3,
            retry_unknown: false,
            retry_budget: RetryBudget::default(),
            slow_after: Some(Duration::from_millis(20)),
            slow_factor: 10,
            #[cfg(feature = "lookupd")]
            lookupd: Vec::new(),
            #[cfg(feature = "lookupd")]
            lookupd_poll_interval: Duration::from_secs(30),
            #[cfg(feature = "lookupd")]
            lookupd_grace_period: Duration::from_secs(60),
            by_name: Parameters::default(),
        }
    }
}

impl PoolConfig {
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

    /// Sets when a node counts as slow (see [`slow_after`](Self::slow_after)); `None` turns the
    /// judgement off.
    pub fn slow_after(mut self, slow_after: Option<Duration>) -> Self {
        self.slow_after = slow_after;
        self
    }

    /// Sets how many times slower than the fastest node a node must be to count as slow (see
    /// [`slow_factor`](Self::slow_factor)).
    pub fn slow_factor(mut self, slow_factor: u32) -> Self {
        self.slow_factor = slow_factor;
        self
    }

    /// Sets the number of nodes one publish may be queued on.
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }
}

/// `copies` and `fail_back_after` as set by name: they parameterize the strategy set by name,
/// whichever is given first.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Parameters {
    pub(super) copies: Option<usize>,
    pub(super) fail_back_after: Option<Duration>,
}

impl Parameters {
    /// `strategy` with the parameters set by name, or its own.
    pub(super) fn apply(self, strategy: Strategy) -> Strategy {
        match strategy {
            Strategy::FanOut { copies } => Strategy::FanOut {
                copies: self.copies.unwrap_or(copies),
            },
            Strategy::Failover { fail_back_after } => Strategy::Failover {
                fail_back_after: self.fail_back_after.unwrap_or(fail_back_after),
            },
            other => other,
        }
    }
}
