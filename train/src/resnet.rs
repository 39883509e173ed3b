//! ResNets: ImageNet form (18/34/50, torchvision layout and names) and CIFAR form (6n+2 layers,
//! He et al. 2015 section 4.2, with parameter-free zero-padding shortcuts), plus the "plain"
//! counterparts without shortcuts.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::layers::{bn, conv, head};

#[derive(Debug)]
struct Basic {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    down: Shortcut,
}

#[derive(Debug)]
struct Bottleneck {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    conv3: nn::Conv2D,
    bn3: nn::BatchNorm,
    down: Shortcut,
}

// Built once per model and never moved on the hot path: boxing would only add indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Shortcut {
    Identity,
    /// 1x1 convolution + BN (torchvision's `downsample.0`, `downsample.1`).
    Projection(nn::Conv2D, nn::BatchNorm),
    /// Option A of the paper: subsample and zero-pad the channels.
    ZeroPad {
        stride: i64,
        extra: i64,
    },
    /// No shortcut (plain nets).
    None,
}

impl Shortcut {
    fn forward(&self, x: &Tensor, train: bool) -> Option<Tensor> {
        match self {
            Shortcut::Identity => Some(x.shallow_clone()),
            Shortcut::Projection(c, b) => Some(x.apply(c).apply_t(b, train)),
            Shortcut::ZeroPad { stride, extra } => {
                let s = x.slice(2, 0, None, *stride).slice(3, 0, None, *stride);
                let (lo, hi) = (extra / 2, extra - extra / 2);
                Some(s.constant_pad_nd([0, 0, 0, 0, lo, hi]))
            }
            Shortcut::None => None,
        }
    }
}

#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Block {
    Basic(Basic),
    Bottleneck(Bottleneck),
}

impl ModuleT for Block {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let (y, short) = match self {
            Block::Basic(b) => {
                let y = x.apply(&b.conv1).apply_t(&b.bn1, train).relu();
                (
                    y.apply(&b.conv2).apply_t(&b.bn2, train),
                    b.down.forward(x, train),
                )
            }
            Block::Bottleneck(b) => {
                let y = x.apply(&b.conv1).apply_t(&b.bn1, train).relu();
                let y = y.apply(&b.conv2).apply_t(&b.bn2, train).relu();
                (
                    y.apply(&b.conv3).apply_t(&b.bn3, train),
                    b.down.forward(x, train),
                )
            }
        };
        match short {
            Some(s) => (y + s).relu(),
            None => y.relu(),
        }
    }
}

/// A ResNet (or plain net) of either form.
#[derive(Debug)]
pub struct ResNet {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    imagenet_stem: bool,
    blocks: Vec<Block>,
    fc: nn::Linear,
}

impl ModuleT for ResNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.apply(&self.conv1).apply_t(&self.bn1, train).relu();
        if self.imagenet_stem {
            y = y.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        }
        for b in &self.blocks {
            y = b.forward_t(&y, train);
        }
        y.adaptive_avg_pool2d([1, 1]).flatten(1, -1).apply(&self.fc)
    }
}

/// Options shared by the ResNet builders.
#[derive(Clone, Copy, Debug)]
pub struct ResNetOptions {
    /// Output classes.
    pub classes: i64,
    /// Zero-initialise the last BN of each residual branch.
    pub zero_init_residual: bool,
    /// Drop the shortcuts (the "plain" nets of the paper).
    pub plain: bool,
}

/// ImageNet-form ResNet-18/34 (basic blocks) or 50 (bottlenecks), as torchvision.
pub fn imagenet(p: &nn::Path, depth: usize, o: ResNetOptions) -> ResNet {
    let (layers, bottleneck): ([usize; 4], bool) = match depth {
        18 => ([2, 2, 2, 2], false),
        34 => ([3, 4, 6, 3], false),
        50 => ([3, 4, 6, 3], true),
        _ => panic!("ResNet depth {depth} not supported (18, 34, 50)"),
    };
    let expansion = if bottleneck { 4 } else { 1 };
    let mut blocks = Vec::new();
    let mut inplanes = 64;
    for (stage, &n) in layers.iter().enumerate() {
        let planes = 64 << stage;
        for i in 0..n {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let q = p / format!("layer{}", stage + 1) / i;
            let down = if o.plain {
                Shortcut::None
            } else if stride != 1 || inplanes != planes * expansion {
                let d = &q / "downsample";
                Shortcut::Projection(
                    conv(&d / 0, inplanes, planes * expansion, 1, stride, 0),
                    bn(&d / 1, planes * expansion, false),
                )
            } else {
                Shortcut::Identity
            };
            let z = o.zero_init_residual && !o.plain;
            blocks.push(if bottleneck {
                Block::Bottleneck(Bottleneck {
                    conv1: conv(&q / "conv1", inplanes, planes, 1, 1, 0),
                    bn1: bn(&q / "bn1", planes, false),
                    conv2: conv(&q / "conv2", planes, planes, 3, stride, 1),
                    bn2: bn(&q / "bn2", planes, false),
                    conv3: conv(&q / "conv3", planes, planes * 4, 1, 1, 0),
                    bn3: bn(&q / "bn3", planes * 4, z),
                    down,
                })
            } else {
                Block::Basic(Basic {
                    conv1: conv(&q / "conv1", inplanes, planes, 3, stride, 1),
                    bn1: bn(&q / "bn1", planes, false),
                    conv2: conv(&q / "conv2", planes, planes, 3, 1, 1),
                    bn2: bn(&q / "bn2", planes, z),
                    down,
                })
            });
            inplanes = planes * expansion;
        }
    }
    ResNet {
        conv1: conv(p / "conv1", 3, 64, 7, 2, 3),
        bn1: bn(p / "bn1", 64, false),
        imagenet_stem: true,
        blocks,
        fc: head(p / "fc", 512 * expansion, o.classes),
    }
}

/// CIFAR-form ResNet with `depth` = 6n + 2 layers (20, 32, 44, 56, 110): 16/32/64 filters.
pub fn cifar(p: &nn::Path, depth: usize, o: ResNetOptions) -> ResNet {
    assert!(
        depth >= 8 && (depth - 2).is_multiple_of(6),
        "CIFAR ResNet depth must be 6n+2, got {depth}"
    );
    let n = (depth - 2) / 6;
    let mut blocks = Vec::new();
    let mut inplanes = 16;
    for stage in 0..3 {
        let planes = 16 << stage;
        for i in 0..n {
            let stride = if stage > 0 && i == 0 { 2 } else { 1 };
            let q = p / format!("layer{}", stage + 1) / i;
            let down = if o.plain {
                Shortcut::None
            } else if stride != 1 || inplanes != planes {
                Shortcut::ZeroPad {
                    stride,
                    extra: planes - inplanes,
                }
            } else {
                Shortcut::Identity
            };
            blocks.push(Block::Basic(Basic {
                conv1: conv(&q / "conv1", inplanes, planes, 3, stride, 1),
                bn1: bn(&q / "bn1", planes, false),
                conv2: conv(&q / "conv2", planes, planes, 3, 1, 1),
                bn2: bn(&q / "bn2", planes, o.zero_init_residual && !o.plain),
                down,
            }));
            inplanes = planes;
        }
    }
    ResNet {
        conv1: conv(p / "conv1", 3, 16, 3, 1, 1),
        bn1: bn(p / "bn1", 16, false),
        imagenet_stem: false,
        blocks,
        fc: head(p / "fc", 64, o.classes),
    }
}
