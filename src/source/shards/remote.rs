//! Tar shards at URLs: indexed from the `.idx` beside each shard when the server has one (checked
//! against the shard's size), else from the shard itself, fetched into the cache and indexed
//! there (the index kept in the cache for the next open). Reads go through the cache, which
//! fetches the epoch's shards ahead in its order.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::{
    build_index, class_names, digest, read_exact_at, Entry, Index, Sample, Shard, Stamp, TarShards,
    INDEX_VERSION,
};
use crate::remote::{self, Ahead, Cache, Failure, Meta, Object, RemoteOptions};
use crate::source::{Payload, SourceError};

/// The remote side of a [`TarShards`]: the cache, each shard's object and version, and the
/// fetchers ahead of the reads.
#[derive(Debug)]
pub(crate) struct Set {
    cache: Arc<Cache>,
    objects: Arc<Vec<(String, Object, Meta)>>,
    ahead: Arc<Ahead>,
    missing: Vec<(String, String)>,
}

fn err(url: &str, message: impl std::fmt::Display) -> SourceError {
    SourceError::Remote {
        url: url.to_string(),
        reason: message.to_string(),
    }
}

/// `f` tried `retries + 1` times with backoff while its failures are transient.
fn retrying<T>(retries: u32, mut f: impl FnMut() -> Result<T, Failure>) -> Result<T, Failure> {
    let mut attempt = 0;
    loop {
        match f() {
            Err(e) if e.transient && attempt < retries => {
                std::thread::sleep(std::time::Duration::from_millis(250 << attempt.min(6)));
                attempt += 1;
            }
            r => return r,
        }
    }
}

impl TarShards {
    /// Opens the shards at `urls` (`http(s)://`, `s3://`, `gs://`, `az://`, `pipe:CMD`), in that
    /// order, through the cache of `opts`. `classes.txt` is read from beside the first shard.
    /// A shard that cannot be reached is an error naming its URL, or with
    /// `opts.skip_missing` left out and listed by [`TarShards::missing`].
    pub fn open_urls(urls: &[String], opts: RemoteOptions) -> Result<Self, SourceError> {
        let first = urls.first().ok_or_else(|| SourceError::NoImages {
            path: PathBuf::from("(no shards)"),
        })?;
        let cache = Arc::new(Cache::new(opts.clone()).map_err(|e| err(first, e))?);
        let (mut shards, mut samples, mut objects, mut missing) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut seen: HashMap<String, u32> = HashMap::new();
        for url in urls {
            let obj = remote::open(url, opts.timeout).map_err(|e| err(url, e))?;
            let (meta, index) = match index_remote(&cache, url, &obj) {
                Ok(x) => x,
                Err((e, reachable)) if opts.skip_missing && !reachable => {
                    let why = e.to_string();
                    let why = why.strip_prefix(&format!("{url}: ")).unwrap_or(&why);
                    missing.push((url.clone(), why.to_string()));
                    continue;
                }
                Err((e, _)) => return Err(e),
            };
            let n = shards.len() as u32;
            for (key, entry) in index.samples {
                let entry = match seen.insert(key.clone(), n) {
                    Some(other) => Entry::Broken {
                        reason: format!("duplicate key (also in {})", urls[other as usize]),
                    },
                    None => entry,
                };
                samples.push(Sample {
                    shard: n,
                    key,
                    entry,
                });
            }
            shards.push(Shard {
                path: PathBuf::from(url),
                stamp: index.stamp,
            });
            objects.push((url.clone(), obj, meta));
        }
        if samples.is_empty() {
            return Err(err(first, "no samples in the shards that could be read"));
        }
        let classes_url = remote::sibling(first, "classes.txt");
        let text = match &classes_url {
            Some(u) => {
                let obj = remote::open(u, opts.timeout).map_err(|e| err(u, e))?;
                retrying(opts.retries, || obj.fetch_small(1 << 20))
                    .map_err(|e| err(u, e.message))?
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            }
            None => None,
        };
        let origin = classes_url.unwrap_or_else(|| "classes.txt".into());
        let classes = class_names(text.as_deref(), &origin, &mut samples);
        let objects = Arc::new(objects);
        let ahead = start_fetchers(&cache, &objects, &opts);
        Ok(TarShards {
            shards,
            samples,
            classes,
            remote: Some(Set {
                cache,
                objects,
                ahead,
                missing,
            }),
        })
    }

    /// Opens the shards a URL pattern names: one URL, or a brace range
    /// (`s3://bucket/train-{000000..000099}.tar`), as [`TarShards::open_urls`].
    pub fn open_url_pattern(pattern: &str, opts: RemoteOptions) -> Result<Self, SourceError> {
        let urls = super::expand_braces(pattern)
            .map_err(|reason| SourceError::BadShardPattern { reason })?;
        Self::open_urls(&urls, opts)
    }

    /// The shards left out because they could not be reached (URL, why), with
    /// `skip_missing`.
    pub fn missing(&self) -> &[(String, String)] {
        self.remote.as_ref().map_or(&[], |r| &r.missing)
    }
}

/// Fetch threads, at most as far ahead as the cache holds shards of the largest size.
fn start_fetchers(
    cache: &Arc<Cache>,
    objects: &Arc<Vec<(String, Object, Meta)>>,
    opts: &RemoteOptions,
) -> Arc<Ahead> {
    let largest = objects.iter().map(|o| o.2.size).max().unwrap_or(1).max(1);
    let fit = (opts.cache_size / largest) as usize;
    let (cache, objects) = (cache.clone(), objects.clone());
    // One place stays free for a shard that a reader needs before the fetchers reach it.
    Ahead::start(2, opts.ahead.min(fit.saturating_sub(1)).max(1), move |s| {
        let (url, obj, meta) = &objects[s];
        // Errors come back to the reader, which fetches again and names them.
        let _ = cache.fetch(url, obj, Some(meta), &[]);
    })
}

/// The size, version and index of the shard at `url`; on failure, the error and whether the
/// shard was reachable (a shard that was reached but is damaged is never skipped as missing).
fn index_remote(
    cache: &Cache,
    url: &str,
    obj: &Object,
) -> Result<(Meta, Index), (SourceError, bool)> {
    let retries = cache.opts.retries;
    let head = retrying(retries, || obj.head()).map_err(|e| (err(url, e.message), false))?;
    if let Some(meta) = &head {
        let usable =
            |i: &Index| i.version == INDEX_VERSION && i.stamp.size == meta.size && i.plausible();
        let beside = remote::open(&format!("{url}.idx"), cache.opts.timeout)
            .ok()
            .and_then(|o| {
                retrying(retries, || {
                    o.fetch_small(crate::file::FileKind::Index.limit())
                })
                .ok()
            })
            .flatten();
        let kept =
            crate::file::read(&cache.index_path(url, meta), crate::file::FileKind::Index).ok();
        for bytes in [beside, kept].into_iter().flatten() {
            if let Some(i) = serde_json::from_slice::<Index>(&bytes).ok().filter(usable) {
                return Ok((meta.clone(), i));
            }
        }
    }
    // No usable index: the shard itself, fetched into the cache and indexed there.
    let (local, _file, meta) = cache
        .fetch(url, obj, head.as_ref(), &[])
        .map_err(|e| (err(url, e), false))?;
    let samples = build_index(&local, meta.size).map_err(|e| (e, true))?;
    let index = Index {
        version: INDEX_VERSION,
        stamp: Stamp {
            size: meta.size,
            mtime_ns: 0,
            ctime_ns: 0,
            inode: 0,
        },
        check: digest(&samples),
        samples,
    };
    let bytes = serde_json::to_vec(&index).expect("an index serialises");
    // Best effort: an index that cannot be kept is built again next time.
    let _ = std::fs::write(cache.index_path(url, &meta), bytes);
    Ok((meta, index))
}

impl Set {
    /// Sample `index`'s image bytes, from its shard in the cache (fetched if it is not there).
    pub(crate) fn read(
        &self,
        shards: &TarShards,
        index: usize,
        (offset, size): (u64, u64),
    ) -> Result<Payload, SourceError> {
        let s = shards.samples[index].shard as usize;
        let live: Vec<&str> = self
            .ahead
            .reading(s)
            .into_iter()
            .map(|k| self.objects[k].0.as_str())
            .collect();
        let (url, obj, meta) = &self.objects[s];
        let (_, file, _) = self
            .cache
            .fetch(url, obj, Some(meta), &live)
            .map_err(|e| shards.shard_error(index, e))?;
        let io = |e| shards.shard_error(index, format!("read failed: {e}"));
        let len = file.metadata().map_err(io)?.len();
        if len != meta.size {
            return Err(shards.shard_error(
                index,
                format!("the cached copy holds {len} of {} bytes", meta.size),
            ));
        }
        let mut buf = crate::pool::take(size as usize);
        read_exact_at(&file, &mut buf, offset).map_err(io)?;
        Ok(Payload::Encoded(buf))
    }

    /// The epoch's shards in the order its samples `order` first read them.
    pub(crate) fn plan(&self, shards: &TarShards, order: &[usize]) {
        let mut left = vec![0usize; shards.shards.len()];
        let mut plan = Vec::new();
        for &i in order {
            let s = shards.samples[i].shard as usize;
            if left[s] == 0 {
                plan.push(s);
            }
            left[s] += 1;
        }
        self.ahead.plan(plan, left);
    }
}
