"""Train and validate a small CNN with Hugging Face accelerate, fed by augloader.

    python examples/python/accelerate_example.py DATA [--epochs N]
    accelerate launch --num_processes 2 examples/python/accelerate_example.py DATA   # or torchrun

The loaders are made before the Accelerator; ``prepare`` passes them through (they shard by rank
when each pass starts). ``gather_for_metrics`` returns every validation image exactly once:
the loader pads its last step to equal shapes and tells accelerate how many rows are real. The
loader state is checkpointed with ``register_for_checkpointing`` (exact mid-epoch resume)."""

import argparse

import torch
from accelerate import Accelerator

import augloader


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--size", type=int, default=64, help="crop size (default 64)")
    a = ap.parse_args()
    common = dict(batch_size=32, workers=2, size=a.size, dtype=torch.float32, normalize=True)
    train = augloader.Loader(a.data, **common)
    val = augloader.Loader(a.data, split="val", **common)
    acc = Accelerator()
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, stride=2, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, len(train.classes)),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model, opt, train, val = acc.prepare(model, opt, train, val)
    acc.register_for_checkpointing(train)
    for epoch in range(a.epochs):
        train.set_epoch(epoch)
        model.train()
        for x, y in train:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            acc.backward(loss)
            opt.step()
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for x, y in val:
                pred, y = acc.gather_for_metrics((model(x).argmax(1), y))
                correct += int((pred == y).sum())
                total += len(y)
        acc.print(f"epoch {epoch}: val top-1 {correct / max(total, 1):.3f} on {total} images")
    acc.end_training()


if __name__ == "__main__":
    main()
