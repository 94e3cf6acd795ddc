//! `cargo xtask nsqd`: find an nsqd v1.3.0 binary, or install one with Go.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{self, Failure};
use crate::workspace_root;

/// The nsqd release the tests are written against.
pub(crate) const VERSION: &str = "v1.3.0";

/// The Go package of the nsqd command.
const PACKAGE: &str = "github.com/nsqio/nsq/apps/nsqd";

/// What to do when no usable binary can be found or built; the start of a sentence.
const REMEDY: &str = "install Go (https://go.dev/dl/) and rerun `cargo xtask nsqd`, \
                      or set NSQD=/path/to/nsqd (version v1.3.0)";

/// Entry point of `cargo xtask nsqd`: prints the binary's absolute path and nothing else on
/// stdout, so that `NSQD=$(cargo xtask nsqd)` works.
pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    if let Some(arg) = args.first() {
        return Err(Failure::usage(format!(
            "`cargo xtask nsqd` takes no arguments, got `{arg}`"
        )));
    }
    let path = find_or_install()?;
    println!("{}", path.display());
    Ok(())
}

/// Finds nsqd v1.3.0 (`$NSQD`, then the project-local install, then `PATH`), installing it into
/// the project-local directory with Go when none of them qualifies.
pub(crate) fn find_or_install() -> Result<PathBuf, Failure> {
    match find() {
        Some(path) => Ok(path),
        None => install(),
    }
}

/// `<root>/target/nsqd/bin`, where `cargo xtask nsqd` installs the binary.
pub(crate) fn local_bin_dir() -> PathBuf {
    workspace_root().join("target").join("nsqd").join("bin")
}

fn find() -> Option<PathBuf> {
    candidates()
        .into_iter()
        .find_map(|(origin, path)| match check_version(&path) {
            Ok(()) => Some(absolute(&path)),
            Err(reason) => {
                eprintln!(
                    "warning: skipping {} (from {origin}): {reason}",
                    path.display()
                );
                None
            }
        })
}

/// Every place nsqd may be, in the order they are tried, each with where it came from.
fn candidates() -> Vec<(&'static str, PathBuf)> {
    let mut candidates = Vec::new();
    if let Some(path) = env::var_os("NSQD").filter(|path| !path.is_empty()) {
        candidates.push(("$NSQD", PathBuf::from(path)));
    }
    let local = local_binary();
    if local.is_file() {
        candidates.push(("the project-local install", local));
    }
    if let Some(path) = cmd::find_on_path("nsqd") {
        candidates.push(("PATH", path));
    }
    candidates
}

fn local_binary() -> PathBuf {
    local_bin_dir().join(format!("nsqd{}", env::consts::EXE_SUFFIX))
}

/// Runs `<bin> --version` and checks that it is the pinned release.
fn check_version(path: &Path) -> Result<(), String> {
    if !path.is_file() {
        return Err("no such file".to_owned());
    }
    let output = cmd::output(Command::new(path).arg("--version"))
        .ok_or_else(|| "it could not be run".to_owned())?;
    // nsqd prints e.g. `nsqd v1.3.0 (built w/go1.26.8)`.
    let printed = String::from_utf8_lossy(&output.stdout);
    let printed = printed.trim();
    let mut words = printed.split_whitespace();
    if output.status.success() && words.next() == Some("nsqd") && words.next() == Some(VERSION) {
        Ok(())
    } else {
        Err(format!(
            "`--version` printed {printed:?}, but nsqd {VERSION} is required"
        ))
    }
}

fn absolute(path: &Path) -> PathBuf {
    path.canonicalize()
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// Installs nsqd into [`local_bin_dir`] with `go install`.
fn install() -> Result<PathBuf, Failure> {
    if cmd::find_on_path("go").is_none() {
        return Err(Failure::new(format!(
            "nsqd {VERSION} was not found and Go is not on PATH: {REMEDY}"
        )));
    }
    let bin_dir = local_bin_dir();
    eprintln!(
        "installing nsqd {VERSION} with go into {} ...",
        bin_dir.display()
    );

    // The canonical way. It needs the Go proxy's version list, and `go install pkg@version`
    // ignores the `replace` in nsq's own go.mod, so it can fail where the fallback works.
    let mut direct = go_install(&bin_dir, &format!("{PACKAGE}@{VERSION}"));
    direct.current_dir(workspace_root());
    eprintln!("  {}", cmd::display(&direct));
    let installed = match cmd::output(&mut direct) {
        Some(output) if output.status.success() => true,
        Some(output) => {
            for line in String::from_utf8_lossy(&output.stderr).lines() {
                eprintln!("    {line}");
            }
            false
        }
        None => false,
    };

    if !installed || check_version(&local_binary()).is_err() {
        // xtask/go/nsqd pins nsq v1.3.0 with complete go.sum and repeats nsq's `replace`.
        let module_dir = workspace_root().join("xtask").join("go").join("nsqd");
        eprintln!(
            "that failed; building nsqd {VERSION} from the pinned module in {} ...",
            module_dir.display()
        );
        let mut pinned = go_install(&bin_dir, PACKAGE);
        pinned.current_dir(&module_dir);
        eprintln!("  (in {}) {}", module_dir.display(), cmd::display(&pinned));
        let status = cmd::status_stdout_to_stderr(&mut pinned)?;
        if !status.success() {
            return Err(Failure::new(format!(
                "building nsqd {VERSION} with go failed (see the go output above): fix the Go \
                 set-up and rerun `cargo xtask nsqd`, or set NSQD=/path/to/nsqd (version {VERSION})"
            )));
        }
    }

    let path = local_binary();
    check_version(&path).map_err(|reason| {
        Failure::new(format!(
            "the freshly installed {} is not usable ({reason}): {REMEDY}",
            path.display()
        ))
    })?;
    eprintln!("installed {}", path.display());
    Ok(absolute(&path))
}

fn go_install(bin_dir: &Path, package: &str) -> Command {
    let mut command = Command::new("go");
    command.env("GOBIN", bin_dir).arg("install").arg(package);
    command
}
