//! `<workspace>/target/nsqd/pids/<pid>`: a record of every running nsqd and nsqlookupd, so
//! that `cargo xtask test` can kill the ones a crashed test process left behind.

use std::fs;
use std::path::{Path, PathBuf};
use std::process;

use crate::tools::workspace_root;

/// What tells the process apart from another that got the same pid later: nsqd's data
/// directory, or for nsqlookupd an argument of its command line that no other process has.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Identity<'a> {
    DataPath(&'a Path),
    Marker(&'a str),
}

/// A pid file that exists while its process runs; removed on drop.
#[derive(Debug)]
pub(crate) struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes the record for `pid`. The harness still works without it, so a failure is only
    /// reported on stderr.
    pub(crate) fn create(pid: u32, identity: Identity<'_>) -> Option<Self> {
        let dir = pid_dir();
        let path = dir.join(pid.to_string());
        let contents = record(pid, process::id(), identity);
        match fs::create_dir_all(&dir).and_then(|()| fs::write(&path, contents)) {
            Ok(()) => Some(Self { path }),
            Err(err) => {
                eprintln!(
                    "nsq-test-support: cannot write pid file {}: {err}",
                    path.display()
                );
                None
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// `<workspace>/target/nsqd/pids`; `cargo xtask test` reads the same directory.
fn pid_dir() -> PathBuf {
    workspace_root().join("target").join("nsqd").join("pids")
}

/// The file's contents: `key=value` lines that xtask parses.
fn record(pid: u32, owner: u32, identity: Identity<'_>) -> String {
    match identity {
        Identity::DataPath(path) => {
            format!("pid={pid}\nowner={owner}\ndata_path={}\n", path.display())
        }
        Identity::Marker(marker) => format!("pid={pid}\nowner={owner}\nmarker={marker}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_format_is_what_xtask_reads() {
        assert_eq!(
            record(42, 7, Identity::DataPath(Path::new("/tmp/nsqd-test-x"))),
            "pid=42\nowner=7\ndata_path=/tmp/nsqd-test-x\n"
        );
        assert_eq!(
            record(43, 7, Identity::Marker("--log-prefix=[nsqlookupd-7-1] ")),
            "pid=43\nowner=7\nmarker=--log-prefix=[nsqlookupd-7-1] \n"
        );
    }

    #[test]
    fn file_lives_as_long_as_the_value() {
        // A pid no real process can have, so that xtask treats the file as stale if it stays.
        let pid = u32::MAX - process::id() % 1000;
        let file =
            PidFile::create(pid, Identity::DataPath(Path::new("/tmp/nsqd-test-unit"))).unwrap();
        let path = file.path.clone();
        assert!(fs::read_to_string(&path).unwrap().contains("owner="));
        drop(file);
        assert!(!path.exists());
    }
}
