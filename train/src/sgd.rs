//! SGD with momentum and weight decay, as `torch.optim.SGD` (dampening 0, not Nesterov), and
//! learning-rate schedules. Written here rather than using tch's optimiser so that the momentum
//! buffers can be saved in checkpoints and weight decay skips BN parameters and biases.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Learning-rate schedule over epochs (fractional: updated every step).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Schedule {
    /// Constant.
    Constant,
    /// Multiply by `gamma` every `every` epochs.
    Step {
        /// Period in epochs.
        every: usize,
        /// Factor.
        gamma: f64,
    },
    /// Cosine decay from the base rate to 0 at the last epoch.
    Cosine,
}

/// Schedule plus linear warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrPolicy {
    /// Peak learning rate.
    pub base: f64,
    /// Decay after warm-up.
    pub schedule: Schedule,
    /// Linear warm-up length in epochs (from base / 10... base).
    pub warmup_epochs: f64,
    /// Total epochs (for cosine).
    pub epochs: usize,
}

impl LrPolicy {
    /// The rate at fractional epoch `t` (e.g. 2.5 = half-way through the third epoch).
    pub fn at(&self, t: f64) -> f64 {
        if t < self.warmup_epochs {
            return self.base * (0.1 + 0.9 * t / self.warmup_epochs);
        }
        match self.schedule {
            Schedule::Constant => self.base,
            Schedule::Step { every, gamma } => {
                self.base * gamma.powi((t / every.max(1) as f64).floor() as i32)
            }
            Schedule::Cosine => {
                let span = (self.epochs as f64 - self.warmup_epochs).max(1e-9);
                let x = ((t - self.warmup_epochs) / span).clamp(0.0, 1.0);
                self.base * 0.5 * (1.0 + (std::f64::consts::PI * x).cos())
            }
        }
    }
}

/// SGD state: momentum buffers by parameter name.
#[derive(Debug)]
pub struct Sgd {
    /// Momentum factor.
    pub momentum: f64,
    /// L2 weight decay on weights of rank >= 2 (convolutions, linear layers) only.
    pub weight_decay: f64,
    params: Vec<(String, Tensor)>,
    /// Per-parameter multiplier of the learning rate (0 freezes the parameter).
    scales: Vec<f64>,
    /// Momentum buffers, by name.
    pub buffers: BTreeMap<String, Tensor>,
}

impl Sgd {
    /// An optimiser over the trainable `params` (name, tensor).
    pub fn new(params: Vec<(String, Tensor)>, momentum: f64, weight_decay: f64) -> Self {
        let scales = vec![1.0; params.len()];
        Self {
            momentum,
            weight_decay,
            params,
            scales,
            buffers: BTreeMap::new(),
        }
    }

    /// Sets each parameter's learning-rate multiplier by name; 0 freezes it (no gradient is
    /// computed for it at all).
    pub fn set_lr_scale(&mut self, scale: &dyn Fn(&str) -> f64) {
        for ((name, p), s) in self.params.iter_mut().zip(self.scales.iter_mut()) {
            *s = scale(name);
            let _ = p.set_requires_grad(*s > 0.0);
        }
    }

    /// Clears the gradients.
    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// One update with learning rate `lr`: d = g + wd * p; buf = m * buf + d; p -= lr * buf.
    pub fn step(&mut self, lr: f64) {
        tch::no_grad(|| {
            for ((name, p), &scale) in self.params.iter_mut().zip(&self.scales) {
                if !p.requires_grad() || scale == 0.0 {
                    continue;
                }
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let mut d = g.shallow_clone();
                if self.weight_decay > 0.0 && p.dim() >= 2 {
                    d = &d + &*p * self.weight_decay;
                }
                if self.momentum > 0.0 {
                    let buf = match self.buffers.get_mut(name) {
                        Some(b) => {
                            let _ = b.g_mul_scalar_(self.momentum).g_add_(&d);
                            b.shallow_clone()
                        }
                        None => {
                            let b = d.detach().copy();
                            self.buffers.insert(name.clone(), b.shallow_clone());
                            b
                        }
                    };
                    d = buf;
                }
                let _ = p.g_sub_(&(d * (lr * scale)));
            }
        });
    }

    /// Restores momentum buffers (e.g. from a checkpoint), moved to each parameter's device.
    pub fn load_buffers(&mut self, buffers: BTreeMap<String, Tensor>) {
        let device = self.params.first().map(|(_, p)| p.device());
        self.buffers = buffers
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    device.map_or(v.shallow_clone(), |d| v.to_kind(Kind::Float).to_device(d)),
                )
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine() {
        let p = LrPolicy {
            base: 0.1,
            schedule: Schedule::Cosine,
            warmup_epochs: 1.0,
            epochs: 11,
        };
        assert!((p.at(0.0) - 0.01).abs() < 1e-12);
        assert!((p.at(1.0) - 0.1).abs() < 1e-12);
        assert!((p.at(6.0) - 0.05).abs() < 1e-12);
        assert!(p.at(11.0).abs() < 1e-12);
        let s = LrPolicy {
            base: 0.1,
            schedule: Schedule::Step {
                every: 3,
                gamma: 0.1,
            },
            warmup_epochs: 0.0,
            epochs: 9,
        };
        assert!((s.at(3.5) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn matches_torch_sgd_by_hand() {
        // One parameter, loss = sum(p^2): g = 2p. PyTorch SGD(lr=0.1, momentum=0.9, wd=0.01):
        // step 1: d = 2p + 0.01p, buf = d, p -= 0.1 d.
        let p = Tensor::from_slice(&[1.0f32, -2.0, 0.5, 3.0])
            .view([2, 2])
            .set_requires_grad(true);
        let mut opt = Sgd::new(vec![("w".into(), p.shallow_clone())], 0.9, 0.01);
        let mut want = [1.0f64, -2.0, 0.5, 3.0];
        let mut buf = [0.0f64; 4];
        for step in 0..3 {
            opt.zero_grad();
            let loss = (&p * &p).sum(Kind::Float);
            loss.backward();
            opt.step(0.1);
            for i in 0..4 {
                let d = 2.0 * want[i] + 0.01 * want[i];
                buf[i] = if step == 0 { d } else { 0.9 * buf[i] + d };
                want[i] -= 0.1 * buf[i];
            }
        }
        let got: Vec<f32> = Vec::try_from(p.detach().flatten(0, -1)).unwrap();
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-5, "{g} vs {w}");
        }
    }
}
