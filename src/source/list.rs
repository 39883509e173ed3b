//! A CSV list of `path,label` lines, paths relative to the list's folder.

use std::path::{Component, Path, PathBuf};

use super::SourceError;

/// A dataset listed in a CSV file. Lines are `path,label` (label a non-negative integer); empty
/// lines and lines starting with '#' are skipped, as is a first line `path,label`.
#[derive(Debug, Clone)]
pub struct ListFile {
    files: Vec<(PathBuf, usize)>,
    classes: Vec<String>,
}

/// Lexically normalises `p` (no symlink resolution): removes `.` and folds `..`.
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

impl ListFile {
    /// Reads the list. A path that resolves outside the list's folder is an error unless
    /// `allow_outside` is set.
    pub fn open(list: &Path, allow_outside: bool) -> Result<Self, SourceError> {
        let text = std::fs::read_to_string(list).map_err(|e| SourceError::io(list, e))?;
        let root = normalise(
            &std::path::absolute(list.parent().unwrap_or(Path::new(".")))
                .map_err(|e| SourceError::io(list, e))?,
        );
        let mut files = Vec::new();
        let bad = |line: usize, reason: String| SourceError::BadListLine {
            path: list.to_path_buf(),
            line,
            reason,
        };
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || (i == 0 && line == "path,label") {
                continue;
            }
            let (path, label) = line
                .rsplit_once(',')
                .ok_or_else(|| bad(i + 1, format!("expected `path,label`, got `{line}`")))?;
            let label: usize = label.trim().parse().map_err(|_| {
                bad(
                    i + 1,
                    format!("label `{}` is not a non-negative integer", label.trim()),
                )
            })?;
            let entry = PathBuf::from(path.trim());
            let full = normalise(&root.join(&entry));
            if !allow_outside && !full.starts_with(&root) {
                return Err(SourceError::OutsideRoot {
                    list: list.to_path_buf(),
                    line: i + 1,
                    entry,
                    root,
                });
            }
            files.push((full, label));
        }
        if files.is_empty() {
            return Err(SourceError::NoImages {
                path: list.to_path_buf(),
            });
        }
        let n = files.iter().map(|f| f.1).max().unwrap() + 1;
        let classes = (0..n).map(|i| i.to_string()).collect();
        Ok(Self { files, classes })
    }
}

super::files_source!(ListFile);
