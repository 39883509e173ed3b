#!/usr/bin/env python3
"""NVIDIA DALI's CPU pipeline on an ImageFolder (no GPU needed), u8 CHW output as `augloader
bench` gives: decode, resnet-train (scale augmentation 256..480, random 224 crop, jitter 0.4,
flip, a 112 px erase; DALI has no PCA lighting), inception-train (ROI-decoded random crop, resize
224, jitter, flip), eval (resize 256, centre 224), tv2-train (torchvision's v2 recipe: ROI-decoded
random crop, resize 176, flip, `nvidia.dali.auto_aug.trivial_augment`, an erase with
probability 0.1; DALI's conditionals need `enable_conditionals`).
"""
import math

from nvidia.dali import fn, pipeline_def, types

from common import args, report, timed


def chw_u8(img, **kw):
    return fn.crop_mirror_normalize(img, dtype=types.UINT8, output_layout="CHW", mean=[0.0],
                                    std=[1.0], **kw)


def graph(name, root):
    jpegs, labels = fn.readers.file(file_root=root, random_shuffle=True, name="files")
    jitter = {k: fn.random.uniform(range=[0.6, 1.4])
              for k in ("brightness", "contrast", "saturation")}
    mirror = fn.random.coin_flip()
    if name == "inception-train":
        img = fn.decoders.image_random_crop(jpegs, device="cpu", output_type=types.RGB,
                                            random_area=[0.08, 1.0],
                                            random_aspect_ratio=[0.75, 4 / 3])
        img = fn.color_twist(fn.resize(img, size=[224, 224]), **jitter)
        return chw_u8(img, mirror=mirror), labels
    img = fn.decoders.image(jpegs, device="cpu", output_type=types.RGB)
    if name == "decode":
        return img, labels
    if name == "eval":
        return chw_u8(fn.resize(img, resize_shorter=256), crop=(224, 224)), labels
    if name == "resnet-train":
        img = fn.resize(img, resize_shorter=fn.random.uniform(range=[256, 480]))
        img = fn.crop(img, crop=(224, 224), crop_pos_x=fn.random.uniform(range=[0, 1]),
                      crop_pos_y=fn.random.uniform(range=[0, 1]))
        img = chw_u8(fn.color_twist(img, **jitter), mirror=mirror)
        img = fn.erase(img, anchor=fn.random.uniform(range=[0, 112], shape=[2]),
                       shape=[112, 112], axis_names="HW", fill_value=0)
        return img, labels
    if name == "tv2-train":  # torchvision's v2 recipe: RRC 176, flip, TrivialAugmentWide, erase 0.1
        from nvidia.dali.auto_aug import trivial_augment

        img = fn.decoders.image_random_crop(jpegs, device="cpu", output_type=types.RGB,
                                            random_area=[0.08, 1.0],
                                            random_aspect_ratio=[0.75, 4 / 3])
        img = fn.flip(fn.resize(img, size=[176, 176]), horizontal=mirror)
        img = chw_u8(trivial_augment.trivial_augment_wide(img, num_magnitude_bins=31))
        if fn.random.coin_flip(probability=0.1):
            img = fn.erase(img, anchor=fn.random.uniform(range=[0, 88], shape=[2]),
                           shape=[44, 44], axis_names="HW", fill_value=0)
        return img, labels
    raise SystemExit(f"dali_loader.py has no pipeline {name}")


def main():
    root, name, threads, epochs, batch = args("dali_loader.py")

    # trivial_augment and the erase's coin flip are conditionals.
    @pipeline_def(batch_size=batch, num_threads=threads, device_id=None, seed=1,
                  prefetch_queue_depth=4, enable_conditionals=name == "tv2-train")
    def pipe():
        return graph(name, root)

    p = pipe()
    p.build()
    steps = math.ceil(p.epoch_size("files") / batch)
    p.run()  # warm-up

    def epoch():
        return sum(len(p.run()[1]) for _ in range(steps))

    images, seconds = timed(epochs, epoch)
    report("dali-cpu", name, threads, images, seconds)


if __name__ == "__main__":
    main()
