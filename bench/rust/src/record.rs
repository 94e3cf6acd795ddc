//! The one JSON line every benchmark client prints, and the tally it is computed from.
//!
//! The Go client (`bench/go-nsq`) and the tokio-nsq client (`bench/tokio-nsq`) print the same
//! fields, so the runner reads every client alike.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The result of one client run of one case.
///
/// Absent numbers are left out of the JSON. A client that cannot do the case prints only
/// `client`, `case`, `n` and `unsupported` (the cell's text, for example
/// `"n/a (no batching)"`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct RunResult {
    pub(crate) client: String,
    pub(crate) case: String,
    /// Messages the run was asked to publish.
    pub(crate) n: u64,
    /// From the first publish to the last answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) seconds: Option<f64>,
    /// Acknowledged messages per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) msgs_per_sec: Option<f64>,
    /// Messages nsqd acknowledged.
    pub(crate) acked: u64,
    /// Messages published and acknowledged besides `acked`, outside the measurement (the
    /// warm-up of case g); nsqd holds them too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) uncounted_acked: Option<u64>,
    /// Messages whose publish failed.
    pub(crate) errors: u64,
    /// The run hit its time limit before publishing `n` messages.
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) truncated: bool,
    /// Latency percentiles, from the call to the acknowledgement, in microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) p50_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) p99_us: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) p999_us: Option<f64>,
    /// Why the client cannot do this case; the cell shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) unsupported: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) first_error: Option<String>,
    /// CPU time (user + system) the client process used while the clock ran, all threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cpu_s: Option<f64>,
    /// Case f: the process's peak resident set (VmHWM) in MiB, and its RSS before the burst.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) peak_rss_mib: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) baseline_rss_mib: Option<f64>,
    /// Cases m and n: the CPU time of the nsqd processes (`--nsqd-pids`) while the clock ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) nsqd_cpu_s: Option<f64>,
    /// Cases m and n: messages timed in the latency phase (the percentiles are theirs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) latency_n: Option<u64>,
    /// Case f: the producer's configured queue limit in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) queue_capacity_bytes: Option<u64>,
    /// Case g: heap allocations (and bytes) per message in the measured window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) allocs_per_msg: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) alloc_bytes_per_msg: Option<f64>,
    /// Case g: allocations per message of the benchmark loop alone, included in the above.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) harness_allocs_per_msg: Option<f64>,
    /// Cases h and i: calls that waited for room while nsqd was stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) waiting: Option<u64>,
    /// Cases h and i: waiting calls that returned per second, from nsqd's release to the
    /// return of the last one (`seconds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resolved_per_sec: Option<f64>,
    /// Failover cases (j, j0 and l): the final outcome of every message. `acked` counts the
    /// acknowledged ones; these the others, by kind, so that `errors` is their sum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) outcomes: Option<Outcomes>,
    /// Failover cases: acknowledgements per millisecond since the clock started (index = ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) acks_per_ms: Option<Vec<u32>>,
    /// Failover cases: seconds from the clock start to the kill (the moment the signal had been
    /// sent; in l, the SIGSTOP), or in j0, where nothing is killed, to the moment it would have
    /// been sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) kill_at_s: Option<f64>,
    /// Failover cases: whether the node was killed (j) or stopped (l), or not (j0).
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) killed: bool,
    /// Failover cases: the index (in `--addrs`) of the node killed in j, or stopped in l.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) kill_index: Option<usize>,
    /// Failover cases: messages each node acknowledged, in `--addrs` order, over the whole run
    /// and up to the kill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) node_acked: Option<Vec<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) node_acked_at_kill: Option<Vec<u64>>,
    /// Case j: seconds from the clock start to the first acknowledgement by the killed node
    /// more than a second after the kill, that is by the restarted nsqd; absent when there was
    /// none before the run ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) back_at_s: Option<f64>,
}

/// The final outcome of the messages of a failover run that were not acknowledged, with what
/// the callers saw on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Outcomes {
    /// The client cannot say whether nsqd stored the message (written, then the connection
    /// was lost before the answer, or no answer within the publish timeout):
    /// `PublishError::Unknown` or `PublishError::TimedOut` for the pool; for go-nsq,
    /// `ErrNotConnected` or the caller's timeout (case l) from every producer tried.
    pub(crate) unknown: u64,
    /// The message was never sent: `PublishError::NotSent` for the pool; for go-nsq, a failed
    /// connection from every producer tried.
    pub(crate) not_sent: u64,
    /// Any other error.
    pub(crate) other: u64,
    /// Messages the caller published again on another node after an error that does not say
    /// whether the first node stored them, and that were then acknowledged: they may be stored
    /// twice. go-nsq only (its callers retry on error); the pool never resends such a message.
    pub(crate) resent: u64,
    /// Failed attempts, by kind, including those followed by a successful retry.
    pub(crate) attempt_errors: std::collections::BTreeMap<String, u64>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl RunResult {
    /// A result for `client` running `case` with `n` messages, numbers still empty.
    pub(crate) fn new(client: &str, case: &str, n: u64) -> Self {
        Self {
            client: client.to_owned(),
            case: case.to_owned(),
            n,
            ..Self::default()
        }
    }

    /// The result of a client that cannot do the case.
    pub(crate) fn unsupported(client: &str, case: &str, n: u64, why: &str) -> Self {
        Self {
            unsupported: Some(why.to_owned()),
            ..Self::new(client, case, n)
        }
    }

    /// Fills in the throughput and latency numbers from `tally` over `elapsed`.
    pub(crate) fn fill(&mut self, tally: Tally, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        self.seconds = Some(seconds);
        self.msgs_per_sec = Some(tally.acked as f64 / seconds.max(f64::EPSILON));
        self.acked = tally.acked;
        self.errors = tally.errors;
        self.truncated = tally.truncated;
        self.first_error = tally.first_error;
        let mut latencies = tally.latencies_ns;
        if !latencies.is_empty() {
            latencies.sort_unstable();
            self.p50_us = Some(percentile_us(&latencies, 0.50));
            self.p99_us = Some(percentile_us(&latencies, 0.99));
            self.p999_us = Some(percentile_us(&latencies, 0.999));
        }
    }

    /// Prints the result as one JSON line on stdout.
    pub(crate) fn emit(&self) {
        println!(
            "{}",
            serde_json::to_string(self).expect("a run result serializes")
        );
    }
}

/// What one run, or one caller of a run, did.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) acked: u64,
    pub(crate) errors: u64,
    pub(crate) truncated: bool,
    pub(crate) first_error: Option<String>,
    /// One entry per publish call, in nanoseconds.
    pub(crate) latencies_ns: Vec<u64>,
}

impl Tally {
    /// A tally with room for `latencies` measurements, so that recording does not reallocate.
    pub(crate) fn with_capacity(latencies: usize) -> Self {
        Self {
            latencies_ns: Vec::with_capacity(latencies),
            ..Self::default()
        }
    }

    /// Counts `messages` as acknowledged or failed.
    pub(crate) fn record<E: std::fmt::Display>(&mut self, result: Result<(), E>, messages: u64) {
        match result {
            Ok(()) => self.acked += messages,
            Err(err) => {
                self.errors += messages;
                if self.first_error.is_none() {
                    self.first_error = Some(err.to_string());
                }
            }
        }
    }

    /// Records one latency.
    pub(crate) fn latency(&mut self, took: Duration) {
        self.latencies_ns
            .push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds `other`'s counts and latencies to this one.
    pub(crate) fn merge(&mut self, other: Self) {
        self.acked += other.acked;
        self.errors += other.errors;
        self.truncated |= other.truncated;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies_ns.extend(other.latencies_ns);
    }
}

/// The `q` quantile of sorted nanosecond values by the nearest-rank method, in microseconds.
pub(crate) fn percentile_us(sorted_ns: &[u64], q: f64) -> f64 {
    if sorted_ns.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted_ns.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted_ns.len()) - 1;
    sorted_ns[index] as f64 / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<u64> = (1..=1000).map(|v| v * 1000).collect();
        assert_eq!(percentile_us(&values, 0.5), 500.0);
        assert_eq!(percentile_us(&values, 0.99), 990.0);
        assert_eq!(percentile_us(&values, 0.999), 999.0);
        assert_eq!(percentile_us(&[7000], 0.999), 7.0);
        assert_eq!(percentile_us(&[], 0.5), 0.0);
    }

    #[test]
    fn reads_the_go_clients_line() {
        let line = r#"{"client":"go-nsq","case":"c","n":10,"seconds":0.5,"msgs_per_sec":20,"acked":10,"errors":0,"p50_us":1.5,"p99_us":2,"p999_us":3}"#;
        let result: RunResult = serde_json::from_str(line).unwrap();
        assert_eq!(result.client, "go-nsq");
        assert_eq!(result.msgs_per_sec, Some(20.0));
        assert_eq!(result.p999_us, Some(3.0));
        assert!(!result.truncated);
        let unsupported = r#"{"client":"go-nsq","case":"cstar","n":10,"acked":0,"errors":0,"unsupported":"n/a (x)"}"#;
        let result: RunResult = serde_json::from_str(unsupported).unwrap();
        assert_eq!(result.unsupported.as_deref(), Some("n/a (x)"));
        assert_eq!(result.seconds, None);
    }

    #[test]
    fn a_result_round_trips() {
        let mut result = RunResult::new("producer", "a", 3);
        let mut tally = Tally::default();
        tally.record::<String>(Ok(()), 2);
        tally.record(Err("boom"), 1);
        tally.latency(Duration::from_micros(10));
        result.fill(tally, Duration::from_secs(1));
        assert_eq!(result.acked, 2);
        assert_eq!(result.errors, 1);
        assert_eq!(result.first_error.as_deref(), Some("boom"));
        let line = serde_json::to_string(&result).unwrap();
        assert_eq!(serde_json::from_str::<RunResult>(&line).unwrap(), result);
    }
}
