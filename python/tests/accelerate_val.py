"""Run by test_frameworks.py under torchrun: accelerate's ``gather_for_metrics`` over a
validation Loader made before the Accelerator.

    torchrun --nproc_per_node N accelerate_val.py DATA OUT

Rank 0 writes OUT/result.json: the gathered indices, predictions and labels, and the correct
count; every rank writes OUT/steps{r}.json (its number of steps)."""

import json
import sys
from pathlib import Path

import torch
from accelerate import Accelerator

import augloader

data, out = sys.argv[1], Path(sys.argv[2])
loader = augloader.Loader(data, split="val", batch_size=8, workers=2, size=16,
                          return_indices=True, dtype=torch.float32, normalize=True)
acc = Accelerator(cpu=True)
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 4))
model, loader = acc.prepare(model, loader)
model.eval()
indices, correct, steps = [], 0, 0
with torch.no_grad():
    for x, y, i in loader:
        pred = model(x).argmax(1)
        p, t, idx = acc.gather_for_metrics((pred, y, i))
        indices += idx.tolist()
        correct += int((p == t).sum())
        steps += 1
(out / f"steps{acc.process_index}.json").write_text(json.dumps(steps))
if acc.is_main_process:
    (out / "result.json").write_text(json.dumps({"indices": indices, "correct": correct}))
acc.wait_for_everyone()
acc.end_training()
