//! A minimal training binary: augloader's loader feeding a ResNet-20, trained with SGD and
//! momentum at a constant learning rate, validated after each epoch.
//!
//! usage: cargo run --release --example train_minimal -- DATA [EPOCHS]
//! (DATA holds train/ and val/ ImageFolders, e.g. from `augloader synth --out DATA`.)

use augloader::source::{open_dataset, Split};
use augloader::transform::Pipeline;
use augloader::Loader;
use augloader_train::sgd::Sgd;
use augloader_train::trainer::{evaluate, train_step, Net};
use augloader_train::BatchTensors;
use tch::Device;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data = args.next().ok_or("usage: train_minimal DATA [EPOCHS]")?;
    let epochs: u64 = args.next().map_or(Ok(2), |e| e.parse())?;
    let train = open_dataset(data.as_ref(), Split::Train)?;
    let val = open_dataset(data.as_ref(), Split::Val)?;
    let classes = train.classes().len();

    // 32 px crops: scale augmentation, flips and colour jitter for training; a resize and a
    // centre crop for validation. Both normalise with the ImageNet mean and std.
    let train_loader = Loader::builder(train, Pipeline::resnet_train().with_size(32))
        .batch_size(32)
        .workers(2)
        .seed(0)
        .drop_last(true)
        .build()?;
    let val_loader = Loader::builder(val, Pipeline::eval().with_size(32))
        .batch_size(64)
        .workers(2)
        .shuffle(false)
        .build()?;

    let device = Device::cuda_if_available();
    let net = Net::new("resnet20", classes, device, 0, false)?;
    let mut opt = Sgd::new(net.named_trainable(), 0.9, 5e-4);
    for epoch in 0..epochs {
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0i64, 0usize);
        // Batches arrive in order; each sample's augmentation depends only on (seed, epoch,
        // index), so this loop sees the same data whatever the worker count.
        for batch in train_loader.epoch(epoch) {
            let batch = batch?; // a bad image is an error naming its file
            let (x, y) = batch.to_device(device);
            let (loss, right) = train_step(net.model.as_ref(), &mut opt, (&x, &y), 0.05, 0.0, true);
            loss_sum += loss * batch.len() as f64;
            correct += right;
            seen += batch.len();
        }
        let v = evaluate(net.model.as_ref(), &val_loader, device)?;
        println!(
            "epoch {epoch}: train loss {:.3}, train acc {:.3}, val top-1 {:.3}",
            loss_sum / seen.max(1) as f64,
            correct as f64 / seen.max(1) as f64,
            v.top1
        );
    }
    Ok(())
}
