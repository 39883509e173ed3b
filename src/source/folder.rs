//! torchvision-style ImageFolder: `ROOT/<class>/<image>`, classes in sorted order.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::SourceError;

/// File extensions recognised as images (case-insensitive): torchvision's IMG_EXTENSIONS, plus
/// `.pbm`/`.pnm` (the rest of the PNM family).
pub const IMAGE_EXTENSIONS: [&str; 11] = [
    "jpg", "jpeg", "png", "ppm", "pgm", "pbm", "pnm", "bmp", "tif", "tiff", "webp",
];

/// An ImageFolder dataset: the label of an image is the position of its class folder's name in
/// sorted order, as in torchvision. Hidden files and folders (leading '.') are ignored.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    files: Vec<(PathBuf, usize)>,
}

/// A class folder's name as text: its UTF-8 as is, every byte that is not UTF-8 as `\xNN`, so
/// that folders whose names differ only in such bytes stay distinct classes.
pub(crate) fn class_name(name: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for chunk in name.as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// The entries of `dir` (hidden ones left out) in sorted order, each with whether it is a
/// folder. The kind comes from the directory entry (a symbolic link's from its target), so a
/// folder whose path is too long to resolve is an error naming it, never taken for a file and
/// silently left out.
fn sorted_entries(dir: &Path) -> Result<Vec<(PathBuf, bool)>, SourceError> {
    let rd = std::fs::read_dir(dir).map_err(|e| SourceError::io(dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| SourceError::io(dir, e))?;
        let p = entry.path();
        if is_hidden(&p) {
            continue;
        }
        let kind = entry.file_type().map_err(|e| SourceError::io(&p, e))?;
        let is_dir = if kind.is_symlink() {
            match std::fs::metadata(&p) {
                Ok(m) => m.is_dir(),
                // A dangling link: a file that fails by name when read.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => return Err(SourceError::io(&p, e)),
            }
        } else {
            kind.is_dir()
        };
        out.push((p, is_dir));
    }
    out.sort();
    Ok(out)
}

impl ImageFolder {
    /// Scans `root`. Errors name the folder: unreadable, no class folder, or a class folder
    /// without images. Symbolic links are followed, but a folder reached a second time (a link
    /// to an ancestor, to itself or to another class folder) is not walked again, so a link
    /// loop neither hangs the scan nor counts images twice.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, SourceError> {
        let root = root.as_ref().to_path_buf();
        let mut classes = Vec::new();
        let mut files = Vec::new();
        let class_dirs: Vec<PathBuf> = sorted_entries(&root)?
            .into_iter()
            .filter_map(|(p, dir)| dir.then_some(p))
            .collect();
        // Every folder is known by its real path; the root and the class folders count as
        // visited from the start, so which links are skipped does not depend on the walk order.
        let real = |d: &Path| std::fs::canonicalize(d).map_err(|e| SourceError::io(d, e));
        let mut visited: HashSet<PathBuf> = HashSet::from([real(&root)?]);
        for d in &class_dirs {
            visited.insert(real(d)?);
        }
        for dir in class_dirs {
            let label = classes.len();
            let before = files.len();
            // Images may sit in nested folders, as torchvision's walk allows.
            let mut stack = vec![dir.clone()];
            let mut found = Vec::new();
            while let Some(d) = stack.pop() {
                for (p, is_dir) in sorted_entries(&d)? {
                    if is_dir {
                        if visited.insert(real(&p)?) {
                            stack.push(p);
                        }
                    } else if is_image(&p) {
                        found.push(p);
                    }
                }
            }
            found.sort();
            files.extend(found.into_iter().map(|p| (p, label)));
            if files.len() == before {
                return Err(SourceError::EmptyClass { path: dir });
            }
            let name = class_name(dir.file_name().unwrap_or_default());
            if classes.contains(&name) {
                return Err(SourceError::AmbiguousClass { path: dir, name });
            }
            classes.push(name);
        }
        if files.is_empty() {
            return Err(SourceError::NoImages { path: root });
        }
        Ok(Self {
            root,
            classes,
            files,
        })
    }

    /// The dataset root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of sample `index`.
    pub fn path(&self, index: usize) -> &Path {
        &self.files[index].0
    }
}

super::files_source!(ImageFolder);

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn class_names_keep_bytes_that_are_not_utf8_apart() {
        let name = |b: &[u8]| super::class_name(std::ffi::OsStr::from_bytes(b));
        assert_eq!(name(b"caf\xc3\xa9"), "café");
        assert_eq!(name(b"caf\xe9"), "caf\\xe9");
        assert_ne!(name(b"caf\xe9"), name(b"caf\xe8"));
    }
}
