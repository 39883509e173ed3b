//! The local cache of remote shards: whole shards under `cache_dir`, at most `cache_size` bytes
//! in all (least recently used evicted first), each downloaded under a temporary name and renamed
//! when complete and checked (size, and the version it was indexed at), so that no shard is read
//! before it is whole. Processes share a cache through file locks: one downloads a shard while
//! the others wait for it, so 8 ranks on a node fetch each shard once.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::store::{Failure, Meta, Object};
use super::RemoteOptions;

/// Bytes downloaded by this process (all caches): what an epoch cost the network.
pub(crate) static FETCHED: AtomicU64 = AtomicU64::new(0);

#[derive(Debug)]
pub(crate) struct Cache {
    pub(crate) opts: RemoteOptions,
}

impl Cache {
    pub(crate) fn new(opts: RemoteOptions) -> Result<Cache, String> {
        std::fs::create_dir_all(&opts.cache_dir)
            .map_err(|e| format!("cache folder {}: {e}", opts.cache_dir.display()))?;
        Ok(Cache { opts })
    }

    /// Where `url`'s shard lives in the cache, and its sidecar file names.
    fn names(&self, url: &str) -> (PathBuf, PathBuf, PathBuf) {
        let h = xxhash_rust::xxh3::xxh3_64(url.as_bytes());
        let d = &self.opts.cache_dir;
        (
            d.join(format!("{h:016x}.tar")),
            d.join(format!("{h:016x}.json")),
            d.join(format!("{h:016x}.lock")),
        )
    }

    /// Where an index of `url` at `meta` is kept (indexes built while streaming).
    pub(crate) fn index_path(&self, url: &str, meta: &Meta) -> PathBuf {
        let h = xxhash_rust::xxh3::xxh3_64(
            format!("{url}\n{}\n{}", meta.size, meta.version).as_bytes(),
        );
        self.opts.cache_dir.join(format!("{h:016x}.idx"))
    }

    /// `url`'s shard as a complete local file, downloaded if the cache does not hold it. With
    /// `want`, the shard must still be that object (size and version): one that changed on the
    /// server is an error, never read against an index of its old self.
    pub(crate) fn fetch(
        &self,
        url: &str,
        obj: &Object,
        want: Option<&Meta>,
        live: &[&str],
    ) -> Result<(PathBuf, File, Meta), String> {
        let (tar, side, lock) = self.names(url);
        let guard = lock_file(&lock)?;
        // Opened under the shard's lock: an eviction after it leaves this handle whole.
        let open = |tar: &Path| {
            crate::file::open_regular(tar)
                .map(|(f, _)| f)
                .map_err(|e| self.disk_error(tar, e))
        };
        if let Some(have) = cached_meta(&tar, &side) {
            if want.is_none_or(|w| *w == have) {
                let f = open(&tar)?;
                // Recently used: evicted last.
                let _ = f.set_modified(SystemTime::now());
                return Ok((tar, f, have));
            }
        }
        let part = tar.with_extension(format!("part{}", std::process::id()));
        if let Some(w) = want {
            self.make_room(w.size, &self.kept(live, &tar), Some(&part))?;
        }
        let got = self.download(obj, &tar, &part, want)?;
        if want.is_none() {
            // A command's output: its size known only now.
            self.make_room(0, &self.kept(live, &tar), None)?;
        }
        std::fs::write(&side, serde_json::to_vec(&got).expect("meta serialises"))
            .map_err(|e| self.disk_error(&side, e))?;
        let f = open(&tar)?;
        drop(guard);
        Ok((tar, f, got))
    }

    /// Downloads `obj` to `tar` through the temporary `part`, trying again with backoff.
    fn download(
        &self,
        obj: &Object,
        tar: &Path,
        part: &Path,
        want: Option<&Meta>,
    ) -> Result<Meta, String> {
        let mut last = String::new();
        for attempt in 0..=self.opts.retries {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(250) * (1 << (attempt - 1).min(6)));
            }
            // The reservation (a file of the shard's size) is written over from its start.
            let mut out = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(part)
                .map_err(|e| self.disk_error(part, e))?;
            let result = obj.fetch_to(&mut out).and_then(|m| {
                out.set_len(m.size).map_err(Failure::io)?;
                out.sync_all().map_err(Failure::io)?;
                Ok(m)
            });
            drop(out);
            match result {
                Ok(m) => {
                    FETCHED.fetch_add(m.size, Ordering::Relaxed);
                    if let Some(w) = want.filter(|w| **w != m) {
                        let _ = std::fs::remove_file(part);
                        return Err(format!(
                            "the shard changed on the server since it was indexed ({} bytes, \
                             version {} then; {} bytes, version {} now): open the dataset again",
                            w.size, w.version, m.size, m.version
                        ));
                    }
                    std::fs::rename(part, tar).map_err(|e| self.disk_error(tar, e))?;
                    return Ok(m);
                }
                Err(f) => {
                    let _ = std::fs::remove_file(part);
                    if f.message.contains("No space left") {
                        return Err(self.full(part));
                    }
                    last = f.message;
                    if !f.transient {
                        break;
                    }
                }
            }
        }
        Err(format!("{last} (after {} tries)", self.opts.retries + 1))
    }

    /// `tar`, then the cache files of the `live` shards (still to be read this epoch).
    fn kept(&self, live: &[&str], tar: &Path) -> Vec<PathBuf> {
        let mut keep = vec![tar.to_path_buf()];
        keep.extend(live.iter().map(|u| self.names(u).0));
        keep
    }

    /// Evicts least recently used shards (not those in `keep`) until `size` more bytes fit
    /// under the cache's size,
    /// and reserves them as the file `part` (under the cache's lock, so that concurrent fetches
    /// see each other's reservations).
    fn make_room(&self, size: u64, keep: &[PathBuf], part: Option<&Path>) -> Result<(), String> {
        let limit = self.opts.cache_size;
        if size > limit {
            return Err(format!(
                "a shard of {size} bytes does not fit in a cache of {limit} bytes: raise \
                 --cache-size"
            ));
        }
        let _all = lock_file(&self.opts.cache_dir.join(".cache.lock"))?;
        let mut files: Vec<(SystemTime, u64, PathBuf)> = std::fs::read_dir(&self.opts.cache_dir)
            .map_err(|e| self.disk_error(&self.opts.cache_dir, e))?
            .filter_map(|e| e.ok())
            // Only the cache's own files (16 hex digits, then .tar or .partPID): a cache folder
            // pointed at a folder of the user's shards never evicts them.
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                let ours = n.len() > 17
                    && n.as_bytes()[16] == b'.'
                    && n[..16].bytes().all(|b| b.is_ascii_hexdigit());
                ours && (n.ends_with(".tar") || n[17..].starts_with("part"))
            })
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((m.modified().ok()?, m.len(), e.path()))
            })
            .collect();
        let mut used: u64 = files.iter().map(|f| f.1).sum();
        files.sort();
        // Shards not live first; live ones (still to be read this epoch) only if the size
        // demands it: the bound holds, a reader with the file open keeps its bytes, and a later
        // read fetches the shard again.
        for live in [false, true] {
            for (_, len, path) in &files {
                if used + size <= limit {
                    break;
                }
                let is_tar = path.extension().is_some_and(|x| x == "tar");
                if !is_tar || keep.first() == Some(path) || keep.contains(path) != live {
                    continue;
                }
                if std::fs::remove_file(path).is_ok() {
                    let _ = std::fs::remove_file(path.with_extension("json"));
                    used -= len;
                }
            }
        }
        if let Some(part) = part {
            File::create(part)
                .and_then(|f| f.set_len(size))
                .map_err(|e| self.disk_error(part, e))?;
        }
        Ok(())
    }

    fn disk_error(&self, path: &Path, e: std::io::Error) -> String {
        if e.kind() == std::io::ErrorKind::StorageFull {
            return self.full(path);
        }
        format!("{}: {e}", path.display())
    }

    fn full(&self, path: &Path) -> String {
        format!(
            "the cache disk is full writing {}: free space there, lower --cache-size or choose \
             another --cache-dir",
            path.display()
        )
    }
}

/// The size and version of a cached shard, when it is whole (its sidecar agrees with it).
fn cached_meta(tar: &Path, side: &Path) -> Option<Meta> {
    let bytes = crate::file::read(side, crate::file::FileKind::Index).ok()?;
    let meta: Meta = serde_json::from_slice(&bytes).ok()?;
    let len = std::fs::metadata(tar).ok()?.len();
    (len == meta.size).then_some(meta)
}

/// An exclusive lock on `path` (created if missing), held until the file is dropped.
fn lock_file(path: &Path) -> Result<File, String> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.lock().map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(f)
}
