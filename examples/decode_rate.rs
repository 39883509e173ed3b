//! Single-thread decode rate over an ImageFolder, bytes preloaded: the counterpart of
//! ../shared/bench/decode_ceiling.py (Pillow / libjpeg-turbo), measured the same way.
//!
//! usage: cargo run --release --example decode_rate -- ROOT

use std::time::Instant;

use augloader::decode::{decode_rgb8, DecodeOptions};
use augloader::source::{ImageFolder, Source};

fn main() {
    let root = std::env::args().nth(1).expect("usage: decode_rate ROOT");
    let folder = ImageFolder::open(&root).expect("an ImageFolder");
    let blobs: Vec<Vec<u8>> = (0..folder.len())
        .map(|i| std::fs::read(folder.path(i)).expect("readable"))
        .collect();
    let opts = DecodeOptions::default();
    let run = || {
        for b in &blobs {
            std::hint::black_box(decode_rgb8(b, &opts).expect("decodable"));
        }
    };
    run();
    let t = Instant::now();
    run();
    let dt = t.elapsed().as_secs_f64();
    println!(
        "{{\"decoder\": \"augloader\", \"images\": {}, \"seconds\": {:.3}, \"images_per_sec_per_core\": {:.1}}}",
        blobs.len(),
        dt,
        blobs.len() as f64 / dt
    );
}
