//! Writing outputs safely: an output never lands on an input (links resolved), and a file is
//! replaced only once its new contents are complete (written beside it, then renamed), so a
//! failed or interrupted command leaves the old file whole.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// `path` with links resolved as far as it exists (a file not yet written resolves through its
/// folder).
fn resolved(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    if let Ok(real) = std::fs::canonicalize(&abs) {
        return real;
    }
    // Not (all) there yet: fold `.` and `..` in what is missing, then resolve the rest.
    let abs = crate::file::normalise(&abs);
    match (abs.parent(), abs.file_name()) {
        (Some(dir), Some(name)) => resolved(dir).join(name),
        _ => abs,
    }
}

/// Refuses an output that is one of `inputs` or holds one (a folder above it): `(flag, path)`
/// pairs name each in the message. (Writing beside an input, or inside a dataset folder, is
/// allowed.)
pub fn check_distinct(output: (&str, &Path), inputs: &[(&str, &Path)]) -> Result<(), String> {
    let out = resolved(output.1);
    for (flag, input) in inputs {
        let inp = resolved(input);
        let clash = if out == inp {
            "is"
        } else if inp.starts_with(&out) {
            "holds"
        } else {
            continue;
        };
        return Err(format!(
            "{} {} {clash} the {flag} input {}: an output never replaces or changes an input; choose another path",
            output.0,
            output.1.display(),
            input.display()
        ));
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename: readers
/// see the old file or the new one, never a part.
pub fn write_replacing(path: &Path, bytes: &[u8]) -> io::Result<()> {
    remove_stale_temporaries(path);
    let tmp = temporary(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The temporary name [`write_replacing`] and [`Staged`] use beside `path`.
pub fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(tmp)
}

/// An exclusive lock on the file `path` (created if missing), held until the returned file is
/// dropped or the process ends (`kill -9` included), recording the holder's pid. With `wait`
/// it blocks until the lock is free; without, a held lock is `Ok(Err(pid))` naming the holder.
pub fn lock(path: &Path, wait: bool) -> io::Result<Result<std::fs::File, String>> {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    if wait {
        f.lock()?;
    } else {
        match f.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = crate::file::read_to_string(path, crate::file::FileKind::Report)
                    .unwrap_or_default();
                return Ok(Err(holder.trim().to_string()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
    f.set_len(0)?;
    write!(f, "{}", std::process::id())?;
    Ok(Ok(f))
}

/// Whether process `pid` is alive (on Linux: /proc/PID exists).
fn alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes what dead processes left in `dir`: entries named `PREFIX<pid>SUFFIX` (temporary
/// files and staging folders) whose process is gone. Returns how many went.
pub fn remove_stale(dir: &Path, prefix: &str, suffix: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|n| n.strip_suffix(suffix))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if alive(pid) {
            continue;
        }
        let p = e.path();
        let gone = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        removed += usize::from(gone.is_ok());
    }
    removed
}

/// Removes the temporary files of `path` that dead processes left ([`temporary`]'s names).
fn remove_stale_temporaries(path: &Path) {
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        remove_stale(dir, &format!(".{name}.tmp"), "");
    }
}

/// A file written line by line under a temporary name, put in place by [`Staged::commit`] only
/// when the work succeeded; dropped uncommitted, it is removed and the old file stays.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<std::fs::File>,
}

impl Staged {
    /// Starts the replacement of `path`.
    pub fn create(path: &Path) -> io::Result<Staged> {
        remove_stale_temporaries(path);
        let tmp = temporary(path);
        let file = std::fs::File::create(&tmp)?;
        Ok(Staged {
            path: path.to_path_buf(),
            tmp,
            file: Some(file),
        })
    }

    /// Appends a line.
    pub fn line(&mut self, text: &str) -> io::Result<()> {
        let f = self.file.as_mut().expect("open until committed");
        writeln!(f, "{text}")
    }

    /// Puts the file in place.
    pub fn commit(mut self) -> io::Result<()> {
        let f = self.file.take().expect("committed once");
        f.sync_all()?;
        std::fs::rename(&self.tmp, &self.path)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_on_inputs_are_refused_and_replacements_are_whole() {
        let d = tempfile::tempdir().unwrap();
        let model = d.path().join("run/model.safetensors");
        std::fs::create_dir_all(model.parent().unwrap()).unwrap();
        std::fs::write(&model, b"weights").unwrap();
        std::os::unix::fs::symlink(&model, d.path().join("link.csv")).unwrap();
        let data = d.path().join("data");
        for (out, says) in [
            (model.clone(), " is the --model"),
            (d.path().join("link.csv"), " is the --model"),
            (d.path().join("run"), "holds the --model"),
            (
                d.path().join("run/./x/../model.safetensors"),
                " is the --model",
            ),
        ] {
            let e = check_distinct(("--per-image", &out), &[("--model", &model)]).unwrap_err();
            assert!(e.contains(says), "{e}");
        }
        let e = check_distinct(("--out", d.path()), &[("--data", &data)]).unwrap_err();
        assert!(e.contains("holds the --data"), "{e}");
        check_distinct(("--out", &data.join("a.csv")), &[("--data", &data)]).unwrap();
        check_distinct(
            ("--out", &d.path().join("other.csv")),
            &[("--model", &model)],
        )
        .unwrap();

        let report = d.path().join("report.md");
        write_replacing(&report, b"old").unwrap();
        let mut s = Staged::create(&report).unwrap();
        s.line("new").unwrap();
        drop(s); // failed work: the old file stays, no temporary is left
        assert_eq!(std::fs::read(&report).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 3); // run, link.csv, report.md
        let mut s = Staged::create(&report).unwrap();
        s.line("new").unwrap();
        s.commit().unwrap();
        assert_eq!(std::fs::read(&report).unwrap(), b"new\n");
        // A dead process's temporary goes with the next write; a live one's stays.
        let dead = d.path().join(".report.md.tmp4294967");
        let live = d.path().join(".report.md.tmp1"); // pid 1 is always alive
        std::fs::write(&dead, b"x").unwrap();
        std::fs::write(&live, b"x").unwrap();
        write_replacing(&report, b"newer").unwrap();
        assert!(!dead.exists() && live.exists());
    }

    #[test]
    fn a_lock_is_held_until_dropped_and_names_its_holder() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".lock");
        let held = lock(&p, false).unwrap().unwrap();
        // flock locks belong to the open file: a second open in this process is refused too.
        let pid = lock(&p, false).unwrap().unwrap_err();
        assert_eq!(pid, std::process::id().to_string());
        drop(held);
        assert!(lock(&p, false).unwrap().is_ok());
    }
}
