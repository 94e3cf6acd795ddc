//! CPU time of a process, from `/proc/<pid>/stat`, to see where a run's time goes.

use std::time::Duration;

/// Clock ticks per second of the `utime` and `stime` fields: `USER_HZ`, 100 on every Linux
/// architecture this runs on.
const TICKS_PER_SECOND: u64 = 100;

/// User plus system CPU time used so far by process `pid` (`"self"` for this one), threads that
/// have exited included; `None` where `/proc` is missing. The resolution is 10 ms.
pub(crate) fn process_cpu(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// User plus system CPU time used so far by this process's children that have ended and been
/// waited for (`cutime` and `cstime`); `None` where `/proc` is missing. The suite waits for
/// each client it runs, so the difference across a run is the client's CPU time.
pub(crate) fn children_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_fields(&stat, 13)
}

fn parse_stat(stat: &str) -> Option<Duration> {
    parse_fields(stat, 11)
}

/// The sum of two tick fields of a `stat` line, the first at `index` after the command name:
/// utime and stime (fields 14 and 15) at 11, cutime and cstime (16 and 17) at 13.
fn parse_fields(stat: &str, index: usize) -> Option<Duration> {
    // The command name is in parentheses and may hold spaces; the fields after it start with
    // the state (field 3).
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let first: u64 = fields.get(index)?.parse().ok()?;
    let second: u64 = fields.get(index + 1)?.parse().ok()?;
    Some(Duration::from_millis(
        (first + second) * 1000 / TICKS_PER_SECOND,
    ))
}

/// This process's CPU time from a starting point.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuClock(Option<Duration>);

impl CpuClock {
    /// Starts counting now.
    pub(crate) fn start() -> Self {
        Self(process_cpu("self"))
    }

    /// Seconds of CPU used since [`start`](Self::start).
    pub(crate) fn seconds(self) -> Option<f64> {
        let now = process_cpu("self")?;
        Some(now.checked_sub(self.0?)?.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime() {
        let stat = "1234 (nsq bench) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0";
        assert_eq!(parse_stat(stat), Some(Duration::from_millis(3250)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_fields(stat, 13), Some(Duration::from_millis(0)));
        let waited = "1 (x) S 1 1 1 0 -1 0 0 0 0 0 1 2 30 40 20 0 1 0";
        assert_eq!(parse_fields(waited, 13), Some(Duration::from_millis(700)));
    }
}
