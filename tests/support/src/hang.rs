//! A guard that turns a hang into a test failure.

use std::future::Future;
use std::time::Duration;

/// How long any awaited step of a test may take before [`within`] fails it. It is never
/// asserted as a duration, only a bound on a hang.
///
/// Tests that pause tokio's clock rely on it too: with the clock paused, time only reaches the
/// guard when every task is stuck, so it is longer than every timer a scenario waits for.
pub const HANG: Duration = Duration::from_secs(60);

/// Awaits `future`, failing the test with `what` if it takes longer than [`HANG`].
///
/// ```
/// let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
/// let answer = runtime.block_on(nsq_test_support::within("the answer", async { 42 }));
/// assert_eq!(answer, 42);
/// ```
///
/// # Panics
///
/// When `future` is still pending after [`HANG`].
pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(HANG, future).await {
        Ok(output) => output,
        Err(_) => panic!("{what}: no result within {HANG:?}"),
    }
}
