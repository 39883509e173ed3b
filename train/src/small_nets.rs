//! Small configurable nets for the experiments (`lab-...` in the model registry), so that two
//! arms of an experiment differ in exactly one thing, and the probes the experiments read from
//! them: gradient size per layer, parameters and receptive field of a stack of convolutions,
//! and the scale of dropout's output.
//!
//! A name is `lab` followed by options: `-dN` conv layers (default 6), spread over three stages
//! of C, 2C and 4C channels with 2x2 max pooling between them; `-wC` (default 16); `-kK` the
//! kernel side (3, 5 or 7; default 3); `-nobn` (no batch normalisation, convolutions with bias);
//! `-sigmoid` or `-tanh` instead of ReLU; `-fcH` a hidden fully connected layer of H units on
//! the 4x4-pooled features, followed by dropout `-pP` (P percent); then the classifier `fc`.

use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use super::layers::{bn, conv, conv_bias, head, linear_normal};

/// Largest N, C, H accepted in a name (keeps a typo from allocating gigabytes).
const MAX_LAYERS: usize = 200;
const MAX_WIDTH: i64 = 1024;
const MAX_HIDDEN: i64 = 16384;

/// The non-linearity after each convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// max(0, x).
    Relu,
    /// 1 / (1 + e^-x).
    Sigmoid,
    /// tanh x.
    Tanh,
}

impl Activation {
    fn apply(self, x: Tensor) -> Tensor {
        match self {
            Activation::Relu => x.relu(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Tanh => x.tanh(),
        }
    }
}

/// What a `lab-...` name builds.
#[derive(Clone, Debug, PartialEq)]
pub struct LabSpec {
    /// Conv layers.
    pub layers: usize,
    /// Channels of the first stage.
    pub width: i64,
    /// Kernel side.
    pub kernel: i64,
    /// Batch normalisation after each convolution.
    pub batch_norm: bool,
    /// Non-linearity.
    pub activation: Activation,
    /// Hidden fully connected units (0: global average pooling straight into the classifier).
    pub hidden: i64,
    /// Dropout probability after the hidden layer.
    pub dropout: f64,
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            layers: 6,
            width: 16,
            kernel: 3,
            batch_norm: true,
            activation: Activation::Relu,
            hidden: 0,
            dropout: 0.0,
        }
    }
}

impl LabSpec {
    /// Parses a `lab-...` name; `None` when it is not one.
    pub fn parse(name: &str) -> Option<LabSpec> {
        let mut parts = name.split('-');
        if parts.next()? != "lab" {
            return None;
        }
        let mut s = LabSpec::default();
        for p in parts {
            let num = |prefix: &str| p.strip_prefix(prefix)?.parse::<i64>().ok();
            match p {
                "nobn" => s.batch_norm = false,
                "sigmoid" => s.activation = Activation::Sigmoid,
                "tanh" => s.activation = Activation::Tanh,
                "relu" => s.activation = Activation::Relu,
                _ if p.starts_with("fc") => {
                    s.hidden = num("fc").filter(|h| (1..=MAX_HIDDEN).contains(h))?
                }
                _ if p.starts_with('d') => {
                    s.layers = num("d").filter(|d| (1..=MAX_LAYERS as i64).contains(d))? as usize
                }
                _ if p.starts_with('w') => {
                    s.width = num("w").filter(|w| (1..=MAX_WIDTH).contains(w))?
                }
                _ if p.starts_with('k') => s.kernel = num("k").filter(|k| [3, 5, 7].contains(k))?,
                _ if p.starts_with('p') => {
                    s.dropout = num("p").filter(|p| (0..100).contains(p))? as f64 / 100.0
                }
                _ => return None,
            }
        }
        (s.dropout == 0.0 || s.hidden > 0).then_some(s)
    }

    /// Layers of stage `stage` (0..3): the first stages take the remainder.
    fn stage_layers(&self, stage: usize) -> usize {
        self.layers / 3 + usize::from(stage < self.layers % 3)
    }
}

#[derive(Debug)]
struct Unit {
    conv: nn::Conv2D,
    bn: Option<nn::BatchNorm>,
    /// Pool 2x2 before this unit (the first unit of stages 2 and 3).
    pool: bool,
}

/// A net built from a [`LabSpec`]. Parameters: `features.I.conv`, `features.I.bn`, `fc1` (the
/// hidden layer) and `fc` (the classifier).
#[derive(Debug)]
pub struct LabNet {
    units: Vec<Unit>,
    activation: Activation,
    hidden: Option<nn::Linear>,
    dropout: f64,
    fc: nn::Linear,
}

impl LabNet {
    /// Builds `spec` with `classes` outputs under `p`.
    pub fn new(p: &nn::Path, spec: &LabSpec, classes: i64) -> LabNet {
        let f = p / "features";
        let (mut units, mut cin) = (Vec::new(), 3);
        for stage in 0..3 {
            let cout = spec.width << stage;
            for j in 0..spec.stage_layers(stage) {
                let q = &f / units.len();
                let (k, pad) = (spec.kernel, spec.kernel / 2);
                let conv = if spec.batch_norm {
                    conv(&q / "conv", cin, cout, k, 1, pad)
                } else {
                    conv_bias(&q / "conv", cin, cout, k, pad)
                };
                let bn = spec.batch_norm.then(|| bn(&q / "bn", cout, false));
                let pool = stage > 0 && j == 0 && !units.is_empty();
                units.push(Unit { conv, bn, pool });
                cin = cout;
            }
        }
        let hidden = (spec.hidden > 0).then(|| {
            let std = (2.0 / (cin * 16) as f64).sqrt();
            linear_normal(p / "fc1", cin * 16, spec.hidden, std)
        });
        let last = if spec.hidden > 0 { spec.hidden } else { cin };
        LabNet {
            units,
            activation: spec.activation,
            hidden,
            dropout: spec.dropout,
            fc: head(p / "fc", last, classes),
        }
    }

    /// The features the classifier's input is made from: the last conv stage's output, pooled
    /// and, with a hidden layer, through it and its ReLU (before dropout).
    pub fn features(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.shallow_clone();
        for u in &self.units {
            if u.pool {
                y = y.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
            }
            y = y.apply(&u.conv);
            if let Some(b) = &u.bn {
                y = y.apply_t(b, train);
            }
            y = self.activation.apply(y);
        }
        match &self.hidden {
            Some(h) => y.adaptive_avg_pool2d([4, 4]).flatten(1, -1).apply(h).relu(),
            None => y.adaptive_avg_pool2d([1, 1]).flatten(1, -1),
        }
    }

    /// The dropout probability after the hidden layer.
    pub fn dropout(&self) -> f64 {
        self.dropout
    }
}

impl ModuleT for LabNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        // Inverted dropout: scaled by 1/(1-p) in training, the identity in evaluation.
        self.features(x, train)
            .dropout(self.dropout, train)
            .apply(&self.fc)
    }
}

/// The size of one conv layer's weight gradient.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvGrad {
    /// Root mean square over the weights (comparable between layers of different sizes).
    pub rms: f64,
    /// Euclidean norm of the whole gradient.
    pub norm: f64,
}

/// The gradient of each conv layer's weights (in network order) after one backward pass of the
/// mean cross-entropy of `model` on `(x, y)` in training mode. The variables' gradients are
/// left zeroed.
pub fn conv_grads(vs: &nn::VarStore, model: &dyn ModuleT, x: &Tensor, y: &Tensor) -> Vec<ConvGrad> {
    let mut convs: Vec<(usize, Tensor)> = vs
        .variables()
        .into_iter()
        .filter_map(|(name, t)| {
            let i = name
                .strip_prefix("features.")?
                .strip_suffix(".conv.weight")?;
            Some((i.parse().ok()?, t))
        })
        .collect();
    convs.sort_by_key(|c| c.0);
    let zero = || {
        for t in vs.trainable_variables() {
            let mut g = t.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    };
    zero();
    model
        .forward_t(x, true)
        .cross_entropy_for_logits(y)
        .backward();
    let grads = convs
        .iter()
        .map(|(_, t)| {
            let sq = t.grad().to_kind(Kind::Double).square();
            ConvGrad {
                rms: sq.mean(Kind::Double).sqrt().double_value(&[]),
                norm: sq.sum(Kind::Double).sqrt().double_value(&[]),
            }
        })
        .collect();
    zero();
    grads
}

/// A stack of `n` convolutions of side `k` at `channels` channels (bias-free, ReLU between):
/// its parameter count, read from the built variables, and its receptive field side, measured
/// as the extent of input pixels whose gradient for one output pixel is non-zero (over 8
/// random inputs).
pub fn stack_probe(n: usize, k: i64, channels: i64, seed: i64) -> (i64, i64) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let convs: Vec<nn::Conv2D> = (0..n)
        .map(|i| conv(&vs.root() / i, channels, channels, k, 1, k / 2))
        .collect();
    let params: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
    let side = 4 * k * n as i64 + 1;
    // A few inputs, their reached pixels united: with few channels a ReLU can be inactive on
    // every path from one border pixel for a single input.
    let x = Tensor::randn([8, channels, side, side], (Kind::Float, Device::Cpu))
        .set_requires_grad(true);
    let mut y = x.shallow_clone();
    for (i, c) in convs.iter().enumerate() {
        y = y.apply(c);
        if i + 1 < n {
            y = y.relu();
        }
    }
    let mid = side / 2;
    y.narrow(2, mid, 1)
        .narrow(3, mid, 1)
        .sum(Kind::Float)
        .backward();
    let reached = x
        .grad()
        .abs()
        .sum_dim_intlist([0i64, 1].as_slice(), false, Kind::Float)
        .squeeze()
        .gt(0.0);
    let rows = reached.any_dim(1, false).sum(Kind::Int64).int64_value(&[]);
    let cols = reached.any_dim(0, false).sum(Kind::Int64).int64_value(&[]);
    (params, rows.max(cols))
}

/// The mean of dropout's output in training mode divided by its mean in evaluation mode, over
/// the same activations `h`: about 1 for inverted dropout (nothing to rescale at test time).
pub fn dropout_eval_scale(h: &Tensor, p: f64) -> f64 {
    let train = h.dropout(p, true).mean(Kind::Double).double_value(&[]);
    let eval = h.dropout(p, false).mean(Kind::Double).double_value(&[]);
    train / eval
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_into_their_options_and_typos_are_refused() {
        let s = LabSpec::parse("lab-d9-w8-k5-nobn-tanh-fc256-p50").unwrap();
        assert_eq!((s.layers, s.width, s.kernel, s.hidden), (9, 8, 5, 256));
        assert!(!s.batch_norm && s.activation == Activation::Tanh && s.dropout == 0.5);
        assert_eq!(LabSpec::parse("lab"), Some(LabSpec::default()));
        for bad in [
            "lab-k4",
            "lab-p50",
            "lab-d0",
            "lab-x",
            "labd3",
            "lab-w100000",
            "resnet20",
        ] {
            assert_eq!(LabSpec::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn two_3x3_see_what_one_5x5_sees_with_fewer_parameters() {
        let c = 8;
        assert_eq!(stack_probe(2, 3, c, 0), (2 * 9 * c * c, 5));
        assert_eq!(stack_probe(1, 5, c, 0), (25 * c * c, 5));
        assert_eq!(stack_probe(3, 3, c, 0), (3 * 9 * c * c, 7));
        assert_eq!(stack_probe(1, 7, c, 0), (49 * c * c, 7));
    }

    #[test]
    fn layers_are_spread_over_three_stages_and_the_net_classifies() {
        let vs = nn::VarStore::new(Device::Cpu);
        let spec = LabSpec::parse("lab-d7-w4-fc32-p50").unwrap();
        let net = LabNet::new(&vs.root(), &spec, 5);
        let convs = vs
            .variables()
            .keys()
            .filter(|k| k.ends_with("conv.weight"))
            .count();
        assert_eq!(convs, 7);
        let x = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        assert_eq!(net.forward_t(&x, true).size(), [2, 5]);
        let h = net.features(&x, false);
        assert_eq!(h.size(), [2, 32]);
    }

    #[test]
    fn a_stack_of_k_3x3_layers_sees_2k_plus_1_pixels() {
        for k in 1..=5 {
            let (params, field) = stack_probe(k, 3, 2, k as i64);
            assert_eq!(field, 2 * k as i64 + 1, "{k} layers");
            assert_eq!(params, k as i64 * 9 * 2 * 2, "{k} layers");
        }
    }

    #[test]
    fn inverted_dropout_needs_no_scaling_at_test_time() {
        // A large batch of ReLU-like activations, as after the hidden layer.
        tch::manual_seed(0);
        let h = Tensor::randn([512, 1024], (Kind::Float, Device::Cpu)).relu();
        for p in [0.1, 0.5, 0.8] {
            let scale = dropout_eval_scale(&h, p);
            assert!((scale - 1.0).abs() < 0.05, "p {p}: {scale}");
        }
        // The scale is measured, not assumed: dropout without the 1/(1-p) would read 1-p.
        let plain = h.dropout(0.5, true).mean(Kind::Double).double_value(&[]) * 0.5;
        let eval = h.mean(Kind::Double).double_value(&[]);
        assert!((plain / eval - 0.5).abs() < 0.05);
    }

    #[test]
    fn conv_gradients_reach_every_layer_in_order() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = LabNet::new(&vs.root(), &LabSpec::parse("lab-d4-w4").unwrap(), 3);
        let x = Tensor::randn([4, 3, 16, 16], (Kind::Float, Device::Cpu));
        let y = Tensor::from_slice(&[0i64, 1, 2, 0]);
        let g = conv_grads(&vs, &net, &x, &y);
        assert_eq!(g.len(), 4);
        let vars = vs.variables();
        for (i, c) in g.iter().enumerate() {
            let n = vars[&format!("features.{i}.conv.weight")].numel() as f64;
            // norm = rms * sqrt(number of weights)
            assert!(c.norm > 0.0, "{c:?}");
            assert!((c.norm - c.rms * n.sqrt()).abs() < 1e-9 * c.norm, "{c:?}");
        }
    }
}
