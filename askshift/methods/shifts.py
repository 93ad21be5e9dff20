"""The paper's synthetic shifts as small pure functions over uint8 image batches.

Images are uint8 arrays of shape (N, H, W, 3). Every function returns a new array and never
draws unseeded randomness: callers pass a `numpy.random.Generator`. Nothing here knows about
digits, so the paper-scale worlds reuse these unchanged.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _check_batch(images: np.ndarray) -> None:
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"images: expected a uint8 array of shape (N, H, W, 3), got {images.dtype} {images.shape}"
        )


def gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    """(N, H, W) uint8 -> (N, H, W, 3) uint8 by repeating the channel."""
    if gray.dtype != np.uint8 or gray.ndim != 3:
        raise ValueError(f"gray: expected a uint8 array (N, H, W), got {gray.dtype} {gray.shape}")
    return np.repeat(gray[..., None], 3, axis=-1)


def resize(images: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Antialiased bilinear resize of a uint8 batch (deterministic on CPU)."""
    _check_batch(images)
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if images.shape[1:3] == hw or len(images) == 0:
        return images.copy() if len(images) else np.zeros((0, *hw, 3), np.uint8)
    x = torch.from_numpy(np.array(images)).permute(0, 3, 1, 2).float()
    y = F.interpolate(x, size=hw, mode="bilinear", antialias=True, align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy().copy()


# ------------------------------------------------------------------ tints
def class_colours(num_classes: int, seed: int) -> np.ndarray:
    """One fixed random colour per class, (C, 3) floats in [0, 1]."""
    return np.random.default_rng(seed).random((num_classes, 3))


def tint(images: np.ndarray, colours: np.ndarray, strength: float = 0.25) -> np.ndarray:
    """x <- (1 - strength) x + strength c in [0, 1] pixel space, per image colour c.

    `colours` is (N, 3) in [0, 1] (or (3,) for one colour). strength 0.25 is the paper's tint.
    """
    _check_batch(images)
    c = np.broadcast_to(np.asarray(colours, dtype=np.float64), (len(images), 3))
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength: expected a number in [0, 1], got {strength}")
    # The formula only ever sees 256 input values per (image, channel): evaluate it on a lookup
    # table and gather, which is exact and ~10x faster than float math on every pixel.
    levels = np.arange(256, dtype=np.float64) / 255.0
    lut = (1.0 - strength) * levels[None, None, :] + strength * c[:, :, None]
    lut = np.clip(np.rint(lut * 255.0), 0, 255).astype(np.uint8)  # (N, 3, 256)
    n = np.arange(len(images))[:, None, None, None]
    ch = np.arange(3)[None, None, None, :]
    return lut[n, ch, images]


def spurious_tint_assignment(
    labels: np.ndarray, num_classes: int, p: float, rng: np.random.Generator
) -> np.ndarray:
    """Colour index per example: the label's own colour with probability p, else a random class's.

    The random class is drawn uniformly over all classes, so it can be the label's own colour
    again: P(tint == label) = p + (1 - p) / C, as in the paper's spurious-tint shift.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p: expected a probability in [0, 1], got {p}")
    labels = np.asarray(labels)
    random_colour = rng.integers(0, num_classes, size=len(labels))
    use_own = rng.random(len(labels)) < p
    return np.where(use_own, labels, random_colour).astype(np.int64)


def random_tint_assignment(n: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Colour index per example drawn uniformly over the classes (no link to the label)."""
    return rng.integers(0, num_classes, size=n).astype(np.int64)


def tint_groups(labels: np.ndarray, colour_index: np.ndarray, num_colours: int) -> np.ndarray:
    """Group id = label * num_colours + tint colour: one group per (class, value of the spurious
    attribute). Balancing these groups makes the tint independent of the label; the coarser
    (class, "tint matches class") groups would not (the best tint-only rule keeps accuracy 0.5
    on them, chance being 0.1)."""
    labels = np.asarray(labels, dtype=np.int64)
    colours = np.asarray(colour_index, dtype=np.int64)
    if colours.size and (colours.min() < 0 or colours.max() >= num_colours):
        raise ValueError(f"colour indices must lie in [0, {num_colours}), got {colours.min()}..{colours.max()}")
    return labels * num_colours + colours


# ------------------------------------------------------------------ label shift
def label_shift_indices(
    labels: np.ndarray, minority_classes, p_minority: float, rng: np.random.Generator
) -> np.ndarray:
    """Indices of a subsample where each minority class has p_minority times the examples of
    a majority class. Majority classes keep the size of the smallest class present; the result
    is sorted so the original order is kept.
    """
    if not 0.0 < p_minority <= 1.0:
        raise ValueError(f"p_minority: expected a number in (0, 1], got {p_minority}")
    labels = np.asarray(labels)
    classes = np.unique(labels)
    minority = set(int(c) for c in minority_classes)
    unknown = minority - set(int(c) for c in classes)
    if unknown:
        raise ValueError(f"minority_classes: {sorted(unknown)} are not among the labels {classes.tolist()}")
    per_class = min(int((labels == c).sum()) for c in classes)
    n_minority = max(1, int(round(p_minority * per_class)))
    keep = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        k = n_minority if int(c) in minority else per_class
        keep.append(rng.choice(idx, size=k, replace=False))
    return np.sort(np.concatenate(keep))


# ------------------------------------------------------------------ geometry
def vflip(images: np.ndarray) -> np.ndarray:
    """Vertical flip (upside down); applying it twice gives the input back."""
    _check_batch(images)
    return images[:, ::-1].copy()


def hflip(images: np.ndarray) -> np.ndarray:
    """Horizontal flip (mirror)."""
    _check_batch(images)
    return images[:, :, ::-1].copy()


def pad(images: np.ndarray, pixels: int, value: int = 0) -> np.ndarray:
    """Pad every side with a constant frame, then resize back to the input size."""
    _check_batch(images)
    if pixels < 0 or not 0 <= value <= 255:
        raise ValueError(f"pad: pixels must be >= 0 and value in [0, 255], got {pixels}, {value}")
    h, w = images.shape[1:3]
    framed = np.pad(images, ((0, 0), (pixels, pixels), (pixels, pixels), (0, 0)), constant_values=value)
    return resize(framed, (h, w))


def place_scaled(
    images: np.ndarray, scales: np.ndarray, rng: np.random.Generator, fill: int = 0
) -> np.ndarray:
    """Shrink each image by its scale (<= 1) and paste it at a random position on a `fill` canvas."""
    _check_batch(images)
    n, h, w, _ = images.shape
    out = np.full_like(images, fill)
    sizes = np.clip(np.rint(np.asarray(scales) * h).astype(int), 1, h)
    for s in np.unique(sizes):
        idx = np.flatnonzero(sizes == s)
        small = resize(images[idx], (int(s), int(round(s * w / h))))
        sw = small.shape[2]
        ys = rng.integers(0, h - s + 1, size=len(idx))
        xs = rng.integers(0, w - sw + 1, size=len(idx))
        for j, i in enumerate(idx):
            out[i, ys[j] : ys[j] + s, xs[j] : xs[j] + sw] = small[j]
    return out


# ------------------------------------------------------------------ backgrounds
def zoom_levels(photos: list[np.ndarray], size: int) -> list[np.ndarray]:
    """Each photo resized to a few zoom levels (shorter side 1x, 2x, 4x, 8x `size`, as far as
    the photo allows), so that a random crop of any level is a plain slice."""
    if not photos:
        raise ValueError("photos: need at least one background image")
    levels = []
    for ph in photos:
        short = min(ph.shape[:2])
        for k in (1, 2, 4, 8):
            target = size * k
            if target > short and k > 1:
                break
            hw = (max(size, round(ph.shape[0] * target / short)), max(size, round(ph.shape[1] * target / short)))
            levels.append(resize(np.ascontiguousarray(ph[None]), hw)[0])
    return levels


def random_crops(levels: list[np.ndarray], n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """n random size x size crops from images at least size x size (e.g. `zoom_levels`)."""
    if not levels:
        raise ValueError("levels: need at least one background image")
    which = rng.integers(0, len(levels), size=n)
    room = np.array([[lv.shape[0] - size + 1, lv.shape[1] - size + 1] for lv in levels])
    ys, xs = (rng.random((2, n)) * room[which].T).astype(int)
    out = np.empty((n, size, size, 3), np.uint8)
    for i, w in enumerate(which):
        out[i] = levels[w][ys[i] : ys[i] + size, xs[i] : xs[i] + size]
    return out


def composite(foreground: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Put a dark-background foreground over a background, using its brightness as alpha.

    Digits, letters and silhouettes are bright strokes on black: alpha = max over channels.
    """
    _check_batch(foreground)
    _check_batch(background)
    alpha = foreground.max(axis=-1, keepdims=True).astype(np.float32) / np.float32(255.0)
    fg = foreground.astype(np.float32)
    bg = background.astype(np.float32)
    y = bg + alpha * (fg - bg)  # = alpha * fg + (1 - alpha) * bg, in float32 for speed
    return np.rint(y, out=y).clip(0, 255).astype(np.uint8)


def photo_background(
    images: np.ndarray, photos: list[np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    """Out-of-support shift: each image's strokes on a random crop of a photo or texture."""
    _check_batch(images)
    size = images.shape[1]
    crops = random_crops(zoom_levels(photos, size), len(images), size, rng)
    return composite(images, crops)
