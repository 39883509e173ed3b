"""Python-side throughput of augloader.Loader: iterates EPOCHS epochs of ROOT with PIPELINE and
WORKERS threads (as `augloader bench` does: batches delivered as torch tensors and dropped) and
prints one JSON line like `augloader bench --json`.

usage: bench_python.py ROOT PIPELINE WORKERS [EPOCHS] [BATCH] [DTYPE]
DTYPE float32 (or float16, bfloat16) asks for normalised float batches (normalize=True)."""

import json
import sys
import time

import augloader

root, pipeline, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
batch = int(sys.argv[5]) if len(sys.argv) > 5 else 64
dtype = sys.argv[6] if len(sys.argv) > 6 else "uint8"
floats = dict(dtype=dtype, normalize=True) if dtype != "uint8" else {}
loader = augloader.Loader(root, pipeline=pipeline, batch_size=batch, workers=workers, **floats)
images = 0
start = time.perf_counter()
for epoch in range(epochs):
    loader.set_epoch(epoch)
    for x, y in loader:
        images += len(y)
seconds = time.perf_counter() - start
print(json.dumps({"pipeline": pipeline, "workers": workers, "dtype": dtype, "images": images,
                  "seconds": seconds, "images_per_sec": images / seconds}))
