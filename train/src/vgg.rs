//! VGG-11 and VGG-16, with or without BatchNorm, in torchvision's layout (`features.N`,
//! `classifier.{0,3,6}`), with adaptive pooling to 7x7 so 32 px and 224 px inputs both work.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::layers::{bn, conv_bias, linear_normal};

const VGG11: &[i64] = &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0];
const VGG16: &[i64] = &[
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];

#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Layer {
    Conv(nn::Conv2D, Option<nn::BatchNorm>),
    Pool,
}

/// A VGG network.
#[derive(Debug)]
pub struct Vgg {
    features: Vec<Layer>,
    fc: [nn::Linear; 3],
    dropout: f64,
}

/// VGG-`depth` (11 or 16), with BatchNorm when `batch_norm`.
pub fn vgg(p: &nn::Path, depth: usize, batch_norm: bool, classes: i64) -> Vgg {
    let cfg = match depth {
        11 => VGG11,
        16 => VGG16,
        _ => panic!("VGG depth {depth} not supported (11, 16)"),
    };
    let f = p / "features";
    let mut idx = 0;
    let mut inc = 3;
    let mut features = Vec::new();
    for &c in cfg {
        if c == 0 {
            features.push(Layer::Pool);
            idx += 1;
        } else {
            let cv = conv_bias(&f / idx, inc, c, 3, 1);
            let b = batch_norm.then(|| bn(&f / (idx + 1), c, false));
            idx += if batch_norm { 3 } else { 2 };
            features.push(Layer::Conv(cv, b));
            inc = c;
        }
    }
    let c = p / "classifier";
    Vgg {
        features,
        // torchvision's VGG initialisation of the classifier, normal(0, 0.01), but a 10x
        // smaller final layer: with 0.01 the initial loss was 1.10-1.22 ln C (the 25088-wide
        // first layer amplifies), with Kaiming hidden layers 1.38-1.65; now 1.00-1.01.
        fc: [
            linear_normal(&c / 0, 512 * 7 * 7, 4096, 0.01),
            linear_normal(&c / 3, 4096, 4096, 0.01),
            linear_normal(&c / 6, 4096, classes, 0.001),
        ],
        dropout: 0.5,
    }
}

impl ModuleT for Vgg {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.shallow_clone();
        for l in &self.features {
            y = match l {
                Layer::Conv(c, b) => {
                    let z = y.apply(c);
                    match b {
                        Some(b) => z.apply_t(b, train),
                        None => z,
                    }
                    .relu()
                }
                Layer::Pool => y.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false),
            };
        }
        // Inverted dropout: active only in training, nothing to rescale at test time.
        y.adaptive_avg_pool2d([7, 7])
            .flatten(1, -1)
            .apply(&self.fc[0])
            .relu()
            .dropout(self.dropout, train)
            .apply(&self.fc[1])
            .relu()
            .dropout(self.dropout, train)
            .apply(&self.fc[2])
    }
}
