"""Real clients written for DataLoader, on the CPU: PyTorch Lightning's Trainer.fit (sanity
check included) and Hugging Face accelerate (prepare, then checkpointed mid-epoch resume)."""

import pytest
import torch

import augloader


def loaders(dataset):
    common = dict(batch_size=8, workers=2, size=32, return_indices=True, dtype=torch.float32,
                  normalize=True)
    return (augloader.Loader(dataset, seed=3, **common),
            augloader.Loader(dataset, split="val", **common))


def test_lightning_fit_sees_every_sample_once_per_epoch_after_the_sanity_check(dataset):
    L = pytest.importorskip("lightning")
    train, val = loaders(dataset)

    class Counting(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 3))
            self.train_seen, self.val_seen, self.sanity_seen = [], [], []

        def on_train_epoch_start(self):
            self.train_seen.append([])

        def on_validation_epoch_start(self):
            if not self.trainer.sanity_checking:
                self.val_seen.append([])

        def training_step(self, batch, _):
            x, y, i = batch
            self.train_seen[-1] += i.tolist()
            return torch.nn.functional.cross_entropy(self.net(x), y)

        def validation_step(self, batch, _):
            x, y, i = batch
            (self.sanity_seen if self.trainer.sanity_checking else self.val_seen[-1]).extend(i.tolist())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    model = Counting()
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(model, train_dataloaders=train, val_dataloaders=val)
    assert len(model.sanity_seen) == 16  # the default sanity check: 2 batches
    assert len(model.val_seen) == 2
    for seen in model.val_seen:
        assert sorted(seen) == list(range(18)), "a validation epoch lost or repeated samples"
    assert len(model.train_seen) == 2
    for seen in model.train_seen:
        assert sorted(seen) == list(range(72))
    assert model.train_seen[0] != model.train_seen[1]  # Lightning's set_epoch reached the loader


def test_accelerate_prepare_and_mid_epoch_resume_through_save_state(dataset, tmp_path):
    accelerate = pytest.importorskip("accelerate")
    train, _ = loaders(dataset)
    uninterrupted = [i.tolist() for _, _, i in augloader.Loader(
        dataset, seed=3, batch_size=8, workers=2, size=32, return_indices=True)]

    acc = accelerate.Accelerator(cpu=True)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    model, opt, loader = acc.prepare(model, opt, train)
    assert loader is train  # not a torch DataLoader: passed through, still augloader's
    acc.register_for_checkpointing(loader)
    seen = []
    for step, (x, y, i) in enumerate(loader):
        acc.backward(torch.nn.functional.cross_entropy(model(x), y))
        opt.step()
        opt.zero_grad()
        seen.append(i.tolist())
        if step == 3:
            acc.save_state(tmp_path / "ckpt")
            break
    # A new process would do this: build the same loader, register it, load the state.
    fresh, _ = loaders(dataset)
    acc2 = accelerate.Accelerator(cpu=True)
    model2 = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 3))
    opt2 = torch.optim.SGD(model2.parameters(), lr=0.01)
    model2, opt2, fresh = acc2.prepare(model2, opt2, fresh)
    acc2.register_for_checkpointing(fresh)
    acc2.load_state(tmp_path / "ckpt")
    seen += [i.tolist() for _, _, i in fresh]
    assert seen == uninterrupted
