//! Locating the nsq v1.3.0 commands: for each, its environment variable (`NSQD`, `NSQLOOKUPD`,
//! `TO_NSQ`, `NSQ_TAIL`), then `<workspace>/target/nsqd/bin/<name>` (where `cargo xtask nsqd`
//! installs them), then `<name>` on `PATH`.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The release the tests are written against.
const VERSION: &str = "v1.3.0";

/// The Go module that holds every command.
const MODULE: &str = "github.com/nsqio/nsq";

/// A command of nsq v1.3.0 that the tests run.
///
/// [`path`](Self::path) finds the binary the same way `cargo xtask nsqd` does: the command's
/// environment variable, then `<workspace>/target/nsqd/bin`, then `PATH`, skipping any candidate
/// that is not v1.3.0. `cargo xtask test` installs all of them and sets the variables.
///
/// ```no_run
/// use std::process::Command;
/// use nsq_test_support::NsqTool;
///
/// let status = Command::new(NsqTool::NsqTail.path()).arg("--version").status().unwrap();
/// assert!(status.success());
/// ```
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
}

impl NsqTool {
    /// The binary's name, e.g. `nsqlookupd`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Nsqd => "nsqd",
            Self::Nsqlookupd => "nsqlookupd",
            Self::ToNsq => "to_nsq",
            Self::NsqTail => "nsq_tail",
        }
    }

    /// The environment variable that may point at the binary: `NSQD`, `NSQLOOKUPD`, `TO_NSQ` or
    /// `NSQ_TAIL`.
    pub const fn env_var(self) -> &'static str {
        match self {
            Self::Nsqd => "NSQD",
            Self::Nsqlookupd => "NSQLOOKUPD",
            Self::ToNsq => "TO_NSQ",
            Self::NsqTail => "NSQ_TAIL",
        }
    }

    /// The binary to run. The search runs once per process and command.
    ///
    /// # Panics
    ///
    /// When no candidate is the v1.3.0 release of this command; the message says how to get one.
    pub fn path(self) -> PathBuf {
        static FOUND: [OnceLock<Result<PathBuf, String>>; 4] = [const { OnceLock::new() }; 4];
        let slot = match self {
            Self::Nsqd => &FOUND[0],
            Self::Nsqlookupd => &FOUND[1],
            Self::ToNsq => &FOUND[2],
            Self::NsqTail => &FOUND[3],
        };
        match slot.get_or_init(|| find(self)) {
            Ok(path) => path.clone(),
            Err(message) => panic!("{message}"),
        }
    }

    fn package(self) -> String {
        format!("{MODULE}/apps/{}", self.name())
    }
}

/// The workspace root, fixed at compile time.
pub(crate) fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .and_then(Path::parent)
        .unwrap_or(manifest_dir)
        .to_path_buf()
}

fn find(tool: NsqTool) -> Result<PathBuf, String> {
    let not_found = format!(
        "{name} {VERSION} not found: run `cargo xtask nsqd` (or set {var}=/path/to/{name})",
        name = tool.name(),
        var = tool.env_var()
    );
    let mut rejected = Vec::new();
    for candidate in candidates(tool) {
        match check_version(tool, &candidate) {
            Ok(()) => return Ok(candidate),
            Err(reason) => rejected.push(format!("  {}: {reason}", candidate.display())),
        }
    }
    if rejected.is_empty() {
        Err(not_found)
    } else {
        Err(format!("{not_found}\nrejected:\n{}", rejected.join("\n")))
    }
}

fn candidates(tool: NsqTool) -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = env::var_os(tool.env_var()).filter(|path| !path.is_empty()) {
        let path = PathBuf::from(path);
        // cargo runs tests from the package directory, not from where the variable was set; a
        // relative path most likely means the workspace root.
        let from_root = workspace_root().join(&path);
        if path.is_relative() && !path.is_file() && from_root.is_file() {
            candidates.push(from_root);
        } else {
            candidates.push(path);
        }
    }
    let exe = format!("{}{}", tool.name(), env::consts::EXE_SUFFIX);
    let local = workspace_root()
        .join("target")
        .join("nsqd")
        .join("bin")
        .join(&exe);
    if local.is_file() {
        candidates.push(local);
    }
    if let Some(path) = env::var_os("PATH") {
        candidates.extend(
            env::split_paths(&path)
                .filter(|dir| !dir.as_os_str().is_empty())
                .map(|dir| dir.join(&exe))
                .find(|candidate| candidate.is_file()),
        );
    }
    candidates
}

/// `<bin> --version` must print `<name> v1.3.0`. to_nsq has no such flag, so its embedded Go
/// build information (what `go version -m` shows) must name its package and nsq v1.3.0.
fn check_version(tool: NsqTool, path: &Path) -> Result<(), String> {
    if tool == NsqTool::ToNsq {
        let binary = fs::read(path).map_err(|err| format!("cannot read it ({err})"))?;
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
        .map_err(|err| format!("cannot run it ({err})"))?;
    // e.g. `nsqd v1.3.0 (built w/go1.26.8)`, `nsq_tail v1.3.0`
    let printed = String::from_utf8_lossy(&output.stdout);
    let mut words = printed.split_whitespace();
    if output.status.success() && words.next() == Some(tool.name()) && words.next() == Some(VERSION)
    {
        Ok(())
    } else {
        Err(format!(
            "`--version` printed {:?}, not {} {VERSION}",
            printed.trim(),
            tool.name()
        ))
    }
}

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
    fn names_and_variables() {
        assert_eq!(NsqTool::Nsqlookupd.name(), "nsqlookupd");
        assert_eq!(NsqTool::Nsqlookupd.env_var(), "NSQLOOKUPD");
        assert_eq!(NsqTool::ToNsq.env_var(), "TO_NSQ");
        assert_eq!(
            NsqTool::NsqTail.package(),
            "github.com/nsqio/nsq/apps/nsq_tail"
        );
    }

    #[test]
    fn build_information_must_name_the_package_and_the_release() {
        let pinned = b"path\tgithub.com/nsqio/nsq/apps/to_nsq\nmod\tnsqrs.local/x\t(devel)\t\n\
                       dep\tgithub.com/nsqio/nsq\tv1.3.0\th1:x=\n";
        assert!(built_from_release(pinned, NsqTool::ToNsq));
        let older =
            b"path\tgithub.com/nsqio/nsq/apps/to_nsq\nmod\tgithub.com/nsqio/nsq\tv1.2.1\t\n";
        assert!(!built_from_release(older, NsqTool::ToNsq));
        let other = b"path\tgithub.com/nsqio/nsq/apps/nsqd\nmod\tgithub.com/nsqio/nsq\tv1.3.0\t\n";
        assert!(!built_from_release(other, NsqTool::ToNsq));
    }
}
