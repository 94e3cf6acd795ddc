//! Locating the nsq v1.3.0 commands for the tests. The search itself lives in `tools/find.rs`,
//! which `cargo xtask nsqd` includes too.

mod find;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use find::NsqTool;

impl NsqTool {
    /// The binary to run. The search runs once per process and command.
    ///
    /// It finds the binary the same way `cargo xtask nsqd` does: the command's environment
    /// variable, then `<workspace>/target/nsqd/bin`, then `PATH`, skipping any candidate that is
    /// not v1.3.0. `cargo xtask test` installs all of them and sets the variables.
    ///
    /// ```no_run
    /// use std::process::Command;
    /// use nsq_test_support::NsqTool;
    ///
    /// let status = Command::new(NsqTool::NsqTail.path()).arg("--version").status().unwrap();
    /// assert!(status.success());
    /// ```
    ///
    /// # Panics
    ///
    /// When no candidate is the v1.3.0 release of this command; the message says how to get one.
    pub fn path(self) -> PathBuf {
        static FOUND: [OnceLock<Result<PathBuf, String>>; NsqTool::ALL.len()] =
            [const { OnceLock::new() }; NsqTool::ALL.len()];
        let slot = &FOUND[Self::ALL.iter().position(|&tool| tool == self).unwrap_or(0)];
        match slot.get_or_init(|| locate(self)) {
            Ok(path) => path.clone(),
            Err(message) => panic!("{message}"),
        }
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

fn locate(tool: NsqTool) -> Result<PathBuf, String> {
    let search = find::search(tool, &workspace_root());
    if let Some(path) = search.found {
        return Ok(path);
    }
    let not_found = format!(
        "{name} {version} not found: run `cargo xtask nsqd` (or set {var}=/path/to/{name})",
        name = tool.name(),
        version = find::VERSION,
        var = tool.env_var()
    );
    if search.rejected.is_empty() {
        return Err(not_found);
    }
    let rejected: Vec<String> = search
        .rejected
        .iter()
        .map(|(candidate, reason)| {
            format!(
                "  {} (from {}): {reason}",
                candidate.path.display(),
                candidate.origin
            )
        })
        .collect();
    Err(format!("{not_found}\nrejected:\n{}", rejected.join("\n")))
}
