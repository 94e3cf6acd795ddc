//! `nsq-bench rss`: case f, the peak resident memory of a process publishing a burst.
//!
//! One caller queues `n` messages with `publish_async` as fast as the producer takes them; a
//! second task awaits the results in order. The producer's bounded queue is what keeps memory
//! down: `publish_async` waits once `queue_capacity_bytes` of encoded requests are queued. The
//! peak is the kernel's high-water mark of the whole process (`VmHWM`), so it includes the
//! runtime, the binary and the result handles the collector holds.

use std::time::Instant;

use bytes::Bytes;
use nsq_producer::{ProducerConfig, Publish, Topic};
use tokio::sync::mpsc;

use crate::cpu::CpuClock;
use crate::flags::{ClientOptions, expired};
use crate::producer::{CLIENT, connect};
use crate::record::{RunResult, Tally};

/// Runs the burst and returns the result line with the memory numbers.
pub(crate) async fn run(options: &ClientOptions) -> Result<RunResult, String> {
    let config = ProducerConfig::default();
    let queue_bytes = config.queue_capacity_bytes as u64;
    let producer = connect(&options.addr, config).await?;
    let topic = Topic::new(options.topic.clone()).map_err(|e| e.to_string())?;
    let body = Bytes::from(vec![b'x'; options.size]);
    let baseline = status_kib("VmRSS")?;

    let (queued, mut answers) = mpsc::unbounded_channel::<Publish>();
    let collector = tokio::spawn(async move {
        let mut tally = Tally::default();
        while let Some(publish) = answers.recv().await {
            tally.record(publish.await, 1);
        }
        tally
    });
    let deadline = options.deadline();
    let cpu = CpuClock::start();
    let started = Instant::now();
    let mut refused = Tally::default();
    for _ in 0..options.n {
        if expired(deadline) {
            refused.truncated = true;
            break;
        }
        match producer.publish_async(&topic, body.clone()).await {
            Ok(publish) => {
                if queued.send(publish).is_err() {
                    break;
                }
            }
            Err(err) => refused.record(Err(err), 1),
        }
    }
    drop(queued);
    let mut tally = collector
        .await
        .map_err(|e| format!("collector task failed: {e}"))?;
    tally.merge(refused);
    let elapsed = started.elapsed();
    let cpu_s = cpu.seconds();
    producer.close().await;
    let peak = status_kib("VmHWM")?;

    let mut result = RunResult::new(CLIENT, "f", options.n);
    result.fill(tally, elapsed);
    result.cpu_s = cpu_s;
    result.peak_rss_mib = Some(peak as f64 / 1024.0);
    result.baseline_rss_mib = Some(baseline as f64 / 1024.0);
    result.queue_capacity_bytes = Some(queue_bytes);
    Ok(result)
}

/// A `kB` field of `/proc/self/status`, such as `VmRSS` or `VmHWM`.
pub(crate) fn status_kib(field: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("reading /proc/self/status (Linux only): {e}"))?;
    parse_status_kib(&status, field).ok_or_else(|| format!("/proc/self/status has no {field} line"))
}

fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::parse_status_kib;

    #[test]
    fn reads_kib_fields() {
        let status = "Name:\tnsq-bench\nVmHWM:\t   12345 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(12345));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(2048));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }
}
