//! `nsq-bench allocs`: case g, heap allocations per published message in steady state.
//!
//! The binary's global allocator counts calls while counting is switched on (one relaxed load
//! otherwise, so the other cases run at full speed in the same binary). The run publishes as in
//! case c (pipelined, at most `window` unanswered): a warm-up of `warmup` messages first, so
//! that buffers, the connection and the runtime have reached their working sizes, then `n`
//! counted messages. Every thread's allocations count, the producer's tasks and the
//! benchmark's own alike. The benchmark's own share is measured too, by running the same loop
//! around publishes that complete at once, and reported as `harness_allocs_per_msg`; it is
//! close to zero, as the loop reuses its buffers.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use bytes::Bytes;
use nsq_producer::{ProducerConfig, PublishError, Topic};

use crate::cpu::CpuClock;
use crate::flags::ClientOptions;
use crate::producer::{CLIENT, connect, pipeline, pipelined};
use crate::record::RunResult;

/// The system allocator, counting allocations while [`COUNTING`] is set.
pub(crate) struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed unchanged to `System`, which upholds the `GlobalAlloc`
// contract; the counters are plain atomics and never allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's guarantees for `layout` are those `System.alloc` needs.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: the caller's guarantees are those `System.realloc` needs.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// A growing `realloc` counts as an allocation, as it usually moves the block.
fn count(bytes: usize) {
    if COUNTING.load(Relaxed) {
        ALLOCATIONS.fetch_add(1, Relaxed);
        ALLOCATED_BYTES.fetch_add(bytes as u64, Relaxed);
    }
}

/// Allocations and bytes counted while `f` ran.
async fn counted<F: Future>(f: F) -> (F::Output, u64, u64) {
    ALLOCATIONS.store(0, Relaxed);
    ALLOCATED_BYTES.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    let output = f.await;
    COUNTING.store(false, Relaxed);
    (
        output,
        ALLOCATIONS.load(Relaxed),
        ALLOCATED_BYTES.load(Relaxed),
    )
}

/// Runs the warm-up and the counted window and returns the result line.
pub(crate) async fn run(options: &ClientOptions, warmup: u64) -> Result<RunResult, String> {
    let producer = connect(&options.addr, ProducerConfig::default()).await?;
    let topic = Topic::new(options.topic.clone()).map_err(|e| e.to_string())?;
    // A static body: cloning it is free, so the count is the producer's own.
    let body = Bytes::from_static(Vec::leak(vec![b'x'; options.size]));

    let warm = pipelined(&producer, &topic, &body, warmup, options.window, None).await;
    if warm.errors > 0 {
        return Err(format!(
            "{} of {warmup} warm-up publishes failed, first: {}",
            warm.errors,
            warm.first_error.unwrap_or_default()
        ));
    }
    // The same loop around publishes that are answered at once: what the benchmark itself
    // allocates, reported apart.
    let (_, harness_allocations, _) = counted(pipeline(options.n, options.window, None, || {
        std::future::ready(Ok::<_, PublishError>(std::future::ready(Ok(()))))
    }))
    .await;

    let cpu = CpuClock::start();
    let started = Instant::now();
    let (tally, allocations, bytes) = counted(pipelined(
        &producer,
        &topic,
        &body,
        options.n,
        options.window,
        None,
    ))
    .await;
    let elapsed = started.elapsed();
    let cpu_s = cpu.seconds();
    producer.close().await;
    let measured = tally.acked.max(1) as f64;
    let mut result = RunResult::new(CLIENT, "g", options.n);
    result.fill(tally, elapsed);
    result.cpu_s = cpu_s;
    result.uncounted_acked = Some(warm.acked);
    result.allocs_per_msg = Some(allocations as f64 / measured);
    result.alloc_bytes_per_msg = Some(bytes as f64 / measured);
    result.harness_allocs_per_msg = Some(harness_allocations as f64 / options.n.max(1) as f64);
    Ok(result)
}
