//! Resuming mid-epoch: a loader restarted at batch `cursor` of an epoch delivers exactly the
//! batches an uninterrupted run would have delivered from there on (same samples, same
//! augmentation, same order), because the order and every random draw depend only on
//! (seed, epoch, index). A training loop saves (epoch, cursor) with its checkpoint.
//!
//! usage: cargo run --release --example resume -- DATA

use augloader::source::{open_dataset, Split};
use augloader::transform::Pipeline;
use augloader::Loader;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = std::env::args().nth(1).ok_or("usage: resume DATA")?;
    let train = open_dataset(data.as_ref(), Split::Train)?;
    let loader = |workers| {
        Loader::builder(train.clone(), Pipeline::resnet_train().with_size(32))
            .batch_size(16)
            .workers(workers)
            .seed(7)
            .build()
    };

    // An uninterrupted epoch 1, with 2 workers.
    let full: Vec<_> = loader(2)?.epoch(1).collect::<Result<_, _>>()?;
    // A run stopped after `cursor` batches of epoch 1 and restarted, with 1 worker.
    let cursor = full.len() / 2;
    let resumed: Vec<_> = loader(1)?.epoch_from(1, cursor).collect::<Result<_, _>>()?;

    assert_eq!(resumed.len(), full.len() - cursor);
    for (a, b) in full[cursor..].iter().zip(&resumed) {
        assert_eq!(a.indices, b.indices);
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.bytes(), b.bytes());
    }
    println!(
        "epoch 1 resumed at batch {cursor} of {}: the remaining {} batches are identical, byte for byte",
        full.len(),
        resumed.len()
    );
    Ok(())
}
