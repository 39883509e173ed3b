//! How well a block shuffle (`LoaderBuilder::shuffle_window`) mixes, against the full shuffle:
//! on shards whose samples are sorted by class (the worst case: `augloader shard --keep-order`
//! of an ImageFolder), the share of same-class pairs within a batch, of same-class neighbours
//! in the epoch's order, and the classes per batch, over a few epochs. Only the order is
//! computed (no decoding).
//!
//! usage: cargo run --release --example shuffle_window -- 'SHARDS/train-{000000..000009}.tar' [BATCH]

use std::sync::Arc;

use augloader::source::{open_dataset, Source, Split};
use augloader::transform::Pipeline;
use augloader::Loader;

/// (same-class pairs within batches, same-class neighbours, classes per batch) over `epochs`.
fn mixing(
    src: &Arc<dyn Source>,
    window: Option<usize>,
    batch: usize,
    epochs: u64,
) -> (f64, f64, f64) {
    let mut b = Loader::builder(src.clone(), Pipeline::decode_only())
        .batch_size(batch)
        .workers(1);
    if let Some(w) = window {
        b = b.shuffle_window(w);
    }
    let loader = b.build().expect("a loader");
    let (mut pairs, mut same_pairs, mut next, mut same_next, mut classes, mut batches) =
        (0u64, 0u64, 0u64, 0u64, 0usize, 0usize);
    for epoch in 0..epochs {
        let labels: Vec<usize> = loader
            .indices(epoch)
            .iter()
            .map(|&i| src.label(i))
            .collect();
        for w in labels.windows(2) {
            next += 1;
            same_next += u64::from(w[0] == w[1]);
        }
        for chunk in labels.chunks(batch) {
            for (k, a) in chunk.iter().enumerate() {
                for b in &chunk[k + 1..] {
                    pairs += 1;
                    same_pairs += u64::from(a == b);
                }
            }
            let mut c = chunk.to_vec();
            c.sort();
            c.dedup();
            classes += c.len();
            batches += 1;
        }
    }
    (
        same_pairs as f64 / pairs.max(1) as f64,
        same_next as f64 / next.max(1) as f64,
        classes as f64 / batches.max(1) as f64,
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data = args.next().ok_or("usage: shuffle_window SHARDS [BATCH]")?;
    let batch: usize = args.next().map_or(Ok(64), |b| b.parse())?;
    let src = open_dataset(data.as_ref(), Split::Train)?;
    let shards = src.shard_sizes().ok_or("not shards")?.len();
    println!(
        "{} samples, {} classes, {shards} shards, batch {batch}, 5 epochs",
        src.len(),
        src.classes().len()
    );
    println!(
        "| shuffle | same-class pairs in a batch | same-class neighbours | classes per batch |"
    );
    println!("|---|---|---|---|");
    let mut rows: Vec<(String, Option<usize>)> = vec![("full".into(), None)];
    for w in [1, 2, 4, 8, 16].into_iter().filter(|w| *w <= shards) {
        rows.push((format!("window {w}"), Some(w)));
    }
    for (name, w) in rows {
        let (p, n, c) = mixing(&src, w, batch, 5);
        println!("| {name} | {p:.3} | {n:.3} | {c:.2} |");
    }
    Ok(())
}
