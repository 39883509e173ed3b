//! Where samples come from: a [`Source`] gives, for each index, a label and the image payload
//! (encoded bytes to decode, or raw pixels as in CIFAR).

/// `Source` for a type holding `files: Vec<(PathBuf, label)>` and `classes: Vec<String>`.
macro_rules! files_source {
    ($ty:ty) => {
        impl $crate::source::Source for $ty {
            fn len(&self) -> usize {
                self.files.len()
            }
            fn label(&self, index: usize) -> usize {
                self.files[index].1
            }
            fn classes(&self) -> &[String] {
                &self.classes
            }
            fn name(&self, index: usize) -> String {
                self.files[index].0.display().to_string()
            }
            fn name_bytes(&self, index: usize) -> Vec<u8> {
                use std::os::unix::ffi::OsStrExt;
                self.files[index].0.as_os_str().as_bytes().to_vec()
            }
            fn read(
                &self,
                index: usize,
            ) -> Result<$crate::source::Payload, $crate::source::SourceError> {
                $crate::source::read_image_file(&self.files[index].0)
                    .map($crate::source::Payload::Encoded)
            }
        }
    };
}
use files_source;

mod cifar;
mod folder;
mod list;
mod memory;
mod shards;
mod target;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use cifar::{Cifar, CifarKind};
pub use folder::{ImageFolder, IMAGE_EXTENSIONS};
pub use list::{ListFile, MAX_LABEL};
pub use memory::Samples;
pub use shards::{shard_paths, TarShards, SHARD_IMAGE_EXTENSIONS};
pub use target::{TargetKind, Targets};

use image::RgbImage;

/// What a source yields for one index.
#[derive(Debug)]
pub enum Payload {
    /// Encoded image bytes (JPEG, PNG, ...) still to be decoded.
    Encoded(Vec<u8>),
    /// Pixels already in RGB8 (CIFAR records).
    Rgb(RgbImage),
}

/// Why a dataset could not be opened or a sample read. Every variant names the file or folder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// A remote shard (or a file beside it) could not be fetched or read.
    #[error("{url}: {reason}")]
    Remote {
        /// The URL.
        url: String,
        /// What happened.
        reason: String,
    },
    /// An I/O error on a named path.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        cause: std::io::Error,
    },
    /// A class folder holds no image.
    #[error("{}: class folder holds no image (extensions: {})", path.display(), IMAGE_EXTENSIONS.join(", "))]
    EmptyClass {
        /// The class folder.
        path: PathBuf,
    },
    /// Two class folders whose names read the same (one spelled with `\xNN` escapes of bytes
    /// that are not UTF-8).
    #[error("{}: another class folder reads as `{name}` too (bytes that are not UTF-8 are shown as \\xNN): rename one", path.display())]
    AmbiguousClass {
        /// The second folder.
        path: PathBuf,
        /// The name both read as.
        name: String,
    },
    /// The dataset holds no image at all.
    #[error("{}: dataset holds no images", path.display())]
    NoImages {
        /// The dataset root.
        path: PathBuf,
    },
    /// A CIFAR binary file whose length is not a whole number of records.
    #[error("{}: length {len} is not a whole number of {record}-byte CIFAR records", path.display())]
    BadCifarLength {
        /// The file.
        path: PathBuf,
        /// Its length in bytes.
        len: u64,
        /// The record size.
        record: usize,
    },
    /// A CIFAR record whose label is not a class of the dataset.
    #[error("{}: record {record} has label {label}, but the dataset has {classes} classes", path.display())]
    BadCifarLabel {
        /// The binary file.
        path: PathBuf,
        /// 0-based record number in the file.
        record: usize,
        /// The label found.
        label: usize,
        /// Number of classes.
        classes: usize,
    },
    /// A malformed line in a CSV list.
    #[error("{}:{line}: {reason}", path.display())]
    BadListLine {
        /// The list file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A path in a list resolves outside the list's folder (symbolic links resolved).
    #[error("{}:{line}: path {} resolves outside {} (a list names files under its own folder: place the list above the files)", list.display(), entry.display(), root.display())]
    OutsideRoot {
        /// The list file.
        list: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The offending entry.
        entry: PathBuf,
        /// The list's folder.
        root: PathBuf,
    },
    /// A sample of a tar shard that cannot be read.
    #[error("{}: sample {key}: {reason}", shard.display())]
    BadShardSample {
        /// The shard.
        shard: PathBuf,
        /// The sample's key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A shard pattern that does not expand.
    #[error("shard pattern: {reason}")]
    BadShardPattern {
        /// What is wrong (names the pattern).
        reason: String,
    },
    /// Samples given as data (files or images with targets) that do not fit together.
    #[error("{what}: {reason}")]
    BadSamples {
        /// What was given.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// No known dataset layout was found.
    #[error("{}: no dataset found (expected DIR/{split}/<class>/<image>, DIR/{split}.csv, DIR/{split}-*.tar shards, CIFAR-10 data_batch_*.bin or CIFAR-100 train.bin/test.bin){}", path.display(), folder.as_ref().map(|e| format!("; read as one ImageFolder: {e}")).unwrap_or_default())]
    UnknownLayout {
        /// The folder.
        path: PathBuf,
        /// The split asked for.
        split: String,
        /// Why the folder is not one ImageFolder either, when it was tried.
        folder: Option<Box<SourceError>>,
    },
}

/// Image files larger than this are refused before reading ([`crate::file::FileKind::Image`]).
pub const MAX_FILE_BYTES: u64 = crate::file::FileKind::Image.limit();

/// Reads an image file through the file gate ([`crate::file`]) into a pooled buffer. Errors
/// name the file.
pub(crate) fn read_image_file(p: &Path) -> Result<Vec<u8>, SourceError> {
    let mut buf = crate::pool::take_empty(0);
    crate::file::read_into(p, crate::file::FileKind::Image, &mut buf)
        .map_err(|e| SourceError::io(p, e))?;
    Ok(buf)
}

impl SourceError {
    pub(crate) fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        SourceError::Io {
            path: path.into(),
            cause,
        }
    }
}

/// A random-access dataset of labelled images.
pub trait Source: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;
    /// True when the source has no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Label of sample `index` (cheap: known without reading the image).
    fn label(&self, index: usize) -> usize;
    /// Class names, indexed by label.
    fn classes(&self) -> &[String];
    /// A human-readable name of sample `index`, used in errors: a path, or file#record.
    fn name(&self, index: usize) -> String;
    /// The name's bytes as they are (a path that is not UTF-8 included): what fingerprints
    /// cover, so that names differing only in such bytes stay apart.
    fn name_bytes(&self, index: usize) -> Vec<u8> {
        self.name(index).into_bytes()
    }
    /// Reads the payload of sample `index`.
    fn read(&self, index: usize) -> Result<Payload, SourceError>;
    /// The kind of target beyond the class label: class labels only by default; multi-label
    /// and regression sources give float rows ([`Source::write_target`]).
    fn target_kind(&self) -> TargetKind {
        TargetKind::Class
    }
    /// Writes sample `index`'s float target row (of [`TargetKind::width`]) into `out`.
    fn write_target(&self, _index: usize, _out: &mut [f32]) {}
    /// For sharded sources: the samples of each shard, in index order (shard 0's samples come
    /// first). What a block shuffle (`LoaderBuilder::shuffle_window`) permutes.
    fn shard_sizes(&self) -> Option<Vec<usize>> {
        None
    }
    /// The order in which an epoch will read the samples (this rank's): a source that fetches
    /// its data (remote shards) fetches it ahead in this order.
    fn plan(&self, _order: &[usize]) {}
}

/// A source shows its size and classes, and the name of its first sample.
impl std::fmt::Debug for dyn Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("len", &self.len())
            .field("classes", &self.classes().len())
            .field("first", &(!self.is_empty()).then(|| self.name(0)))
            .finish()
    }
}

impl<S: Source + ?Sized> Source for Arc<S> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn label(&self, index: usize) -> usize {
        (**self).label(index)
    }
    fn classes(&self) -> &[String] {
        (**self).classes()
    }
    fn name(&self, index: usize) -> String {
        (**self).name(index)
    }
    fn read(&self, index: usize) -> Result<Payload, SourceError> {
        (**self).read(index)
    }
    fn target_kind(&self) -> TargetKind {
        (**self).target_kind()
    }
    fn write_target(&self, index: usize, out: &mut [f32]) {
        (**self).write_target(index, out)
    }
    fn name_bytes(&self, index: usize) -> Vec<u8> {
        (**self).name_bytes(index)
    }
    fn shard_sizes(&self) -> Option<Vec<usize>> {
        (**self).shard_sizes()
    }
    fn plan(&self, order: &[usize]) {
        (**self).plan(order)
    }
}

/// Dataset split for [`open_dataset`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Training data.
    Train,
    /// Validation / test data.
    Val,
}

impl Split {
    pub(crate) fn folder(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
        }
    }
}

/// Opens one split of the standard layout under `dir`: tar shards (`DIR/<split>-*.tar`, or `dir`
/// a brace pattern such as `DIR/train-{000000..000099}.tar`, see [`shard_paths`]), CIFAR-10 or
/// CIFAR-100 binaries, `DIR/<split>.csv` (or `dir` a CSV list itself), or ImageFolders `DIR/train` and `DIR/val`. A `dir` that is itself an
/// ImageFolder (class folders directly inside) is used as is for either split.
pub fn open_dataset(dir: &Path, split: Split) -> Result<Arc<dyn Source>, SourceError> {
    if is_list(dir) {
        return Ok(Arc::new(ListFile::open(dir, false)?));
    }
    if let Some(paths) = shard_paths(dir, split)? {
        return Ok(Arc::new(TarShards::open(&paths)?));
    }
    if let Some(kind) = CifarKind::detect(dir) {
        return Ok(Arc::new(Cifar::open(dir, kind, split == Split::Train)?));
    }
    let csv = dir.join(format!("{}.csv", split.folder()));
    if csv.is_file() {
        return Ok(Arc::new(ListFile::open(&csv, false)?));
    }
    let sub = dir.join(split.folder());
    if sub.is_dir() {
        return Ok(Arc::new(ImageFolder::open(&sub)?));
    }
    let mut folder_error = None;
    if dir.is_dir() && !dir.join("train").exists() && !dir.join("val").exists() {
        match ImageFolder::open(dir) {
            Ok(f) => return Ok(Arc::new(f)),
            // Class folders that fail (an empty class, an unreadable one) say why themselves.
            Err(e @ (SourceError::EmptyClass { .. } | SourceError::Io { .. })) => return Err(e),
            Err(e) => folder_error = Some(Box::new(e)),
        }
    }
    if !dir.exists() {
        return Err(SourceError::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
        ));
    }
    Err(SourceError::UnknownLayout {
        path: dir.to_path_buf(),
        split: split.folder().to_string(),
        folder: folder_error,
    })
}

/// Whether `path` is a CSV list file (opened by [`open_dataset`] as it is, for either split).
pub fn is_list(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// Whether `dir` holds `split` of its own (shards, CIFAR binaries, a CSV list or an ImageFolder
/// named after the split), rather than being one ImageFolder that [`open_dataset`] uses for
/// either split: a caller that asks for validation data can refuse to evaluate on the training
/// images.
pub fn has_split(dir: &Path, split: Split) -> bool {
    // A list file names its samples itself: it is whichever split it is given as.
    is_list(dir)
        || matches!(shard_paths(dir, split), Ok(Some(_)))
        || CifarKind::detect(dir).is_some()
        || dir.join(format!("{}.csv", split.folder())).is_file()
        || dir.join(split.folder()).is_dir()
}

/// What a dataset fingerprint covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fingerprint {
    /// Class names and every sample's label, in order: independent of where the data lives
    /// (a folder moved, or the same samples as shards). Loader states carry it.
    Layout,
    /// Also every sample's name below the folder all names share (relative paths within the
    /// dataset): a run's dataset identity (checkpoints carry it), the same however `--data` is
    /// spelled and wherever the dataset was moved.
    Samples,
}

/// A fingerprint of `source` (xxh3, hex) covering `what`: class names (each ended by a zero
/// byte), then per sample, in order, its name relative to the names' common folder (with
/// [`Fingerprint::Samples`]) and its label as a little-endian u64; then float targets, if any.
pub fn fingerprint_of(source: &dyn Source, what: Fingerprint) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for c in source.classes() {
        h.update(c.as_bytes());
        h.update(&[0]);
    }
    let names = what == Fingerprint::Samples;
    let common = if names { common_folder(source) } else { 0 };
    for i in 0..source.len() {
        if names {
            h.update(&source.name_bytes(i)[common..]);
        }
        h.update(&(source.label(i) as u64).to_le_bytes());
    }
    // Float targets too (class-labelled sources hash as they always did).
    let width = source.target_kind().width();
    if width > 0 {
        h.update(format!("{:?}", source.target_kind()).as_bytes());
        let mut row = vec![0f32; width];
        for i in 0..source.len() {
            source.write_target(i, &mut row);
            row.iter().for_each(|v| h.update(&v.to_le_bytes()));
        }
    }
    format!("{:016x}", h.digest())
}

/// Bytes of the longest folder prefix (ending in '/') that every sample name shares.
fn common_folder(source: &dyn Source) -> usize {
    if source.is_empty() {
        return 0;
    }
    let first = source.name_bytes(0);
    let mut len = first.len();
    for i in 1..source.len() {
        let n = source.name_bytes(i);
        len = first[..len]
            .iter()
            .zip(&n)
            .take_while(|(a, b)| a == b)
            .count();
    }
    first[..len]
        .iter()
        .rposition(|&b| b == b'/')
        .map_or(0, |p| p + 1)
}

/// [`fingerprint_of`] the source's [`Fingerprint::Layout`]: what loader states carry, so that a
/// state is not loaded into a loader over other data.
pub fn fingerprint(source: &dyn Source) -> String {
    fingerprint_of(source, Fingerprint::Layout)
}

/// The name by which an exclude list ([`exclude`]) names sample `index` of `source` opened from
/// `data`: its name relative to `data` where it lies below it (`train/cat/1.jpg`), else as is.
pub fn exclude_name(source: &dyn Source, data: &Path, index: usize) -> String {
    let name = source.name(index);
    let root = data.display().to_string();
    let root = root.trim_end_matches('/');
    match name.strip_prefix(root).and_then(|r| r.strip_prefix('/')) {
        Some(rel) if !root.is_empty() => rel.to_string(),
        _ => name,
    }
}

/// `source` without the samples an exclude list names ([`exclude_name`]'s names, one per line;
/// empty lines and `#` comments skipped). Returns the source and how many samples went (a list
/// may name samples of other splits).
pub fn exclude(
    source: Arc<dyn Source>,
    data: &Path,
    list: &Path,
) -> Result<(Arc<dyn Source>, usize), SourceError> {
    let text = crate::file::read_to_string(list, crate::file::FileKind::List)
        .map_err(|e| SourceError::io(list, e))?;
    let names: std::collections::HashSet<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let keep: Vec<usize> = (0..source.len())
        .filter(|&i| {
            let n = exclude_name(source.as_ref(), data, i);
            !(names.contains(n.as_str()) || names.contains(source.name(i).as_str()))
        })
        .collect();
    let gone = source.len() - keep.len();
    Ok((Arc::new(Subset::new(source, keep)), gone))
}

/// A view of some samples of another source (e.g. a small subset to overfit).
#[derive(Debug)]
pub struct Subset {
    inner: Arc<dyn Source>,
    indices: Vec<usize>,
}

impl Subset {
    /// The samples `indices` of `inner`, in that order.
    pub fn new(inner: Arc<dyn Source>, indices: Vec<usize>) -> Self {
        Self { inner, indices }
    }
}

impl Source for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn label(&self, index: usize) -> usize {
        self.inner.label(self.indices[index])
    }
    fn classes(&self) -> &[String] {
        self.inner.classes()
    }
    fn name(&self, index: usize) -> String {
        self.inner.name(self.indices[index])
    }
    fn read(&self, index: usize) -> Result<Payload, SourceError> {
        self.inner.read(self.indices[index])
    }
    fn target_kind(&self) -> TargetKind {
        self.inner.target_kind()
    }
    fn write_target(&self, index: usize, out: &mut [f32]) {
        self.inner.write_target(self.indices[index], out)
    }
    fn name_bytes(&self, index: usize) -> Vec<u8> {
        self.inner.name_bytes(self.indices[index])
    }
}
