"""Train and validate a small CNN with PyTorch Lightning, fed by augloader.

    python examples/python/lightning_example.py DATA [--epochs N] [--devices N]

DATA is what ``augloader --data`` takes (``DATA/train`` and ``DATA/val`` ImageFolders, ...).
The loaders are made before the Trainer and passed to ``fit``: they read rank and world when
each pass starts, so ``--devices 2`` (DDP over processes; gloo on the CPU) shards them right.
Validation sees every image exactly once over the ranks; its accuracy is logged as sums, which
the last, possibly empty, batch of a rank does not change."""

import argparse

import lightning as L
import torch

import augloader


class Classifier(L.LightningModule):
    def __init__(self, classes: int):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 32, 3, stride=2, padding=1), torch.nn.BatchNorm2d(32),
            torch.nn.ReLU(), torch.nn.Conv2d(32, 64, 3, stride=2, padding=1),
            torch.nn.BatchNorm2d(64), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(), torch.nn.Linear(64, classes),
        )

    def training_step(self, batch, _):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss, batch_size=len(y))
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        correct = (self.net(x).argmax(1) == y).sum().float()
        self.log("val_correct", correct, reduce_fx="sum", sync_dist=True)
        self.log("val_count", float(len(y)), reduce_fx="sum", sync_dist=True)

    def on_validation_epoch_end(self):
        m = self.trainer.callback_metrics
        if not self.trainer.sanity_checking and self.global_rank == 0:
            top1 = float(m["val_correct"]) / max(float(m["val_count"]), 1.0)
            print(f"epoch {self.current_epoch}: val top-1 {top1:.3f} "
                  f"on {int(m['val_count'])} images", flush=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--devices", type=int, default=1)
    ap.add_argument("--size", type=int, default=64, help="crop size (default 64)")
    a = ap.parse_args()
    common = dict(batch_size=32, workers=2, size=a.size, dtype=torch.float32, normalize=True)
    train = augloader.Loader(a.data, **common)
    val = augloader.Loader(a.data, split="val", **common)
    trainer = L.Trainer(accelerator="cpu", devices=a.devices, max_epochs=a.epochs, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(Classifier(len(train.classes)), train_dataloaders=train, val_dataloaders=val)


if __name__ == "__main__":
    main()
