//! The mutation harness shared by the mutation tests of the loader and the trainer: a seeded
//! mutator of outside bytes, and a runner that checks each case ends without a panic, within a
//! time and under an allocation bound (a counting allocator watches the test binary).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

/// The system allocator, counting the bytes live and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Most bytes one case may hold at once beyond what was live before it: the decode limit below
/// (4 megapixels, a 16-bit RGBA intermediate at most) with room for the pipeline's buffers.
const CASE_BYTES: usize = 160 << 20;
const CASE_TIME: Duration = Duration::from_secs(5);

pub fn cases() -> usize {
    std::env::var("AUGLOADER_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150)
}

/// One mutation of `bytes`: a cut, flipped bytes, an extreme 16- or 32-bit field, or a
/// duplicated or deleted run.
fn mutate(bytes: &[u8], rng: &mut impl Rng) -> Vec<u8> {
    let mut m = bytes.to_vec();
    let n = m.len().max(1);
    match rng.random_range(0..5) {
        0 => m.truncate(rng.random_range(0..n)),
        1 => {
            for _ in 0..rng.random_range(1..9) {
                let i = rng.random_range(0..n).min(m.len().saturating_sub(1));
                if let Some(b) = m.get_mut(i) {
                    *b ^= 1 << rng.random_range(0..8);
                }
            }
        }
        2 | 3 => {
            let width = if rng.random_bool(0.5) { 2 } else { 4 };
            let values: [u32; 5] = [0, 1, 0x7FFF, 0xFFFF, u32::MAX];
            let v = values[rng.random_range(0..values.len())].to_be_bytes();
            let at = rng.random_range(0..n);
            for (k, b) in v[4 - width..].iter().enumerate() {
                if let Some(x) = m.get_mut(at + k) {
                    *x = *b;
                }
            }
        }
        _ => {
            let at = rng.random_range(0..n).min(m.len());
            let len = rng.random_range(1..64).min(m.len() - at);
            if rng.random_bool(0.5) {
                let run: Vec<u8> = m[at..at + len].to_vec();
                m.splice(at..at, run);
            } else {
                m.drain(at..at + len);
            }
        }
    }
    m
}

/// One test at a time: the allocation counters are the process's.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `case` on `cases()` mutations of `bytes`; returns how many.
pub fn run(name: &str, bytes: &[u8], seed: u64, case: impl Fn(&[u8])) -> usize {
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = cases();
    let mut most = 0;
    for k in 0..n {
        let m = mutate(bytes, &mut rng);
        let before = LIVE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let t = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&m)));
        let (took, peak) = (t.elapsed(), PEAK.load(Ordering::Relaxed));
        assert!(outcome.is_ok(), "{name}: case {k} panicked");
        assert!(took < CASE_TIME, "{name}: case {k} took {took:?}");
        assert!(
            peak.saturating_sub(before) < CASE_BYTES,
            "{name}: case {k} held {} MiB at once",
            (peak - before) >> 20
        );
        most = most.max(peak.saturating_sub(before));
    }
    eprintln!("{name}: {n} cases, at most {} KiB held at once", most >> 10);
    n
}
