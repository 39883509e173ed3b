"""Run by test_frameworks.py: PyTorch Lightning with loaders made before the Trainer exists.

    python lightning_val.py DATA OUT STRATEGY DEVICES

``validate()`` of a fixed model, then one epoch of ``fit()``, on DEVICES CPU processes (gloo).
Each rank writes OUT/rank{r}.json: the validation indices it saw, the sums Lightning synced
(``self.log(..., sync_dist=True)``), and the per-step counts gathered with ``self.all_gather``."""

import json
import sys
from pathlib import Path

import lightning as L
import torch

import augloader

data, out, strategy, devices = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
common = dict(batch_size=8, workers=2, size=16, return_indices=True, dtype=torch.float32,
              normalize=True)
# Made before the Trainer, as docs/python.md shows: rank and world are not known yet.
train = augloader.Loader(data, seed=1, **common)
val = augloader.Loader(data, split="val", **common)


class Net(L.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 4))
        self.seen, self.gathered, self.train_seen = [], [], []

    def on_validation_epoch_start(self):
        self.seen, self.gathered = [], []

    def validation_step(self, batch, _):
        x, y, i = batch
        correct = (self.net(x).argmax(1) == y).sum()
        self.seen += i.tolist()
        # Sums: an empty batch (a rank whose samples ran out) adds nothing.
        self.log("correct", correct.float(), reduce_fx="sum", sync_dist=True)
        self.log("count", float(len(y)), reduce_fx="sum", sync_dist=True)
        # A mean weighted by batch size (0 on an empty batch). Not exact over ranks under gloo:
        # Lightning averages its integer batch-size total over the ranks with truncation.
        self.log("acc", correct.float() / max(len(y), 1), sync_dist=True, batch_size=len(y))
        # A collective in every step: every rank must take part as often.
        both = self.all_gather(torch.stack([correct, torch.tensor(len(y))]))
        self.gathered.append(both.sum(0).tolist())

    def on_validation_epoch_end(self):
        if self.trainer.sanity_checking:
            return
        m = {k: float(v) for k, v in self.trainer.callback_metrics.items()}
        rec = {"seen": self.seen, "gathered": self.gathered, "metrics": m,
               "rank": self.global_rank, "world": self.trainer.world_size}
        stage = "fit" if self.trainer.training or self.train_seen else "validate"
        (out / f"{stage}-rank{self.global_rank}.json").write_text(json.dumps(rec))

    def training_step(self, batch, _):
        x, y, i = batch
        self.train_seen += i.tolist()
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def on_train_epoch_end(self):
        (out / f"train-rank{self.global_rank}.json").write_text(json.dumps(self.train_seen))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)  # fit must not change validate's model


if __name__ == "__main__":
    out.mkdir(parents=True, exist_ok=True)
    kw = dict(accelerator="cpu", devices=devices, logger=False, enable_checkpointing=False,
              enable_progress_bar=False, enable_model_summary=False, max_epochs=1)
    if devices > 1:
        kw["strategy"] = strategy
    model = Net()
    L.Trainer(**kw).validate(model, dataloaders=val)
    L.Trainer(num_sanity_val_steps=2, **kw).fit(model, train_dataloaders=train,
                                                 val_dataloaders=val)
