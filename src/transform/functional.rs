//! The deterministic halves of the ops, on one image, as `torchvision.transforms.v2.functional`
//! has them: apply sampled (or chosen) parameters, with no randomness. The replay tests call these
//! beside torchvision's; a user op ([`super::Op`]) may build on them.

pub use super::affine::{affine, rotate};
pub use super::color::{
    adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, apply_color, apply_jitter,
    apply_lighting,
};
pub use super::crop::{
    apply_geometry, center_box, five_crop_boxes, pad_image, random_resized_crop_box,
};
pub use super::cutout::apply_cutout;
pub use super::erase::apply_erase;
pub use super::flip::hflip;
pub use super::pixel::{
    autocontrast, equalize, gaussian_blur, grayscale, invert, posterize, sharpness, solarize,
};
pub use super::policy::apply_op;
pub use super::resize::{crop_image, shorter_side_size};
