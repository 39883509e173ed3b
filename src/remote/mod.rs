//! Shards beyond this machine (feature `remote`): tar shards named by `http(s)://`, `s3://`,
//! `gs://`, `az://` URLs or `pipe:` commands, read through a bounded local cache that fetches
//! them ahead of use in the order the epoch will read them.
//! [`crate::source::TarShards::open_urls`] opens them.

mod cache;
mod store;

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub(crate) use cache::Cache;
pub use store::{is_url, Meta};
pub(crate) use store::{open, sibling, Failure, Object};

/// How remote shards are fetched and kept.
#[derive(Clone, Debug)]
pub struct RemoteOptions {
    /// Folder of the cache (shared by the processes of a node).
    pub cache_dir: PathBuf,
    /// Most bytes the cache holds.
    pub cache_size: u64,
    /// Shards fetched ahead of the one being read (fewer where the cache holds fewer).
    pub ahead: usize,
    /// Further tries of a failed fetch (with backoff from 0.25 s, doubling).
    pub retries: u32,
    /// Time limit of one request.
    pub timeout: Duration,
    /// Leave out shards that cannot be reached (listed by
    /// [`crate::source::TarShards::missing`]) instead of failing.
    pub skip_missing: bool,
}

impl Default for RemoteOptions {
    /// `~/.cache/augloader/shards` (or `$XDG_CACHE_HOME/augloader/shards`), 20 GB, 4 shards
    /// ahead, 4 retries, 60 s requests, failing on a missing shard.
    fn default() -> Self {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        RemoteOptions {
            cache_dir: base.join("augloader/shards"),
            cache_size: 20_000_000_000,
            ahead: 4,
            retries: 4,
            timeout: Duration::from_secs(60),
            skip_missing: false,
        }
    }
}

/// Parses a size: bytes, or a number with kB/MB/GB/TB (powers of 1000) or KiB/MiB/GiB/TiB.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (for example 20GB, 512MiB)"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0f64.powi(4),
        u => {
            return Err(format!(
                "`{s}`: unknown unit `{u}` (B, kB, MB, GB, TB, KiB ... TiB)"
            ))
        }
    };
    let v = n * mult;
    if !(v.is_finite() && v >= 1.0) {
        return Err(format!("`{s}` is not a positive size"));
    }
    Ok(v as u64)
}

/// Bytes of shards this process has downloaded so far.
pub fn fetched_bytes() -> u64 {
    cache::FETCHED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The shards of a remote set, fetched ahead of reading: a few threads fetch the shards of the
/// epoch's plan in order while fewer than `capacity` shards are live (fetched or being read, with
/// samples left in the epoch), so downloads overlap decoding and a small cache never evicts a
/// shard that is still being read to make room for one read later.
#[derive(Debug)]
pub(crate) struct Ahead {
    state: Mutex<Plan>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct Plan {
    /// Shards in the order the epoch first reads them.
    order: Vec<usize>,
    /// Samples of each shard the epoch has yet to read.
    left: Vec<usize>,
    /// Next position of `order` to fetch.
    next: usize,
    stop: bool,
}

impl Plan {
    fn live(&self) -> usize {
        self.order[..self.next]
            .iter()
            .filter(|&&s| self.left[s] > 0)
            .count()
    }
}

impl Ahead {
    /// Starts `threads` fetchers calling `fetch(shard)` while fewer than `capacity` shards are
    /// live.
    pub(crate) fn start(
        threads: usize,
        capacity: usize,
        fetch: impl Fn(usize) + Send + Sync + 'static,
    ) -> Arc<Ahead> {
        let a = Arc::new(Ahead {
            state: Mutex::new(Plan::default()),
            wake: Condvar::new(),
        });
        let fetch = Arc::new(fetch);
        for _ in 0..threads.max(1) {
            let (a, fetch) = (Arc::downgrade(&a), fetch.clone());
            std::thread::Builder::new()
                .name("augloader-ahead".into())
                .spawn(move || {
                    while let Some(s) = Ahead::next(&a, capacity) {
                        fetch(s);
                    }
                })
                .expect("a fetch thread");
        }
        a
    }

    /// The next shard to fetch, waiting while `capacity` shards are live; `None` when the set
    /// is gone.
    fn next(a: &std::sync::Weak<Ahead>, capacity: usize) -> Option<usize> {
        loop {
            let a = a.upgrade()?;
            let mut p = a.state.lock().unwrap_or_else(|e| e.into_inner());
            if p.stop {
                return None;
            }
            if p.next < p.order.len() && p.live() < capacity.max(1) {
                p.next += 1;
                return Some(p.order[p.next - 1]);
            }
            let (p, _) = a
                .wake
                .wait_timeout(p, Duration::from_millis(200))
                .unwrap_or_else(|e| e.into_inner());
            drop(p);
        }
    }

    /// A new epoch: its shards in first-read order, and its samples per shard.
    pub(crate) fn plan(&self, order: Vec<usize>, left: Vec<usize>) {
        let mut p = self.state.lock().unwrap_or_else(|e| e.into_inner());
        p.order = order;
        p.left = left;
        p.next = 0;
        self.wake.notify_all();
    }

    /// A sample of shard `s` is being read; returns the live shards (not to be evicted).
    pub(crate) fn reading(&self, s: usize) -> Vec<usize> {
        let mut p = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = p.left.get_mut(s) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.wake.notify_all();
            }
        }
        let mut live: Vec<usize> = p.order[..p.next]
            .iter()
            .copied()
            .filter(|&x| p.left[x] > 0)
            .collect();
        live.push(s);
        live
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).stop = true;
    }
}
