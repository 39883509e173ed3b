//! Batches as libtorch tensors: one copy from the loader's contiguous buffer, pinned when CUDA
//! is available, u8 batches normalised on the device.

use augloader::transform::Normalize;
use augloader::{Batch, BatchData, Layout};
use tch::{Device, Kind, Tensor};

/// `(x / 255 - mean) / std` of a u8 NCHW tensor, as f32 on the tensor's device: the one
/// normalisation of training, validation and TTA views.
pub fn normalize_u8(x: &Tensor, n: &Normalize) -> Tensor {
    let device = x.device();
    let mean = Tensor::from_slice(&n.mean.map(|m| m * 255.0))
        .to_device(device)
        .view([1, 3, 1, 1]);
    let std = Tensor::from_slice(&n.std.map(|s| s * 255.0))
        .to_device(device)
        .view([1, 3, 1, 1]);
    (x.to_kind(Kind::Float) - mean) / std
}

/// A [`Batch`] as tensors.
pub trait BatchTensors {
    /// The images as an [N, 3, H, W] tensor on the CPU (u8 or f32 as collated; in
    /// `channels_last` memory format for NHWC batches), with one copy; pinned when CUDA is
    /// available so the host-to-device copy can be asynchronous. Panics on a ragged batch
    /// (see [`Batch::shape`]).
    fn images_tensor(&self) -> Tensor;
    /// Soft targets as a float32 tensor `[B, classes]` (mixed batches only).
    fn targets_tensor(&self) -> Option<Tensor>;
    /// Labels as an i64 tensor.
    fn labels_tensor(&self) -> Tensor;
    /// (images, labels) on `device`: u8 batches are moved as u8 and normalised there.
    fn to_device(&self, device: Device) -> (Tensor, Tensor);
}

impl BatchTensors for Batch {
    fn images_tensor(&self) -> Tensor {
        let [n, c, h, w] = self.shape().expect("images of one size").map(|d| d as i64);
        let t = match &self.data {
            BatchData::U8(v) => Tensor::from_slice(v),
            BatchData::F32(v) => Tensor::from_slice(v),
        };
        let t = match self.layout {
            Layout::Nchw => t.view([n, c, h, w]),
            Layout::Nhwc => t.view([n, h, w, c]).permute([0, 3, 1, 2]),
        };
        if tch::Cuda::is_available() {
            t.pin_memory(Device::Cuda(0))
        } else {
            t
        }
    }

    fn targets_tensor(&self) -> Option<Tensor> {
        let t = self.targets.as_ref()?;
        Some(Tensor::from_slice(t).view([self.len() as i64, self.classes as i64]))
    }

    fn labels_tensor(&self) -> Tensor {
        Tensor::from_slice(&self.labels)
    }

    fn to_device(&self, device: Device) -> (Tensor, Tensor) {
        let kind = match self.data {
            BatchData::U8(_) => Kind::Uint8,
            BatchData::F32(_) => Kind::Float,
        };
        let x = self.images_tensor().to_device_(device, kind, true, false);
        let x = match self.data {
            BatchData::U8(_) => normalize_u8(&x, &self.normalize),
            BatchData::F32(_) => x,
        };
        (x, self.labels_tensor().to_device(device))
    }
}
