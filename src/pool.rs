//! Reused buffers, so that a loader in its steady state maps and faults in no fresh memory.
//!
//! Fresh large allocations are expensive here: the allocator maps them, the kernel zeroes and
//! faults in every page, and unmaps them again on free (with the decode pipeline that was 44% of
//! the time). Two kinds of reuse remove that, both owned by a loader and bounded:
//! - its workers' images (file bytes, decoded windows, resized crops) come from an image pool
//!   that each worker thread enters, and that the crate's image buffers are then taken from and
//!   given back to (outside a loader's workers they are allocated and freed as usual);
//! - batch buffers come from a [`BufferPool`]; a [`Pooled`] buffer goes back to it when the
//!   batch, or the tensor sharing its memory, is dropped.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, Weak};

/// Free image buffers an [`ImagePool`] keeps at most: a batch's images are all alive when it is
/// collated, and the next batch reuses them.
const IMAGE_KEEP: usize = 4096;
/// Bytes an [`ImagePool`] keeps at most; past that the smallest buffers are freed.
const IMAGE_BYTES: usize = 256 << 20;

/// Free image buffers shared by one loader's worker threads, at most `keep` of them: the
/// loader's working set (the images of the batches in flight and of the samples being built),
/// so that buffers made outside the pool and given to it (by an op that returns a new image)
/// do not pile up over an epoch.
#[derive(Debug)]
pub(crate) struct ImagePool {
    free: Mutex<Vec<Vec<u8>>>,
    keep: usize,
}

impl Default for ImagePool {
    fn default() -> Self {
        Self::with_keep(IMAGE_KEEP)
    }
}

impl ImagePool {
    /// A pool keeping at most `keep` free buffers (and never more than [`IMAGE_KEEP`]).
    pub(crate) fn with_keep(keep: usize) -> Self {
        Self {
            free: Mutex::new(Vec::new()),
            keep: keep.clamp(1, IMAGE_KEEP),
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<ImagePool>>> = const { RefCell::new(None) };
}

/// Makes this thread take and give image buffers from and to `pool`.
pub(crate) fn enter(pool: Arc<ImagePool>) {
    CURRENT.set(Some(pool));
}

/// Makes `pool` the current thread's pool, returning the one before (for work done in a
/// caller's thread, which may serve several loaders).
pub(crate) fn swap(pool: Option<Arc<ImagePool>>) -> Option<Arc<ImagePool>> {
    CURRENT.replace(pool)
}

fn with_pool<T>(f: impl FnOnce(&mut Vec<Vec<u8>>, usize) -> T) -> Option<T> {
    CURRENT.with_borrow(|p| {
        let pool = p.as_ref()?;
        Some(f(&mut *pool.free.lock().ok()?, pool.keep))
    })
}

/// A buffer of `len` initialised bytes (of unspecified value).
pub(crate) fn take(len: usize) -> Vec<u8> {
    let mut v = take_any(len);
    v.resize(len, 0);
    v
}

/// An empty buffer with room for at least `cap` bytes.
pub(crate) fn take_empty(cap: usize) -> Vec<u8> {
    let mut v = take_any(cap);
    v.clear();
    v.reserve(cap);
    v
}

/// As [`take_empty`], failing instead of aborting when the memory is not there.
pub(crate) fn try_take_empty(cap: usize) -> Result<Vec<u8>, std::collections::TryReserveError> {
    let mut v = take_any(cap);
    v.clear();
    v.try_reserve_exact(cap)?;
    Ok(v)
}

/// A free buffer with its contents (so that `resize` initialises only what it adds): the
/// smallest that holds `cap` bytes, else the largest, else a new one.
fn take_any(cap: usize) -> Vec<u8> {
    with_pool(|free, _| {
        let fits = (0..free.len())
            .filter(|&i| free[i].capacity() >= cap)
            .min_by_key(|&i| free[i].capacity());
        let pick = fits.or_else(|| (0..free.len()).max_by_key(|&i| free[i].capacity()));
        pick.map(|i| free.swap_remove(i))
    })
    .flatten()
    .unwrap_or_default()
}

/// Returns a buffer to the pool (or frees it, past the pool's bounds or outside a loader).
pub(crate) fn give(v: Vec<u8>) {
    if v.capacity() == 0 || v.capacity() > IMAGE_BYTES {
        return;
    }
    with_pool(|free, keep| {
        free.push(v);
        // Over the bounds: free the smallest buffers first, they are the cheapest to remake.
        let mut bytes: usize = free.iter().map(Vec::capacity).sum();
        while free.len() > keep || bytes > IMAGE_BYTES {
            let i = (0..free.len())
                .min_by_key(|&i| free[i].capacity())
                .expect("not empty");
            bytes -= free.swap_remove(i).capacity();
        }
    });
}

/// A pool of buffers shared by threads; hands out [`Pooled`] buffers that come back on drop.
#[derive(Debug)]
pub(crate) struct BufferPool<T> {
    free: Arc<Mutex<Vec<Vec<T>>>>,
    keep: usize,
}

impl<T: Copy + Default> BufferPool<T> {
    /// A pool keeping at most `keep` free buffers.
    pub(crate) fn new(keep: usize) -> Self {
        Self {
            free: Arc::new(Mutex::new(Vec::new())),
            keep,
        }
    }

    /// A buffer of `len` initialised elements of unspecified value: every element must be
    /// written before it is read.
    pub(crate) fn take(&self, len: usize) -> Pooled<T> {
        let reused = self.free.lock().ok().and_then(|mut f| {
            // The smallest that holds `len`, else the largest.
            let fits = (0..f.len())
                .filter(|&i| f[i].capacity() >= len)
                .min_by_key(|&i| f[i].capacity());
            let i = fits.or_else(|| (0..f.len()).max_by_key(|&i| f[i].capacity()))?;
            Some(f.swap_remove(i))
        });
        let mut buf = reused.unwrap_or_default();
        buf.resize(len, T::default());
        Pooled {
            buf,
            home: Arc::downgrade(&self.free),
            keep: self.keep,
        }
    }
}

/// A buffer that returns to the loader's pool of batch buffers when dropped (if the pool still exists and has
/// room). Dereferences to a slice.
pub struct Pooled<T> {
    buf: Vec<T>,
    home: Weak<Mutex<Vec<Vec<T>>>>,
    keep: usize,
}

impl<T> Pooled<T> {
    /// The buffer as a plain vector, leaving the pool.
    #[cfg(test)]
    pub(crate) fn into_vec(mut self) -> Vec<T> {
        self.home = Weak::new();
        std::mem::take(&mut self.buf)
    }
}

impl<T> From<Vec<T>> for Pooled<T> {
    /// A buffer that belongs to no pool.
    fn from(buf: Vec<T>) -> Self {
        Self {
            buf,
            home: Weak::new(),
            keep: 0,
        }
    }
}

impl<T> Drop for Pooled<T> {
    fn drop(&mut self) {
        if let Some(home) = self.home.upgrade() {
            if let Ok(mut free) = home.lock() {
                if free.len() < self.keep {
                    free.push(std::mem::take(&mut self.buf));
                }
            }
        }
    }
}

impl<T> std::ops::Deref for Pooled<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf
    }
}

impl<T> std::ops::DerefMut for Pooled<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf
    }
}

impl<T: Clone> Clone for Pooled<T> {
    /// A copy that belongs to no pool.
    fn clone(&self) -> Self {
        self.buf.clone().into()
    }
}

impl<T: PartialEq> PartialEq for Pooled<T> {
    fn eq(&self, other: &Self) -> bool {
        self.buf == other.buf
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Pooled<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.buf.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_buffers_come_back_and_are_reused() {
        let pool = BufferPool::<u8>::new(2);
        let a = pool.take(1000);
        let ptr = a.as_ptr();
        drop(a);
        let b = pool.take(900);
        assert_eq!((b.as_ptr(), b.len()), (ptr, 900));
        // Detached buffers and buffers of a dropped pool are plain frees.
        let v = b.into_vec();
        assert_eq!(v.len(), 900);
        let c = pool.take(10);
        drop(pool);
        drop(c);
    }

    #[test]
    fn image_pool_is_bounded_and_only_inside_a_loader() {
        // Outside a loader: plain allocations.
        give(vec![0u8; 100]);
        assert!(take_empty(10).capacity() < 100);
        let pool = Arc::new(ImagePool::default());
        enter(pool.clone());
        for _ in 0..IMAGE_KEEP + 20 {
            give(vec![0u8; 1 << 10]);
        }
        for _ in 0..300 {
            give(vec![0u8; 1 << 20]);
        }
        give(vec![0u8; IMAGE_BYTES + 1]);
        {
            let f = pool.free.lock().unwrap();
            assert!(f.len() <= IMAGE_KEEP);
            assert!(f.iter().map(|b| b.capacity()).sum::<usize>() <= IMAGE_BYTES);
            // The largest are kept.
            assert!(f.iter().all(|b| b.capacity() == 1 << 20));
        }
        let v = take(1 << 19);
        assert_eq!((v.len(), v.capacity()), (1 << 19, 1 << 20));
        let e = take_empty(10);
        assert!(e.is_empty() && e.capacity() >= 10);
        // A loader's pool keeps its working set only.
        enter(Arc::new(ImagePool::with_keep(8)));
        for _ in 0..100 {
            give(vec![0u8; 1 << 10]);
        }
        assert_eq!(with_pool(|f, _| f.len()), Some(8));
        CURRENT.set(None);
    }
}
