//! `ConsumerHandle`: changes and watches a running consumer from anywhere.

use std::sync::Arc;

use tokio::sync::watch;

use crate::shared::Shared;
use crate::stats::{DrainReport, Stats};

/// Changes and watches a running consumer; cheap to clone.
#[derive(Clone)]
pub struct ConsumerHandle {
    shared: Arc<Shared>,
    report: watch::Receiver<Option<DrainReport>>,
}

impl ConsumerHandle {
    pub(crate) fn new(shared: Arc<Shared>, report: watch::Receiver<Option<DrainReport>>) -> Self {
        Self { shared, report }
    }

    /// Changes `max_in_flight` at once: the RDY counts are shared out again immediately, and a
    /// lower value is never exceeded, even while the changes are sent.
    pub fn set_max_in_flight(&self, max_in_flight: u32) {
        let mut state = self.shared.lock();
        state.planner.set_max_in_flight(max_in_flight);
        state.dispatch();
    }

    /// The current `max_in_flight`.
    pub fn max_in_flight(&self) -> u32 {
        self.shared.lock().planner.max_in_flight()
    }

    /// Whether some connection has at least 85 % of its RDY count in flight: messages arrive
    /// faster than they are answered, and raising `max_in_flight` (or handling faster) would
    /// help.
    pub fn is_starved(&self) -> bool {
        self.shared.lock().planner.is_starved()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Asks the consumer to stop and drain (see [`Consumer::drain`](crate::Consumer::drain)); returns at once.
    pub fn stop(&self) {
        self.shared.request_stop();
    }

    /// Whether a stop was asked for.
    pub fn is_stopping(&self) -> bool {
        self.shared.is_stopping()
    }

    /// Resolves once a stop has been asked for.
    pub async fn stopping(&self) {
        let mut stop = self.shared.stop.subscribe();
        let _ = stop.wait_for(|stopping| *stopping).await;
    }

    pub(crate) fn auto_response(&self) -> bool {
        self.shared.config.auto_response
    }

    pub(crate) fn drain_timeout(&self) -> std::time::Duration {
        self.shared.config.drain_timeout
    }

    /// Waits until the consumer has drained and returns the report.
    pub async fn wait_report(&self) -> DrainReport {
        let mut report = self.report.clone();
        match report.wait_for(Option::is_some).await {
            Ok(r) => r.clone().expect("waited for it"),
            // The coordinator's task is gone without a report: the runtime is shutting down.
            Err(_) => DrainReport::from_stats(&self.shared.stats(), false),
        }
    }
}
