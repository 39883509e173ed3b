"""augloader: a deterministic, multi-threaded image loader with ResNet-style augmentation.

The loader of PyTorch training scripts and torchrun jobs: batches are identical whatever the
worker count, every rank gets the same number of batches, and ``state_dict()`` resumes an epoch
exactly, also on another number of ranks. The work happens in Rust threads with the GIL
released; batches arrive as ``torch.uint8`` tensors (numpy arrays without torch) that share the
loader's memory.

    loader = augloader.Loader("data", batch_size=256, workers=8)
    for epoch in range(90):
        loader.set_epoch(epoch)
        for images, labels in loader:   # uint8 [B, 3, H, W], int64 [B]
            ...
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from . import _augloader
from ._augloader import LoadError

__all__ = ["Loader", "LoadError", "augment", "add_restart_markers", "PIPELINES", "__version__"]
__version__: str = _augloader.__version__

#: The pipeline presets, by name, with what each does.
PIPELINES: Dict[str, str] = dict(_augloader.presets())

#: Keyword overrides of a pipeline preset (the command line's pipeline flags), as the library
#: defines them.
OVERRIDES = tuple(_augloader.override_names())

_STATE_VERSION = 1


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _array(buffer: Any) -> np.ndarray:
    # The buffer object exposes __array_interface__; the array keeps it (and its memory) alive.
    return np.asarray(buffer)


def _check_overrides(overrides: Dict[str, Any]) -> Dict[str, Any]:
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise ValueError(
            f"unknown pipeline override(s) {', '.join(unknown)}; known: {', '.join(OVERRIDES)}"
        )
    return {k: v for k, v in overrides.items() if v is not None}


def _default_rank_world(rank: Optional[int], world_size: Optional[int]) -> Tuple[int, int]:
    torch = _torch()
    if rank is None or world_size is None:
        dist = getattr(torch, "distributed", None) if torch is not None else None
        if dist is not None and dist.is_available() and dist.is_initialized():
            r, w = dist.get_rank(), dist.get_world_size()
        else:
            r = int(os.environ.get("RANK", "0"))
            w = int(os.environ.get("WORLD_SIZE", "1"))
        rank = r if rank is None else rank
        world_size = w if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} must be in 0..{world_size - 1} (world_size {world_size})")
    return rank, world_size


class Loader:
    """Batches of augmented images from a dataset, in a deterministic order.

    Args:
        data: what ``augloader --data`` takes: a folder with ``train/`` and ``val/``
            ImageFolders, ``train.csv``/``val.csv`` lists, CIFAR binaries, ``train-*.tar`` /
            ``val-*.tar`` WebDataset shards, or one ImageFolder; or shards named by a brace
            pattern such as ``"shards/train-{000000..000099}.tar"``.
        split: ``"train"`` or ``"val"``.
        pipeline: a preset name (see ``augloader.PIPELINES``); default ``resnet-train`` for the
            training split and ``eval`` for validation.
        batch_size: samples per batch.
        workers: Rust worker threads decoding and augmenting.
        prefetch: batches in flight per worker.
        seed: seed of the shuffle and of every random augmentation draw.
        shuffle: shuffle each epoch (default: for the training split).
        drop_last: drop the last partial batch (and, across ranks, the tail that does not divide).
        rank, world_size: this process's shard; by default from ``torch.distributed`` when it is
            initialised, else the ``RANK``/``WORLD_SIZE`` environment, else 0 of 1. Every rank
            gets the same number of batches.
        on_error: ``"fail"`` (raise ``LoadError`` naming the file) or ``"skip"`` (replace the
            sample by another of its batch, deterministically, and record it in ``skipped``).
        return_indices: also yield the dataset indices of each batch.
        tta: test-time augmentation views of each sample instead of one image: ``"flip"``,
            ``"5crop"`` or ``"10crop"`` (as torchvision's FiveCrop/TenCrop of the pipeline's
            resize and crop); images are then ``[B, V, 3, H, W]``.
        channels_last: collate each image's pixels interleaved, as decoded: the same
            ``[B, 3, H, W]`` images in ``torch.channels_last`` memory format (cheaper to collate,
            and what CUDA convolutions prefer; no conversion on the device).
        **overrides: changes to the preset, as the command line's flags: ``size``,
            ``scale_min``, ``scale_max``, ``jitter``, ``hue``, ``lighting``, ``cutout``,
            ``cutout_holes``, ``flip``, ``exact_decode``.

    Iterating yields ``(images, labels)`` (or ``(images, labels, indices)``): ``images`` a
    ``torch.uint8`` tensor ``[B, 3, H, W]`` (``[B, V, 3, H, W]`` with ``tta``) sharing the batch's memory, ``labels`` and
    ``indices`` ``torch.int64`` ``[B]``; numpy arrays when torch is not installed. Normalise on
    the device with ``mean`` and ``std`` (0..255 scale).
    """

    def __init__(
        self,
        data: "os.PathLike[str] | str",
        *,
        split: str = "train",
        pipeline: Optional[str] = None,
        batch_size: int = 64,
        workers: int = 2,
        prefetch: int = 2,
        seed: int = 0,
        shuffle: Optional[bool] = None,
        drop_last: bool = False,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        on_error: str = "fail",
        return_indices: bool = False,
        tta: Optional[str] = None,
        channels_last: bool = False,
        **overrides: Any,
    ) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', not {split!r}")
        if on_error not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
        for name, value in (("batch_size", batch_size), ("workers", workers), ("prefetch", prefetch)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, not {value!r}")
        if not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise ValueError(f"seed must be an integer in 0..2**64, not {seed!r}")
        self.rank, self.world_size = _default_rank_world(rank, world_size)
        self.batch_size = batch_size
        self.seed = int(seed)
        self.shuffle = (split == "train") if shuffle is None else bool(shuffle)
        self.drop_last = bool(drop_last)
        self.return_indices = bool(return_indices)
        self.pipeline = pipeline or ("resnet-train" if split == "train" else "eval")
        self._inner = _augloader.Loader(
            os.fspath(data),
            split,
            self.pipeline,
            _check_overrides(overrides),
            batch_size,
            workers,
            workers * prefetch,
            self.seed,
            self.shuffle,
            self.drop_last,
            self.rank,
            self.world_size,
            on_error == "skip",
            tta,
            bool(channels_last),
        )
        self.channels_last = bool(channels_last)
        self._epoch = 0
        self._position = 0  # samples of the epoch's global order already delivered
        self._current: Optional[Any] = None
        self.skipped: List[Tuple[int, str, str]] = []

    # -- what the data is ------------------------------------------------------------------
    @property
    def classes(self) -> List[str]:
        """Class names; label ``i`` is ``classes[i]``."""
        return self._inner.classes()

    @property
    def samples(self) -> List[Tuple[str, int]]:
        """``(path, label)`` of every sample, as torchvision's ImageFolder."""
        return self._inner.samples()

    @property
    def mean(self) -> Tuple[float, float, float]:
        """The pipeline's normalisation mean, on the 0..255 scale of the uint8 batches."""
        return tuple(v * 255.0 for v in self._inner.mean())

    @property
    def std(self) -> Tuple[float, float, float]:
        """The pipeline's normalisation std, on the 0..255 scale of the uint8 batches."""
        return tuple(v * 255.0 for v in self._inner.std())

    @property
    def epoch(self) -> int:
        """The epoch that the next iteration delivers (or is delivering)."""
        return self._epoch

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        return self._inner.batches_per_epoch()

    # -- iteration -------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Makes the next iteration deliver epoch ``epoch`` from its start (as
        ``DistributedSampler.set_epoch``). Without it, each full pass advances the epoch."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, not {epoch}")
        self._stop()
        if epoch != self._epoch:
            self._position = 0
        self._epoch = int(epoch)

    def __iter__(self) -> Iterator[Tuple[Any, ...]]:
        self._stop()
        if self._position >= self._inner.samples_in_epoch():
            self._epoch, self._position = self._epoch + 1, 0
        it = self._inner.epoch(self._epoch, self._position)
        self._current = it
        torch = _torch()
        try:
            while True:
                item = it.next_batch()
                if item is None:
                    break
                images, labels, indices, skipped = item
                self._position = it.position()
                self.skipped.extend(skipped)
                images = _array(images)
                if self.channels_last and images.ndim >= 4:
                    images = np.moveaxis(images, -1, -3)  # [.., H, W, 3] -> [.., 3, H, W], a view
                out = (images, _array(labels), _array(indices))
                if torch is not None:
                    out = tuple(torch.from_numpy(a) for a in out)
                yield out if self.return_indices else out[:2]
            self._epoch, self._position = self._epoch + 1, 0
        finally:
            # Breaking out of the loop, an exception or Ctrl-C: stop and join the workers.
            it.close()
            if self._current is it:
                self._current = None

    def _stop(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None

    def close(self) -> None:
        """Stops and joins the worker threads of an epoch in progress."""
        self._stop()

    def __del__(self) -> None:
        try:
            self._stop()
        except Exception:
            pass

    # -- resume ----------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """Where the loader stands, as a plain JSON-able dict. It does not depend on the rank
        or the number of ranks: any topology can resume from it."""
        return {
            "version": _STATE_VERSION,
            "epoch": self._epoch,
            "position": self._position,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
            "dataset_samples": self._inner.dataset_len(),
            "dataset_fingerprint": self._inner.fingerprint(),
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continues from ``state``: the rest of its epoch is covered exactly once over this
        loader's ranks, with every sample augmented as the uninterrupted run would have."""
        state = json.loads(json.dumps(state))  # accept anything JSON-able, copy it
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"state version {state.get('version')!r}, expected {_STATE_VERSION}")
        mine = self.state_dict()
        for key in ("seed", "shuffle", "dataset_samples", "dataset_fingerprint"):
            if state.get(key) != mine[key]:
                raise ValueError(
                    f"state {key} is {state.get(key)!r}, this loader's is {mine[key]!r}: "
                    "the state belongs to another loader or dataset"
                )
        position = int(state["position"])
        if not 0 <= position <= mine["dataset_samples"]:
            raise ValueError(f"state position {position} outside 0..{mine['dataset_samples']}")
        self._stop()
        self._epoch, self._position = int(state["epoch"]), position


def augment(
    image: "os.PathLike[str] | str | np.ndarray",
    pipeline: str = "resnet-train",
    *,
    seed: int = 0,
    epoch: int = 0,
    index: int = 0,
    **overrides: Any,
) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Augments one image as the loader augments sample ``index`` of ``epoch`` under ``seed``.

    ``image`` is a file path or a ``uint8`` array ``[H, W, 3]``. Returns the augmented image as a
    ``uint8`` array ``[H, W, 3]`` and the sampled parameters (as ``augloader augment`` prints
    them)."""
    over = _check_overrides(overrides)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be a uint8 [H, W, 3] array, not {image.dtype} {image.shape}")
        a = np.ascontiguousarray(image)
        buf, params = _augloader.augment_array(a.tobytes(), a.shape[0], a.shape[1], pipeline, over, seed, epoch, index)
    else:
        buf, params = _augloader.augment_file(os.fspath(image), pipeline, over, seed, epoch, index)
    return _array(buf), json.loads(params)


def add_restart_markers(jpeg: bytes, interval: int = 1) -> bytes:
    """Re-encodes a JPEG losslessly (the same DCT coefficients, so the same pixels) as one
    baseline scan with a restart marker every ``interval`` MCUs, as ``augloader shard
    --restart-interval`` does. The loader then decodes only the restart intervals around each
    crop's window instead of everything above it: use it on the JPEGs of a training set's shards
    (e.g. in a ``webdataset.ShardWriter`` loop). 1 (a marker after every MCU) always lets a
    window's columns be cut out too: the fastest for random crops, about 7% larger files; 4 adds
    about 0.1%, but cuts columns only where it divides the MCUs of a row.

    Raises ``ValueError`` for data that is not a JPEG libjpeg can re-encode (PNG, damaged,
    over the pixel limit)."""
    if not 1 <= interval <= 65535:
        raise ValueError(f"interval must be 1..65535 MCUs, not {interval}")
    return _augloader.add_restart_markers(bytes(jpeg), interval)
