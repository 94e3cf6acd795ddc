//! Locating the nsqd binary: `$NSQD`, then `<workspace>/target/nsqd/bin/nsqd` (where
//! `cargo xtask nsqd` installs it), then `nsqd` on `PATH`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The release the tests are written against.
const VERSION: &str = "v1.3.0";

const NOT_FOUND: &str = "nsqd v1.3.0 not found: run `cargo xtask nsqd` (or set NSQD=/path/to/nsqd)";

/// The nsqd binary to run. The search runs once per process.
///
/// # Panics
///
/// When no candidate is an nsqd v1.3.0; the message says how to get one.
pub(crate) fn nsqd_binary() -> PathBuf {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match FOUND.get_or_init(find) {
        Ok(path) => path.clone(),
        Err(message) => panic!("{message}"),
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

fn find() -> Result<PathBuf, String> {
    let mut rejected = Vec::new();
    for candidate in candidates() {
        match check_version(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(reason) => rejected.push(format!("  {}: {reason}", candidate.display())),
        }
    }
    if rejected.is_empty() {
        Err(NOT_FOUND.to_owned())
    } else {
        Err(format!("{NOT_FOUND}\nrejected:\n{}", rejected.join("\n")))
    }
}

fn candidates() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = env::var_os("NSQD").filter(|path| !path.is_empty()) {
        let path = PathBuf::from(path);
        // cargo runs tests from the package directory, not from where `NSQD` was set; a
        // relative path most likely means the workspace root.
        let from_root = workspace_root().join(&path);
        if path.is_relative() && !path.is_file() && from_root.is_file() {
            candidates.push(from_root);
        } else {
            candidates.push(path);
        }
    }
    let exe = format!("nsqd{}", env::consts::EXE_SUFFIX);
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

fn check_version(path: &Path) -> Result<(), String> {
    let output = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run it ({err})"))?;
    // e.g. `nsqd v1.3.0 (built w/go1.26.8)`
    let printed = String::from_utf8_lossy(&output.stdout);
    let mut words = printed.split_whitespace();
    if output.status.success() && words.next() == Some("nsqd") && words.next() == Some(VERSION) {
        Ok(())
    } else {
        Err(format!(
            "`--version` printed {:?}, not nsqd {VERSION}",
            printed.trim()
        ))
    }
}
