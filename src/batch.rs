//! Collation: one contiguous NCHW (or NHWC) buffer per batch, and its conversion to a
//! tch::Tensor.

use image::RgbImage;

use crate::pool::{BufferPool, Pooled};
use crate::transform::Normalize;

/// Element type of collated batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// Raw 0..=255 values; normalise later (on the device). The default.
    #[default]
    U8,
    /// Normalised `(v / 255 - mean) / std`.
    F32,
}

/// Memory order of a batch's pixels. Either way [`Batch::shape`] is [N, 3, H, W]; NHWC is
/// PyTorch's `channels_last` memory format of that shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Each image's three planes one after another. The default.
    #[default]
    Nchw,
    /// Each image's pixels as decoded (R, G, B interleaved): no split into planes at collation,
    /// and what CUDA convolutions prefer (`channels_last`).
    Nhwc,
}

/// The pixels of a batch. A loader's buffers go back to its pool when dropped.
#[derive(Clone, Debug, PartialEq)]
pub enum BatchData {
    /// u8, in the batch's [`Layout`].
    U8(Pooled<u8>),
    /// f32, normalised, in the batch's [`Layout`].
    F32(Pooled<f32>),
}

/// Batch buffers reused across a loader's batches.
#[derive(Debug)]
pub(crate) struct BatchBuffers {
    u8: BufferPool<u8>,
    f32: BufferPool<f32>,
}

impl BatchBuffers {
    /// Keeping at most `keep` free buffers of each type.
    pub(crate) fn new(keep: usize) -> Self {
        Self {
            u8: BufferPool::new(keep),
            f32: BufferPool::new(keep),
        }
    }
}

/// A sample replaced under the skip policy: its index, its name and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Skipped {
    /// Dataset index.
    pub index: usize,
    /// File name or record.
    pub name: String,
    /// The error.
    pub reason: String,
}

/// One collated batch: the images one after another (in `layout` order), labels and dataset
/// indices.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Pixels; for a fixed-size pipeline this is one NCHW (or NHWC, see `layout`) array.
    pub data: BatchData,
    /// Memory order of `data`.
    pub layout: Layout,
    /// (height, width) of each image (all equal for fixed-size pipelines).
    pub sizes: Vec<(u32, u32)>,
    /// Label of each image.
    pub labels: Vec<i64>,
    /// Dataset index of each image (a replacement's index under the skip policy).
    pub indices: Vec<usize>,
    /// Samples that failed and were replaced (skip policy).
    pub skipped: Vec<Skipped>,
    /// Normalisation of the pipeline (applied to F32 data, to apply on the device for U8).
    pub normalize: Normalize,
    /// Float targets, `len() x classes` row-major: soft targets (rows sum to 1) when the loader
    /// mixes batches (MixUp / CutMix, label smoothing); the multi-hot rows or regression values
    /// of a source with such targets ([`crate::source::TargetKind`]), mixed too when mixing.
    pub targets: Option<Vec<f32>>,
    /// Width of `targets`' rows.
    pub classes: usize,
    /// What the batch's MixUp / CutMix drew.
    pub mix: Option<crate::transform::mix::MixParams>,
}

/// How a batch is collated: element type, memory order and normalisation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Collate {
    /// Element type.
    pub dtype: Dtype,
    /// Memory order.
    pub layout: Layout,
    /// Normalisation (applied to f32 batches, carried for u8 ones).
    pub normalize: Normalize,
}

impl Batch {
    /// Collates HWC images into one NCHW buffer (each image's planes one after another).
    pub fn collate(
        images: &[RgbImage],
        labels: Vec<i64>,
        indices: Vec<usize>,
        dtype: Dtype,
        normalize: Normalize,
    ) -> Batch {
        let how = Collate {
            dtype,
            layout: Layout::Nchw,
            normalize,
        };
        Self::collate_as(images, labels, indices, how)
    }

    /// Collates HWC images as `how` says.
    pub fn collate_as(
        images: &[RgbImage],
        labels: Vec<i64>,
        indices: Vec<usize>,
        how: Collate,
    ) -> Batch {
        let fresh = BatchBuffers::new(0);
        Self::collate_in(&fresh, images, labels, indices, how)
    }

    /// As [`Batch::collate_as`], into a buffer of `buffers`: every element is written.
    pub(crate) fn collate_in(
        buffers: &BatchBuffers,
        images: &[RgbImage],
        labels: Vec<i64>,
        indices: Vec<usize>,
        how: Collate,
    ) -> Batch {
        let total: usize = images.iter().map(|i| i.len()).sum();
        let sizes = images.iter().map(|i| (i.height(), i.width())).collect();
        let normalize = how.normalize;
        let data = match how.dtype {
            Dtype::U8 => {
                let mut out = buffers.u8.take(total);
                let mut off = 0;
                for img in images {
                    let dst = &mut out[off..off + img.len()];
                    match how.layout {
                        Layout::Nchw => {
                            let plane = img.len() / 3;
                            let (r, rest) = dst.split_at_mut(plane);
                            let (g, b) = rest.split_at_mut(plane);
                            crate::transform::normalize::split_planes(img.as_raw(), r, g, b);
                        }
                        Layout::Nhwc => dst.copy_from_slice(img.as_raw()),
                    }
                    off += img.len();
                }
                BatchData::U8(out)
            }
            Dtype::F32 => {
                let mut out = buffers.f32.take(total);
                let mut off = 0;
                for img in images {
                    let dst = &mut out[off..off + img.len()];
                    match how.layout {
                        Layout::Nchw => normalize.hwc_u8_to_chw_f32(img.as_raw(), dst),
                        Layout::Nhwc => normalize.hwc_u8_to_hwc_f32(img.as_raw(), dst),
                    }
                    off += img.len();
                }
                BatchData::F32(out)
            }
        };
        Batch {
            data,
            layout: how.layout,
            sizes,
            labels,
            indices,
            skipped: Vec::new(),
            normalize,
            targets: None,
            classes: 0,
            mix: None,
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True for an empty batch.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Images per sample: 1, or the number of TTA views ([`crate::LoaderBuilder::per_sample`] with a [`crate::tta::TtaConfig`]).
    pub fn views(&self) -> usize {
        self.sizes.len() / self.labels.len().max(1)
    }

    /// [N, 3, H, W] when every image has the same size; N counts every view (samples x
    /// [`Batch::views`]). The logical shape: an NHWC batch holds it in `channels_last` order.
    pub fn shape(&self) -> Option<[usize; 4]> {
        let first = *self.sizes.first()?;
        self.sizes.iter().all(|s| *s == first).then_some([
            self.sizes.len(),
            3,
            first.0 as usize,
            first.1 as usize,
        ])
    }

    /// The raw bytes of the pixel buffer (for hashing).
    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            BatchData::U8(v) => v,
            BatchData::F32(v) => {
                // SAFETY: f32 has no padding and any bit pattern is a valid u8.
                unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, v.len() * 4) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collate_is_nchw() {
        let a = RgbImage::from_fn(2, 1, |x, _| {
            image::Rgb([x as u8, 10 + x as u8, 20 + x as u8])
        });
        let b = Batch::collate(
            &[a.clone(), a],
            vec![0, 1],
            vec![4, 5],
            Dtype::U8,
            Normalize::IMAGENET,
        );
        assert_eq!(b.shape(), Some([2, 3, 1, 2]));
        assert_eq!(b.bytes(), &[0, 1, 10, 11, 20, 21, 0, 1, 10, 11, 20, 21]);
    }

    #[test]
    fn nhwc_keeps_the_pixels_interleaved_and_normalises_per_channel() {
        let a = RgbImage::from_fn(2, 1, |x, _| {
            image::Rgb([x as u8, 10 + x as u8, 20 + x as u8])
        });
        let how = |dtype| Collate {
            dtype,
            layout: Layout::Nhwc,
            normalize: Normalize::IMAGENET,
        };
        let b = Batch::collate_as(std::slice::from_ref(&a), vec![0], vec![4], how(Dtype::U8));
        assert_eq!(b.shape(), Some([1, 3, 1, 2]));
        assert_eq!(b.bytes(), &[0, 10, 20, 1, 11, 21]);
        let chw = Batch::collate(
            std::slice::from_ref(&a),
            vec![0],
            vec![4],
            Dtype::F32,
            Normalize::IMAGENET,
        );
        let hwc = Batch::collate_as(&[a], vec![0], vec![4], how(Dtype::F32));
        let (BatchData::F32(chw), BatchData::F32(hwc)) = (chw.data, hwc.data) else {
            panic!("f32 batches")
        };
        for (i, v) in hwc.iter().enumerate() {
            let (px, c) = (i / 3, i % 3);
            assert_eq!(*v, chw[c * 2 + px]);
        }
    }
}
