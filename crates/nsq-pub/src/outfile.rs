//! The files nsq-pub writes (`--failed-out`, `--unknown-out`, `--report-json`): checked against
//! the inputs and each other before anything is opened, and written whole or not at all.
//!
//! A regular file is written to a temporary file in the same directory, renamed over the path
//! once complete: a run that is killed, or that cannot start, leaves the file that was there as
//! it was. Anything else that exists at the path (`/dev/null`, a pipe) is written in place.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// What identifies a file: its device and inode where it exists (so a hard link or a symbolic
/// link to it is the same file), its absolute path where it does not yet.
#[derive(Debug, PartialEq, Eq)]
enum Identity {
    Inode(u64, u64),
    Path(PathBuf),
}

#[cfg(unix)]
fn inode(meta: &fs::Metadata) -> Identity {
    use std::os::unix::fs::MetadataExt;
    Identity::Inode(meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn inode(_meta: &fs::Metadata) -> Identity {
    Identity::Path(PathBuf::new())
}

/// The identity of the regular file at `path`, if there is one.
fn existing(path: &Path) -> Option<Identity> {
    let meta = fs::metadata(path).ok().filter(fs::Metadata::is_file)?;
    if cfg!(unix) {
        Some(inode(&meta))
    } else {
        fs::canonicalize(path).ok().map(Identity::Path)
    }
}

/// The identity of standard input, when it is a regular file (`< file`).
fn stdin_identity() -> Option<Identity> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        let fd = io::stdin().as_fd().try_clone_to_owned().ok()?;
        let meta = File::from(fd)
            .metadata()
            .ok()
            .filter(fs::Metadata::is_file)?;
        Some(inode(&meta))
    }
    #[cfg(not(unix))]
    None
}

/// The identity an output will have: the existing file's, or its absolute path.
fn output_identity(path: &Path) -> Identity {
    if let Some(identity) = existing(path) {
        return identity;
    }
    let name = path.file_name().map(PathBuf::from).unwrap_or_default();
    let dir = parent(path);
    match fs::canonicalize(dir) {
        Ok(dir) => Identity::Path(dir.join(name)),
        Err(_) => Identity::Path(path.to_owned()),
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Refuses outputs that would destroy an input or another output: an output that is one of the
/// input files (or standard input redirected from it), by device and inode, and two outputs
/// that are the same file. `outputs` are each flag with its path.
///
/// # Errors
///
/// What is wrong and what to do, as a usage error.
pub(crate) fn check(inputs: &[PathBuf], outputs: &[(&str, &Path)]) -> Result<(), String> {
    let mut sources: Vec<(String, Identity)> = Vec::new();
    let stdin_read = inputs.is_empty() || inputs.iter().any(|p| p.as_os_str() == "-");
    if stdin_read {
        if let Some(identity) = stdin_identity() {
            sources.push(("standard input".to_owned(), identity));
        }
    }
    for path in inputs.iter().filter(|p| p.as_os_str() != "-") {
        if let Some(identity) = existing(path) {
            sources.push((format!("the input {}", path.display()), identity));
        }
    }
    let mut seen: Vec<(&str, &Path, Identity)> = Vec::new();
    for &(flag, path) in outputs {
        let identity = output_identity(path);
        if let Some((input, _)) = sources.iter().find(|(_, id)| *id == identity) {
            return Err(format!(
                "{flag} {} is the same file as {input}: it would be replaced while it is read; \
                 give {flag} another path",
                path.display()
            ));
        }
        if let Some((other, other_path, _)) = seen.iter().find(|(_, _, id)| *id == identity) {
            return Err(format!(
                "{other} {} and {flag} {} are the same file; give each its own path",
                other_path.display(),
                path.display()
            ));
        }
        seen.push((flag, path, identity));
    }
    Ok(())
}

/// An output being written; [`commit`](Self::commit) puts it in place. Dropped without a
/// commit, it leaves the path as it was.
pub(crate) struct OutFile {
    path: PathBuf,
    target: Target,
    /// The first write error, reported at the commit.
    error: Option<io::Error>,
}

enum Target {
    /// A temporary file, renamed over `rename_to` at the commit.
    Temp {
        writer: BufWriter<NamedTempFile>,
        rename_to: PathBuf,
    },
    /// Something that is not a regular file, written in place.
    Direct(BufWriter<File>),
}

impl OutFile {
    /// Starts writing `path`: a temporary file next to it (the mode of the file it will
    /// replace, or 0600 for a new one), or the path itself when it exists and is not a regular
    /// file.
    ///
    /// # Errors
    ///
    /// The temporary file or the path cannot be created, with the path.
    pub(crate) fn create(path: &Path) -> Result<Self, (PathBuf, io::Error)> {
        let fail = |e| (path.to_owned(), e);
        let meta = fs::metadata(path).ok();
        let target = match meta {
            Some(meta) if !meta.is_file() => {
                Target::Direct(BufWriter::new(File::create(path).map_err(fail)?))
            }
            _ => {
                // Through a symbolic link, the file it points to is replaced, not the link.
                let rename_to = match fs::symlink_metadata(path) {
                    Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path).map_err(fail)?,
                    _ => path.to_owned(),
                };
                let name = rename_to
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let temp = tempfile::Builder::new()
                    .prefix(&format!(".{name}."))
                    .suffix(".partial")
                    .tempfile_in(parent(&rename_to))
                    .map_err(fail)?;
                if let Some(meta) = meta {
                    temp.as_file()
                        .set_permissions(meta.permissions())
                        .map_err(fail)?;
                }
                Target::Temp {
                    writer: BufWriter::with_capacity(256 * 1024, temp),
                    rename_to,
                }
            }
        };
        Ok(Self {
            path: path.to_owned(),
            target,
            error: None,
        })
    }

    /// Appends `parts`; a failure is kept for the commit and later writes are skipped.
    pub(crate) fn write(&mut self, parts: &[&[u8]]) {
        if self.error.is_some() {
            return;
        }
        let writer: &mut dyn Write = match &mut self.target {
            Target::Temp { writer, .. } => writer,
            Target::Direct(writer) => writer,
        };
        for part in parts {
            if let Err(e) = writer.write_all(part) {
                self.error = Some(e);
                return;
            }
        }
    }

    /// Flushes the file and puts it in place.
    ///
    /// # Errors
    ///
    /// The first write error, or the flush or rename failing, with the path; the path is then
    /// left as it was (unless it is not a regular file, written in place).
    pub(crate) fn commit(self) -> Result<(), (PathBuf, io::Error)> {
        let path = self.path;
        if let Some(e) = self.error {
            return Err((path, e));
        }
        let done = match self.target {
            Target::Direct(mut writer) => writer.flush(),
            Target::Temp { writer, rename_to } => writer
                .into_inner()
                .map_err(io::IntoInnerError::into_error)
                .and_then(|temp| {
                    temp.as_file().sync_all()?;
                    temp.persist(&rename_to).map(drop).map_err(|e| e.error)
                }),
        };
        done.map_err(|e| (path, e))
    }
}

/// Writes `bytes` to `path` whole: see [`OutFile`].
///
/// # Errors
///
/// As [`OutFile::create`] and [`OutFile::commit`].
pub(crate) fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), (PathBuf, io::Error)> {
    let mut out = OutFile::create(path)?;
    out.write(&[bytes]);
    out.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_that_is_an_input_or_another_output_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        fs::write(&input, b"a\n").unwrap();
        let linked = dir.path().join("hard.txt");
        fs::hard_link(&input, &linked).unwrap();
        let new = dir.path().join("new.txt");
        let inputs = [input.clone()];
        assert!(check(&inputs, &[("--failed-out", &input)]).is_err());
        let err = check(&inputs, &[("--failed-out", &linked)]).unwrap_err();
        assert!(err.contains("--failed-out"), "{err}");
        assert!(check(&inputs, &[("--failed-out", &new)]).is_ok());
        let spelled = dir.path().join(".").join("new.txt");
        let err = check(
            &inputs,
            &[("--failed-out", &new), ("--unknown-out", &spelled)],
        )
        .unwrap_err();
        assert!(err.contains("same file"), "{err}");
    }

    #[test]
    fn an_uncommitted_file_leaves_the_old_one_and_a_commit_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        fs::write(&path, b"old\n").unwrap();
        let mut out = OutFile::create(&path).unwrap();
        out.write(&[b"new", b"\n"]);
        drop(out);
        assert_eq!(fs::read(&path).unwrap(), b"old\n");
        let mut out = OutFile::create(&path).unwrap();
        out.write(&[b"new", b"\n"]);
        out.commit().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new\n");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }
}
