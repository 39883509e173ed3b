"""augloader: a deterministic, multi-threaded image loader with ResNet-style augmentation.

The loader of PyTorch training scripts and torchrun jobs: batches are identical whatever the
worker count, every sample of an epoch is delivered exactly once over the ranks (or, for
training, as DistributedSampler pads), and ``state_dict()`` resumes an epoch exactly, also on
another number of ranks. The work happens in Rust threads with the GIL released.

    loader = augloader.Loader("data", batch_size=256, workers=8,
                              device="cuda", dtype=torch.float16, normalize=True)
    for epoch in range(90):
        loader.set_epoch(epoch)
        for images, labels in loader:   # float16 [B, 3, H, W] on the GPU, int64 [B]
            ...

Iteration follows ``torch.utils.data.DataLoader``: every ``iter(loader)`` is a complete pass
over the current epoch, from its first batch, with workers of its own.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
import threading
import warnings
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _augloader
from ._augloader import LoadError

if TYPE_CHECKING:
    import torch

__all__ = [
    "Loader",
    "LoadError",
    "augment",
    "add_restart_markers",
    "apply_op",
    "POLICIES",
    "all_reduce_sum",
    "Batch",
    "IndexedBatch",
    "PIPELINES",
    "__version__",
]
__version__: str = _augloader.__version__

#: The pipeline presets, by name, with what each does.
PIPELINES: Dict[str, str] = dict(_augloader.presets())

#: Keyword overrides of a pipeline preset (the command line's pipeline flags), as the library
#: defines them.
OVERRIDES = tuple(_augloader.override_names())

#: The loader's defaults, shared with the Rust library and the command line: batch size,
#: worker threads (the machine's cores shared among the processes of this node, by
#: ``LOCAL_WORLD_SIZE``), batches in flight per worker, seed.
DEFAULTS: Dict[str, int] = dict(_augloader.defaults())

#: What iterating yields: ``(images, labels)``, or ``(images, labels, indices)`` with
#: ``return_indices`` (numpy arrays in place of tensors without torch).
Batch = Tuple["torch.Tensor", "torch.Tensor"]
IndexedBatch = Tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]

_STATE_VERSION = 1
_MAX_WORKERS = 1024
_MAX_PREFETCH = 64

#: DataLoader's keywords that augloader spells differently or does not need, with what to do.
_DATALOADER_NAMES = {
    "num_workers": "use workers= (Rust threads that decode and augment)",
    "prefetch": "use prefetch_factor= (batches in flight per worker, as DataLoader's)",
    "pin_memory": "with device='cuda' batches are staged in pinned memory and copied "
    "asynchronously already: pass device=",
    "pin_memory_device": "pass device=",
    "persistent_workers": "augloader's workers are threads started with each pass in "
    "microseconds; there is nothing to keep alive: drop the argument",
    "sampler": "augloader orders the samples itself (shuffle=, seed=, and rank=/world_size= "
    "for torchrun); loader.sampler shows this rank's indices",
    "batch_sampler": "augloader batches the samples itself (batch_size=, drop_last=)",
    "collate_fn": "batches are collated in Rust: ask for dtype=, normalize= and device=, or "
    "transform the batches in the loop",
    "worker_init_fn": "the workers are Rust threads that run no Python: nothing to initialise",
    "generator": "use seed= (None draws one and records it in state_dict())",
    "timeout": "there is no timeout; Ctrl-C stops a pass within 0.1 s",
    "multiprocessing_context": "the workers are threads: there is no process to start",
    "in_order": "batches are always delivered in order",
    "dataset": "pass the data folder or shard pattern as the first argument",
}

_DTYPES = ("uint8", "float32", "float16", "bfloat16")

#: One ``transform=`` call at a time (they share torch's global generator).
_TRANSFORM_LOCK = threading.Lock()


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _array(buffer: Any) -> np.ndarray:
    # The buffer object exposes __array_interface__; the array keeps it (and its memory) alive.
    return np.asarray(buffer)


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a TypeError, and a ValueError for older callers)."""


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ArgumentTypeError(f"{name} must be an integer in {lo}..{hi}, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, not {value!r}")
    return int(value)


def _bool(name: str, value: Any, none: bool = False) -> Optional[bool]:
    """``value`` if it is a bool (or None where ``none``): ``shuffle="yes"`` is a mistake."""
    if value is None and none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        allowed = "True, False or None" if none else "True or False"
        raise ArgumentTypeError(f"{name} must be {allowed}, not {value!r}")
    return bool(value)


def _check_overrides(overrides: Dict[str, Any]) -> Dict[str, Any]:
    value = overrides.get("random_erase_value")
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        overrides = {**overrides, "random_erase_value": repr(float(value))}
    elif isinstance(value, (tuple, list)):
        overrides = {**overrides, "random_erase_value": ",".join(repr(float(v)) for v in value)}
    for key in overrides:
        if key in _DATALOADER_NAMES:
            raise TypeError(f"Loader() got DataLoader's keyword {key!r}: {_DATALOADER_NAMES[key]}")
        if key not in OVERRIDES:
            near = difflib.get_close_matches(key, list(OVERRIDES) + _LOADER_ARGS, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise TypeError(
                f"unknown keyword {key!r}{hint}; the pipeline overrides are "
                f"{', '.join(OVERRIDES)}"
            )
    return {k: v for k, v in overrides.items() if v is not None}


def _default_rank_world(rank: Optional[int], world_size: Optional[int]) -> Tuple[int, int]:
    """Rank and world: the ones given, else torch.distributed's when it is initialised, else the
    environment's (RANK, WORLD_SIZE), else 0 of 1. Called when a pass starts, so a Loader made
    before ``init_process_group`` (Lightning's ``fit``, ``Accelerator()``) shards right."""
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
    world_size = _int("world_size", world_size, 1, 1 << 20)
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be an integer in 0..{world_size - 1} (world_size {world_size}), not {rank!r}")
    return int(rank), world_size


def _draw_seed(world_size: int) -> int:
    """A seed for ``seed=None``: from torch's generator (so ``torch.manual_seed`` fixes it, as
    DataLoader's shuffle), else the OS; under torch.distributed, rank 0's, so that every rank
    shards the same order."""
    torch = _torch()
    if torch is None:
        return int.from_bytes(os.urandom(8), "little")
    seed = int(torch.empty((), dtype=torch.int64).random_().item()) & ((1 << 63) - 1)
    dist = torch.distributed
    if world_size > 1 and dist.is_available() and dist.is_initialized() and dist.get_world_size() == world_size:
        box = [seed]
        dist.broadcast_object_list(box, src=0)
        seed = int(box[0])
    return seed


def _dtype_name(dtype: Any) -> str:
    name = str(dtype).replace("torch.", "") if dtype is not None else "uint8"
    if name not in _DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(_DTYPES)} (torch dtypes or names), not {dtype!r}")
    return name


def _float(name: str, value: Any, lo: float, hi: float, hi_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArgumentTypeError(f"{name} must be a number, not {value!r}")
    v = float(value)
    if not (lo <= v < hi if hi_open else lo <= v <= hi):
        raise ValueError(f"{name} must be in {lo}..{hi}{' (exclusive)' if hi_open else ''}, not {value!r}")
    return v


def _mix(mixup: Any, cutmix: Any, switch: Any, smoothing: Any) -> Optional[Tuple[Any, ...]]:
    """The batch mixing as the binding takes it, or None (no soft targets)."""
    alphas = [None if a is None else _float(n, a, 0.0, 100.0) for n, a in
              (("mixup", mixup), ("cutmix", cutmix))]  # fmt: skip
    alphas = [a if a else None for a in alphas]  # 0 disables
    switch = _float("mix_switch_prob", switch, 0.0, 1.0)
    smoothing = _float("label_smoothing", smoothing, 0.0, 1.0, hi_open=True)
    if alphas == [None, None]:
        if smoothing:
            raise ValueError("label_smoothing= folds into the soft targets of mixup=/cutmix=; "
                             "without them, pass it to your loss (CrossEntropyLoss(label_smoothing=))")
        return None
    return (alphas[0], alphas[1], switch, smoothing)


def _run_transform(fn: Any, buffer: Any, seed: int) -> Tuple[bytes, int, int]:
    """Calls a ``transform=`` callable on one sample (in a loader worker, GIL held): a uint8
    ``[3, H, W]`` tensor in (a numpy array without torch), torch's RNG seeded from the sample's
    own stream for the call, so random transforms are deterministic too."""
    hwc = _array(buffer)
    torch = _torch()
    if torch is None:
        out = np.asarray(fn(np.moveaxis(hwc, -1, 0)))
    else:
        x = torch.from_numpy(hwc).permute(2, 0, 1)
        # torch releases the GIL inside its ops: the lock keeps another worker from reseeding
        # the global generator in the middle of this call.
        gen = torch.default_generator  # the CPU generator torchvision's random draws use
        with _TRANSFORM_LOCK:
            saved = gen.get_state()
            gen.manual_seed(seed)
            try:
                out = fn(x)
            finally:
                gen.set_state(saved)  # the caller's random stream as it was
        if isinstance(out, torch.Tensor):
            out = out.detach().cpu().numpy()
        out = np.asarray(out)
    if out.dtype != np.uint8 or out.ndim != 3 or out.shape[0] != 3:
        raise TypeError(
            f"transform= must return a uint8 [3, H, W] image, not {out.dtype} {tuple(out.shape)}"
        )
    hwc = np.ascontiguousarray(np.moveaxis(out, 0, -1))
    return hwc.tobytes(), hwc.shape[0], hwc.shape[1]


def _stats(normalize: Any, name: str) -> Optional[Tuple[Sequence[float], Sequence[float]]]:
    """``normalize`` as (mean, std) on the 0..1 scale, None for the pipeline's, or False."""
    if normalize is True or normalize is False:
        return None if normalize else ((0.0,) * 3, (1.0,) * 3)
    try:
        mean, std = normalize
        mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
        assert len(mean) == 3 and len(std) == 3
    except Exception:
        raise ValueError(
            f"{name} must be True, False or (mean, std) of three floats each, not {normalize!r}"
        ) from None
    return mean, std


_TARGETS = ("class", "multilabel", "regression")


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def _numpy(x: Any) -> Any:
    """``x`` as a numpy array when it is an array or tensor, else None."""
    if isinstance(x, np.ndarray):
        return x
    if type(x).__module__.startswith("torch") and hasattr(x, "numpy"):
        return x.detach().cpu().numpy()
    return None


def _image_arrays(data: Any) -> Optional[List[Any]]:
    """HWC uint8 images from an N x H x W (x C) array or a list of H x W (x C) arrays; None
    when ``data`` holds no arrays."""
    arr = _numpy(data)
    if arr is not None:
        if arr.ndim not in (3, 4):
            raise ValueError(f"images in memory must be N x H x W x C (or N x H x W), not {arr.shape}")
        images = list(arr)
    elif isinstance(data, (list, tuple)) and data and all(_numpy(x) is not None for x in data):
        images = [_numpy(x) for x in data]
    else:
        return None
    for i, im in enumerate(images):
        if im.dtype != np.uint8:
            raise ArgumentTypeError(f"images in memory must be uint8 (0..255), not {im.dtype} (image #{i})")
        if im.ndim == 2:
            im = im[:, :, None]
        if im.ndim != 3 or im.shape[2] not in (1, 3):
            hint = " (channels first? use .permute(0, 2, 3, 1) or np.moveaxis)" if im.ndim == 3 and im.shape[0] in (1, 3) else ""
            raise ValueError(f"image #{i} is {im.shape}: images must be H x W x C with 1 or 3 channels{hint}")
        images[i] = np.ascontiguousarray(im)
    return images


def _targets(labels: Any, target: str, num_classes: Optional[int], n: int) -> Tuple[Any, int]:
    """``labels`` as the binding takes them for ``target``: (values, width)."""
    if labels is None:
        raise ValueError(f"data given as paths or images needs labels= ({n} of them)")
    arr = _numpy(labels)
    if target == "class":
        vals = list(arr) if arr is not None else list(labels)
        for i, v in enumerate(vals):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
                hint = " (regression values? pass target='regression')" if isinstance(v, (float, np.floating)) else ""
                hint = hint or (" (several classes? pass target='multilabel')" if isinstance(v, (list, tuple, np.ndarray)) else "")
                raise ArgumentTypeError(f"labels[{i}] = {v!r} is not a class index{hint}")
            if v < 0:
                raise ValueError(f"labels[{i}] = {v} is negative")
        return [int(v) for v in vals], 0
    if target == "multilabel":
        if arr is not None and arr.ndim == 2:  # multi-hot rows
            if not np.isin(arr, (0, 1)).all():
                raise ValueError("multi-hot labels must hold only 0 and 1")
            width = arr.shape[1] if num_classes is None else num_classes
            if width != arr.shape[1]:
                raise ValueError(f"num_classes={num_classes}, but the multi-hot rows have {arr.shape[1]}")
            return [np.flatnonzero(r).tolist() for r in arr], width
        rows = []
        for i, r in enumerate(labels):
            r = [r] if isinstance(r, (int, np.integer)) else list(r)
            if not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c >= 0 for c in r):
                raise ArgumentTypeError(f"labels[{i}] = {r!r}: multi-label targets are lists of class indices")
            rows.append([int(c) for c in r])
        return rows, num_classes or 0
    values = np.asarray(labels if arr is None else arr)
    if values.dtype.kind not in "fiu" or values.ndim not in (1, 2):
        raise ArgumentTypeError(f"regression labels must be numbers, [N] or [N, K], not {values.dtype} {values.shape}")
    return values.astype(np.float32).ravel().tolist(), 1 if values.ndim == 1 else values.shape[1]


def _is_url(path: str) -> bool:
    """Whether ``path`` names shards at URLs; a path that is not UTF-8 never does."""
    try:
        return _augloader.is_url(path)
    except UnicodeEncodeError:
        return False


def _source(data: Any, labels: Any, target: str, num_classes: Optional[int]) -> Any:
    """What the binding takes as data: a path (folder, shards, CSV list of class labels) or a
    ``_augloader.Source`` (files or images given as data, a CSV list of other targets)."""
    if target not in _TARGETS:
        raise ValueError(f"target must be one of {', '.join(_TARGETS)}, not {target!r}")
    if num_classes is not None:
        num_classes = _int("num_classes", num_classes, 1, 1_000_000)
        if target != "multilabel":
            raise ValueError("num_classes= gives the width of multi-label rows (target='multilabel')")
    if _is_path(data):
        path = os.fspath(data)
        if labels is not None:
            raise ValueError("labels= goes with data given as paths or images; a dataset path has its own labels")
        if target == "class":
            return path
        if not (path.lower().endswith(".csv") and os.path.isfile(path)):
            raise ValueError(f"target={target!r} reads a CSV list (or data given in memory), but {path!r} is not a .csv file")
        return _augloader.list_source(path, target, num_classes or 0)
    images = _image_arrays(data)
    if images is not None:
        values, width = _targets(labels, target, num_classes, len(images))
        shapes = [im.shape for im in images]
        blob = b"".join(im.tobytes() for im in images)
        return _augloader.images_source(blob, shapes, target, values, width)
    try:
        items = list(data)
    except TypeError:
        raise ArgumentTypeError(f"data must be a path, a list of (path, label) pairs or of paths, or uint8 images, not {type(data).__name__}") from None
    if items and all(isinstance(x, tuple) and len(x) == 2 and _is_path(x[0]) for x in items):
        if labels is not None:
            raise ValueError("data holds (path, label) pairs already: no labels= with them")
        labels = [x[1] for x in items]
        items = [x[0] for x in items]
    if not items or not all(_is_path(x) for x in items):
        raise ArgumentTypeError("data must be a path, a non-empty list of (path, label) pairs or of paths, or uint8 images")
    values, width = _targets(labels, target, num_classes, len(items))
    return _augloader.files_source([os.fspath(x) for x in items], target, values, width)


_LOADER_ARGS = [
    "split", "pipeline", "batch_size", "workers", "prefetch_factor", "seed", "shuffle",
    "drop_last", "even_batches", "rank", "world_size", "on_error", "return_indices", "tta",
    "channels_last", "device", "dtype", "normalize", "mixup", "cutmix", "mix_switch_prob",
    "label_smoothing", "transform", "labels", "target", "num_classes", "exclude",
    "shuffle_window", "cache_dir", "cache_size", "fetch_ahead", "on_missing_shard",
]  # fmt: skip


class Loader:
    """Batches of augmented images from a dataset, in a deterministic order.

    Args:
        data: what ``augloader --data`` takes: a folder with ``train/`` and ``val/``
            ImageFolders, ``train.csv``/``val.csv`` lists, CIFAR binaries, ``train-*.tar`` /
            ``val-*.tar`` WebDataset shards, or one ImageFolder; or shards named by a brace
            pattern such as ``"shards/train-{000000..000099}.tar"``; or a CSV list file
            (``path,label`` lines). Or the samples themselves, with ``labels=`` where they do
            not carry them: a list of ``(path, label)`` pairs; a list of paths; uint8 images in
            memory, an ``N x H x W x C`` array or tensor (C 1 or 3, as CIFAR's ``.data``) or a
            list of ``H x W x C`` arrays of any sizes.
        labels: the targets of samples given as paths or images: class indices (``[N]`` ints),
            or as ``target=`` says.
        target: what the samples are trained towards. ``"class"`` (the default): one index per
            sample, yielded as int64 ``[B]``. ``"multilabel"``: several classes per sample
            (``labels=`` lists of indices or multi-hot ``[N, C]`` rows; in a CSV list, indices
            separated by spaces or ``;`` as ``img.jpg,0 3 7``), yielded as multi-hot float32
            ``[B, C]``. ``"regression"``: numbers per sample (``labels=`` ``[N]`` or ``[N, K]``;
            in a CSV list, ``img.jpg,0.5,1.25``), yielded as float32 ``[B]`` (one value) or
            ``[B, K]``. Every kind keeps the order, resume and distributed guarantees; MixUp
            and CutMix mix multi-label and regression rows with the images' lambda.
        num_classes: the width of multi-label rows (default: one past the largest index).
        exclude: a file naming samples to leave out, one per line, as ``augloader check
            --write-exclude`` writes them (paths relative to ``data``).
        shuffle_window: shuffle sharded data in blocks of this many shards (shards permuted,
            taken this many at a time, samples permuted within each window; a function of
            (seed, epoch) as the full shuffle is). What streamed shards need.
        cache_dir, cache_size, fetch_ahead, on_missing_shard: for shards at URLs (``data=
            "https://host/train-{000000..000099}.tar"``, ``s3://``, ``gs://``, ``az://`` or
            ``pipe:CMD``): the local cache shared by the processes of a node (default
            ``~/.cache/augloader/shards``, ``"20GB"``), shards fetched ahead (4), and whether a
            shard that cannot be reached fails (``"fail"``) or is skipped with a warning
            (``"skip"``). See docs/shards.md.
        split: ``"train"`` or ``"val"``.
        pipeline: a preset name (see ``augloader.PIPELINES``); default ``resnet-train`` for the
            training split and ``eval`` for validation.
        batch_size: samples per batch.
        workers: Rust worker threads decoding and augmenting (DataLoader's ``num_workers``).
            0 starts none: each batch is built in the calling thread when the loop asks for it
            (as ``num_workers=0``, for debugging: a ``transform=`` runs in the caller's thread).
        prefetch_factor: batches in flight per worker, as DataLoader's (memory is bounded by
            ``workers * prefetch_factor`` batches per pass).
        seed: seed of the shuffle and of every random augmentation draw; ``None`` draws one
            (from torch's generator, so ``torch.manual_seed`` fixes it; under torch.distributed
            rank 0's) and records it in ``state_dict()``.
        shuffle: shuffle each epoch (default: for the training split).
        drop_last: drop the last partial batch (and, across ranks, the tail that does not divide).
        even_batches: across ranks, pad the epoch by repeating samples so that every rank gets
            the same number of batches (DistributedSampler's way; default for training), or not
            (default for ``split="val"``): every sample exactly once over all ranks. The epoch
            then goes in steps of ``batch_size x world_size`` samples, rank r taking the r-th
            batch of each step, and every rank yields ``len(loader)`` batches: in the last step
            a rank's batch may be short, or empty (``[0, 3, H, W]``) when the samples ran out
            before its turn, so collectives called once per batch never wait for a rank that
            stopped. Count with sums, which empty batches do not change: ``correct, total =
            all_reduce_sum(correct, total)``, Lightning's ``self.log(name, value,
            sync_dist=True, batch_size=len(y))`` of a value that is 0 on an empty batch (or
            ``reduce_fx="sum"`` of counts). Under accelerate (an ``Accelerator`` exists when the
            pass starts), the last step's short batches are instead padded to equal shapes with
            repeats placed last, and the pass reports them to accelerate's gradient state, so
            ``accelerator.gather_for_metrics`` returns every sample exactly once.
        rank, world_size: this process's shard; by default resolved when each pass starts (and
            by ``len()``): from ``torch.distributed`` when it is initialised, else the
            ``RANK``/``WORLD_SIZE`` environment, else 0 of 1. So a Loader made before
            ``init_process_group``, ``Trainer.fit`` or ``Accelerator()``, or pickled into
            ``mp.spawn``, shards as the job runs. Values given here win; a change between passes
            is warned about once.
        on_error: ``"fail"`` (raise ``LoadError`` naming the file) or ``"skip"`` (replace the
            sample by another of its batch, deterministically, and record it in ``skipped``).
        return_indices: also yield the dataset indices of each batch.
        tta: test-time augmentation views of each sample instead of one image: ``"flip"``,
            ``"5crop"`` or ``"10crop"`` (as torchvision's FiveCrop/TenCrop of the pipeline's
            resize and crop); images are then ``[B, V, 3, H, W]``.
        channels_last: collate each image's pixels interleaved, as decoded: the same
            ``[B, 3, H, W]`` images in ``torch.channels_last`` memory format (cheaper to collate,
            and what CUDA convolutions prefer; kept on the device).
        device: where batches are delivered: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"``, or
            any other device torch accepts (``"mps"``, ``"xpu"``, ... with a plain
            ``.to(device)`` per batch and the conversion there; tested: CPU, and CUDA on the GPU
            check).
            For CUDA, each batch is staged in pinned memory and copied with ``non_blocking=True``
            on a side stream one batch ahead, then converted there; the consuming stream waits
            for the copy (and the tensors are recorded on it), so no batch is touched early.
        dtype: ``torch.uint8`` (default), ``torch.float32``, ``torch.float16`` or
            ``torch.bfloat16`` (or their names). Float images are on the 0..1 scale
            (torchvision's ``ToDtype(scale=True)``), normalised when ``normalize`` asks.
        normalize: ``True`` for ``(x - mean) / std`` with the pipeline's statistics (as
            torchvision's ``Normalize`` after ``ToTensor``), or ``(mean, std)`` of your own on
            the 0..1 scale; needs a float ``dtype``. On the CPU the workers write the
            normalised floats while collating; on CUDA the conversion runs on the device.
        mixup, cutmix: MixUp / CutMix alphas (torchvision v2's ``MixUp``/``CutMix``: one lambda
            per batch from Beta(alpha, alpha), each image paired with the one before it). With
            either, iterating yields soft targets ``float32 [B, C]`` (rows sum to 1) in place of
            the labels. Drawn from (seed, epoch, batch number): the same for any worker count
            and on resume. ``tv2-train``'s recipe is ``mixup=0.2, cutmix=1.0,
            label_smoothing=0.1``; ``deit-train``'s ``mixup=0.8, cutmix=1.0``.
        mix_switch_prob: with both, the probability that a batch uses CutMix (timm's
            ``switch_prob``; torchvision's reference picks either with 0.5).
        label_smoothing: folded into the soft targets (needs ``mixup`` or ``cutmix``).
        transform: a callable of your own applied to each sample in the workers, after the
            pipeline and before collation: a uint8 ``[3, H, W]`` tensor in, one out (any size,
            the same for every sample of a batch; torchvision v2 transforms work as they are).
            The GIL is held only for the call; torch's RNG is seeded per sample for it, so the
            batches stay the same for any worker count and on resume. Each call costs the
            Python round trip (see docs/python.md for the measured cost).
        **overrides: changes to the preset, as the command line's flags: ``size``,
            ``scale_min``, ``scale_max``, ``jitter``, ``hue``, ``lighting``, ``cutout``,
            ``cutout_holes``, ``flip``, ``exact_decode``, ``auto_augment`` (a name of
            ``augloader.POLICIES``, e.g. ``"ta-wide"``, or ``"none"``), ``ra_ops``,
            ``ra_magnitude``, ``random_erase`` (probability) and ``random_erase_value`` (0, the
            mean colour; ``"random"``; a number or three, in normalised units).

    Iterating yields ``(images, labels)`` (or ``(images, labels, indices)``): ``images``
    ``[B, 3, H, W]`` (``[B, V, 3, H, W]`` with ``tta``) of ``dtype`` on ``device``, ``labels``
    and ``indices`` ``torch.int64`` ``[B]``; numpy arrays when torch is not installed (CPU,
    uint8/float32/float16 only).

    Iteration, as DataLoader's: every ``iter(loader)`` is a complete pass over the current
    epoch from its first batch; the one exception is the first ``iter()`` after
    ``load_state_dict``, which continues the saved epoch where it stood. ``set_epoch(e)`` selects
    the epoch of the next ``iter()`` (the saved one keeps a pending resume); without it, a pass that runs to its end moves the loader
    to the next epoch, and a pass left early (``break``, a peek with ``next(iter(loader))``,
    PyTorch Lightning's sanity check) does not, so the next loop is again a full pass of the
    same epoch. Two live iterators are independent passes with their own workers (as two
    DataLoader iterators are): ``zip(loader, loader)`` pairs each batch with itself; nothing
    ends silently. ``state_dict()`` describes the latest pass begun since the last
    ``set_epoch``/``load_state_dict``.

    ``with Loader(...) as loader:`` joins every pass's workers on exit (as ``close()``). A
    Loader pickles and deep-copies (by its arguments and ``state_dict()``; the copy starts its
    own workers), so it passes through ``mp.spawn`` arguments; a copy behaves as the original
    would next (a pass left early is not resumed in the copy, as it is not in the original). Iterating a Loader in a process
    forked after it was made raises ``RuntimeError`` (its threads and locks are the parent's)
    instead of waiting forever.
    """

    def __init__(
        self,
        data: "os.PathLike[str] | str",
        *,
        split: str = "train",
        pipeline: Optional[str] = None,
        batch_size: int = DEFAULTS["batch_size"],
        workers: int = DEFAULTS["workers"],
        prefetch_factor: int = DEFAULTS["prefetch_factor"],
        seed: Optional[int] = DEFAULTS["seed"],
        shuffle: Optional[bool] = None,
        drop_last: bool = False,
        even_batches: Optional[bool] = None,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        on_error: str = "fail",
        return_indices: bool = False,
        tta: Optional[str] = None,
        channels_last: bool = False,
        device: "str | torch.device" = "cpu",
        dtype: "str | torch.dtype | None" = None,
        normalize: "bool | Tuple[Sequence[float], Sequence[float]]" = False,
        mixup: Optional[float] = None,
        cutmix: Optional[float] = None,
        mix_switch_prob: float = 0.5,
        label_smoothing: float = 0.0,
        transform: Optional[Any] = None,
        labels: Optional[Any] = None,
        target: str = "class",
        num_classes: Optional[int] = None,
        exclude: "os.PathLike[str] | str | None" = None,
        shuffle_window: Optional[int] = None,
        cache_dir: "os.PathLike[str] | str | None" = None,
        cache_size: "int | str" = "20GB",
        fetch_ahead: int = 4,
        on_missing_shard: str = "fail",
        **overrides: Any,
    ) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', not {split!r}")
        if on_error not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
        batch_size = _int("batch_size", batch_size, 1, 1 << 20)
        workers = _int("workers", workers, 0, _MAX_WORKERS)
        prefetch_factor = _int("prefetch_factor", prefetch_factor, 1, _MAX_PREFETCH)
        over = _check_overrides(overrides)
        mix = _mix(mixup, cutmix, mix_switch_prob, label_smoothing)
        if mix is not None and tta is not None:
            raise ValueError("mixup/cutmix mix whole batches of one view each: not with tta=")
        self._mixing = mix is not None
        if transform is not None and not callable(transform):
            raise ArgumentTypeError(f"transform must be a callable (uint8 [3, H, W] in and out), not {transform!r}")
        if transform is not None and tta is not None:
            raise ValueError("transform= applies to one image per sample: not with tta=")
        hook = None if transform is None else (transform, _run_transform)
        shuffle = _bool("shuffle", shuffle, none=True)
        drop_last = _bool("drop_last", drop_last)
        even_batches = _bool("even_batches", even_batches, none=True)
        return_indices = _bool("return_indices", return_indices)
        channels_last = _bool("channels_last", channels_last)
        source = _source(data, labels, target, num_classes)
        if exclude is not None and not isinstance(source, str):
            raise ValueError("exclude= names files of a dataset path; leave the samples out of data= instead")
        if on_missing_shard not in ("fail", "skip"):
            raise ValueError(f"on_missing_shard must be 'fail' or 'skip', not {on_missing_shard!r}")
        window = 0 if shuffle_window is None else _int("shuffle_window", shuffle_window, 1, 1 << 30)
        remote = (window, "" if cache_dir is None else os.fspath(cache_dir), str(cache_size),
                  on_missing_shard == "skip", _int("fetch_ahead", fetch_ahead, 1, 1 << 16))
        is_url = isinstance(source, str) and _is_url(source)
        if isinstance(source, str) and not is_url and split == "val" and not _augloader.has_split(source, "val"):
            raise ValueError(
                f"split='val', but {source!r} has no validation split (no val/ folder, "
                "val.csv, val-*.tar shards or CIFAR test file): it is one ImageFolder, whose "
                "images are the training split. Pass a folder with train/ and val/, or the "
                "validation ImageFolder itself with split='train', shuffle=False"
            )
        # Checked now, resolved again when each pass starts (see _topology).
        self.rank, self.world_size = _default_rank_world(rank, world_size)
        seed = _draw_seed(self.world_size) if seed is None else _int("seed", seed, 0, 2**64 - 1)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = (split == "train") if shuffle is None else shuffle
        self.drop_last = drop_last
        self.even_batches = (split == "train") if even_batches is None else even_batches
        self.return_indices = return_indices
        self.pipeline = pipeline or ("resnet-train" if split == "train" else "eval")
        self.channels_last = channels_last
        self.split = split
        self.dtype_name = _dtype_name(dtype)
        if self.dtype_name == "uint8" and normalize is not False:
            raise ValueError("normalize needs a float dtype (dtype=torch.float32, float16 or bfloat16)")
        stats = _stats(normalize, "normalize")
        self._device = _Device.make(device, self.dtype_name)
        # Floats on the CPU are written by the workers while collating (one pass over memory);
        # for CUDA the uint8 batch crosses the bus (4x less) and is converted there.
        cpu_float = self._device is None and self.dtype_name != "uint8"
        # The Rust loader of each (rank, world, padded tail) a pass has needed; made on demand.
        self._make = lambda rank, world, pad: _augloader.Loader(
            source, split, self.pipeline, over, batch_size, workers,
            max(1, workers) * prefetch_factor, seed, self.shuffle, self.drop_last, self.even_batches,
            pad, rank, world, on_error == "skip", tta, self.channels_last, cpu_float, stats, mix,
            hook, None if exclude is None else os.fspath(exclude), remote,
        )  # fmt: skip
        self._inners: Dict[Tuple[int, int, bool], Any] = {}
        self._explicit = (rank, world_size)
        self._topology_warned = False
        self._last_topology: Optional[Tuple[int, int]] = None
        inner = self._inner_for(self.rank, self.world_size, False)
        self._target_kind: Tuple[str, int] = inner.target_kind()
        if self._device is not None:
            m, s = stats if stats is not None else (inner.mean(), inner.std())
            self._device.set_stats(m, s, self.dtype_name != "uint8")
        # What the constructor needs to build an equal loader (pickle, deepcopy).
        self._args: Dict[str, Any] = dict(
            data=os.fspath(data) if _is_path(data) else data, labels=labels, target=target,
            num_classes=num_classes, exclude=exclude, split=split, pipeline=self.pipeline, batch_size=batch_size,
            workers=workers, prefetch_factor=prefetch_factor, seed=seed, shuffle=self.shuffle,
            drop_last=self.drop_last, even_batches=self.even_batches, rank=rank,
            world_size=world_size, on_error=on_error, return_indices=self.return_indices,
            tta=tta, channels_last=self.channels_last, device=str(device),
            dtype=self.dtype_name, normalize=normalize, mixup=mixup, cutmix=cutmix,
            mix_switch_prob=mix_switch_prob, label_smoothing=label_smoothing, transform=transform,
            shuffle_window=shuffle_window, cache_dir=cache_dir, cache_size=cache_size,
            fetch_ahead=fetch_ahead, on_missing_shard=on_missing_shard, **overrides,
        )  # fmt: skip
        self._epoch = 0  # the epoch of the next iter()
        self._resume_at: Optional[int] = None  # where the next iter() starts, after load_state_dict
        self._latest: Optional[_Progress] = None
        self._live: Dict[int, Any] = {}
        self.skipped: List[Tuple[int, str, str]] = []
        self._pid = os.getpid()

    def _inner_for(self, rank: int, world: int, pad: bool) -> Any:
        key = (rank, world, pad)
        if key not in self._inners:
            self._inners[key] = self._make(rank, world, pad)
        return self._inners[key]

    @property
    def _inner(self) -> Any:
        """The Rust loader of the current rank and world."""
        return self._inner_for(self.rank, self.world_size, False)

    def _topology(self) -> None:
        """Resolves rank and world again (a pass starts): a Loader made before the process
        group, or pickled into another process, shards as the job runs now."""
        self.rank, self.world_size = _default_rank_world(*self._explicit)

    def _pass_topology(self) -> None:
        """As ``_topology``, when a pass starts: a change since the previous pass is warned
        about once (a Loader shared between set-ups that disagree, not a framework starting)."""
        self._topology()
        now = (self.rank, self.world_size)
        before = self._last_topology
        if before is not None and before != now and not self._topology_warned:
            self._topology_warned = True
            warnings.warn(
                f"augloader.Loader: rank/world changed between passes, from {before[0]} of "
                f"{before[1]} to {now[0]} of {now[1]}; this pass shards for {now[0]} of {now[1]}",
                RuntimeWarning,
                stacklevel=3,
            )
        self._last_topology = now

    def _steps(self, samples: int) -> int:
        """Batches every rank yields for ``samples`` of an epoch without ``even_batches``: the
        same on each rank (the last possibly short or empty), so that no collective waits."""
        step = self.batch_size * self.world_size
        return (samples // step) if self.drop_last else -(-samples // step)

    def _check_process(self) -> None:
        if os.getpid() != self._pid:
            raise RuntimeError(
                "this Loader was made before os.fork(): its worker threads and locks are the "
                "parent's. Make a new Loader in the child, or hand it a copy (pickle or "
                "copy.deepcopy builds one with its own workers) instead"
            )

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
        """The pipeline's normalisation mean, on the 0..255 scale of uint8 batches."""
        return tuple(v * 255.0 for v in self._inner.mean())  # type: ignore[return-value]

    @property
    def std(self) -> Tuple[float, float, float]:
        """The pipeline's normalisation std, on the 0..255 scale of uint8 batches."""
        return tuple(v * 255.0 for v in self._inner.std())  # type: ignore[return-value]

    @property
    def epoch(self) -> int:
        """The epoch that the next ``iter()`` delivers."""
        return self._epoch

    @property
    def dataset(self) -> "LoaderDataset":
        """A map-style view of the split: ``len``, ``dataset[i]`` (sample ``i`` as the loader
        makes it in the current epoch), ``samples``, ``classes``."""
        return LoaderDataset(self)

    @property
    def sampler(self) -> "LoaderSampler":
        """This rank's dataset indices for the current epoch, in batch order (``set_epoch``
        on it sets the loader's epoch, as frameworks call it)."""
        return LoaderSampler(self)

    #: There is no separate batch sampler (frameworks look for the attribute).
    batch_sampler = None

    def __len__(self) -> int:
        """Batches per epoch on this rank: without ``even_batches`` over several ranks, the same
        number on every rank (see ``even_batches``)."""
        self._topology()
        if self._uneven():
            return self._steps(self._inner.dataset_len())
        return self._inner.batches_per_epoch()

    def _uneven(self) -> bool:
        return self.world_size > 1 and not self.even_batches and not self.drop_last

    # -- iteration -------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Makes the next ``iter()`` deliver epoch ``epoch`` from its start (as
        ``DistributedSampler.set_epoch``). After ``load_state_dict``, setting the saved epoch
        keeps the resume (the usual loop calls ``set_epoch(epoch)`` for every epoch)."""
        epoch = _int("epoch", epoch, 0, 2**63 - 1)
        if epoch != self._epoch:
            self._resume_at = None
        self._epoch = epoch
        self._latest = None

    def __iter__(self) -> "_Pass":  # yields Batch, or IndexedBatch with return_indices
        self._check_process()
        self._pass_topology()
        start = self._resume_at or 0
        self._resume_at = None
        p = _Pass(self, self._epoch, start, _Accelerate.active(self.world_size))
        # The loader keeps the pass's progress, not the pass: a pass left early is collected
        # (and its workers joined) as soon as the loop lets go of it.
        self._latest = p.progress
        return p

    def _finished(self, p: "_Progress") -> None:
        if self._latest is p:
            self._epoch, self._latest = p.epoch + 1, None

    def close(self) -> None:
        """Stops and joins the worker threads of every pass in progress."""
        if os.getpid() != self._pid:
            self._live.clear()  # a forked child: the threads are the parent's
            return
        for inner in list(self._live.values()):
            inner.close()
        self._live.clear()

    def __enter__(self) -> "Loader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # -- copies ----------------------------------------------------------------------------
    def __getstate__(self) -> Dict[str, Any]:
        # What the next iter() would do: a pending resume, else the current epoch from its
        # start (a pass left early is not resumed; the original would not resume it either).
        return {"args": dict(self._args), "epoch": self._epoch, "resume_at": self._resume_at,
                "skipped": list(self.skipped)}  # fmt: skip

    def __setstate__(self, d: Dict[str, Any]) -> None:
        self.__init__(**d["args"])  # type: ignore[misc]
        self._epoch = _int("epoch", d["epoch"], 0, 2**63 - 1)
        at = d["resume_at"]
        self._resume_at = None if at is None else _int("resume_at", at, 0, self._inner.dataset_len())
        self.skipped = list(d.get("skipped", []))

    def _data_repr(self) -> str:
        data = self._args["data"]
        return repr(data) if isinstance(data, str) else f"<{self._inner.dataset_len()} samples>"

    def __repr__(self) -> str:
        return (
            f"augloader.Loader({self._data_repr()}, split={self.split!r}, "
            f"pipeline={self.pipeline!r}, batch_size={self.batch_size}, "
            f"rank={self.rank}, world_size={self.world_size}, epoch={self._epoch})"
        )

    # -- resume ----------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """Where the loader stands, as a plain JSON-able dict: the latest pass's epoch and the
        samples of its global order delivered over all ranks. It does not depend on the rank
        or the number of ranks: any topology can resume from it."""
        if self._latest is not None:
            epoch, position = self._latest.epoch, self._latest.position
        else:
            epoch, position = self._epoch, self._resume_at or 0
        return {
            "version": _STATE_VERSION,
            "epoch": epoch,
            "position": position,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
            "dataset_samples": self._inner.dataset_len(),
            "dataset_fingerprint": self._inner.fingerprint(),
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Continues from ``state``: the next ``iter()`` covers the rest of its epoch exactly
        once over this loader's ranks, with every sample augmented as the uninterrupted run
        would have."""
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
        n = mine["dataset_samples"]
        position = _int("state position", state.get("position"), 0, n)
        epoch = _int("state epoch", state.get("epoch"), 0, 2**63 - 1)
        if position == n:  # the saved pass had ended: the next epoch, from its start
            epoch, position = epoch + 1, 0
        self._epoch, self._resume_at, self._latest = epoch, position, None


class _Progress:
    """Where a pass stands: its epoch, and the samples of the epoch's global order delivered."""

    __slots__ = ("epoch", "position")

    def __init__(self, epoch: int, position: int) -> None:
        self.epoch, self.position = epoch, position


class _Device:
    """Delivery to a CUDA device: pinned staging, an asynchronous copy on a side stream one batch
    ahead, conversion there."""

    @staticmethod
    def make(device: Any, dtype_name: str) -> Optional["_Device"]:
        torch = _torch()
        if torch is None:
            if str(device) != "cpu":
                raise ValueError(f"device={device!r} needs torch; without it batches are numpy arrays on the CPU")
            if dtype_name == "bfloat16":
                raise ValueError("dtype bfloat16 needs torch (numpy has no bfloat16)")
            return None
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise ValueError(f"device must be a device torch accepts ('cpu', 'cuda', 'cuda:N', 'mps', ...), not {device!r} ({e})") from None
        if dev.type == "cpu":
            return None
        if dev.type != "cuda":
            # Any other device torch knows (mps, xpu, ...): a plain .to(device) per batch.
            try:
                torch.empty(1, device=dev)
            except Exception as e:
                raise ValueError(f"device {device!r} is not usable in this torch: {e}") from None
            return _Device(dev, getattr(torch, dtype_name), cuda=False)
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={device!r}, but torch sees no CUDA device (torch.cuda.is_available() is False)")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        if dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {dev} does not exist: torch sees {torch.cuda.device_count()} CUDA device(s)")
        return _Device(dev, getattr(torch, dtype_name))

    def __init__(self, device: Any, dtype: Any, cuda: bool = True) -> None:
        self.device, self.dtype, self.cuda = device, dtype, cuda
        self.scale: Any = None
        self.bias: Any = None

    def set_stats(self, mean: Sequence[float], std: Sequence[float], floats: bool) -> None:
        torch = _torch()
        if floats:
            # (x / 255 - mean) / std as one fused x * scale + bias, in float32 on the device.
            s = torch.tensor([1.0 / (255.0 * v) for v in std], dtype=torch.float32)
            b = torch.tensor([-m / v for m, v in zip(mean, std)], dtype=torch.float32)
            self.scale = s.view(3, 1, 1).to(self.device)
            self.bias = b.view(3, 1, 1).to(self.device)

    def stream(self) -> Any:
        return _torch().cuda.Stream(self.device) if self.cuda else None

    def copy(self, host: Tuple[Any, ...], stream: Any) -> Tuple[Any, ...]:
        """Starts the copy of a host batch on ``stream``; returns the device tensors."""
        torch = _torch()
        if not self.cuda:
            out = [t.to(self.device) for t in host]
            if self.scale is not None:
                y = torch.addcmul(self.bias, out[0].float(), self.scale)
                out[0] = y if self.dtype == torch.float32 else y.to(self.dtype)
            return tuple(out)
        with torch.cuda.stream(stream):
            out = []
            for t in host:
                # The caching host allocator keeps the pinned block until the copy has run.
                pinned = torch.empty_like(t, pin_memory=True)
                pinned.copy_(t)
                out.append(pinned.to(self.device, non_blocking=True))
            if self.scale is not None:
                x = out[0]
                y = torch.addcmul(self.bias, x.float(), self.scale)
                out[0] = y if self.dtype == torch.float32 else y.to(self.dtype)
        return tuple(out)

    def hand_over(self, dev: Tuple[Any, ...], stream: Any) -> Tuple[Any, ...]:
        """Makes the consumer's stream wait for the copy, and keeps the memory from being reused
        until the consumer's work on it is done."""
        torch = _torch()
        if not self.cuda:
            return dev
        current = torch.cuda.current_stream(self.device)
        current.wait_stream(stream)
        for t in dev:
            t.record_stream(current)
        return dev


class _Accelerate:
    """Taking part in accelerate's gradient state, as its own DataLoaderShard does: the pass is
    the active dataloader, says when it yields its last batch (``end_of_dataloader``: gradient
    accumulation syncs there) and, for evaluation, how many rows of the last gathered step are
    real (``remainder``: ``gather_for_metrics`` cuts the padded repeats off)."""

    @staticmethod
    def active(world: int) -> Optional[Any]:
        """accelerate's GradientState when an Accelerator runs this process as one of ``world``
        processes, else None (no accelerate, or a Loader sharded for another topology)."""
        state = sys.modules.get("accelerate.state")
        if state is None:
            return None
        try:
            if not state.PartialState._shared_state:  # no Accelerator/PartialState made
                return None
            if state.PartialState().num_processes != world:
                return None
            return state.GradientState()
        except Exception:
            return None


class _Pass:
    """One pass over an epoch: what ``iter(loader)`` returns. Its workers are its own; it ends
    at the epoch's end, on ``close()``, or when it is garbage-collected."""

    def __init__(self, loader: Loader, epoch: int, start: int, grad_state: Optional[Any]) -> None:
        self._loader = loader
        self.progress = _Progress(epoch, start)
        # Under accelerate, evaluation pads the last step to equal shapes (repeats last in rank
        # order) so that its gathers work, and says how many gathered rows are real.
        uneven = loader._uneven()
        pad = uneven and grad_state is not None
        inner = loader._inner_for(loader.rank, loader.world_size, pad)
        self._inner = inner.epoch(epoch, start)
        loader._live[id(self)] = self._inner
        rest = inner.dataset_len() - min(start, inner.dataset_len())
        # Without even batches every rank yields the same number of batches: a rank whose
        # samples ran out ends with empty ones (no collective of another rank waits forever).
        self._len = loader._steps(rest) if uneven else self._inner.total()
        self._yielded = 0
        self._shape: Optional[Tuple[int, ...]] = None
        self._done = False
        self._torch = _torch()
        self._device = loader._device
        self._stream = self._device.stream() if self._device is not None else None
        self._ahead: Any = None  # CUDA: the next batch, its copy under way
        self._started = False
        self._grad_state = grad_state
        # accelerate reads these two (DataLoaderStateMixin's attributes).
        self.end_of_dataloader = False
        self.remainder = -1
        if grad_state is not None:
            step = loader.batch_size * loader.world_size
            if pad and rest % step:
                self.remainder = rest % step
            grad_state._add_dataloader(self)

    def __iter__(self) -> "_Pass":  # yields Batch, or IndexedBatch with return_indices
        return self

    def __len__(self) -> int:
        """Batches of this pass (fewer than ``len(loader)`` when it resumes an epoch)."""
        return self._len

    def __next__(self) -> "Batch | IndexedBatch":
        if self._done:
            raise StopIteration
        self._loader._check_process()
        try:
            if self._device is None:
                item = self._host()
            else:
                item = self._next_on_device()
            if item is None and self._yielded < self._len and not self._inner.was_closed():
                item = self._empty()
        except BaseException:
            self.close()
            raise
        if item is None:
            completed = not self._inner.was_closed()  # closed from another thread: not whole
            self.close()
            if completed:
                self._loader._finished(self.progress)
            raise StopIteration
        position, out = item
        self._yielded += 1
        self._shape = tuple(out[0].shape[1:])
        self.end_of_dataloader = self._yielded >= self._len
        self.progress.position = max(self.progress.position, position)
        return out if self._loader.return_indices else out[:2]  # type: ignore[return-value]

    def _empty(self) -> Tuple[int, Tuple[Any, ...]]:
        """An empty batch ``[0, ...]`` shaped as the others (a rank whose samples ran out)."""
        loader = self._loader
        shape = self._shape
        if shape is None:  # no batch on this rank at all: one sample says the shape
            images, _ = loader._inner.sample(self.progress.epoch, 0)
            h, w = np.asarray(images[0]).shape[:2]
            shape = (3, h, w) if len(images) == 1 else (len(images), 3, h, w)
        dtype = {"uint8": np.uint8, "float16": np.float16}.get(loader.dtype_name, np.float32)
        x = np.zeros((0,) + tuple(shape), dtype=dtype)
        kind, width = loader._target_kind
        if kind == "regression" and width == 1:
            y = np.zeros(0, np.float32)
        elif kind != "class" or loader._mixing:
            y = np.zeros((0, width or len(loader.classes)), np.float32)
        else:
            y = np.zeros(0, np.int64)
        out: Tuple[Any, ...] = (x, y, np.zeros(0, np.int64))
        torch = self._torch
        if torch is not None:
            out = tuple(torch.from_numpy(a) for a in out)
            tdtype = getattr(torch, loader.dtype_name)
            dev = self._device.device if self._device is not None else "cpu"
            out = (out[0].to(device=dev, dtype=tdtype),) + tuple(t.to(dev) for t in out[1:])
        return self.progress.position, out

    def _host(self) -> Optional[Tuple[int, Tuple[Any, ...]]]:
        got = self._inner.next_batch()
        if got is None:
            return None
        images, labels, indices, skipped, targets = got
        self._loader.skipped.extend(skipped)
        if targets is not None:  # soft, multi-hot or regression [B, C] in place of the labels
            labels = _array(targets)
            if self._loader._target_kind == ("regression", 1):
                labels = labels.reshape(-1)
        x = _array(images)
        if self._loader.channels_last and x.ndim >= 4:
            x = np.moveaxis(x, -1, -3)  # [.., H, W, 3] -> [.., 3, H, W], a view
        out: Tuple[Any, ...] = (x, _array(labels), _array(indices))
        torch = self._torch
        if torch is not None:
            out = tuple(torch.from_numpy(a) for a in out)
            name = self._loader.dtype_name
            if self._device is None and name in ("float16", "bfloat16"):
                out = (out[0].to(getattr(torch, name)),) + out[1:]
        elif self._loader.dtype_name == "float16":
            out = (out[0].astype(np.float16),) + out[1:]
        return self._inner.position(), out

    def _next_on_device(self) -> Optional[Tuple[int, Tuple[Any, ...]]]:
        if not self._started:
            self._started = True
            self._ahead = self._copy_next()
        current = self._ahead
        if current is None:
            return None
        # Issue the next batch's copy before handing this one over, so that it overlaps the
        # consumer's work on this one.
        self._ahead = self._copy_next()
        position, dev = current
        return position, self._device.hand_over(dev, self._stream)

    def _copy_next(self) -> Optional[Tuple[int, Tuple[Any, ...]]]:
        host = self._host()
        if host is None:
            return None
        position, out = host
        return position, self._device.copy(out, self._stream)

    def close(self) -> None:
        """Stops and joins this pass's workers."""
        if not self._done:
            self._done = True
            self._ahead = None
            self._loader._live.pop(id(self), None)
            self._inner.close()
            if self._grad_state is not None:
                try:
                    self._grad_state._remove_dataloader(self)
                except Exception:
                    pass

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class LoaderDataset:
    """A map-style view of a Loader's split (``loader.dataset``), for code that asks a
    DataLoader for its dataset: ``len()`` samples, ``[i]`` -> ``(image, label)`` as the loader
    makes sample ``i`` in its current epoch (``[3, H, W]`` uint8, ``[V, 3, H, W]`` with TTA)."""

    def __init__(self, loader: Loader) -> None:
        self._owner = loader
        self._copy: Optional[Loader] = None

    @property
    def _loader(self) -> Loader:
        # In a process forked after the loader was made (DataLoader's workers), a copy of its
        # own: the original's threads and locks are the parent's.
        if os.getpid() == self._owner._pid:
            return self._owner
        if self._copy is None or self._copy._pid != os.getpid():
            import copy

            self._copy = copy.deepcopy(self._owner)
        return self._copy

    def __len__(self) -> int:
        return self._loader._inner.dataset_len()

    def __getitem__(self, i: int) -> Tuple[Any, int]:
        n = len(self)
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"dataset indices are integers, not {type(i).__name__}")
        if not -n <= i < n:
            raise IndexError(f"sample {i} out of range: the dataset has {n}")
        self._loader._check_process()
        images, label = self._loader._inner.sample(self._loader.epoch, int(i) % n)
        chw = [np.moveaxis(_array(b), -1, 0) for b in images]
        x = chw[0] if len(chw) == 1 else np.stack(chw)
        torch = _torch()
        return (torch.from_numpy(np.ascontiguousarray(x)) if torch is not None else x), label

    @property
    def samples(self) -> List[Tuple[str, int]]:
        return self._loader.samples

    @property
    def classes(self) -> List[str]:
        return self._loader.classes


class LoaderSampler:
    """This rank's dataset indices for the loader's current epoch (``loader.sampler``)."""

    def __init__(self, loader: Loader) -> None:
        self._loader = loader

    def __iter__(self) -> Iterator[int]:
        return iter(self._loader._inner.indices(self._loader.epoch))

    def __len__(self) -> int:
        return len(self._loader._inner.indices(self._loader.epoch))

    def set_epoch(self, epoch: int) -> None:
        self._loader.set_epoch(epoch)


def all_reduce_sum(*values: Union[int, float]) -> Tuple[Union[int, float], ...]:
    """Sums numbers over the ranks of ``torch.distributed`` (returns them unchanged when it is
    not initialised): with ``even_batches=False`` every validation sample is seen once over all
    ranks, so ``correct, total = all_reduce_sum(correct, total)`` gives the exact top-1."""
    torch = _torch()
    dist = getattr(torch, "distributed", None) if torch is not None else None
    if dist is None or not (dist.is_available() and dist.is_initialized()):
        return tuple(values)
    device = "cpu"
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return tuple(int(s) if isinstance(v, int) else s for v, s in zip(values, t.tolist()))


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
    seed = _int("seed", seed, 0, 2**64 - 1)
    epoch = _int("epoch", epoch, 0, 2**64 - 1)
    index = _int("index", index, 0, 2**64 - 1)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
            raise ValueError(f"image must be a non-empty uint8 [H, W, 3] array, not {image.dtype} {image.shape}")
        a = np.ascontiguousarray(image)
        buf, params = _augloader.augment_array(a.tobytes(), a.shape[0], a.shape[1], pipeline, over, seed, epoch, index)
    else:
        buf, params = _augloader.augment_file(os.fspath(image), pipeline, over, seed, epoch, index)
    return _array(buf), json.loads(params)


#: The automatic augmentation policies (``auto_augment=``), by name, with what each does.
POLICIES: Dict[str, str] = dict(_augloader.policies())


def apply_op(
    image: np.ndarray,
    op: str,
    magnitude: Optional[float] = None,
    *,
    interpolation: str = "nearest",
    fill: Optional[Sequence[int]] = None,
) -> np.ndarray:
    """One operation of the policies on a ``uint8`` ``[H, W, 3]`` array, as a policy applies it:
    ``op`` is torchvision's name (``"Rotate"``, ``"ShearX"``, ``"Posterize"``, ...) and
    ``magnitude`` the signed value printed under ``"policy"`` (what torchvision's
    ``_apply_image_or_video_transform`` receives). For checking a printed sample by hand."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("image must be a uint8 [H, W, 3] array")
    a = np.ascontiguousarray(image)
    m = None if magnitude is None else float(magnitude)
    f = None if fill is None else tuple(_int("fill", int(v), 0, 255) for v in fill)
    out = _augloader.apply_op(a.tobytes(), a.shape[0], a.shape[1], op, m, interpolation, f)
    return _array(out)


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
    interval = _int("interval", interval, 1, 65535)
    return _augloader.add_restart_markers(bytes(jpeg), interval)
