//! `cargo xtask nsqd`: find nsqd, nsqlookupd, to_nsq, nsq_tail, nsq_to_nsq and bench_reader
//! v1.3.0, or install them with Go.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd::{self, Failure};
pub(crate) use crate::find::{NsqTool as Tool, VERSION};
use crate::find::{check_version, local_bin_dir, local_binary};
use crate::workspace_root;

/// What to do when no usable binary can be found or built; the start of a sentence.
fn remedy(tool: Tool) -> String {
    format!(
        "install Go (https://go.dev/dl/) and rerun `cargo xtask nsqd`, or set {}=/path/to/{} \
         (version {VERSION})",
        tool.env_var(),
        tool.name()
    )
}

/// Entry point of `cargo xtask nsqd`: makes sure every tool is there, then prints nsqd's
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
        .map(|(tool, path)| {
            (
                tool,
                path.unwrap_or_else(|| absolute(&local_binary(&workspace_root(), tool))),
            )
        })
        .collect())
}

/// Finds `tool` as the tests do (see `tests/support/src/tools/find.rs`), warning about each
/// candidate it skips.
fn find(tool: Tool) -> Option<PathBuf> {
    let search = crate::find::search(tool, &workspace_root());
    for (candidate, reason) in &search.rejected {
        eprintln!(
            "warning: skipping {} (from {}): {reason}",
            candidate.path.display(),
            candidate.origin
        );
    }
    search.found.map(|path| absolute(&path))
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
    if crate::find::find_on_path("go").is_none() {
        return Err(Failure::new(format!(
            "{names} {VERSION} not found and Go is not on PATH: {}",
            remedy(tools[0])
        )));
    }
    let bin_dir = local_bin_dir(&workspace_root());
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
            .all(|&tool| check_version(tool, &local_binary(&workspace_root(), tool)).is_ok())
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
        let path = local_binary(&workspace_root(), tool);
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
