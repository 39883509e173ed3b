"""What every anchor shares: its command line and its one JSON line of output."""
import json
import sys
import time

PIPELINES = ("decode", "resnet-train", "inception-train", "eval", "tta10", "tv2-train")


def args(usage):
    """ROOT PIPELINE WORKERS [EPOCHS=2] [BATCH=64] from the command line."""
    if len(sys.argv) < 4 or sys.argv[2] not in PIPELINES:
        raise SystemExit(f"usage: {usage} ROOT PIPELINE WORKERS [EPOCHS] [BATCH]\n"
                         f"PIPELINE: {' | '.join(PIPELINES)}")
    epochs = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    batch = int(sys.argv[5]) if len(sys.argv) > 5 else 64
    return sys.argv[1], sys.argv[2], int(sys.argv[3]), epochs, batch


def timed(epochs, run_epoch):
    """Runs `epochs` epochs after the caller's warm-up; returns (images, seconds)."""
    n, t0 = 0, time.perf_counter()
    for _ in range(epochs):
        n += run_epoch()
    return n, time.perf_counter() - t0


def report(anchor, pipeline, workers, images, seconds):
    print(json.dumps({"anchor": anchor, "pipeline": pipeline, "workers": workers,
                      "images": images, "seconds": round(seconds, 3),
                      "images_per_sec": round(images / seconds, 1)}))
