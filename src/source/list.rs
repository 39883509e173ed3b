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

/// Labels above this are refused: a list's classes are numbered 0..=max, and a stray huge label
/// would otherwise allocate a name for every class below it.
pub const MAX_LABEL: usize = 999_999;

/// The lines of `text`: `\n` or `\r\n` endings, or bare `\r` (old Mac files) when no `\n`
/// occurs; a UTF-8 byte-order mark is dropped.
fn lines(text: &str) -> Vec<&str> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.contains('\n') {
        text.lines().collect()
    } else {
        text.split('\r').collect()
    }
}

impl ListFile {
    /// Reads the list. A path that resolves outside the list's folder, symbolic links
    /// included, is an error unless `allow_outside` is set. Labels go up to [`MAX_LABEL`].
    pub fn open(list: &Path, allow_outside: bool) -> Result<Self, SourceError> {
        let text = crate::file::read_to_string(list, crate::file::FileKind::List)
            .map_err(|e| SourceError::io(list, e))?;
        let folder = list.parent().unwrap_or(Path::new("."));
        let folder = if folder.as_os_str().is_empty() {
            Path::new(".")
        } else {
            folder
        };
        let root = normalise(&std::path::absolute(folder).map_err(|e| SourceError::io(list, e))?);
        let real_root = std::fs::canonicalize(&root).map_err(|e| SourceError::io(&root, e))?;
        let mut files = Vec::new();
        let bad = |line: usize, reason: String| SourceError::BadListLine {
            path: list.to_path_buf(),
            line,
            reason,
        };
        for (i, raw) in lines(&text).into_iter().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || (i == 0 && line == "path,label") {
                continue;
            }
            let (path, label) = line
                .rsplit_once(',')
                .ok_or_else(|| bad(i + 1, format!("expected `path,label`, got `{line}`")))?;
            let label = label.trim();
            let label: usize = match label.parse::<u64>() {
                Ok(l) if l <= MAX_LABEL as u64 => l as usize,
                Ok(l) => {
                    return Err(bad(
                        i + 1,
                        format!("label {l} is above the maximum of {MAX_LABEL}"),
                    ))
                }
                Err(_) => {
                    return Err(bad(
                        i + 1,
                        format!("label `{label}` is not a non-negative integer"),
                    ))
                }
            };
            let entry = PathBuf::from(path.trim());
            let full = normalise(&root.join(&entry));
            // Where the file exists, its real path decides (a link inside may point out).
            let inside = match std::fs::canonicalize(&full) {
                Ok(real) => real.starts_with(&real_root),
                Err(_) => full.starts_with(&root),
            };
            if !allow_outside && !inside {
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
