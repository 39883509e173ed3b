//! Layers with torchvision's parameter names and the initialisation this crate uses:
//! Kaiming normal (std = sqrt(2 / fan_in)) for convolutions, BN weight 1, bias 0; the final
//! classification layer small (std 0.01; VGG's classifier see vgg.rs), so the initial loss is
//! ln C.

use tch::nn::{self, Init};

/// Kaiming normal with std = sqrt(2 / fan_in).
pub(crate) fn kaiming() -> Init {
    Init::Kaiming {
        dist: nn::init::NormalOrUniform::Normal,
        fan: nn::init::FanInOut::FanIn,
        non_linearity: nn::init::NonLinearity::ReLU,
    }
}

/// A bias-free convolution, as in ResNet and torchvision.
pub(crate) fn conv(p: nn::Path, i: i64, o: i64, k: i64, stride: i64, padding: i64) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        stride,
        padding,
        bias: false,
        ws_init: kaiming(),
        ..Default::default()
    };
    nn::conv2d(p, i, o, k, cfg)
}

/// A convolution with bias (VGG), bias initialised to 0.
pub(crate) fn conv_bias(p: nn::Path, i: i64, o: i64, k: i64, padding: i64) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        padding,
        ws_init: kaiming(),
        bs_init: Init::Const(0.0),
        ..Default::default()
    };
    nn::conv2d(p, i, o, k, cfg)
}

/// BatchNorm2d with weight 1 (or 0 for a zero-initialised residual branch) and bias 0.
pub(crate) fn bn(p: nn::Path, c: i64, zero: bool) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        ws_init: Init::Const(if zero { 0.0 } else { 1.0 }),
        bs_init: Init::Const(0.0),
        ..Default::default()
    };
    nn::batch_norm2d(p, c, cfg)
}

/// A linear layer with weight normal(0, std) and zero bias.
pub(crate) fn linear_normal(p: nn::Path, i: i64, o: i64, std: f64) -> nn::Linear {
    let cfg = nn::LinearConfig {
        ws_init: Init::Randn {
            mean: 0.0,
            stdev: std,
        },
        bs_init: Some(Init::Const(0.0)),
        bias: true,
    };
    nn::linear(p, i, o, cfg)
}

/// The final classification layer: weight normal with std 0.01 (as torchvision's VGG), bias 0.
/// Its logits start near zero, so the initial loss is close to ln(classes); a Kaiming-initialised
/// head started ResNet-20 at 1.29 ln 10 and made the first epochs slow and seed-dependent.
pub(crate) fn head(p: nn::Path, i: i64, o: i64) -> nn::Linear {
    linear_normal(p, i, o, 0.01)
}

/// Draws the weight matrices of the linear layers under `prefix` afresh from [`kaiming`]
/// (std = sqrt(2 / fan_in)); biases are left as they are.
pub(crate) fn kaiming_reinit(vs: &nn::VarStore, prefix: &str) {
    let _no_grad = tch::no_grad_guard();
    for (name, mut t) in vs.variables() {
        if name.starts_with(prefix) && name.ends_with("weight") && t.dim() == 2 {
            t.init(kaiming());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Tensor;

    #[test]
    fn kaiming_reinit_draws_the_head_with_std_sqrt_2_over_fan_in() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let fc = head(&vs.root() / "fc", 2048, 64);
        let body = linear_normal(&vs.root() / "body", 2048, 64, 0.01);
        kaiming_reinit(&vs, "fc.");
        let std = |t: &Tensor| t.std(true).double_value(&[]);
        let want = (2.0f64 / 2048.0).sqrt();
        assert!((std(&fc.ws) / want - 1.0).abs() < 0.05, "{}", std(&fc.ws));
        assert!(
            (std(&body.ws) / 0.01 - 1.0).abs() < 0.05,
            "the rest is untouched"
        );
        assert_eq!(
            fc.bs.unwrap().abs().sum(tch::Kind::Float).double_value(&[]),
            0.0
        );
    }
}
