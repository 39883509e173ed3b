//! Batches as tensors: both memory orders give the same logical tensor, NHWC batches in
//! `channels_last` strides, and u8 batches normalised on the device as f32 batches are
//! normalised by the loader.

use augloader::transform::Normalize;
use augloader::{Batch, Collate, Dtype, Layout};
use augloader_train::BatchTensors;
use image::RgbImage;

fn images() -> Vec<RgbImage> {
    (0..3u32)
        .map(|k| {
            RgbImage::from_fn(5, 4, |x, y| {
                image::Rgb([(x * 40 + k) as u8, (y * 50) as u8, (x * y + 7 * k) as u8])
            })
        })
        .collect()
}

fn batch(dtype: Dtype, layout: Layout) -> Batch {
    let how = Collate {
        dtype,
        layout,
        normalize: Normalize::IMAGENET,
    };
    Batch::collate_as(&images(), vec![0, 1, 2], vec![0, 1, 2], how)
}

#[test]
fn both_layouts_give_one_tensor_and_nhwc_is_channels_last() {
    for dtype in [Dtype::U8, Dtype::F32] {
        let (p, i) = (batch(dtype, Layout::Nchw), batch(dtype, Layout::Nhwc));
        let (tp, ti) = (p.images_tensor(), i.images_tensor());
        assert_eq!(tp.size(), [3, 3, 4, 5]);
        assert_eq!(tp.size(), ti.size());
        assert!(tp.equal(&ti), "the same tensor either way ({dtype:?})");
        assert_eq!(
            ti.stride(),
            [4 * 5 * 3, 1, 5 * 3, 3],
            "channels_last strides"
        );
    }
}

#[test]
fn u8_batches_normalised_on_the_device_equal_f32_batches() {
    let (x8, y8) = batch(Dtype::U8, Layout::Nchw).to_device(tch::Device::Cpu);
    let (x32, y32) = batch(Dtype::F32, Layout::Nchw).to_device(tch::Device::Cpu);
    assert!(y8.equal(&y32));
    let diff = (x8 - x32).abs().max().double_value(&[]);
    assert!(diff < 1e-5, "u8 and f32 batches differ by {diff}");
}
