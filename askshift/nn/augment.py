"""Per-example seeded training augmentation.

Each example's random choices are a pure function of ``(seed, epoch, example index)``
(:func:`example_uniforms`, a counter-based generator: splitmix64 over the three numbers), never
of a stream shared by the batch. So the crops and flips an example gets do not depend on the
batch size, on which batch or process handles it (DataLoader workers, DDP ranks, fan-out
workers), nor on how far a resumed run had come.
"""
from __future__ import annotations

import numpy as np
import torch

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
# random numbers each example draws per epoch: crop row, crop column, flip
STREAMS = 3


def _splitmix(z: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, element-wise on uint64 (wrapping arithmetic)."""
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def example_uniforms(seed: int, epoch: int, index, streams: int = STREAMS) -> np.ndarray:
    """Uniform numbers in [0, 1), shape ``(len(index), streams)``: stream ``s`` of example
    ``index[i]`` in ``epoch`` of a run seeded ``seed``. The same triple always gives the same
    numbers; different triples give independent-looking ones."""
    index = np.asarray(index, dtype=np.int64)
    if (index < 0).any():
        raise ValueError("example indices must be >= 0")
    with np.errstate(over="ignore"):
        key = _splitmix(_splitmix(np.full(1, seed, np.uint64)) ^ np.uint64(epoch))
        key = _splitmix(key ^ index.astype(np.uint64))
        z = _splitmix(key[:, None] ^ (np.arange(1, streams + 1, dtype=np.uint64) * _GOLDEN))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def augment(x: torch.Tensor, crop: int, flip: bool, uniforms: np.ndarray) -> torch.Tensor:
    """Random crop after zero padding by ``crop`` pixels and/or horizontal flip (probability
    1/2) of a uint8 NHWC batch; ``uniforms`` ``(N, 3)`` from :func:`example_uniforms` decide
    each example's crop offset (rows, columns) and flip."""
    n, h, w, c = x.shape
    if uniforms.shape != (n, STREAMS):
        raise ValueError(f"uniforms must have shape ({n}, {STREAMS}), got {uniforms.shape}")
    u = torch.from_numpy(uniforms).to(x.device)
    if crop:
        padded = x.new_zeros((n, h + 2 * crop, w + 2 * crop, c))
        padded[:, crop:crop + h, crop:crop + w] = x
        dy = (u[:, 0] * (2 * crop + 1)).long()
        dx = (u[:, 1] * (2 * crop + 1)).long()
        rows = dy[:, None] + torch.arange(h, device=x.device)
        cols = dx[:, None] + torch.arange(w, device=x.device)
        x = padded[torch.arange(n, device=x.device)[:, None, None], rows[:, :, None], cols[:, None, :]]
    if flip:
        x = torch.where((u[:, 2] < 0.5)[:, None, None, None], x.flip(2), x)
    return x
