"""Type stubs of the extension module; the public API is in augloader/__init__.py."""

from typing import Any, Dict, List, Optional, Tuple

__version__: str

class LoadError(Exception):
    """An image or dataset could not be loaded; the message names the file."""

class Buffer:
    """Memory of one array, viewed by numpy through ``__array_interface__`` without a copy."""

    @property
    def __array_interface__(self) -> Dict[str, Any]: ...

class Epoch:
    def next_batch(self) -> Optional[Tuple[Buffer, Buffer, Buffer, List[Tuple[int, str, str]]]]: ...
    def position(self) -> int: ...
    def close(self) -> None: ...

class Loader:
    def __init__(
        self,
        data: str,
        split: str,
        pipeline: str,
        overrides: Dict[str, Any],
        batch_size: int,
        workers: int,
        prefetch: int,
        seed: int,
        shuffle: bool,
        drop_last: bool,
        rank: int,
        world_size: int,
        skip_errors: bool,
        tta: Optional[str],
        channels_last: bool,
    ) -> None: ...
    def batches_per_epoch(self) -> int: ...
    def samples_in_epoch(self) -> int: ...
    def dataset_len(self) -> int: ...
    def fingerprint(self) -> str: ...
    def classes(self) -> List[str]: ...
    def samples(self) -> List[Tuple[str, int]]: ...
    def mean(self) -> Tuple[float, float, float]: ...
    def std(self) -> Tuple[float, float, float]: ...
    def epoch(self, epoch: int, position: int) -> Epoch: ...

def augment_file(
    path: str, pipeline: str, overrides: Dict[str, Any], seed: int, epoch: int, index: int
) -> Tuple[Buffer, str]: ...
def augment_array(
    data: bytes,
    height: int,
    width: int,
    pipeline: str,
    overrides: Dict[str, Any],
    seed: int,
    epoch: int,
    index: int,
) -> Tuple[Buffer, str]: ...
def presets() -> List[Tuple[str, str]]: ...
def override_names() -> List[str]: ...
