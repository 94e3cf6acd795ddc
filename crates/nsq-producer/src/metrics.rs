//! Reporting through the `metrics` facade (the `metrics` feature).
//!
//! Every handle is registered once, when the producer is created, with the recorder installed
//! then, and carries the producer's `addr` label; the hot path only increments handles. The one
//! exception is the counter of rejections, whose `code` label is known only when nsqd answers:
//! it is registered at each rejection, which ends the connection anyway.
//!
//! The names, types and labels are listed in the crate documentation's "Metrics" section.

use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, SharedString, Unit};
use tokio::time::Instant;

use crate::error::{Lost, NotSentReason, PublishError};

const PUBLISHES: &str = "nsq_producer_publishes_total";
const MESSAGES: &str = "nsq_producer_messages_total";
const TIMED_OUT: &str = "nsq_producer_timed_out_total";
const QUEUED: &str = "nsq_producer_queued";
const IN_FLIGHT: &str = "nsq_producer_in_flight";
const DURATION: &str = "nsq_producer_publish_duration_seconds";
const BATCH_SIZE: &str = "nsq_producer_batch_size";
const BYTES_WRITTEN: &str = "nsq_producer_bytes_written_total";
const RECONNECTS: &str = "nsq_producer_reconnects_total";
const CONNECT_FAILURES: &str = "nsq_producer_connect_failures_total";

/// The `reason` label of a request that was not sent, in [`NotSentReason`]'s order.
const NOT_SENT_REASONS: [&str; 8] = [
    "aborted",
    "deadline_expired",
    "queue_full",
    "unavailable",
    "closed",
    "cancelled",
    "no_node_up",
    "too_few_nodes_up",
];

/// The `reason` label of a request whose outcome is unknown, in [`Lost`]'s order.
const UNKNOWN_REASONS: [&str; 3] = ["connection_lost", "mpub_failed", "closed"];

/// One producer's metric handles.
pub(crate) struct Metrics {
    addr: SharedString,
    acked: Counter,
    acked_messages: Counter,
    withdrawn: Counter,
    handed_back: Counter,
    not_sent: [Counter; NOT_SENT_REASONS.len()],
    unknown: [Counter; UNKNOWN_REASONS.len()],
    timed_out: Counter,
    queued: Gauge,
    in_flight: Gauge,
    batch_size: Histogram,
    bytes_written: Counter,
    reconnects: Counter,
    connect_failures: Counter,
    latency: Arc<Latency>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("addr", &self.addr).finish()
    }
}

/// The publish duration histograms, one per outcome the caller sees.
pub(crate) struct Latency {
    acked: Histogram,
    rejected: Histogram,
    not_sent: Histogram,
    unknown: Histogram,
    timed_out: Histogram,
}

impl Metrics {
    /// Describes the metrics and registers the handles of the producer for `addr`.
    pub(crate) fn new(addr: &str) -> Self {
        describe();
        let addr = SharedString::from(addr.to_owned());
        let a = || addr.clone();
        let publishes = |outcome: &'static str, reason: &'static str| metrics::counter!(PUBLISHES, "addr" => a(), "outcome" => outcome, "reason" => reason);
        let duration = |outcome: &'static str| metrics::histogram!(DURATION, "addr" => a(), "outcome" => outcome);
        Self {
            acked: metrics::counter!(PUBLISHES, "addr" => a(), "outcome" => "acked"),
            acked_messages: metrics::counter!(MESSAGES, "addr" => a(), "outcome" => "acked"),
            withdrawn: metrics::counter!(PUBLISHES, "addr" => a(), "outcome" => "withdrawn"),
            handed_back: metrics::counter!(PUBLISHES, "addr" => a(), "outcome" => "handed_back"),
            not_sent: NOT_SENT_REASONS.map(|reason| publishes("not_sent", reason)),
            unknown: UNKNOWN_REASONS.map(|reason| publishes("unknown", reason)),
            timed_out: metrics::counter!(TIMED_OUT, "addr" => a()),
            queued: metrics::gauge!(QUEUED, "addr" => a()),
            in_flight: metrics::gauge!(IN_FLIGHT, "addr" => a()),
            batch_size: metrics::histogram!(BATCH_SIZE, "addr" => a()),
            bytes_written: metrics::counter!(BYTES_WRITTEN, "addr" => a()),
            reconnects: metrics::counter!(RECONNECTS, "addr" => a()),
            connect_failures: metrics::counter!(CONNECT_FAILURES, "addr" => a()),
            latency: Arc::new(Latency {
                acked: duration("acked"),
                rejected: duration("rejected"),
                not_sent: duration("not_sent"),
                unknown: duration("unknown"),
                timed_out: duration("timed_out"),
            }),
            addr,
        }
    }

    pub(crate) fn acked(&self, requests: u64, messages: u64) {
        self.acked.increment(requests);
        self.acked_messages.increment(messages);
    }

    pub(crate) fn withdrawn(&self) {
        self.withdrawn.increment(1);
    }

    pub(crate) fn handed_back(&self, requests: u64) {
        self.handed_back.increment(requests);
    }

    pub(crate) fn rejected(&self, code: &str, requests: u64) {
        metrics::counter!(
            PUBLISHES,
            "addr" => self.addr.clone(),
            "outcome" => "rejected",
            "code" => code.to_owned()
        )
        .increment(requests);
    }

    pub(crate) fn not_sent(&self, reason: &NotSentReason, requests: u64) {
        let i = match reason {
            NotSentReason::Aborted => 0,
            NotSentReason::DeadlineExpired => 1,
            NotSentReason::QueueFull => 2,
            NotSentReason::Unavailable(_) => 3,
            NotSentReason::Closed => 4,
            NotSentReason::Cancelled => 5,
            NotSentReason::NoNodeUp(_) => 6,
            NotSentReason::TooFewNodesUp(_) => 7,
        };
        self.not_sent[i].increment(requests);
    }

    pub(crate) fn unknown(&self, lost: Lost, requests: u64) {
        self.unknown[lost as usize].increment(requests);
    }

    pub(crate) fn timed_out(&self, requests: u64) {
        self.timed_out.increment(requests);
    }

    /// Requests entering (positive) or leaving (negative) the queue.
    pub(crate) fn queued(&self, delta: f64) {
        self.queued.increment(delta);
    }

    /// Requests written (positive) or answered (negative).
    pub(crate) fn in_flight(&self, delta: f64) {
        self.in_flight.increment(delta);
    }

    pub(crate) fn batch(&self, requests: usize) {
        self.batch_size.record(requests as f64);
    }

    pub(crate) fn bytes_written(&self, bytes: u64) {
        self.bytes_written.increment(bytes);
    }

    pub(crate) fn reconnected(&self) {
        self.reconnects.increment(1);
    }

    pub(crate) fn connect_failed(&self) {
        self.connect_failures.increment(1);
    }

    /// A timer started now.
    pub(crate) fn timer(&self) -> Timer {
        Timer {
            started: Some((Instant::now(), self.latency.clone())),
        }
    }
}

/// Times one publish from its call to the result its caller gets.
#[derive(Clone)]
pub(crate) struct Timer {
    started: Option<(Instant, Arc<Latency>)>,
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timer")
            .field("started", &self.started.as_ref().map(|(at, _)| at))
            .finish()
    }
}

impl Timer {
    /// A timer that records nothing.
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        Self { started: None }
    }

    /// Records the time since the call under the outcome of `error` (`None` for success).
    /// A publish refused before it was queued ([`PublishError::Closed`], invalid input) is
    /// not recorded.
    pub(crate) fn record(&self, error: Option<&PublishError>) {
        let Some((started, latency)) = &self.started else {
            return;
        };
        let histogram = match error {
            None => &latency.acked,
            Some(PublishError::Rejected { .. }) => &latency.rejected,
            Some(PublishError::NotSent(_)) => &latency.not_sent,
            Some(PublishError::Unknown { .. } | PublishError::MaybeStored { .. }) => {
                &latency.unknown
            }
            Some(PublishError::TimedOut { .. }) => &latency.timed_out,
            // Each copy of a fan-out publish is timed on its own node.
            Some(
                PublishError::Closed(_)
                | PublishError::Invalid(_)
                | PublishError::InvalidTopic(_)
                | PublishError::Copies(_),
            ) => {
                return;
            }
        };
        histogram.record(started.elapsed());
    }
}

fn describe() {
    metrics::describe_counter!(
        PUBLISHES,
        Unit::Count,
        "Publish requests by outcome on the wire (an MPUB is one request)"
    );
    metrics::describe_counter!(
        MESSAGES,
        Unit::Count,
        "Messages nsqd acknowledged (each message of an MPUB counted)"
    );
    metrics::describe_counter!(
        TIMED_OUT,
        Unit::Count,
        "Written publish requests whose caller stopped waiting at the publish timeout"
    );
    metrics::describe_gauge!(
        QUEUED,
        Unit::Count,
        "Publish requests waiting in the queue, not written yet"
    );
    metrics::describe_gauge!(
        IN_FLIGHT,
        Unit::Count,
        "Publish requests written and waiting for nsqd's reply"
    );
    metrics::describe_histogram!(
        DURATION,
        Unit::Seconds,
        "Time from a publish call to the result its caller gets"
    );
    metrics::describe_histogram!(
        BATCH_SIZE,
        Unit::Count,
        "Publishes per command written by automatic batching (1 for a lone PUB)"
    );
    metrics::describe_counter!(
        BYTES_WRITTEN,
        Unit::Bytes,
        "Command bytes handed to the connection, before TLS or compression"
    );
    metrics::describe_counter!(
        RECONNECTS,
        Unit::Count,
        "Successful connections after the first"
    );
    metrics::describe_counter!(
        CONNECT_FAILURES,
        Unit::Count,
        "Connection attempts that failed (the dial, the handshake, TLS or AUTH)"
    );
}
