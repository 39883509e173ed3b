//! Evaluates a model file written by `augloader train` with ten-crop test-time augmentation.
//! The file's metadata says how the model was trained (architecture, classes, input size,
//! normalisation, pipelines), so the views are built inside the trained geometry.
//!
//! usage: cargo run --release --example tta_eval -- RUN/model.safetensors DATA

use augloader::observe::Silent;
use augloader::source::{open_dataset, Split};
use augloader::tta::{TtaConfig, TtaMode};
use augloader_train::checkpoint;
use augloader_train::trainer::{read_model_file, Net};
use augloader_train::tta::{evaluate_tta, EvalLoading};
use tch::Device;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: tta_eval MODEL_FILE DATA";
    let model_file = std::path::PathBuf::from(args.next().ok_or(usage)?);
    let data = args.next().ok_or(usage)?;
    let val = open_dataset(data.as_ref(), Split::Val)?;

    let (tensors, meta) = read_model_file(&model_file)?;
    let meta = meta.ok_or("no augloader metadata: not written by `augloader train`")?;
    meta.check_classes(&model_file, val.classes())?;
    let device = Device::cuda_if_available();
    let mut net = Net::new(&meta.model, meta.classes.len(), device, 0, false)?;
    checkpoint::load_into(&mut net.vs, &model_file, &tensors, &|_| false)?;

    for mode in [TtaMode::None, TtaMode::TenCrop] {
        let cfg = TtaConfig::from_training(mode, &meta.train_pipeline, &meta.val_pipeline);
        let r = evaluate_tta(
            net.model.as_ref(),
            val.clone(),
            &cfg,
            device,
            &EvalLoading::default(),
            None,
            &Silent,
        )?;
        println!(
            "{}: {} views per image, top-1 {:.4}, top-5 {:.4} on {} images",
            r.tta, r.views_per_image, r.top1, r.top5, r.images
        );
    }
    Ok(())
}
