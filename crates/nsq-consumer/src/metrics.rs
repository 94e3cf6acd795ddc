//! Reporting through the `metrics` facade (the `metrics` feature).
//!
//! Each connection registers its handles once, when it subscribes, with the recorder installed
//! then; they carry the `nsqd`, `topic` and `channel` labels. The hot path only increments
//! handles. The names are listed in the crate documentation's "Metrics" section.

use metrics::{Counter, Gauge, Unit};

use crate::stats::Event;

const MESSAGES: &str = "nsq_consumer_messages_total";
const REFUSED: &str = "nsq_consumer_answers_refused_total";
const CONNECTS: &str = "nsq_consumer_connects_total";
const DISCONNECTS: &str = "nsq_consumer_disconnects_total";
const RDY: &str = "nsq_consumer_rdy";
const IN_FLIGHT: &str = "nsq_consumer_in_flight";

/// The `outcome` label of [`MESSAGES`].
const OUTCOMES: [&str; 8] = [
    "received",
    "finished",
    "requeued",
    "dropped",
    "given_up",
    "requeued_by_drain",
    "lost_with_connection",
    "timed_out",
];

/// One connection's metric handles.
pub(crate) struct Meter {
    messages: [Counter; OUTCOMES.len()],
    fin_failed: Counter,
    req_failed: Counter,
    touch_failed: Counter,
    connects: Counter,
    disconnects: Counter,
    rdy: Gauge,
    in_flight: Gauge,
}

pub(crate) fn describe() {
    metrics::describe_counter!(MESSAGES, Unit::Count, "Messages by outcome");
    metrics::describe_counter!(
        REFUSED,
        Unit::Count,
        "FIN, REQ or TOUCH refused by nsqd, by code"
    );
    metrics::describe_counter!(CONNECTS, Unit::Count, "Connections subscribed");
    metrics::describe_counter!(DISCONNECTS, Unit::Count, "Connections closed or lost");
    metrics::describe_gauge!(RDY, Unit::Count, "The connection's RDY count");
    metrics::describe_gauge!(
        IN_FLIGHT,
        Unit::Count,
        "Messages delivered and not yet answered"
    );
}

impl Meter {
    pub(crate) fn new(nsqd: &str, topic: &str, channel: &str) -> Self {
        let labels = [
            ("nsqd", nsqd.to_owned()),
            ("topic", topic.to_owned()),
            ("channel", channel.to_owned()),
        ];
        let refused = |code: &'static str| {
            let mut l = labels.to_vec();
            l.push(("code", code.to_owned()));
            metrics::counter!(REFUSED, &l)
        };
        Self {
            messages: OUTCOMES.map(|outcome| {
                let mut l = labels.to_vec();
                l.push(("outcome", outcome.to_owned()));
                metrics::counter!(MESSAGES, &l)
            }),
            fin_failed: refused("E_FIN_FAILED"),
            req_failed: refused("E_REQ_FAILED"),
            touch_failed: refused("E_TOUCH_FAILED"),
            connects: metrics::counter!(CONNECTS, &labels),
            disconnects: metrics::counter!(DISCONNECTS, &labels),
            rdy: metrics::gauge!(RDY, &labels),
            in_flight: metrics::gauge!(IN_FLIGHT, &labels),
        }
    }

    pub(crate) fn count(&self, event: Event, n: u64) {
        let counter = match event {
            Event::Received => &self.messages[0],
            Event::Finished => &self.messages[1],
            Event::Requeued => &self.messages[2],
            Event::Dropped => &self.messages[3],
            Event::GivenUp => &self.messages[4],
            Event::RequeuedByDrain => &self.messages[5],
            Event::LostWithConnection => &self.messages[6],
            Event::TimedOut => &self.messages[7],
            Event::FinFailed => &self.fin_failed,
            Event::ReqFailed => &self.req_failed,
            Event::TouchFailed => &self.touch_failed,
            Event::Connect => &self.connects,
            Event::Disconnect => &self.disconnects,
            Event::Touched | Event::LateAnswer => return,
        };
        counter.increment(n);
    }

    pub(crate) fn rdy(&self, count: u32) {
        self.rdy.set(f64::from(count));
    }

    pub(crate) fn in_flight(&self, count: usize) {
        self.in_flight.set(count as f64);
    }

    /// The connection is gone: its gauges go back to zero.
    pub(crate) fn closed(&self) {
        self.rdy.set(0.0);
        self.in_flight.set(0.0);
    }
}
