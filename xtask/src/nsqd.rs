//! `cargo xtask nsqd`: find nsqd, nsqlookupd, to_nsq and nsq_tail v1.3.0, or install them with
//! Go.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{self, Failure};
use crate::workspace_root;

/// The nsq release the tests are written against.
pub(crate) const VERSION: &str = "v1.3.0";

/// The Go module that holds every command.
const MODULE: &str = "github.com/nsqio/nsq";

/// One command of nsq v1.3.0 that the tests run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    Nsqd,
    Nsqlookupd,
    ToNsq,
    NsqTail,
}

impl Tool {
    /// Every tool, in the order they are reported.
    pub(crate) const ALL: [Self; 4] = [Self::Nsqd, Self::Nsqlookupd, Self::ToNsq, Self::NsqTail];

    /// The binary's name, e.g. `nsqlookupd`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Nsqd => "nsqd",
            Self::Nsqlookupd => "nsqlookupd",
            Self::ToNsq => "to_nsq",
            Self::NsqTail => "nsq_tail",
        }
    }

    /// The environment variable that points the tests (and this command) at the binary.
    pub(crate) fn env_var(self) -> &'static str {
        match self {
            Self::Nsqd => "NSQD",
            Self::Nsqlookupd => "NSQLOOKUPD",
            Self::ToNsq => "TO_NSQ",
            Self::NsqTail => "NSQ_TAIL",
        }
    }

    /// The Go package of the command.
    fn package(self) -> String {
        format!("{MODULE}/apps/{}", self.name())
    }

    /// `<root>/target/nsqd/bin/<name>`.
    fn local_binary(self) -> PathBuf {
        local_bin_dir().join(format!("{}{}", self.name(), env::consts::EXE_SUFFIX))
    }
}

/// What to do when no usable binary can be found or built; the start of a sentence.
fn remedy(tool: Tool) -> String {
    format!(
        "install Go (https://go.dev/dl/) and rerun `cargo xtask nsqd`, or set {}=/path/to/{} \
         (version {VERSION})",
        tool.env_var(),
        tool.name()
    )
}

/// Entry point of `cargo xtask nsqd`: makes sure all four tools are there, then prints nsqd's
/// absolute path and nothing else on stdout, so that `NSQD=$(cargo xtask nsqd)` works. The
/// others are reported on stderr.
pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    if let Some(arg) = args.first() {
        return Err(Failure::usage(format!(
            "`cargo xtask nsqd` takes no arguments, got `{arg}`"
        )));
    }
    let found = find_or_install_all()?;
    for (tool, path) in &found {
        if *tool == Tool::Nsqd {
            println!("{}", path.display());
        } else {
            eprintln!("{}: {}", tool.name(), path.display());
        }
    }
    Ok(())
}

/// Finds nsqd v1.3.0 (`$NSQD`, then the project-local install, then `PATH`), installing it into
/// the project-local directory with Go when none of them qualifies.
pub(crate) fn find_or_install() -> Result<PathBuf, Failure> {
    find_or_install_tool(Tool::Nsqd)
}

/// Finds `tool` v1.3.0 like [`find_or_install`] does nsqd, installing it when missing.
pub(crate) fn find_or_install_tool(tool: Tool) -> Result<PathBuf, Failure> {
    let mut found = find_or_install_tools(&[tool])?;
    Ok(found.remove(0).1)
}

/// Finds or installs every tool in [`Tool::ALL`], each like [`find_or_install`] does nsqd, and
/// returns them in that order.
pub(crate) fn find_or_install_all() -> Result<Vec<(Tool, PathBuf)>, Failure> {
    find_or_install_tools(&Tool::ALL)
}

fn find_or_install_tools(tools: &[Tool]) -> Result<Vec<(Tool, PathBuf)>, Failure> {
    let found: Vec<(Tool, Option<PathBuf>)> =
        tools.iter().map(|&tool| (tool, find(tool))).collect();
    let missing: Vec<Tool> = found
        .iter()
        .filter(|(_, path)| path.is_none())
        .map(|(tool, _)| *tool)
        .collect();
    if !missing.is_empty() {
        install(&missing)?;
    }
    Ok(found
        .into_iter()
        .map(|(tool, path)| (tool, path.unwrap_or_else(|| absolute(&tool.local_binary()))))
        .collect())
}

/// `<root>/target/nsqd/bin`, where `cargo xtask nsqd` installs the binaries.
pub(crate) fn local_bin_dir() -> PathBuf {
    workspace_root().join("target").join("nsqd").join("bin")
}

fn find(tool: Tool) -> Option<PathBuf> {
    candidates(tool)
        .into_iter()
        .find_map(|(origin, path)| match check_version(tool, &path) {
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

/// Every place the tool may be, in the order they are tried, each with where it came from.
fn candidates(tool: Tool) -> Vec<(String, PathBuf)> {
    let mut candidates = Vec::new();
    if let Some(path) = env::var_os(tool.env_var()).filter(|path| !path.is_empty()) {
        candidates.push((format!("${}", tool.env_var()), PathBuf::from(path)));
    }
    let local = tool.local_binary();
    if local.is_file() {
        candidates.push(("the project-local install".to_owned(), local));
    }
    if let Some(path) = cmd::find_on_path(tool.name()) {
        candidates.push(("PATH".to_owned(), path));
    }
    candidates
}

/// Checks that `path` is the pinned release of `tool`: `<bin> --version`, or for to_nsq, which
/// has no such flag, the Go build information embedded in the binary.
fn check_version(tool: Tool, path: &Path) -> Result<(), String> {
    if !path.is_file() {
        return Err("no such file".to_owned());
    }
    if tool == Tool::ToNsq {
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
    let output = cmd::output(Command::new(path).arg("--version"))
        .ok_or_else(|| "it could not be run".to_owned())?;
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

/// Whether the Go build information in `binary` (what `go version -m` shows) says it is
/// `tool`'s package built from the pinned module version.
fn built_from_release(binary: &[u8], tool: Tool) -> bool {
    let path = format!("path\t{}\n", tool.package());
    // `mod` when built with `go install pkg@version`, `dep` when built in xtask/go/nsqd.
    let as_main = format!("mod\t{MODULE}\t{VERSION}\t");
    let as_dep = format!("dep\t{MODULE}\t{VERSION}\t");
    contains(binary, path.as_bytes())
        && (contains(binary, as_main.as_bytes()) || contains(binary, as_dep.as_bytes()))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn absolute(path: &Path) -> PathBuf {
    path.canonicalize()
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// Installs `tools` into [`local_bin_dir`] with `go install`.
fn install(tools: &[Tool]) -> Result<(), Failure> {
    let names: Vec<&str> = tools.iter().map(|tool| tool.name()).collect();
    let names = names.join(", ");
    if cmd::find_on_path("go").is_none() {
        return Err(Failure::new(format!(
            "{names} {VERSION} not found and Go is not on PATH: {}",
            remedy(tools[0])
        )));
    }
    let bin_dir = local_bin_dir();
    eprintln!(
        "installing {names} {VERSION} with go into {} ...",
        bin_dir.display()
    );

    // The canonical way. It needs the Go proxy's version list, and `go install pkg@version`
    // ignores the `replace` in nsq's own go.mod, so it can fail where the fallback works.
    let packages: Vec<String> = tools
        .iter()
        .map(|tool| format!("{}@{VERSION}", tool.package()))
        .collect();
    let mut direct = go_install(&bin_dir, &packages);
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
    let all_usable = || {
        tools
            .iter()
            .all(|&tool| check_version(tool, &tool.local_binary()).is_ok())
    };

    if !installed || !all_usable() {
        // xtask/go/nsqd pins nsq v1.3.0 with complete go.sum and repeats nsq's `replace`.
        let module_dir = workspace_root().join("xtask").join("go").join("nsqd");
        eprintln!(
            "that failed; building {names} {VERSION} from the pinned module in {} ...",
            module_dir.display()
        );
        let packages: Vec<String> = tools.iter().map(|tool| tool.package()).collect();
        let mut pinned = go_install(&bin_dir, &packages);
        pinned.current_dir(&module_dir);
        eprintln!("  (in {}) {}", module_dir.display(), cmd::display(&pinned));
        let status = cmd::status_stdout_to_stderr(&mut pinned)?;
        if !status.success() {
            return Err(Failure::new(format!(
                "building {names} {VERSION} with go failed (see the go output above): fix the Go \
                 set-up and rerun `cargo xtask nsqd`, or set {}",
                tools
                    .iter()
                    .map(|tool| format!("{}=/path/to/{}", tool.env_var(), tool.name()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }

    for &tool in tools {
        let path = tool.local_binary();
        check_version(tool, &path).map_err(|reason| {
            Failure::new(format!(
                "the freshly installed {} is not usable ({reason}): {}",
                path.display(),
                remedy(tool)
            ))
        })?;
        eprintln!("installed {}", path.display());
    }
    Ok(())
}

fn go_install(bin_dir: &Path, packages: &[String]) -> Command {
    let mut command = Command::new("go");
    command.env("GOBIN", bin_dir).arg("install").args(packages);
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_its_own_name_variable_and_package() {
        let names: Vec<&str> = Tool::ALL.iter().map(|tool| tool.name()).collect();
        assert_eq!(names, ["nsqd", "nsqlookupd", "to_nsq", "nsq_tail"]);
        let vars: Vec<&str> = Tool::ALL.iter().map(|tool| tool.env_var()).collect();
        assert_eq!(vars, ["NSQD", "NSQLOOKUPD", "TO_NSQ", "NSQ_TAIL"]);
        assert_eq!(Tool::ToNsq.package(), "github.com/nsqio/nsq/apps/to_nsq");
        assert!(
            Tool::NsqTail
                .local_binary()
                .ends_with("target/nsqd/bin/nsq_tail")
        );
    }

    #[test]
    fn build_information_must_name_the_package_and_the_release() {
        let pinned =
            b"\0path\tgithub.com/nsqio/nsq/apps/to_nsq\nmod\tnsqrs.local/nsqd-build\t(devel)\t\n\
                       dep\tgithub.com/nsqio/nsq\tv1.3.0\th1:x=\n\0";
        assert!(built_from_release(pinned, Tool::ToNsq));
        let direct =
            b"path\tgithub.com/nsqio/nsq/apps/to_nsq\nmod\tgithub.com/nsqio/nsq\tv1.3.0\th1:x=\n";
        assert!(built_from_release(direct, Tool::ToNsq));
        let other_version =
            b"path\tgithub.com/nsqio/nsq/apps/to_nsq\nmod\tgithub.com/nsqio/nsq\tv1.2.1\th1:x=\n";
        assert!(!built_from_release(other_version, Tool::ToNsq));
        let other_command =
            b"path\tgithub.com/nsqio/nsq/apps/nsq_tail\nmod\tgithub.com/nsqio/nsq\tv1.3.0\th1:x=\n";
        assert!(!built_from_release(other_command, Tool::ToNsq));
    }
}
