//! Cases j, j0 and l: what the suite computes from a failover run's acknowledgements per
//! millisecond, the same way for every client.
//!
//! Time is cut into 100 ms windows aligned on the kill (the first window after the kill starts
//! at the kill, to the millisecond). The **pre-kill rate** is the mean count of the whole
//! windows before the kill, the window that holds the first 100 ms of the run left out. The
//! **failover gap** is the time from the kill to the start of the first window after it whose
//! count is at least 90% of the pre-kill rate: 0 ms when the first 100 ms after the kill already
//! had 90% of the usual acknowledgements. The **pause** is the longest stretch of milliseconds
//! without any acknowledgement that starts within the first second after the kill, and the
//! **lowest window** the smallest count among the first ten windows after it, as a share of the
//! pre-kill rate. In j0 nothing is killed and the same figures are taken at the moment the kill
//! would have been sent: they show what noise alone gives.
//!
//! In l the node is stopped (SIGSTOP) instead of killed, and the same figures are taken around
//! the stop, except that the gap ends at the first window at 80% of the pre-stop rate: the
//! time until the two other nodes carry the load.

use serde::Serialize;

/// The width of a window.
pub(crate) const WINDOW_MS: usize = 100;

/// The share of the pre-kill rate a window must reach to end the gap.
pub(crate) const RECOVERED: f64 = 0.9;

/// In l, the share of the pre-stop rate a window must reach to end the gap.
pub(crate) const FROZEN_RECOVERED: f64 = 0.8;

/// How far after the kill the pause and the lowest window are looked for.
const AFTER_KILL_MS: usize = 1000;

/// What a failover run's acknowledgements show around the kill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Figures {
    /// Acknowledgements per second before the kill.
    pub(crate) pre_kill_rate: f64,
    /// From the kill to the first window at 90% (l: 80%) of the pre-kill rate; `None` when no
    /// whole window after the kill reached it.
    pub(crate) gap_ms: Option<u64>,
    /// The longest stretch without acknowledgements starting within a second of the kill.
    pub(crate) pause_ms: u64,
    /// The lowest of the first ten windows after the kill, as a share of the pre-kill rate.
    pub(crate) lowest_window: Option<f64>,
    /// Acknowledgements per window, the windows aligned on the kill; the first starts within
    /// the first 100 ms of the run.
    pub(crate) windows: Vec<u32>,
    /// The index in `windows` of the first window after the kill.
    pub(crate) kill_window: usize,
}

impl Figures {
    /// The figures of a run whose acknowledgements per millisecond are `acks_per_ms`, killed
    /// (or not) `kill_at_s` after the clock started, that lasted `seconds`; the gap ends at
    /// the first window at `recovered` of the pre-kill rate. `None` when there is not one whole
    /// window before the kill to compare with.
    pub(crate) fn of(
        acks_per_ms: &[u32],
        kill_at_s: f64,
        seconds: f64,
        recovered: f64,
    ) -> Option<Self> {
        if !(kill_at_s.is_finite() && seconds.is_finite()) || kill_at_s < 0.0 {
            return None;
        }
        // Millisecond k holds the acknowledgements of [k, k + 1) ms; the first whole
        // millisecond after the kill starts the first window after it.
        let kill = (kill_at_s * 1000.0).ceil() as usize;
        let end = ((seconds * 1000.0).floor() as usize).min(acks_per_ms.len());
        let first = kill % WINDOW_MS;
        let kill_window = kill / WINDOW_MS;
        let count = |from: usize| -> u32 { acks_per_ms[from..from + WINDOW_MS].iter().sum() };
        let windows: Vec<u32> = (0..)
            .map(|w| first + w * WINDOW_MS)
            .take_while(|from| from + WINDOW_MS <= end)
            .map(count)
            .collect();
        // Window 0 holds some of the run's first 100 ms: start-up, left out.
        if kill_window < 2 || windows.len() < kill_window {
            return None;
        }
        let before = &windows[1..kill_window];
        let mean = before.iter().map(|&c| f64::from(c)).sum::<f64>() / before.len() as f64;
        if mean <= 0.0 {
            return None;
        }
        let after = &windows[kill_window..];
        let gap_ms = after
            .iter()
            .position(|&c| f64::from(c) >= recovered * mean)
            .map(|k| (k * WINDOW_MS) as u64);
        let lowest_window = after
            .iter()
            .take(AFTER_KILL_MS / WINDOW_MS)
            .min()
            .map(|&c| f64::from(c) / mean);
        Some(Self {
            pre_kill_rate: mean * (1000 / WINDOW_MS) as f64,
            gap_ms,
            pause_ms: longest_pause(&acks_per_ms[..end], kill, AFTER_KILL_MS) as u64,
            lowest_window,
            windows,
            kill_window,
        })
    }
}

/// The longest run of zeros in `acks` that starts in `[from, from + within)`.
fn longest_pause(acks: &[u32], from: usize, within: usize) -> usize {
    let mut longest = 0;
    let mut start = from;
    while start < acks.len() && start < from + within {
        if acks[start] != 0 {
            start += 1;
            continue;
        }
        let len = acks[start..].iter().take_while(|&&c| c == 0).count();
        longest = longest.max(len);
        start += len;
    }
    longest
}

/// What the suite saw of a failover run besides the client's result.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FailoverRun {
    /// The figures around the kill (in j0, around the moment it would have been).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) figures: Option<Figures>,
    /// Each nsqd's topic depth after the run, in `--addrs` order.
    pub(crate) node_depths: Vec<Option<u64>>,
    /// From the client's start to the moment the suite saw the killed nsqd gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) killed_after_s: Option<f64>,
    /// From then to the restarted nsqd answering `/ping`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) restarted_after_kill_s: Option<f64>,
    /// Whether the restart was done while the client still ran.
    pub(crate) restarted_during_run: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rate` acknowledgements per millisecond for `ms` milliseconds.
    fn steady(rate: u32, ms: usize) -> Vec<u32> {
        vec![rate; ms]
    }

    #[test]
    fn a_steady_run_has_no_gap() {
        let acks = steady(10, 3000);
        let f = Figures::of(&acks, 1.0, 3.0, RECOVERED).unwrap();
        assert_eq!(f.pre_kill_rate, 10_000.0);
        assert_eq!(f.gap_ms, Some(0));
        assert_eq!(f.pause_ms, 0);
        assert_eq!(f.lowest_window, Some(1.0));
        assert_eq!(f.kill_window, 10);
        assert_eq!(f.windows.len(), 30);
    }

    #[test]
    fn the_gap_ends_at_the_first_window_back_at_ninety_percent() {
        let mut acks = steady(10, 4000);
        // Killed at 1000.4 ms: windows after it start at 1001. Nothing for 250 ms, then half
        // the rate for 100 ms, then one millisecond in twenty without acknowledgements.
        for a in &mut acks[1001..1251] {
            *a = 0;
        }
        for a in &mut acks[1251..1351] {
            *a = 5;
        }
        for (i, a) in acks[1351..].iter_mut().enumerate() {
            *a = if i % 20 == 0 { 0 } else { 10 };
        }
        let f = Figures::of(&acks, 1.0004, 4.0, RECOVERED).unwrap();
        assert_eq!(f.kill_window, 10);
        assert_eq!(f.windows[10..15], [0, 0, 250, 720, 950]);
        assert_eq!(f.gap_ms, Some(400));
        assert_eq!(f.pause_ms, 250);
        assert_eq!(f.lowest_window, Some(0.0));
    }

    #[test]
    fn a_rate_that_never_comes_back_has_no_gap_end() {
        let mut acks = steady(10, 2000);
        for a in &mut acks[1000..] {
            *a = 8;
        }
        let f = Figures::of(&acks, 1.0, 2.0, RECOVERED).unwrap();
        assert_eq!(f.gap_ms, None);
        assert_eq!(f.lowest_window, Some(0.8));
        // 80% is back, for l.
        let f = Figures::of(&acks, 1.0, 2.0, FROZEN_RECOVERED).unwrap();
        assert_eq!(f.gap_ms, Some(0));
    }

    #[test]
    fn the_first_window_and_partial_windows_are_left_out() {
        let mut acks = steady(10, 1050);
        // A slow start does not lower the pre-kill rate.
        acks[..50].fill(0);
        let f = Figures::of(&acks, 0.5, 1.05, RECOVERED).unwrap();
        assert_eq!(f.pre_kill_rate, 10_000.0);
        // 500..1000 holds five whole windows after the kill; 1000..1050 is not whole.
        assert_eq!(f.windows.len() - f.kill_window, 5);
        // Too early a kill leaves nothing to compare with.
        assert_eq!(Figures::of(&acks, 0.15, 1.05, RECOVERED), None);
        assert_eq!(Figures::of(&acks, f64::NAN, 1.05, RECOVERED), None);
    }

    #[test]
    fn pauses_start_within_a_second_of_the_kill() {
        let mut acks = steady(1, 5000);
        acks[1200..1230].fill(0);
        acks[2500..2900].fill(0);
        assert_eq!(longest_pause(&acks, 1000, 1000), 30);
        assert_eq!(longest_pause(&acks, 2000, 1000), 400);
        assert_eq!(longest_pause(&acks[..2600], 2000, 1000), 100);
    }
}
