#!/usr/bin/env python3
"""torchvision transforms v2 + torch DataLoader on an ImageFolder, with augloader's presets:
resnet-train (scale augmentation 256..480, random 224 crop, flip, jitter 0.4, one Cutout-sized
erase; no PCA lighting op), inception-train (RandomResizedCrop 224, flip, jitter), eval (resize
256, centre 224), tta10 (ten crops), tv2-train (RandomResizedCrop 176, flip,
TrivialAugmentWide, RandomErasing 0.1), decode. Float normalised output, as a training script uses.
"""
import torch
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import v2

from common import args, report, timed

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
TO_MODEL = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]


def pipeline(name):
    jitter = v2.ColorJitter(0.4, 0.4, 0.4)
    return v2.Compose({
        "decode": [v2.ToImage()],
        "resnet-train": [v2.RandomShortestSize(list(range(256, 481))), v2.RandomCrop(224),
                         v2.RandomHorizontalFlip(), jitter, *TO_MODEL,
                         v2.RandomErasing(p=1.0, scale=(0.25, 0.25), ratio=(1.0, 1.0), value=0)],
        "inception-train": [v2.RandomResizedCrop(224), v2.RandomHorizontalFlip(), jitter,
                            *TO_MODEL],
        "eval": [v2.Resize(256), v2.CenterCrop(224), *TO_MODEL],
        # torchvision's classification reference, ResNet-50 v2 recipe (batch mixing aside).
        "tv2-train": [v2.RandomResizedCrop(176), v2.RandomHorizontalFlip(),
                      v2.TrivialAugmentWide(), *TO_MODEL, v2.RandomErasing(0.1)],
        "tta10": [v2.Resize(256), v2.TenCrop(224),
                  v2.Lambda(lambda crops: torch.stack([v2.Compose(TO_MODEL)(c) for c in crops]))],
    }[name])


def collate(batch):
    xs, ys = [x for x, _ in batch], torch.tensor([y for _, y in batch])
    if all(x.shape == xs[0].shape for x in xs):
        return torch.stack(xs), ys
    return xs, ys  # decode: images of different sizes


def main():
    root, name, workers, epochs, batch = args("torchvision_loader.py")
    torch.set_num_threads(1)
    ds = datasets.ImageFolder(root, transform=pipeline(name))
    dl = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, collate_fn=collate,
                    persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None)
    for _ in dl:  # warm-up epoch: workers started, files in the page cache
        pass
    images, seconds = timed(epochs, lambda: sum(len(y) for _, y in dl))
    report("torchvision", name, workers, images, seconds)


if __name__ == "__main__":
    main()
