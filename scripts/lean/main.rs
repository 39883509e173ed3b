//! A Rust training binary's use of augloader as `cargo add augloader` gives it (default
//! features): writes a small ImageFolder, then loads two epochs of augmented batches.
//! Built by scripts/check_lean.sh in a scratch crate outside the repository.

use std::sync::Arc;

use augloader::source::ImageFolder;
use augloader::Loader;
use augloader::transform::Pipeline;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: lean DIR")?;
    for class in ["cat", "dog"] {
        let folder = std::path::Path::new(&dir).join(class);
        std::fs::create_dir_all(&folder)?;
        for i in 0..5u32 {
            let img = image::RgbImage::from_fn(48 + i, 40, |x, y| {
                image::Rgb([(x * 5) as u8, (y * 6 + i) as u8, class.len() as u8 * 40])
            });
            img.save(folder.join(format!("{i}.jpg")))?;
        }
    }
    let train = Arc::new(ImageFolder::open(&dir)?);
    let loader = Loader::builder(train, Pipeline::resnet_train().with_size(32))
        .batch_size(4)
        .workers(2)
        .seed(1)
        .build()?;
    let mut seen = 0;
    for epoch in 0..2 {
        for batch in loader.epoch(epoch) {
            let batch = batch?;
            assert_eq!(batch.shape().ok_or("no shape")?[1..], [3, 32, 32]);
            seen += batch.len();
        }
    }
    assert_eq!(seen, 20, "two epochs of 10 images");
    println!("lean: 2 epochs, {seen} samples");
    Ok(())
}
