//! Finding and killing nsqd and nsqlookupd processes that a test run left behind.
//!
//! The `Nsqd` and `Nsqlookupd` harnesses in `nsq-test-support` write
//! `<root>/target/nsqd/pids/<pid>` when they start their process and remove it when they stop
//! it. A file that is still there after the tests belongs to a process nobody stopped, for
//! example because a test process aborted. Its contents are `key=value` lines:
//!
//! ```text
//! pid=4242
//! owner=4200
//! data_path=/tmp/nsqd-test-Ab12Cd
//! ```
//!
//! An nsqlookupd has no data directory; its record has `marker=<arg>` instead, an argument of
//! its command line that no other process has. Either one guards against a recycled pid.
//!
//! `owner` is the test process that started the server. A process whose owner is still alive
//! belongs to a test run that is still going (another `cargo xtask test`, say) and is left
//! alone.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::cmd;
use crate::workspace_root;

/// Directory name prefix of the harness's data directories; only such directories are removed.
const DATA_DIR_PREFIX: &str = "nsqd-test-";

/// What a clean-up found.
#[derive(Debug, Default)]
pub(crate) struct CleanUp {
    /// Server processes that were killed.
    pub(crate) killed: Vec<u32>,
    /// Server processes that could not be killed.
    pub(crate) survivors: Vec<u32>,
    /// Server processes left alone because the test process that started them is still running.
    pub(crate) still_owned: Vec<u32>,
    /// Pid files whose process had already gone.
    pub(crate) stale_files: usize,
}

/// Kills every nsqd and nsqlookupd recorded in the pid directory whose owning test process has
/// exited.
pub(crate) fn clean_up() -> CleanUp {
    let mut report = CleanUp::default();
    let dir = pid_dir();
    let Ok(entries) = fs::read_dir(&dir) else {
        // No directory: no nsqd was ever started through the harness.
        return report;
    };
    for entry in entries.flatten() {
        let file = entry.path();
        let Some(pid) = file
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        let record = Record::read(&file);
        if !is_our_server(pid, &record) {
            // Gone already (or the pid now belongs to something else).
            report.stale_files += 1;
            if !record.owner.is_some_and(is_alive) {
                remove_data_dir(record.data_path.as_deref());
            }
            let _ = fs::remove_file(&file);
            continue;
        }
        if record.owner.is_some_and(is_alive) {
            report.still_owned.push(pid);
            continue;
        }
        eprintln!(
            "killing leftover server process (pid {pid}, data dir {})",
            record
                .data_path
                .as_deref()
                .map_or_else(|| "none".into(), |path| path.display().to_string())
        );
        if kill(pid) {
            report.killed.push(pid);
            remove_data_dir(record.data_path.as_deref());
            let _ = fs::remove_file(&file);
        } else {
            report.survivors.push(pid);
        }
    }
    report
}

/// `<root>/target/nsqd/pids`.
pub(crate) fn pid_dir() -> PathBuf {
    workspace_root().join("target").join("nsqd").join("pids")
}

/// The parsed contents of one pid file; missing fields stay `None`.
#[derive(Debug, Default)]
struct Record {
    owner: Option<u32>,
    data_path: Option<PathBuf>,
    marker: Option<String>,
}

impl Record {
    fn read(file: &Path) -> Self {
        let mut record = Self::default();
        let Ok(text) = fs::read_to_string(file) else {
            return record;
        };
        for line in text.lines() {
            match line.split_once('=') {
                Some(("owner", value)) => record.owner = value.trim().parse().ok(),
                Some(("data_path", value)) => record.data_path = Some(PathBuf::from(value)),
                Some(("marker", value)) => record.marker = Some(value.to_owned()),
                _ => {}
            }
        }
        record
    }
}

/// Whether `pid` is a live nsqd or nsqlookupd, started with the record's data path and marker
/// when those are known. Matching them guards against a recycled pid.
fn is_our_server(pid: u32, record: &Record) -> bool {
    let Some(command_line) = command_line(pid) else {
        return false;
    };
    if !command_line
        .iter()
        .any(|arg| arg.contains("nsqd") || arg.contains("nsqlookupd"))
    {
        return false;
    }
    if let Some(path) = &record.data_path {
        let expected = format!("--data-path={}", path.display());
        if !command_line.contains(&expected) {
            return false;
        }
    }
    match &record.marker {
        // `ps` splits the command line at spaces, so compare without surrounding blanks.
        Some(marker) => command_line.iter().any(|arg| arg.trim() == marker.trim()),
        None => true,
    }
}

/// The arguments of a live, non-zombie process.
fn command_line(pid: u32) -> Option<Vec<String>> {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if Path::new("/proc/self").exists() {
        let raw = fs::read(proc_dir.join("cmdline")).ok()?;
        // A zombie has an empty command line.
        if raw.is_empty() {
            return None;
        }
        let args = raw
            .split(|&byte| byte == 0)
            .filter(|arg| !arg.is_empty())
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect();
        return Some(args);
    }
    // No procfs (macOS, BSD): ask ps.
    let output = cmd::output(Command::new("ps").args(["-o", "command=", "-p", &pid.to_string()]))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let text = text.trim();
    (output.status.success() && !text.is_empty())
        .then(|| text.split_whitespace().map(str::to_owned).collect())
}

fn is_alive(pid: u32) -> bool {
    if Path::new("/proc/self").exists() {
        // Field 3 of /proc/<pid>/stat is the state; `Z` is a zombie, which no longer runs.
        return fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z")
        });
    }
    cmd::succeeds(Command::new("kill").args(["-0", &pid.to_string()]))
}

/// Sends SIGKILL and waits up to five seconds for the process to disappear.
fn kill(pid: u32) -> bool {
    let _ = cmd::output(Command::new("kill").args(["-KILL", &pid.to_string()]));
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !is_alive(pid) {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    !is_alive(pid)
}

fn remove_data_dir(path: Option<&Path>) {
    let Some(path) = path else { return };
    let ours = path.is_absolute()
        && path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with(DATA_DIR_PREFIX));
    if ours && path.is_dir() {
        let _ = fs::remove_dir_all(path);
    }
}

#[cfg(test)]
mod tests {
    use std::process;

    use super::*;

    #[test]
    fn reads_the_record_the_harness_writes() {
        let file = std::env::temp_dir().join(format!("xtask-pid-record-{}", process::id()));
        fs::write(&file, "pid=42\nowner=7\ndata_path=/tmp/nsqd-test-x\n").unwrap();
        let record = Record::read(&file);
        assert_eq!(record.owner, Some(7));
        assert_eq!(record.data_path, Some(PathBuf::from("/tmp/nsqd-test-x")));
        assert_eq!(record.marker, None);

        fs::write(&file, "pid=43\nowner=8\nmarker=--log-prefix=[x-1] \n").unwrap();
        let record = Record::read(&file);
        fs::remove_file(&file).unwrap();
        assert_eq!(record.owner, Some(8));
        assert_eq!(record.data_path, None);
        assert_eq!(record.marker.as_deref(), Some("--log-prefix=[x-1] "));
        assert!(Record::read(&file).owner.is_none());
    }

    #[test]
    fn this_process_is_alive_but_not_a_server() {
        assert!(is_alive(process::id()));
        let record = Record {
            data_path: Some(PathBuf::from("/tmp/nsqd-test-x")),
            ..Record::default()
        };
        assert!(!is_our_server(process::id(), &record));
        assert!(!is_alive(u32::MAX - 1));
    }

    #[test]
    fn only_harness_data_dirs_are_removed() {
        let keep = std::env::temp_dir().join(format!("xtask-keep-{}", process::id()));
        fs::create_dir_all(&keep).unwrap();
        remove_data_dir(Some(&keep));
        assert!(keep.is_dir());
        fs::remove_dir(&keep).unwrap();

        let harness = std::env::temp_dir().join(format!("{DATA_DIR_PREFIX}{}", process::id()));
        fs::create_dir_all(&harness).unwrap();
        remove_data_dir(Some(&harness));
        assert!(!harness.exists());
    }
}
