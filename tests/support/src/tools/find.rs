//! Where the nsq v1.3.0 commands are and whether a binary is that release.
//!
//! This file uses only the standard library: `xtask` includes it with `#[path]` (it must build
//! without the workspace's dependencies) and nsq-test-support includes it as a module, so
//! `cargo xtask nsqd` and the tests look in the same places in the same order and accept the
//! same binaries. For each command that order is its environment variable (`NSQD`,
//! `NSQLOOKUPD`, `TO_NSQ`, `NSQ_TAIL`, `NSQ_TO_NSQ`, `BENCH_READER`), then `<workspace>/target/nsqd/bin/<name>` (where
//! `cargo xtask nsqd` installs them), then `<name>` on `PATH`; a candidate that is not v1.3.0
//! is skipped.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The nsq release the tests are written against.
pub(crate) const VERSION: &str = "v1.3.0";

/// The Go module that holds every command.
pub(crate) const MODULE: &str = "github.com/nsqio/nsq";

/// A command of nsq v1.3.0 that the tests run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NsqTool {
    /// The NSQ daemon.
    Nsqd,
    /// The discovery service.
    Nsqlookupd,
    /// Publishes the lines of its standard input to a topic.
    ToNsq,
    /// Prints the messages of a topic to its standard output.
    NsqTail,
    /// Consumes a topic and publishes its messages again to another nsqd.
    NsqToNsq,
    /// nsq's consumer benchmark (`bench/bench_reader`): reads a channel over raw TCP.
    BenchReader,
}

impl NsqTool {
    /// Every command, in the order they are reported.
    pub const ALL: [Self; 6] = [
        Self::Nsqd,
        Self::Nsqlookupd,
        Self::ToNsq,
        Self::NsqTail,
        Self::NsqToNsq,
        Self::BenchReader,
    ];

    /// The binary's name, e.g. `nsqlookupd`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Nsqd => "nsqd",
            Self::Nsqlookupd => "nsqlookupd",
            Self::ToNsq => "to_nsq",
            Self::NsqTail => "nsq_tail",
            Self::NsqToNsq => "nsq_to_nsq",
            Self::BenchReader => "bench_reader",
        }
    }

    /// The environment variable that may point at the binary: `NSQD`, `NSQLOOKUPD`, `TO_NSQ`,
    /// `NSQ_TAIL`, `NSQ_TO_NSQ` or `BENCH_READER`.
    pub const fn env_var(self) -> &'static str {
        match self {
            Self::Nsqd => "NSQD",
            Self::Nsqlookupd => "NSQLOOKUPD",
            Self::ToNsq => "TO_NSQ",
            Self::NsqTail => "NSQ_TAIL",
            Self::NsqToNsq => "NSQ_TO_NSQ",
            Self::BenchReader => "BENCH_READER",
        }
    }

    /// The Go package of the command: `apps/<name>`, or `bench/bench_reader`.
    pub(crate) fn package(self) -> String {
        let dir = if self == Self::BenchReader {
            "bench"
        } else {
            "apps"
        };
        format!("{MODULE}/{dir}/{}", self.name())
    }

    /// Whether the binary prints its version with `--version`; to_nsq and bench_reader do not,
    /// and are recognised by the Go build information embedded in them.
    const fn has_version_flag(self) -> bool {
        !matches!(self, Self::ToNsq | Self::BenchReader)
    }

    /// The binary's file name on this platform.
    fn file_name(self) -> String {
        format!("{}{}", self.name(), env::consts::EXE_SUFFIX)
    }
}

/// `<root>/target/nsqd/bin`, where `cargo xtask nsqd` installs the binaries.
pub(crate) fn local_bin_dir(root: &Path) -> PathBuf {
    root.join("target").join("nsqd").join("bin")
}

/// `<root>/target/nsqd/bin/<name>`.
pub(crate) fn local_binary(root: &Path, tool: NsqTool) -> PathBuf {
    local_bin_dir(root).join(tool.file_name())
}

/// The first file called `name` (with the platform's executable suffix) in a directory of
/// `PATH`.
pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let file_name = format!("{name}{}", env::consts::EXE_SUFFIX);
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(&file_name))
        .find(|candidate| candidate.is_file())
}

/// A place a command may be, and where the search took it from.
#[derive(Debug)]
pub(crate) struct Candidate {
    /// `$NSQD`, `the project-local install` or `PATH`.
    pub(crate) origin: String,
    pub(crate) path: PathBuf,
}

/// What [`search`] came to: the first candidate that is the release, and those skipped before
/// it, each with the reason.
#[derive(Debug)]
pub(crate) struct Search {
    pub(crate) found: Option<PathBuf>,
    pub(crate) rejected: Vec<(Candidate, String)>,
}

/// Looks for `tool` in the workspace at `root`: its environment variable, then the project-local
/// install, then `PATH`, skipping each candidate that is not the v1.3.0 release.
pub(crate) fn search(tool: NsqTool, root: &Path) -> Search {
    let mut rejected = Vec::new();
    for candidate in candidates(tool, root) {
        match check_version(tool, &candidate.path) {
            Ok(()) => {
                return Search {
                    found: Some(candidate.path),
                    rejected,
                };
            }
            Err(reason) => rejected.push((candidate, reason)),
        }
    }
    Search {
        found: None,
        rejected,
    }
}

/// Every place `tool` may be, in the order they are tried.
fn candidates(tool: NsqTool, root: &Path) -> Vec<Candidate> {
    let mut candidates = Vec::new();
    if let Some(path) = env::var_os(tool.env_var()).filter(|path| !path.is_empty()) {
        let path = PathBuf::from(path);
        // cargo runs tests from the package directory, not from where the variable was set; a
        // relative path that names no file there most likely means the workspace root.
        let from_root = root.join(&path);
        let path = if path.is_relative() && !path.is_file() && from_root.is_file() {
            from_root
        } else {
            path
        };
        candidates.push(Candidate {
            origin: format!("${}", tool.env_var()),
            path,
        });
    }
    let local = local_binary(root, tool);
    if local.is_file() {
        candidates.push(Candidate {
            origin: "the project-local install".to_owned(),
            path: local,
        });
    }
    if let Some(path) = find_on_path(tool.name()) {
        candidates.push(Candidate {
            origin: "PATH".to_owned(),
            path,
        });
    }
    candidates
}

/// Checks that `path` is the pinned release of `tool`: `<bin> --version` must print
/// `<name> v1.3.0`; to_nsq and bench_reader have no such flag, so the Go build information
/// embedded in them (what `go version -m` shows) must name their package and nsq v1.3.0.
pub(crate) fn check_version(tool: NsqTool, path: &Path) -> Result<(), String> {
    if !path.is_file() {
        return Err("no such file".to_owned());
    }
    if !tool.has_version_flag() {
        let binary = fs::read(path).map_err(|err| format!("it could not be read ({err})"))?;
        return if built_from_release(&binary, tool) {
            Ok(())
        } else {
            Err(format!(
                "its Go build information does not name {} of {MODULE} {VERSION}",
                tool.package()
            ))
        };
    }
    let output = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("it could not be run ({err})"))?;
    // e.g. `nsqd v1.3.0 (built w/go1.26.8)`, `nsq_tail v1.3.0`.
    let printed = String::from_utf8_lossy(&output.stdout);
    let printed = printed.trim();
    let mut words = printed.split_whitespace();
    if output.status.success() && words.next() == Some(tool.name()) && words.next() == Some(VERSION)
    {
        Ok(())
    } else {
        Err(format!(
            "`--version` printed {printed:?}, but {} {VERSION} is required",
            tool.name()
        ))
    }
}

/// Whether the Go build information in `binary` says it is `tool`'s package built from the
/// pinned module version.
fn built_from_release(binary: &[u8], tool: NsqTool) -> bool {
    let path = format!("path\t{}\n", tool.package());
    // `mod` when built with `go install pkg@version`, `dep` when built in xtask/go/nsqd.
    let as_main = format!("mod\t{MODULE}\t{VERSION}\t");
    let as_dep = format!("dep\t{MODULE}\t{VERSION}\t");
    let contains = |needle: &str| {
        binary
            .windows(needle.len())
            .any(|window| window == needle.as_bytes())
    };
    contains(&path) && (contains(&as_main) || contains(&as_dep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_its_own_name_variable_and_package() {
        let names: Vec<&str> = NsqTool::ALL.iter().map(|tool| tool.name()).collect();
        assert_eq!(
            names,
            [
                "nsqd",
                "nsqlookupd",
                "to_nsq",
                "nsq_tail",
                "nsq_to_nsq",
                "bench_reader"
            ]
        );
        let vars: Vec<&str> = NsqTool::ALL.iter().map(|tool| tool.env_var()).collect();
        assert_eq!(
            vars,
            [
                "NSQD",
                "NSQLOOKUPD",
                "TO_NSQ",
                "NSQ_TAIL",
                "NSQ_TO_NSQ",
                "BENCH_READER"
            ]
        );
        assert_eq!(NsqTool::ToNsq.package(), "github.com/nsqio/nsq/apps/to_nsq");
        assert_eq!(
            NsqTool::BenchReader.package(),
            "github.com/nsqio/nsq/bench/bench_reader"
        );
        assert!(
            local_binary(Path::new("/w"), NsqTool::NsqTail).ends_with("target/nsqd/bin/nsq_tail")
        );
    }

    #[test]
    fn build_information_must_name_the_package_and_the_release() {
        let pinned =
            b"\0path\tgithub.com/nsqio/nsq/apps/to_nsq\nmod\tnsqrs.local/nsqd-build\t(devel)\t\n\
                       dep\tgithub.com/nsqio/nsq\tv1.3.0\th1:x=\n\0";
        assert!(built_from_release(pinned, NsqTool::ToNsq));
        let direct =
            b"path\tgithub.com/nsqio/nsq/apps/to_nsq\nmod\tgithub.com/nsqio/nsq\tv1.3.0\th1:x=\n";
        assert!(built_from_release(direct, NsqTool::ToNsq));
        let other_version =
            b"path\tgithub.com/nsqio/nsq/apps/to_nsq\nmod\tgithub.com/nsqio/nsq\tv1.2.1\th1:x=\n";
        assert!(!built_from_release(other_version, NsqTool::ToNsq));
        let other_command =
            b"path\tgithub.com/nsqio/nsq/apps/nsq_tail\nmod\tgithub.com/nsqio/nsq\tv1.3.0\th1:x=\n";
        assert!(!built_from_release(other_command, NsqTool::ToNsq));
        let reader = b"path\tgithub.com/nsqio/nsq/bench/bench_reader\n\
                       mod\tgithub.com/nsqio/nsq\tv1.3.0\th1:x=\n";
        assert!(built_from_release(reader, NsqTool::BenchReader));
        assert!(!built_from_release(reader, NsqTool::ToNsq));
    }

    #[test]
    fn a_missing_file_is_no_candidate() {
        let missing = Path::new("/nonexistent/nsqd");
        assert_eq!(
            check_version(NsqTool::Nsqd, missing),
            Err("no such file".to_owned())
        );
    }
}
