"""resnet50 at 224 px, a fixed number of steps, fed by augloader and by torch's DataLoader
(torchvision transforms of the same recipe) in one run; prints one JSON line per loader with
images_per_sec and data_wait_fraction. Generates its ImageFolder (photo-sized JPEGs) first."""

import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torchvision import transforms as T

import augloader


def make_data(root, classes=10, per_class=200, seed=0):
    rng = np.random.default_rng(seed)
    for c in range(classes):
        d = os.path.join(root, "train", f"c{c}")
        os.makedirs(d, exist_ok=True)
        for i in range(per_class):
            h, w = int(rng.integers(360, 500)), int(rng.integers(400, 640))
            yy, xx = np.mgrid[0:h, 0:w]
            img = np.stack([xx * (c + 1) % 256, yy * 3 % 256, (xx + yy + i) % 256], -1)
            img = (img + rng.integers(0, 50, img.shape)) % 256
            Image.fromarray(img.astype(np.uint8)).save(os.path.join(d, f"{i}.jpg"), quality=90)
    return root


def train(batches, steps, device, mean, std):
    model = torchvision.models.resnet50(num_classes=10).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scaler = torch.amp.GradScaler()
    wait, seen, step = 0.0, 0, 0
    start = t = time.perf_counter()
    while step < steps:
        for images, labels in batches():
            wait += time.perf_counter() - t
            x = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            if x.dtype == torch.uint8:
                x = (x.float() - mean) / std
            with torch.autocast("cuda"):
                loss = F.cross_entropy(model(x), labels.to(device, non_blocking=True))
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            seen += len(labels)
            step += 1
            if step >= steps:
                break
            t = time.perf_counter()
    torch.cuda.synchronize()
    secs = time.perf_counter() - start
    return {"images_per_sec": seen / secs, "data_wait_fraction": wait / secs, "steps": step, "seconds": secs}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--workers", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--out", default=".")
    a = p.parse_args()
    root = make_data(os.path.join(a.out, "gpu_data"))
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    ours = augloader.Loader(root, pipeline="inception-train", batch_size=a.batch_size, workers=a.workers,
                            drop_last=True, device=device, dtype=torch.float16, normalize=True,
                            channels_last=True)
    mean = torch.tensor(ours.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(ours.std, device=device).view(1, 3, 1, 1)
    r = train(lambda: ours, a.steps, device, mean, std)
    print(json.dumps({"loader": "augloader device=cuda float16", "workers": a.workers, **r}), flush=True)
    tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ColorJitter(0.4, 0.4, 0.4), T.PILToTensor()])
    ds = torchvision.datasets.ImageFolder(os.path.join(root, "train"), tf)
    dl = torch.utils.data.DataLoader(ds, batch_size=a.batch_size, shuffle=True, num_workers=a.workers,
                                     pin_memory=True, drop_last=True, persistent_workers=True)
    r = train(lambda: dl, a.steps, device, mean, std)
    print(json.dumps({"loader": "torch.DataLoader", "workers": a.workers, **r}), flush=True)


if __name__ == "__main__":
    main()
