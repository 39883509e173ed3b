//! Tar shards in the WebDataset layout: the members of one sample (`KEY.jpg`, `KEY.cls`, ...)
//! lie next to each other, grouped by key (the member's path up to the first dot of its base
//! name).
//!
//! On first open, one pass over a shard's tar headers builds an index (each sample's image
//! offset and size, and its label read from `.cls` or `.json`), kept beside the shard as
//! `SHARD.idx` or, where that folder is read-only, in the user's cache folder. The index records
//! the shard's size and modification time: a changed shard is indexed again on open, and a read
//! from a shard that changed after indexing is refused. With the index, samples are read by
//! offset, so every guarantee of the folder source holds (any worker count, resume, ranks).
//!
//! A sample without an image or a label, a duplicate key, or a shard cut short is kept in the
//! dataset as a broken sample: reading it is an error naming the shard and the key (so the
//! loader's error policy applies: fail, or skip and list it).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use super::{Payload, Source, SourceError, Split, MAX_FILE_BYTES, MAX_LABEL};

/// Image members a sample may have, by extension.
pub const SHARD_IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "webp"];
/// Most shards a brace pattern may name.
const MAX_SHARDS: usize = 1_000_000;
/// Version of the index files; another version is rebuilt.
const INDEX_VERSION: u32 = 2;
/// Most bytes of shard paths a brace pattern may expand to.
const MAX_PATTERN_BYTES: usize = 64 << 20;

#[cfg(feature = "remote")]
mod remote;

/// A dataset of WebDataset tar shards: local files, or (feature `remote`) URLs read through a
/// cache ([`TarShards::open_urls`]).
#[derive(Debug)]
pub struct TarShards {
    shards: Vec<Shard>,
    samples: Vec<Sample>,
    classes: Vec<String>,
    #[cfg(feature = "remote")]
    remote: Option<remote::Set>,
}

#[derive(Debug)]
struct Shard {
    path: PathBuf,
    stamp: Stamp,
}

/// What identifies a shard's content: size, modification time, and (on Unix) the inode and its
/// change time, which a rewrite changes even when it restores the size and modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: u128,
    ctime_ns: i128,
    inode: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Self {
        let mtime_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        #[cfg(unix)]
        let (ctime_ns, inode) = {
            use std::os::unix::fs::MetadataExt;
            (
                i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
                meta.ino(),
            )
        };
        #[cfg(not(unix))]
        let (ctime_ns, inode) = (0, 0);
        Self {
            size: meta.len(),
            mtime_ns,
            ctime_ns,
            inode,
        }
    }
}

#[derive(Debug)]
struct Sample {
    shard: u32,
    key: String,
    entry: Entry,
}

/// One sample in a shard's index.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Entry {
    /// The image member's data: `size` bytes at `offset`.
    Image {
        offset: u64,
        size: u64,
        label: usize,
    },
    /// Why the sample cannot be read.
    Broken { reason: String },
}

/// A shard's index file.
#[derive(Serialize, Deserialize)]
struct Index {
    version: u32,
    stamp: Stamp,
    samples: Vec<(String, Entry)>,
    /// xxh3 of the samples' JSON: an index edited by hand or damaged on disk is rebuilt.
    check: u64,
}

impl Index {
    /// Whether every entry fits the shard: image data inside the file, in increasing offset
    /// order without overlaps (so no two samples share bytes and no more samples than the file
    /// can hold), at most the per-image size limit, labels at most [`MAX_LABEL`], keys unique.
    fn plausible(&self) -> bool {
        if self.check != digest(&self.samples) {
            return false;
        }
        let mut end = 0u64;
        let mut keys = std::collections::HashSet::new();
        self.samples.iter().all(|(key, entry)| {
            keys.insert(key.as_str())
                && match *entry {
                    Entry::Image {
                        offset,
                        size,
                        label,
                    } => {
                        let fits = offset >= end
                            && size <= MAX_FILE_BYTES
                            && label <= MAX_LABEL
                            && offset
                                .checked_add(size)
                                .is_some_and(|e| e <= self.stamp.size);
                        end = offset.saturating_add(size.max(1));
                        fits
                    }
                    Entry::Broken { .. } => true,
                }
        })
    }
}

impl TarShards {
    /// Opens the shards `paths`, in that order, building or reusing each one's index. Class
    /// names come from `classes.txt` beside the first shard (one per line) if there is one,
    /// else the labels are their own names (`0` .. `max label`).
    pub fn open(paths: &[PathBuf]) -> Result<Self, SourceError> {
        let first = paths.first().ok_or_else(|| SourceError::NoImages {
            path: PathBuf::from("(no shards)"),
        })?;
        let mut shards = Vec::with_capacity(paths.len());
        let mut samples = Vec::new();
        let mut seen: HashMap<String, u32> = HashMap::new();
        for (n, path) in paths.iter().enumerate() {
            let index = load_or_build_index(path)?;
            for (key, entry) in index.samples {
                let entry = match seen.insert(key.clone(), n as u32) {
                    Some(other) => Entry::Broken {
                        reason: format!(
                            "duplicate key (also in {})",
                            paths[other as usize].display()
                        ),
                    },
                    None => entry,
                };
                samples.push(Sample {
                    shard: n as u32,
                    key,
                    entry,
                });
            }
            shards.push(Shard {
                path: path.clone(),
                stamp: index.stamp,
            });
        }
        if samples.is_empty() {
            return Err(SourceError::NoImages {
                path: first.clone(),
            });
        }
        let file = first.with_file_name("classes.txt");
        let text = if file.is_file() {
            Some(
                crate::file::read_to_string(&file, crate::file::FileKind::Classes)
                    .map_err(|e| SourceError::io(&file, e))?,
            )
        } else {
            None
        };
        let classes = class_names(text.as_deref(), &file.display().to_string(), &mut samples);
        Ok(Self {
            shards,
            samples,
            classes,
            #[cfg(feature = "remote")]
            remote: None,
        })
    }

    fn shard_error(&self, index: usize, reason: String) -> SourceError {
        let s = &self.samples[index];
        SourceError::BadShardSample {
            shard: self.shards[s.shard as usize].path.clone(),
            key: s.key.clone(),
            reason,
        }
    }
}

/// `classes.txt` beside `first`, or numbers; labels outside the classes make broken samples.
fn class_names(text: Option<&str>, file: &str, samples: &mut [Sample]) -> Vec<String> {
    let classes: Vec<String> = if let Some(text) = text {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    } else {
        let max = samples
            .iter()
            .filter_map(|s| match s.entry {
                Entry::Image { label, .. } => Some(label),
                Entry::Broken { .. } => None,
            })
            .max()
            .unwrap_or(0);
        (0..=max).map(|l| l.to_string()).collect()
    };
    for s in samples.iter_mut() {
        if let Entry::Image { label, .. } = s.entry {
            if label >= classes.len() {
                s.entry = Entry::Broken {
                    reason: format!("label {label}, but {file} names {} classes", classes.len()),
                };
            }
        }
    }
    classes
}

impl Source for TarShards {
    fn len(&self) -> usize {
        self.samples.len()
    }

    fn label(&self, index: usize) -> usize {
        match self.samples[index].entry {
            Entry::Image { label, .. } => label,
            Entry::Broken { .. } => 0,
        }
    }

    fn classes(&self) -> &[String] {
        &self.classes
    }

    fn shard_sizes(&self) -> Option<Vec<usize>> {
        let mut sizes = vec![0; self.shards.len()];
        for s in &self.samples {
            sizes[s.shard as usize] += 1;
        }
        Some(sizes)
    }

    fn plan(&self, _order: &[usize]) {
        #[cfg(feature = "remote")]
        if let Some(r) = &self.remote {
            r.plan(self, _order);
        }
    }

    fn name(&self, index: usize) -> String {
        let s = &self.samples[index];
        format!("{}:{}", self.shards[s.shard as usize].path.display(), s.key)
    }

    fn read(&self, index: usize) -> Result<Payload, SourceError> {
        let (offset, size) = match &self.samples[index].entry {
            Entry::Image { offset, size, .. } => (*offset, *size),
            Entry::Broken { reason } => return Err(self.shard_error(index, reason.clone())),
        };
        #[cfg(feature = "remote")]
        if let Some(r) = &self.remote {
            return r.read(self, index, (offset, size));
        }
        let shard = &self.shards[self.samples[index].shard as usize];
        let io = |e| self.shard_error(index, format!("read failed: {e}"));
        let (file, _) = crate::file::open_regular(&shard.path).map_err(io)?;
        let now = Stamp::of(&file.metadata().map_err(io)?);
        if now != shard.stamp {
            return Err(self.shard_error(
                index,
                format!(
                    "the shard changed after it was indexed ({} bytes then, {} now, or a newer \
                     modification time): open the dataset again",
                    shard.stamp.size, now.size
                ),
            ));
        }
        let mut buf = crate::pool::take(size as usize);
        read_exact_at(&file, &mut buf, offset).map_err(io)?;
        Ok(Payload::Encoded(buf))
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(mut file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

/// Where a shard's index is cached: beside it, else (read-only folder) in the cache folder.
fn index_paths(shard: &Path) -> [PathBuf; 2] {
    let mut beside = shard.as_os_str().to_owned();
    beside.push(".idx");
    let full = std::fs::canonicalize(shard).unwrap_or_else(|_| shard.to_path_buf());
    let hash = xxhash_rust::xxh3::xxh3_64(full.as_os_str().as_encoded_bytes());
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("augloader/shard-index")
        .join(format!("{hash:016x}.idx"));
    [PathBuf::from(beside), cache]
}

fn load_or_build_index(shard: &Path) -> Result<Index, SourceError> {
    let meta = std::fs::metadata(shard).map_err(|e| SourceError::io(shard, e))?;
    if !meta.is_file() {
        return Err(SourceError::io(
            shard,
            std::io::Error::other("a shard must be a regular file"),
        ));
    }
    let stamp = Stamp::of(&meta);
    let places = index_paths(shard);
    for p in &places {
        let cached = crate::file::read(p, crate::file::FileKind::Index)
            .ok()
            .and_then(|b| serde_json::from_slice::<Index>(&b).ok());
        // An index is used only if it describes this very file and every entry is possible
        // in it; anything else (old, foreign, damaged or forged) is rebuilt, never trusted.
        if let Some(index) = cached.filter(|i| i.version == INDEX_VERSION && i.stamp == stamp) {
            if index.plausible() {
                return Ok(index);
            }
        }
    }
    let samples = build_index(shard, stamp.size)?;
    let index = Index {
        version: INDEX_VERSION,
        stamp,
        check: digest(&samples),
        samples,
    };
    // Best effort: an index that cannot be written is rebuilt next time.
    let bytes = serde_json::to_vec(&index).expect("an index serialises");
    for p in &places {
        if write_atomically(p, &bytes).is_ok() {
            break;
        }
    }
    Ok(index)
}

/// The check of an index's samples.
fn digest(samples: &[(String, Entry)]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(&serde_json::to_vec(samples).expect("samples serialise"))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        // Temporaries of dead writers under the names of earlier versions (`NAME.tmpPID`).
        if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            crate::output::remove_stale(dir, &format!("{name}.tmp"), "");
        }
    }
    crate::output::write_replacing(path, bytes)
}

/// (key, extension) of a member path: the key runs to the first dot of the base name.
pub(crate) fn split_key(path: &str) -> Option<(&str, &str)> {
    let base = path.rfind('/').map_or(0, |i| i + 1);
    let dot = path[base..].find('.')? + base;
    Some((&path[..dot], &path[dot + 1..]))
}

/// A sample's members while the headers are read.
#[derive(Default)]
struct Group {
    key: String,
    image: Option<(u64, u64)>,
    cls: Option<(u64, u64)>,
    json: Option<(u64, u64)>,
}

/// One pass over the tar headers of `shard` (`len` bytes): the samples, in order.
fn build_index(shard: &Path, len: u64) -> Result<Vec<(String, Entry)>, SourceError> {
    let mut file = file_for(shard)?;
    // A second handle reads the label members while the first walks the headers.
    let mut labels = file_for(shard)?;
    let mut samples: Vec<(String, Entry)> = Vec::new();
    let mut keys: HashMap<String, usize> = HashMap::new();
    let mut group: Option<Group> = None;
    let mut end = 0u64;
    let mut cut: Cut = None;
    {
        let mut archive = tar::Archive::new(&mut file);
        // Raw: long-name and pax records come as entries, read here within a limit (the tar
        // crate would read them whole, whatever size they declare).
        let entries = archive
            .entries_with_seek()
            .map_err(|e| corrupt(shard, &e))?
            .raw(true);
        let mut long_name: Option<String> = None;
        for entry in entries {
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    cut = Some((None, format!("corrupt or cut short after byte {end}: {e}; the rest of the shard is lost")));
                    break;
                }
            };
            let kind = entry.header().entry_type();
            if kind.is_gnu_longname() || kind.is_pax_local_extensions() {
                match name_record(&mut entry, end) {
                    Ok(name) => long_name = name,
                    Err(why) => cut = Some((None, why)),
                }
                if cut.is_some() {
                    break;
                }
                continue;
            }
            if !kind.is_file() {
                long_name = None;
                continue;
            }
            let name = long_name
                .take()
                .unwrap_or_else(|| String::from_utf8_lossy(&entry.path_bytes()).into_owned());
            let (offset, size) = (entry.raw_file_position(), entry.size());
            if offset.saturating_add(size) > len {
                let key = split_key(&name).map_or(name.clone(), |(k, _)| k.to_string());
                let reason =
                    format!("cut short inside member {name}; the rest of the shard is lost");
                cut = Some((Some(key), reason));
                break;
            }
            end = (offset + size).div_ceil(512) * 512;
            let Some((key, ext)) = split_key(&name) else {
                continue;
            };
            if group.as_ref().is_none_or(|g| g.key != key) {
                if let Some(g) = group.take() {
                    finish(&mut labels, g, &mut samples, &mut keys);
                }
                group = Some(Group {
                    key: key.to_string(),
                    ..Default::default()
                });
            }
            let g = group.as_mut().expect("set above");
            let ext = ext.to_ascii_lowercase();
            if SHARD_IMAGE_EXTENSIONS.contains(&ext.as_str()) {
                g.image.get_or_insert((offset, size));
            } else if ext == "cls" {
                g.cls = Some((offset, size));
            } else if ext == "json" {
                g.json = Some((offset, size));
            }
        }
    }
    if cut.is_none() && !has_end_blocks(&mut file, end, len) {
        let reason = format!("cut short: no end-of-archive blocks after byte {end} of {len}");
        cut = Some((None, reason));
    }
    end_of_shard(&mut labels, group, cut, &mut samples, &mut keys);
    Ok(samples)
}

/// Most bytes of a GNU long-name or pax record (a path is at most a few KiB).
const MAX_NAME_RECORD: u64 = 64 << 10;

/// The path a GNU long-name or pax record gives the next member (None: a pax record without
/// one), read within [`MAX_NAME_RECORD`].
/// The error says where (`end`: the end of the last member) and that the rest is lost.
fn name_record<R: Read>(entry: &mut tar::Entry<'_, R>, end: u64) -> Result<Option<String>, String> {
    let lost = |why: String| format!("{why} after byte {end}; the rest of the shard is lost");
    let size = entry.size();
    if size > MAX_NAME_RECORD {
        return Err(lost(format!(
            "a name record of {size} bytes (over {MAX_NAME_RECORD})"
        )));
    }
    let mut buf = Vec::new();
    (&mut *entry)
        .take(MAX_NAME_RECORD)
        .read_to_end(&mut buf)
        .map_err(|e| lost(format!("a name record that cannot be read ({e})")))?;
    if entry.header().entry_type().is_gnu_longname() {
        let name = buf.split(|&b| b == 0).next().unwrap_or_default();
        return Ok(Some(String::from_utf8_lossy(name).into_owned()));
    }
    for ext in tar::PaxExtensions::new(&buf) {
        let ext = ext.map_err(|e| lost(format!("a pax record that cannot be parsed ({e})")))?;
        if ext.key() == Ok("path") {
            return Ok(Some(
                String::from_utf8_lossy(ext.value_bytes()).into_owned(),
            ));
        }
    }
    Ok(None)
}

/// Where a cut was found: the key of the member cut (if known) and why.
type Cut = Option<(Option<String>, String)>;

/// Adds the last sample of a shard and, if the shard was cut short, a broken sample saying so.
fn end_of_shard(
    labels: &mut File,
    group: Option<Group>,
    cut: Cut,
    samples: &mut Vec<(String, Entry)>,
    keys: &mut HashMap<String, usize>,
) {
    // The sample being read when the shard ended is broken if the cut member was one of its
    // own; otherwise it is complete, and the cut is reported under the next key (or after it).
    let last_key = group.as_ref().map(|g| g.key.clone());
    match (cut, group) {
        (Some((Some(key), reason)), Some(g)) if g.key == key => {
            samples.push((g.key, Entry::Broken { reason }))
        }
        (cut, g) => {
            if let Some(g) = g {
                finish(labels, g, samples, keys);
            }
            if let Some((key, reason)) = cut {
                let key = key.unwrap_or_else(|| match &last_key {
                    Some(k) => format!("(after {k})"),
                    None => "(first member)".into(),
                });
                samples.push((key, Entry::Broken { reason }));
            }
        }
    }
}

fn file_for(shard: &Path) -> Result<File, SourceError> {
    crate::file::open_regular(shard)
        .map(|(f, _)| f)
        .map_err(|e| SourceError::io(shard, e))
}

fn corrupt(shard: &Path, e: &std::io::Error) -> SourceError {
    SourceError::BadShardSample {
        shard: shard.to_path_buf(),
        key: "(first header)".to_string(),
        reason: format!("corrupt tar: {e}"),
    }
}

/// A tar ends with two zero blocks after its last member.
fn has_end_blocks(file: &mut File, end: u64, len: u64) -> bool {
    if end + 1024 > len {
        return false;
    }
    let mut block = [0u8; 1024];
    file.seek(SeekFrom::Start(end)).is_ok()
        && file.read_exact(&mut block).is_ok()
        && block.iter().all(|&b| b == 0)
}

/// Turns a finished group into an index entry.
fn finish(
    file: &mut File,
    g: Group,
    samples: &mut Vec<(String, Entry)>,
    keys: &mut HashMap<String, usize>,
) {
    let entry = match keys.insert(g.key.clone(), samples.len()) {
        Some(_) => Entry::Broken {
            reason: "duplicate key: its members are not next to each other".into(),
        },
        None => sample_entry(file, &g),
    };
    samples.push((g.key, entry));
}

fn sample_entry(file: &mut File, g: &Group) -> Entry {
    let broken = |reason: String| Entry::Broken { reason };
    let Some((offset, size)) = g.image else {
        return broken(format!(
            "no image member ({})",
            SHARD_IMAGE_EXTENSIONS.join(", ")
        ));
    };
    if size > MAX_FILE_BYTES {
        return broken(format!("image of {size} bytes, over {MAX_FILE_BYTES}"));
    }
    let label = match (g.cls, g.json) {
        (Some(m), _) => read_small(file, m).and_then(|t| {
            let t = t.trim();
            t.parse::<usize>().map_err(|_| {
                if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
                    format!(".cls holds class number {t}, over {MAX_LABEL}")
                } else {
                    format!(".cls holds {t:?}, not a class number")
                }
            })
        }),
        (None, Some(m)) => read_small(file, m).and_then(|t| {
            let v: serde_json::Value =
                serde_json::from_str(&t).map_err(|e| format!(".json: {e}"))?;
            v.get("label")
                .and_then(serde_json::Value::as_u64)
                .map(|l| l as usize)
                .ok_or_else(|| ".json has no non-negative integer \"label\"".to_string())
        }),
        (None, None) => Err("no label (a .cls member, or .json with a \"label\")".into()),
    };
    match label {
        Ok(l) if l <= MAX_LABEL => Entry::Image {
            offset,
            size,
            label: l,
        },
        Ok(l) => broken(format!("label {l} over {MAX_LABEL}")),
        Err(e) => broken(e),
    }
}

/// A label member's text (at most 64 KiB).
fn read_small(file: &mut File, (offset, size): (u64, u64)) -> Result<String, String> {
    if size > 64 << 10 {
        return Err(format!("label member of {size} bytes"));
    }
    let mut buf = vec![0u8; size as usize];
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(&mut buf))
        .map_err(|e| format!("label unreadable: {e}"))?;
    String::from_utf8(buf).map_err(|_| "label is not UTF-8 text".into())
}

/// Expands brace groups: `{000..012}` (zero-padded to the first number's width) and `{a,b}`.
pub(crate) fn expand_braces(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('{') else {
        if pattern.contains('}') {
            return Err(format!("{pattern}: '}}' without '{{'"));
        }
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find('}')
        .map(|i| i + open)
        .ok_or_else(|| format!("{pattern}: '{{' without '}}'"))?;
    let (head, body, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    if head.contains('}') {
        return Err(format!("{pattern}: '}}' without '{{'"));
    }
    if body.contains('{') {
        return Err(format!(
            "{pattern}: nested braces are not supported (one {{A..B}} or {{a,b}} per part)"
        ));
    }
    let items: Vec<String> = if let Some((a, b)) = body.split_once("..") {
        let bad = || format!("{pattern}: {{{body}}} is not a range of numbers");
        let (lo, hi): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if lo > hi || hi - lo >= MAX_SHARDS as u64 {
            return Err(format!(
                "{pattern}: range {lo}..{hi} is empty or over {MAX_SHARDS}"
            ));
        }
        (lo..=hi).map(|n| format!("{n:0w$}", w = a.len())).collect()
    } else {
        body.split(',').map(String::from).collect()
    };
    let mut out = Vec::new();
    let mut bytes = 0usize;
    for rest in expand_braces(tail)? {
        for item in &items {
            out.push(format!("{head}{item}{rest}"));
            bytes += out.last().map_or(0, String::len);
            if out.len() > MAX_SHARDS || bytes > MAX_PATTERN_BYTES {
                return Err(format!(
                    "{pattern}: more than {MAX_SHARDS} shards or {} MiB of paths",
                    MAX_PATTERN_BYTES >> 20
                ));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The shards of `split` that `data` names: a brace pattern or one `.tar` file (for the
/// validation split of a pattern whose file name says `train`, the `val*.tar` files beside it),
/// or a folder's `train-*.tar` / `val-*.tar`. `None`: `data` names no shards.
pub fn shard_paths(data: &Path, split: Split) -> Result<Option<Vec<PathBuf>>, SourceError> {
    let text = data.to_string_lossy();
    if text.contains('{') || text.ends_with(".tar") {
        let name = data.file_name().map(|n| n.to_string_lossy().into_owned());
        if let (Split::Val, Some((prefix, _))) =
            (split, name.as_deref().and_then(|n| n.split_once("train")))
        {
            let dir = data.parent().unwrap_or(Path::new("."));
            let found = tars_in(dir, &format!("{prefix}val"))?;
            if found.is_empty() {
                return Err(SourceError::io(
                    dir,
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("no validation shards for {text} ({prefix}val*.tar)"),
                    ),
                ));
            }
            return Ok(Some(found));
        }
        let paths: Vec<PathBuf> = expand_braces(&text)
            .map_err(|reason| SourceError::BadShardPattern { reason })?
            .into_iter()
            .map(PathBuf::from)
            .collect();
        if let Some(missing) = paths.iter().find(|p| !p.exists()) {
            return Err(SourceError::io(
                missing,
                std::io::Error::new(std::io::ErrorKind::NotFound, "shard not found"),
            ));
        }
        return Ok(Some(paths));
    }
    if data.is_dir() {
        let found = tars_in(data, &format!("{}-", split.folder()))?;
        if !found.is_empty() {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// The `.tar` files in `dir` whose names start with `prefix`, sorted.
fn tars_in(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>, SourceError> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| SourceError::io(dir, e))? {
        let e = e.map_err(|e| SourceError::io(dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) && name.ends_with(".tar") {
            found.push(e.path());
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_braces() {
        assert_eq!(
            split_key("a/b.c/x01.seg.png"),
            Some(("a/b.c/x01", "seg.png"))
        );
        assert_eq!(split_key("x01.jpg"), Some(("x01", "jpg")));
        assert_eq!(split_key("noext"), None);
        assert_eq!(
            expand_braces("d/s-{008..011}.tar").unwrap(),
            ["d/s-008.tar", "d/s-009.tar", "d/s-010.tar", "d/s-011.tar"]
        );
        assert_eq!(
            expand_braces("{a,b}-{0..1}").unwrap(),
            ["a-0", "a-1", "b-0", "b-1"]
        );
        assert!(expand_braces("s-{3..1}.tar").is_err());
        assert!(expand_braces("s-{0..x}.tar").is_err());
        assert!(expand_braces("s-{0..1.tar").is_err());
    }

    /// An index whose check matches but whose entries cannot be this shard's is not used.
    #[test]
    fn implausible_indexes_are_not_used() {
        let stamp = Stamp {
            size: 10_000,
            mtime_ns: 1,
            ctime_ns: 1,
            inode: 1,
        };
        let image = |offset, size, label| Entry::Image {
            offset,
            size,
            label,
        };
        let index = |samples: Vec<(String, Entry)>| Index {
            version: INDEX_VERSION,
            stamp,
            check: digest(&samples),
            samples,
        };
        let ok = index(vec![
            ("a".into(), image(512, 100, 0)),
            ("b".into(), image(1536, 100, 1)),
        ]);
        assert!(ok.plausible());
        for bad in [
            vec![("a".into(), image(512, 1 << 60, 0))],
            vec![("a".into(), image(u64::MAX - 3, 100, 0))],
            vec![("a".into(), image(9_990, 100, 0))],
            vec![("a".into(), image(512, 100, usize::MAX))],
            vec![
                ("a".into(), image(512, 100, 0)),
                ("b".into(), image(512, 100, 0)),
            ],
            vec![
                ("a".into(), image(512, 100, 0)),
                ("a".into(), image(1536, 100, 0)),
            ],
        ] {
            assert!(!index(bad).plausible());
        }
        let mut edited = ok;
        edited.samples[1].0 = "c".into();
        assert!(!edited.plausible(), "an edit without its check");
    }
}
