//! An augmentation of one's own in the loader: a gamma curve with a random exponent. It draws its
//! parameter from the sample's RNG and applies it purely, so it takes part in everything the
//! built-in ops do: batches identical for any worker count, exact resume, printed parameters.
//!
//! usage: cargo run --example custom_op -- DATA   (DATA/train, DATA/val ImageFolders, ...)

use augloader::rng::SampleRng;
use augloader::source::{open_dataset, Split};
use augloader::transform::{Op, Pipeline};
use augloader::Loader;
use image::RgbImage;
use rand::Rng;

/// `out = 255 * (in / 255) ^ gamma`, gamma log-uniform in [1/max, max].
struct Gamma {
    max: f64,
}

impl Op for Gamma {
    fn name(&self) -> &str {
        "gamma"
    }

    fn sample(&self, rng: &mut SampleRng, _width: u32, _height: u32) -> serde_json::Value {
        let g = rng.random_range(-self.max.ln()..=self.max.ln()).exp();
        serde_json::json!({ "gamma": g })
    }

    fn apply(&self, mut img: RgbImage, params: &serde_json::Value) -> RgbImage {
        let g = params["gamma"].as_f64().expect("sampled above");
        let lut: Vec<u8> = (0..256)
            .map(|v| (255.0 * (v as f64 / 255.0).powf(g)).round() as u8)
            .collect();
        img.iter_mut().for_each(|v| *v = lut[*v as usize]);
        img
    }
}

fn checksum(loader: &Loader) -> Result<u64, Box<dyn std::error::Error>> {
    let mut h = 0u64;
    for b in loader.epoch(0) {
        let b = b?;
        h = b
            .bytes()
            .iter()
            .fold(h, |h, &v| h.wrapping_mul(31).wrapping_add(v as u64));
    }
    Ok(h)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = std::env::args().nth(1).ok_or("usage: custom_op DATA")?;
    let pipeline = Pipeline::inception_train()
        .with_size(64)
        .with_op(Gamma { max: 1.5 });
    let params = pipeline.sample(&mut augloader::rng::sample_rng(0, 0, 3), 100, 80);
    println!(
        "sample 3's parameters: {}",
        serde_json::to_string(&params.user)?
    );
    let build = |workers| {
        let source = open_dataset(data.as_ref(), Split::Train)?;
        Loader::builder(source, pipeline.clone())
            .batch_size(16)
            .workers(workers)
            .build()
            .map_err(Box::<dyn std::error::Error>::from)
    };
    let (one, three) = (checksum(&build(1)?)?, checksum(&build(3)?)?);
    println!("epoch 0 checksum: {one:016x} with 1 worker, {three:016x} with 3");
    assert_eq!(one, three, "a user op must not depend on the worker count");
    Ok(())
}
