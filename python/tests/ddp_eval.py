"""Run by torchrun in test_torchrun.py: each rank evaluates a fixed model on its part of the
validation split (even_batches off: every sample once over all ranks) and writes the indices it
saw, its own counts, and the counts summed over the ranks with augloader.all_reduce_sum."""

import json
import sys

import torch
import torch.distributed as dist

import augloader

data, out = sys.argv[1], sys.argv[2]
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Conv2d(3, 8, 5, stride=4), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
    torch.nn.Flatten(), torch.nn.Linear(8, 4),
).eval()
loader = augloader.Loader(data, split="val", batch_size=8, workers=1, size=32, return_indices=True,
                          dtype=torch.float32, normalize=True)
seen, correct, total = [], 0, 0
with torch.no_grad():
    for images, labels, indices in loader:
        seen += indices.tolist()
        correct += int((model(images).argmax(1) == labels).sum())
        total += len(labels)
summed = augloader.all_reduce_sum(correct, total)
json.dump({"seen": seen, "batches": len(loader), "correct": correct, "total": total,
           "summed": list(summed)}, open(f"{out}/rank{rank}.json", "w"))
dist.destroy_process_group()
