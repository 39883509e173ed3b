//! A pipeline of one's own, and its ops used by hand. Every op is split in two: `sample` draws
//! the random parameters (plain data, printable and replayable) from the sample's RNG, and
//! `apply` is deterministic. A whole pipeline works the same way.
//!
//! usage: cargo run --example custom_pipeline -- IMAGE OUT.png

use augloader::decode::{decode_rgb8, DecodeOptions};
use augloader::rng::sample_rng;
use augloader::transform::functional::apply_cutout;
use augloader::transform::functional::apply_geometry;
use augloader::transform::functional::apply_jitter;
use augloader::transform::{ColorJitter, Cutout, Geometry, Pipeline, Resize};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: custom_pipeline IMAGE OUT.png";
    let (input, out) = (args.next().ok_or(usage)?, args.next().ok_or(usage)?);
    let img = decode_rgb8(&std::fs::read(&input)?, &DecodeOptions::default())?;
    let mut resize = Resize::new();

    // A preset changed field by field: RandomResizedCrop to 96 px, strong jitter, two holes.
    let mut pipeline = Pipeline::inception_train().with_size(96);
    pipeline.jitter = Some(ColorJitter::bcs(0.6));
    pipeline.cutout = Some(Cutout {
        holes: 2,
        length: 24,
        fill: pipeline.normalize.mean_u8(),
    });
    pipeline.validate()?;
    // Sample 7 of epoch 3 under seed 42: the same draws on any machine, in any worker.
    let mut rng = sample_rng(42, 3, 7);
    let params = pipeline.sample(&mut rng, img.width(), img.height());
    println!("pipeline params: {}", serde_json::to_string(&params)?);
    let whole = pipeline.apply(&img, &params, &mut resize);

    // The same kind of work op by op: a scale-augmented crop, jitter, Cutout.
    let mut rng = sample_rng(42, 3, 7);
    let geometry = Geometry::ScaleAug {
        min: 110,
        max: 160,
        size: 96,
    };
    let g = geometry.sample(&mut rng, img.width(), img.height());
    let mut view = apply_geometry(&img, &g, &mut resize);
    let j = ColorJitter::bcs(0.6).sample(&mut rng);
    apply_jitter(&mut view, &j);
    let holes = Cutout {
        holes: 1,
        length: 32,
        fill: [124, 116, 104],
    };
    let boxes = holes.sample(&mut rng, view.width(), view.height());
    apply_cutout(&mut view, &boxes, holes.fill);
    println!("by hand: geometry {g:?}, jitter {j:?}, holes {boxes:?}");

    // Both views side by side.
    let mut sheet = image::RgbImage::new(whole.width() + view.width(), whole.height());
    image::imageops::replace(&mut sheet, &whole, 0, 0);
    image::imageops::replace(&mut sheet, &view, whole.width() as i64, 0);
    sheet.save(&out)?;
    println!("wrote {out}");
    Ok(())
}
