"""The CUDA delivery path of augloader.Loader, against its CPU path, on a lent GPU: every batch
of an epoch with device="cuda" equals the CPU batch (uint8 exactly; float32 normalised within
1e-5; float16 within its rounding), on the device, in the asked memory format, while the
consumer's stream works on the previous batch. Exits non-zero (loudly) without CUDA."""

import os
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

import augloader

if not torch.cuda.is_available():
    sys.exit("gpu_device_check: torch sees no CUDA device; this check needs one")

root = tempfile.mkdtemp()
rng = np.random.default_rng(0)
for c in range(3):
    os.makedirs(f"{root}/train/c{c}")
    for i in range(40):
        img = rng.integers(0, 256, (int(rng.integers(60, 90)), int(rng.integers(60, 90)), 3))
        Image.fromarray(img.astype(np.uint8)).save(f"{root}/train/c{c}/{i}.jpg", quality=85)

busy = torch.randn(2048, 2048, device="cuda")
for cl in (False, True):
    for dtype, tol in ((torch.uint8, 0), (torch.float32, 1e-5), (torch.float16, 2e-3)):
        floats = dict(dtype=dtype, normalize=True) if dtype != torch.uint8 else {}
        kw = dict(batch_size=16, workers=2, size=48, seed=5, channels_last=cl, return_indices=True, **floats)
        cpu = list(augloader.Loader(root, **kw))
        n = 0
        for (x, y, i), (cx, cy, ci) in zip(augloader.Loader(root, device="cuda", **kw), cpu):
            busy @ busy  # the consumer's stream is busy while the next copy runs
            assert x.device.type == "cuda" and x.dtype == dtype, (x.device, x.dtype)
            assert x.is_contiguous(memory_format=torch.channels_last) == cl or x.shape[-1] == 1
            assert torch.equal(i.cpu(), ci) and torch.equal(y.cpu(), cy)
            err = (x.float().cpu() - cx.float()).abs().max().item()
            assert err <= tol * max(1.0, cx.float().abs().max().item()), (dtype, cl, err)
            n += 1
        assert n == len(cpu) == 8, n
        print(f"gpu_device_check: channels_last={cl} {dtype}: {n} batches equal the CPU path")
print("gpu_device_check: ok")
