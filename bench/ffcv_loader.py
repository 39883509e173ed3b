#!/usr/bin/env python3
"""Anchor: FFCV (libffcv/ffcv, PyPI `ffcv`) CPU loader on an image folder.

usage: ffcv_loader.py ROOT PIPELINE WORKERS [EPOCHS] [BATCH]
PIPELINE: decode | resnet-train | inception-train | inception-train-jitter | eval
Output: u8 [B,3,224,224] torch batches on the CPU (ToTorchImage's default channels_last view, as in
FFCV's ImageNet example: NCHW shape, NHWC memory), one JSON line like dali_loader.py.
WORKERS = FFCV num_workers = numba threads in this one process (like DALI's num_threads).

FFCV reads a .beton file, not a folder, so ROOT is converted once and cached under
/tmp/ffcv-cache/ (keyed by ROOT's absolute path, its files' names/sizes/mtimes and the write
settings); conversion time is not counted. Caveat: the conversion RE-ENCODES every image (OpenCV,
JPEG quality 90, FFCV's ImageNet recipe), so FFCV decodes its own JPEGs, not the corpus's bytes;
sizes are kept (max_resolution=1024 > the corpus's largest side) so the decode work is of the
same size, but file sizes/entropy-coding differ. We write ALL images as JPEG (write_mode='jpg');
FFCV's published ImageNet recipe uses write_mode='proportion' with 50% stored as raw pixels
(no decode at all), which would not be comparable with loaders that decode every JPEG.
Env FFCV_WRITE_MODE=proportion FFCV_COMPRESS_PROB=0.5 reproduces their recipe if wanted.

Pipelines (FFCV decoders decode the full JPEG with libjpeg-turbo, then crop+resize with OpenCV):
  resnet-train: RandomResizedCropRGBImageDecoder(224) -- FFCV has no scale-aug (random shorter
                side 256..480 + random 224 crop) decoder, RRC is its closest; then flip,
                brightness/contrast/saturation 0.4 (p=1), Cutout 112x112 (~ DALI's erase).
  inception-train: RandomResizedCropRGBImageDecoder(224), RandomHorizontalFlip (no colour jitter).
  inception-train-jitter: the same plus brightness/contrast/saturation 0.4 (p=1), like DALI's
                inception-train color_twist (FFCV has no hue op; neither has the DALI anchor).
  eval: CenterCropRGBImageDecoder((224,224), ratio=224/256) (centre crop of 224/256 of the
        shorter side, resized to 224 -- same window as resize-256 + centre-crop-224).
  decode: SimpleRGBImageDecoder only batches corpora whose images all have ONE size; on a
        variable-size corpus FFCV cannot do it and this script exits with a "skipped" line.
No normalisation / float conversion in any pipeline (u8 out, like `augloader bench`).
Warm-up = one full epoch (numba JIT-compiles the pipeline, ~25 s on this 2-core machine).

setup (Debian 12, Python 3.11; ~5 min, 5.3 GB, mostly torch's CUDA wheels):
  apt-get update && apt-get install -y --no-install-recommends libturbojpeg0-dev libopencv-dev
      # + pkg-config, build-essential (already present here)
  python3 -m venv /tmp/ffcv-venv && /tmp/ffcv-venv/bin/pip install torch==2.13.0
  /tmp/ffcv-venv/bin/pip install ffcv==1.0.2 pillow      # sdist, builds ffcv._libffcv; no cupy
  FFCV_CHECK=1 prints batch shape/dtype/blank-image stats to stderr.
"""
import hashlib, json, os, sys, time

import numpy as np

EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
CACHE_DIR = "/tmp/ffcv-cache"
MAX_RES = int(os.environ.get("FFCV_MAX_RES", "1024"))
JPEG_QUALITY = 90  # FFCV's ImageNet example (write_imagenet.sh ... 90)
WRITE_MODE = os.environ.get("FFCV_WRITE_MODE", "jpg")
COMPRESS_PROB = float(os.environ.get("FFCV_COMPRESS_PROB", "0.5"))


def list_images(root):
    """Class subfolders (sorted, label = index) like DALI's readers.file / ImageFolder;
    a flat folder of images gets label 0."""
    root = os.path.abspath(root)
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    items = []
    for label, c in enumerate(classes):
        for dirpath, _, files in sorted(os.walk(os.path.join(root, c))):
            for f in sorted(files):
                if f.lower().endswith(EXTS):
                    items.append((os.path.join(dirpath, f), label))
    if not items:
        items = [(os.path.join(root, f), 0) for f in sorted(os.listdir(root))
                 if f.lower().endswith(EXTS) and os.path.isfile(os.path.join(root, f))]
    if not items:
        raise SystemExit(f"no images under {root}")
    return items


class FolderDataset:
    """Indexable dataset for FFCV's DatasetWriter: (HxWx3 uint8 RGB array, int label)."""
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        from PIL import Image
        path, label = self.items[i]
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB")), label


def beton_for(root, writer_procs):
    items = list_images(root)
    h = hashlib.sha1()
    h.update(f"{os.path.abspath(root)}|{WRITE_MODE}|{COMPRESS_PROB}|{MAX_RES}|{JPEG_QUALITY}".encode())
    for p, label in items:
        st = os.stat(p)
        h.update(f"{p}|{label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    os.makedirs(CACHE_DIR, exist_ok=True)
    name = os.path.basename(os.path.abspath(root).rstrip("/")) or "root"
    path = os.path.join(CACHE_DIR, f"{name}-{h.hexdigest()[:16]}.beton")
    if os.path.exists(path):
        return path
    from ffcv.writer import DatasetWriter
    from ffcv.fields import RGBImageField, IntField
    tmp = f"{path}.tmp{os.getpid()}"
    t0 = time.perf_counter()
    # NB: FFCV re-encodes each image here (OpenCV imencode, quality 90): decode work later is on
    # FFCV's JPEGs, not the corpus's original files.
    writer = DatasetWriter(tmp, {
        "image": RGBImageField(write_mode=WRITE_MODE, max_resolution=MAX_RES,
                               jpeg_quality=JPEG_QUALITY, compress_probability=COMPRESS_PROB),
        "label": IntField(),
    }, num_workers=max(1, writer_procs))
    writer.from_indexed_dataset(FolderDataset(items), chunksize=50)
    os.replace(tmp, path)
    print(f"# wrote {path} ({len(items)} images, {os.path.getsize(path) / 2**20:.1f} MiB) "
          f"in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return path


def image_pipeline(pipe):
    from ffcv.fields.rgb_image import (SimpleRGBImageDecoder, RandomResizedCropRGBImageDecoder,
                                       CenterCropRGBImageDecoder)
    from ffcv.transforms import (ToTensor, ToTorchImage, RandomHorizontalFlip, Cutout,
                                 RandomBrightness, RandomContrast, RandomSaturation)

    def jitter():
        return [RandomBrightness(0.4, p=1.0), RandomContrast(0.4, p=1.0), RandomSaturation(0.4, p=1.0)]

    if pipe == "decode":
        return [SimpleRGBImageDecoder(), ToTensor(), ToTorchImage()]
    if pipe == "resnet-train":  # RRC stands in for scale aug (FFCV has no such decoder)
        return ([RandomResizedCropRGBImageDecoder((224, 224)), RandomHorizontalFlip()] + jitter() +
                [Cutout(112, (0, 0, 0)), ToTensor(), ToTorchImage()])
    if pipe == "inception-train":
        return [RandomResizedCropRGBImageDecoder((224, 224)), RandomHorizontalFlip(), ToTensor(), ToTorchImage()]
    if pipe == "inception-train-jitter":
        return ([RandomResizedCropRGBImageDecoder((224, 224)), RandomHorizontalFlip()] + jitter() +
                [ToTensor(), ToTorchImage()])
    if pipe == "eval":
        return [CenterCropRGBImageDecoder((224, 224), ratio=224 / 256), ToTensor(), ToTorchImage()]
    raise SystemExit(f"unknown pipeline {pipe}")


def build(beton, pipe, workers, batch):
    from ffcv.loader import Loader, OrderOption
    from ffcv.fields.basics import IntDecoder
    from ffcv.transforms import ToTensor, Squeeze
    return Loader(beton, batch_size=batch, num_workers=workers, order=OrderOption.RANDOM,
                  os_cache=True, drop_last=True,
                  pipelines={"image": image_pipeline(pipe),
                             "label": [IntDecoder(), ToTensor(), Squeeze()]})


def main():
    root, pipe, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    batch = int(sys.argv[5]) if len(sys.argv) > 5 else 64
    check = os.environ.get("FFCV_CHECK") == "1"  # print shape/dtype/content stats (tests)
    beton = beton_for(root, workers)
    try:
        loader = build(beton, pipe, workers, batch)
        it = iter(loader)  # warm-up epoch: numba JIT-compiles the pipeline on first use
        for imgs, labels in it:
            pass
    except TypeError as e:
        if pipe == "decode" and "constant image" in str(e):
            print(json.dumps({"pipeline": pipe, "workers": workers, "images": 0, "seconds": 0,
                              "images_per_sec": None, "anchor": "ffcv-cpu",
                              "skipped": "SimpleRGBImageDecoder needs all images the same size"}))
            return
        raise
    n, t0 = 0, time.perf_counter()
    for _ in range(epochs):
        for imgs, labels in loader:
            n += len(labels)
    dt = time.perf_counter() - t0
    if check:
        import torch
        f = imgs.float()
        print(json.dumps({"shape": list(imgs.shape), "dtype": str(imgs.dtype),
                          "channels_last": imgs.is_contiguous(memory_format=torch.channels_last),
                          "mean": round(f.mean().item(), 2), "std": round(f.std().item(), 2),
                          "blank_images": int((f.flatten(1).std(1) < 1).sum()),
                          "labels": labels[:8].tolist()}), file=sys.stderr)
    print(json.dumps({"pipeline": pipe, "workers": workers, "images": n, "seconds": round(dt, 3),
                      "images_per_sec": round(n / dt, 1) if dt > 0 else None, "anchor": "ffcv-cpu"}))


if __name__ == "__main__":
    main()
