//! `cargo xtask package`: packages the published crates as `cargo publish` would, then builds
//! and tests them from the packages, the way a user gets them from the registry.
//!
//! The packages are unpacked into `target/package-test/src` under a small workspace of their
//! own, whose `[patch.crates-io]` points each crate's dependency on a sibling (nsq-conn on
//! nsq-proto, ...) at the sibling's unpacked package, since those versions are not on
//! crates.io yet. The workspace's `Cargo.lock` is copied in, so the packages build against the
//! dependency versions the workspace tests use, without the network. Builds go to
//! `target/package-test/target`, which is kept between runs, so only the published crates are
//! rebuilt each time.
//!
//! Then the same packages are checked against the newest semver-compatible versions of their
//! dependencies, which is what `cargo install` without `--locked`, or a new project, gets: the
//! unpacked workspace's `Cargo.lock` is updated (`cargo update`, which reaches crates.io) and
//! every target is checked with `RUSTFLAGS=-D warnings`, so that a dependency deprecating
//! something the crates use fails here rather than in a user's build. Its builds go to
//! `target/package-test/newest`, also kept between runs.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::cmd::{self, Failure};
use crate::workspace_root;

/// The published crates, each after the crates it depends on.
const CRATES: [&str; 6] = [
    "nsq-proto",
    "nsq-conn",
    "nsq-lookupd",
    "nsq-consumer",
    "nsq-producer",
    "nsq-pub",
];

/// The license files every published crate carries, copies of the ones at the root.
const LICENSE_FILES: [&str; 2] = ["LICENSE-APACHE", "LICENSE-MIT"];

/// Entry point of `cargo xtask package`; it takes no arguments.
pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    if let Some(arg) = args.first() {
        return Err(Failure::usage(format!(
            "unexpected argument `{arg}`: `cargo xtask package` takes none"
        )));
    }
    check()?;
    eprintln!("==> the packages build and pass their tests");
    Ok(())
}

/// Checks the license copies, packages the crates, unpacks them and runs their tests.
pub(crate) fn check() -> Result<(), Failure> {
    let root = workspace_root();
    check_license_copies(&root)?;

    let dir = root.join("target").join("package-test");
    let target_dir = dir.join("target");
    let mut package = cmd::cargo();
    package.arg("package");
    for name in CRATES {
        package.args(["-p", name]);
    }
    // The tests below build every package; `--allow-dirty` packages the working tree as it is,
    // so that local changes are tested before they are committed.
    package
        .args(["--no-verify", "--allow-dirty", "--target-dir"])
        .arg(&target_dir);
    step(&mut package, &root)?;

    let version = workspace_version(&root)?;
    let src = dir.join("src");
    cmd::header(&format!("unpacking the packages into {}", src.display()));
    if src.exists() {
        fs::remove_dir_all(&src)
            .map_err(|err| Failure::new(format!("could not remove {}: {err}", src.display())))?;
    }
    fs::create_dir_all(&src)
        .map_err(|err| Failure::new(format!("could not create {}: {err}", src.display())))?;
    let mut members = Vec::new();
    for name in CRATES {
        let file = target_dir
            .join("package")
            .join(format!("{name}-{version}.crate"));
        // `-m` gives the files the current time instead of the fixed one cargo stores, so
        // that cargo sees them as changed and rebuilds the crates every run.
        let mut untar = Command::new("tar");
        untar.arg("-xzmf").arg(&file).arg("-C").arg(&src);
        cmd::run_step(&mut untar)?;
        members.push(format!("{name}-{version}"));
    }
    write(&src.join("Cargo.toml"), &wrapper_manifest(&members))?;
    fs::copy(root.join("Cargo.lock"), src.join("Cargo.lock"))
        .map_err(|err| Failure::new(format!("could not copy Cargo.lock: {err}")))?;

    let mut test = cmd::cargo();
    test.env("CARGO_TARGET_DIR", &target_dir).args([
        "test",
        "--workspace",
        "--all-features",
        "--offline",
    ]);
    step(&mut test, &src)?;
    check_newest(&src, &dir.join("newest"))
}

/// Updates the unpacked workspace at `src` to the newest compatible dependencies and checks
/// every target with warnings denied.
fn check_newest(src: &Path, target_dir: &Path) -> Result<(), Failure> {
    let mut update = cmd::cargo();
    update.arg("update");
    step(&mut update, src).map_err(|err| {
        Failure::new(format!(
            "{}; checking against the newest dependencies needs crates.io",
            err.message()
        ))
    })?;
    let mut check = cmd::cargo();
    check
        .env("CARGO_TARGET_DIR", target_dir)
        .env("RUSTFLAGS", "-D warnings")
        .args(["check", "--workspace", "--all-targets", "--all-features"]);
    step(&mut check, src)
}

/// Fails if a crate's copy of a license file differs from the one at the root.
fn check_license_copies(root: &Path) -> Result<(), Failure> {
    cmd::header("checking the license files of the published crates");
    for file in LICENSE_FILES {
        let original = read(&root.join(file))?;
        for name in CRATES {
            let copy = root.join("crates").join(name).join(file);
            if read(&copy)? != original {
                return Err(Failure::new(format!(
                    "{} differs from {file} at the root; copy it again",
                    copy.display()
                )));
            }
        }
    }
    Ok(())
}

/// The manifest of the workspace around the unpacked packages.
fn wrapper_manifest(members: &[String]) -> String {
    let mut manifest = String::from(
        "# Written by `cargo xtask package`: the published crates, unpacked from their packages.\n\
         [workspace]\nresolver = \"3\"\nmembers = [",
    );
    let quoted: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
    manifest.push_str(&quoted.join(", "));
    manifest.push_str("]\n\n[patch.crates-io]\n");
    for (name, member) in CRATES.iter().zip(members) {
        manifest.push_str(&format!("{name} = {{ path = \"{member}\" }}\n"));
    }
    manifest
}

/// The `version` of `[workspace.package]` in the root manifest, which every crate inherits.
fn workspace_version(root: &Path) -> Result<String, Failure> {
    let manifest = read(&root.join("Cargo.toml"))?;
    let mut in_section = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line == "[workspace.package]";
        } else if in_section {
            if let Some(value) = line
                .strip_prefix("version")
                .map(str::trim_start)
                .and_then(|rest| rest.strip_prefix('='))
            {
                return Ok(value.trim().trim_matches('"').to_owned());
            }
        }
    }
    Err(Failure::new(
        "no version in [workspace.package] of the root Cargo.toml",
    ))
}

/// Prints the header for `command`, then runs it from `dir`.
fn step(command: &mut Command, dir: &Path) -> Result<(), Failure> {
    command.current_dir(dir);
    cmd::header(&cmd::display(command));
    cmd::run_step(command)
}

fn read(path: &Path) -> Result<String, Failure> {
    fs::read_to_string(path)
        .map_err(|err| Failure::new(format!("could not read {}: {err}", path.display())))
}

fn write(path: &Path, contents: &str) -> Result<(), Failure> {
    fs::write(path, contents)
        .map_err(|err| Failure::new(format!("could not write {}: {err}", path.display())))
}
