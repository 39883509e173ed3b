//! A CSV list of `path,label` lines (or multi-label and regression targets), paths relative to
//! the list's folder.

use std::path::{Path, PathBuf};

use crate::file::normalise;

use super::target::{parse_multilabel, parse_values};
use super::{Payload, Samples, Source, SourceError, TargetKind, Targets};

/// A dataset listed in a CSV file. Lines are `path,label` (label a non-negative integer); empty
/// lines and lines starting with '#' are skipped, as is a first line starting `path,`. With
/// multi-label targets the label field holds class indices separated by spaces or `;`
/// (`img.jpg,0 3 7`, possibly none); with regression targets every field after the path is a
/// number (`img.jpg,0.5,1.25`), as many on every line as on the first.
#[derive(Debug, Clone)]
pub struct ListFile(Samples);

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
    /// Reads a list of class labels. A path that resolves outside the list's folder, symbolic
    /// links included, is an error unless `allow_outside` is set. Labels go up to [`MAX_LABEL`].
    pub fn open(list: &Path, allow_outside: bool) -> Result<Self, SourceError> {
        Self::open_as(list, allow_outside, TargetKind::Class)
    }

    /// Reads a list whose targets are of `kind`. A multi-label list has one past its largest
    /// label as classes unless `kind` gives a width; a regression list's width comes from its
    /// first line (or the header) when `kind` gives none.
    pub fn open_as(
        list: &Path,
        allow_outside: bool,
        kind: TargetKind,
    ) -> Result<Self, SourceError> {
        let text = crate::file::read_to_string(list, crate::file::FileKind::List)
            .map_err(|e| SourceError::io(list, e))?;
        let root = Root::of(list)?;
        let bad = |line: usize, reason: String| SourceError::BadListLine {
            path: list.to_path_buf(),
            line,
            reason,
        };
        let mut rows = Rows::new(kind);
        let mut paths = Vec::new();
        for (i, raw) in lines(&text).into_iter().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if i == 0 && line.starts_with("path,") {
                rows.header(line);
                continue;
            }
            let path = rows.push(line).map_err(|r| bad(i + 1, r))?;
            let entry = PathBuf::from(path.trim());
            paths.push(
                root.check(&entry, allow_outside)
                    .map_err(|e| e.at(list, i + 1))?,
            );
        }
        if paths.is_empty() {
            return Err(SourceError::NoImages {
                path: list.to_path_buf(),
            });
        }
        let targets = rows.finish();
        let what = |e: SourceError| match e {
            SourceError::BadSamples { reason, .. } => SourceError::BadSamples {
                what: list.display().to_string(),
                reason,
            },
            e => e,
        };
        Samples::files(paths, targets).map(ListFile).map_err(what)
    }
}

/// The list's folder, lexically and with links resolved.
struct Root {
    root: PathBuf,
    real: PathBuf,
}

/// An entry outside the root, before the list and line are known.
struct Outside {
    entry: PathBuf,
    root: PathBuf,
}

impl Outside {
    fn at(self, list: &Path, line: usize) -> SourceError {
        SourceError::OutsideRoot {
            list: list.to_path_buf(),
            line,
            entry: self.entry,
            root: self.root,
        }
    }
}

impl Root {
    fn of(list: &Path) -> Result<Root, SourceError> {
        let folder = list.parent().unwrap_or(Path::new("."));
        let folder = if folder.as_os_str().is_empty() {
            Path::new(".")
        } else {
            folder
        };
        let root = normalise(&std::path::absolute(folder).map_err(|e| SourceError::io(list, e))?);
        let real = std::fs::canonicalize(&root).map_err(|e| SourceError::io(&root, e))?;
        Ok(Root { root, real })
    }

    /// The entry's full path, checked to be inside unless `allow_outside`.
    fn check(&self, entry: &Path, allow_outside: bool) -> Result<PathBuf, Outside> {
        let full = normalise(&self.root.join(entry));
        // Where the file exists, its real path decides (a link inside may point out).
        let inside = match std::fs::canonicalize(&full) {
            Ok(real) => real.starts_with(&self.real),
            Err(_) => full.starts_with(&self.root),
        };
        if !allow_outside && !inside {
            return Err(Outside {
                entry: entry.to_path_buf(),
                root: self.root.clone(),
            });
        }
        Ok(full)
    }
}

/// The targets of a list, line by line.
struct Rows {
    kind: TargetKind,
    classes: Vec<usize>,
    multi: Vec<Vec<u32>>,
    values: Vec<f32>,
    /// Regression values per line (from the kind, the header or the first line).
    width: usize,
}

impl Rows {
    fn new(kind: TargetKind) -> Rows {
        Rows {
            kind,
            classes: Vec::new(),
            multi: Vec::new(),
            values: Vec::new(),
            width: kind.width(),
        }
    }

    fn header(&mut self, line: &str) {
        if matches!(self.kind, TargetKind::Regression(0)) {
            self.width = line.matches(',').count();
        }
    }

    /// Takes one line's targets; returns its path field.
    fn push<'a>(&mut self, line: &'a str) -> Result<&'a str, String> {
        match self.kind {
            TargetKind::Class => {
                let (path, label) = split_last(line)?;
                self.classes.push(parse_label(label.trim())?);
                Ok(path)
            }
            TargetKind::MultiLabel(_) => {
                let (path, labels) = split_last(line)?;
                self.multi.push(parse_multilabel(labels.trim())?);
                Ok(path)
            }
            TargetKind::Regression(_) => {
                if self.width == 0 {
                    self.width = line.matches(',').count().max(1);
                }
                let mut fields: Vec<&str> = line.rsplitn(self.width + 1, ',').collect();
                if fields.len() != self.width + 1 {
                    return Err(format!(
                        "expected `path` and {} value(s), got `{line}`",
                        self.width
                    ));
                }
                let path = fields.pop().expect("width + 1 fields");
                parse_values(fields.into_iter().rev(), &mut self.values)?;
                Ok(path)
            }
        }
    }

    fn finish(self) -> Targets {
        match self.kind {
            TargetKind::Class => Targets::Class(self.classes),
            TargetKind::MultiLabel(n) => {
                let max = self
                    .multi
                    .iter()
                    .flatten()
                    .max()
                    .map_or(0, |&m| m as usize + 1);
                Targets::MultiLabel {
                    labels: self.multi,
                    classes: if n > 0 { n } else { max.max(1) },
                }
            }
            TargetKind::Regression(_) => Targets::Regression {
                values: self.values,
                width: self.width,
            },
        }
    }
}

fn split_last(line: &str) -> Result<(&str, &str), String> {
    line.rsplit_once(',')
        .ok_or_else(|| format!("expected `path,label`, got `{line}`"))
}

fn parse_label(label: &str) -> Result<usize, String> {
    match label.parse::<u64>() {
        Ok(l) if l <= MAX_LABEL as u64 => Ok(l as usize),
        Ok(l) => Err(format!("label {l} is above the maximum of {MAX_LABEL}")),
        Err(_) => Err(format!("label `{label}` is not a non-negative integer")),
    }
}

impl Source for ListFile {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn label(&self, index: usize) -> usize {
        self.0.label(index)
    }
    fn classes(&self) -> &[String] {
        self.0.classes()
    }
    fn name(&self, index: usize) -> String {
        self.0.name(index)
    }
    fn name_bytes(&self, index: usize) -> Vec<u8> {
        self.0.name_bytes(index)
    }
    fn read(&self, index: usize) -> Result<Payload, SourceError> {
        self.0.read(index)
    }
    fn target_kind(&self) -> TargetKind {
        self.0.target_kind()
    }
    fn write_target(&self, index: usize, out: &mut [f32]) {
        self.0.write_target(index, out)
    }
}
