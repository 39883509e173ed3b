//! Model files (safetensors with augloader's metadata) under the mutation harness of the
//! loader's parsers: every mutation ends in a value or an error, no panic, bounded time and
//! memory.

#[path = "../../tests/mutate/mod.rs"]
mod mutate;

use std::time::Instant;

use augloader_train::checkpoint;
use augloader_train::meta::ModelMeta;
use mutate::run;

/// Model files (safetensors with augloader's metadata), as `eval --checkpoint` and
/// `train --init-from` read them.
#[test]
fn model_files_survive_mutations() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("m.safetensors");
    let tensors = vec![
        (
            "conv.weight".to_string(),
            tch::Tensor::ones([4, 3, 3, 3], tch::kind::FLOAT_CPU),
        ),
        (
            "fc.bias".to_string(),
            tch::Tensor::zeros([10], tch::kind::FLOAT_CPU),
        ),
    ];
    let meta = std::collections::HashMap::from([(
        "augloader.model".to_string(),
        "{\"model\": \"resnet8\"}".to_string(),
    )]);
    checkpoint::write(&path, &tensors, Some(meta)).unwrap();
    let honest = std::fs::read(&path).unwrap();
    let t = Instant::now();
    let total = run("model file", &honest, 31, |m| {
        std::fs::write(&path, m).unwrap();
        if let Ok((_, meta)) = checkpoint::read(&path) {
            let _ = ModelMeta::from_metadata(&path, &meta);
        }
    });
    eprintln!("model files: {total} mutations in {:?}", t.elapsed());
}
