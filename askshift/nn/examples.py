"""Training data read example by example: batched by a torch DataLoader with worker processes.

For data that does not fit in memory (ImageNet-sized image folders), :func:`askshift.nn.train.fit`
and :func:`askshift.nn.train.predict` take an *example source* wherever they take ``(images,
labels)`` arrays. A source is any object with

- ``__len__()`` and ``labels``: int ``(N,)`` numpy array;
- ``read(i)``: example ``i`` as a uint8 ``(H, W, C)`` numpy array (the same shape for all);
- ``identity()``: a string that changes when the data change (file names and stamps), so a
  checkpoint is never resumed on other data.

The loop's batches are the same as for arrays (one seeded permutation per epoch, cut into
near-equal batches); a DataLoader reads each batch's examples in ``workers`` processes (pinned
memory on CUDA) while the GPU trains on the previous ones. Reading is the workers' only job:
augmentation is drawn per example in the training process (:mod:`askshift.nn.augment`), so the
result is the same for any number of workers, and the same as training on the decoded arrays.
:class:`askshift.data.imagesets.ImageFiles` is the image-file source.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def is_source(data) -> bool:
    """An example source rather than an ``(images, labels)`` pair."""
    return all(hasattr(data, a) for a in ("read", "labels", "identity", "__len__"))


def fingerprint(source) -> str:
    """What the source is: its identity and all its labels."""
    h = hashlib.sha1(f"source:{source.identity()}|{len(source)}".encode())
    h.update(np.asarray(source.labels, dtype=np.int64).tobytes())
    return h.hexdigest()


class _Reading(Dataset):
    def __init__(self, source):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> torch.Tensor:
        x = np.asarray(self.source.read(int(i)))
        if x.dtype != np.uint8 or x.ndim != 3:
            raise ValueError(f"example {i} of {type(self.source).__name__}: expected uint8 (H, W, C), got "
                             f"{x.dtype} {x.shape}")
        return torch.from_numpy(np.ascontiguousarray(x))


class _Batches(Sampler):
    """The batches of indices to read, set by the loop before each pass (iterated in the calling
    process, so persistent workers follow it from epoch to epoch)."""

    def __init__(self):
        self.batches: list[list[int]] = []

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class Reader:
    """Reads batches of a source: ``read(batches)`` yields one uint8 ``(B, H, W, C)`` tensor per
    batch of indices, in order; ``workers`` processes read ahead (0: in this process)."""

    def __init__(self, source, workers: int = 0, pin_memory: bool = False):
        self._batches = _Batches()
        self._loader = DataLoader(_Reading(source), batch_sampler=self._batches, num_workers=workers,
                                  pin_memory=pin_memory, persistent_workers=workers > 0,
                                  prefetch_factor=4 if workers > 0 else None, collate_fn=torch.stack)

    def read(self, batches: Sequence) -> Iterator[torch.Tensor]:
        self._batches.batches = [[int(i) for i in b] for b in batches]
        return iter(self._loader)
