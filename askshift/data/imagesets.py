"""A user's image set on disk: an image folder or a table of image paths, read in batches.

Layouts (:func:`list_images`):

- an ImageFolder tree (torchvision's layout): ``PATH/<class>/<image>``; the class is the label;
- a flat folder of images, unlabelled: ``PATH/<image>``;
- a CSV or parquet table with a ``path`` column (relative paths are relative to the table's
  folder) and an optional ``label`` column.

Files are listed in sorted order of their path, so the answer never depends on the order in
which a file system or a table lists them. Images are decoded with Pillow, converted to RGB
and resized to the model's square input (shorter side to ``size``, then a centre crop: the
evaluation transform of timm at crop 1.0). :func:`iter_batches` decodes one batch at a time,
so memory stays bounded by the batch, whatever the number of images.
"""
from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
TABLE_SUFFIXES = (".csv", ".parquet")
ON_BAD = ("stop", "skip")


class ImageSetError(ValueError):
    """A user's image set cannot be used as given; the message names the path and what is valid."""


@dataclass
class ImageSet:
    """The files of one image set, sorted; ``labels`` are class names (None: unlabelled)."""

    source: str
    layout: str                       # imagefolder | folder | table
    paths: list[Path]
    labels: list[str] | None
    bad: list[tuple[str, str]] = field(default_factory=list)   # (file, why) skipped
    sizes: np.ndarray | None = None   # (n, 2) width, height of every readable image

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels)) if self.labels is not None else []

    def size_summary(self) -> dict:
        """Widths and heights before resizing, and how much they differ (max / min area)."""
        if self.sizes is None or not len(self.sizes):
            return {}
        w, h = self.sizes[:, 0], self.sizes[:, 1]
        area = w.astype(np.int64) * h
        return {"width": [int(w.min()), int(np.median(w)), int(w.max())],
                "height": [int(h.min()), int(np.median(h)), int(h.max())],
                "area_ratio": float(area.max() / max(area.min(), 1))}


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")


def _from_folder(root: Path, role: str) -> ImageSet:
    entries = sorted(root.iterdir())
    top = [p for p in entries if _is_image(p)]
    classes = [d for d in entries if d.is_dir() and not d.name.startswith(".")]
    nested = {d: sorted(p for p in d.rglob("*") if _is_image(p)) for d in classes}
    nested = {d: files for d, files in nested.items() if files}
    if top and nested:
        raise ImageSetError(f"--{role} {root}: has both images at its top level ({top[0].name}, ...) and class "
                            f"folders with images ({next(iter(nested)).name}/, ...); use one layout: "
                            "PATH/<class>/<image> (labelled) or PATH/<image> (unlabelled)")
    if nested:
        paths = [p for files in nested.values() for p in files]
        labels = [d.name for d, files in nested.items() for _ in files]
        return ImageSet(str(root), "imagefolder", paths, labels)
    if top:
        return ImageSet(str(root), "folder", top, None)
    raise ImageSetError(f"--{role} {root}: no images found (looked for {', '.join(IMAGE_SUFFIXES)} files at its "
                        "top level and in class sub-folders)")


def _from_table(path: Path, role: str) -> ImageSet:
    try:
        table = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except Exception as e:  # noqa: BLE001 - pandas/pyarrow raise many types for a bad file
        raise ImageSetError(f"--{role} {path}: cannot read the table ({type(e).__name__}: {e})") from None
    if "path" not in table.columns:
        raise ImageSetError(f"--{role} {path}: no 'path' column (columns: {', '.join(map(str, table.columns))}); "
                            "expected a 'path' column of image files and an optional 'label' column")
    if not len(table):
        raise ImageSetError(f"--{role} {path}: the table has no rows")
    if table["path"].isna().any():
        raise ImageSetError(f"--{role} {path}: row {int(table['path'].isna().to_numpy().argmax())} has no path")
    paths = [(p if p.is_absolute() else path.parent / p) for p in map(Path, table["path"].astype(str))]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ImageSetError(f"--{role} {path}: {len(missing)} listed file(s) do not exist, e.g. {missing[0]}")
    dup = table["path"][table["path"].duplicated()]
    if len(dup):
        raise ImageSetError(f"--{role} {path}: {dup.iloc[0]!r} is listed more than once")
    labels = None
    if "label" in table.columns:
        if table["label"].isna().any():
            raise ImageSetError(f"--{role} {path}: the 'label' column has empty cells (row "
                                f"{int(table['label'].isna().to_numpy().argmax())}); fill them or drop the column")
        labels = [str(v) for v in table["label"]]
    order = sorted(range(len(paths)), key=lambda i: str(paths[i]))
    return ImageSet(str(path), "table", [paths[i] for i in order],
                    None if labels is None else [labels[i] for i in order])


def list_images(path: str | Path, role: str = "images") -> ImageSet:
    """The image set at ``path`` (see the module docstring); ``role`` names it in errors."""
    p = Path(path)
    if not p.exists():
        raise ImageSetError(f"--{role} {p}: does not exist")
    if p.is_dir():
        return _from_folder(p, role)
    if p.suffix.lower() in TABLE_SUFFIXES:
        return _from_table(p, role)
    raise ImageSetError(f"--{role} {p}: expected an image folder or a {' / '.join(TABLE_SUFFIXES)} table of paths")


def check_images(images: ImageSet, on_bad: str = "stop", role: str = "images") -> ImageSet:
    """Open every file's header (cheap: no decoding) to read its size; a file Pillow cannot
    identify stops here, naming it (``on_bad="stop"``), or is dropped and recorded in
    ``images.bad`` (``"skip"``). Returns ``images`` with ``sizes`` filled."""
    if on_bad not in ON_BAD:
        raise ImageSetError(f"on_bad={on_bad!r} is not valid; choose one of {ON_BAD}")
    keep, sizes, bad = [], [], []
    for i, p in enumerate(images.paths):
        try:
            with Image.open(p) as im:
                sizes.append(im.size)
            keep.append(i)
        except (UnidentifiedImageError, OSError) as e:
            bad.append((str(p), f"{type(e).__name__}: {e}"))
    if bad and on_bad == "stop":
        raise ImageSetError(f"--{role}: {len(bad)} file(s) are not readable images, e.g. {bad[0][0]} ({bad[0][1]}); "
                            "fix or remove them, or pass --on-bad-image skip to leave them out (they are listed "
                            "in ask.json)")
    if not keep:
        raise ImageSetError(f"--{role} {images.source}: none of its {len(images.paths)} files is a readable image")
    images.paths = [images.paths[i] for i in keep]
    if images.labels is not None:
        images.labels = [images.labels[i] for i in keep]
    images.bad += bad
    images.sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
    return images


def load_image(path: Path, size: int) -> np.ndarray:
    """One image as uint8 (size, size, 3): RGB, shorter side resized to ``size``, centre crop."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        im = im.resize((nw, nh), Image.BILINEAR)
        left, top = (nw - size) // 2, (nh - size) // 2
        return np.array(im.crop((left, top, left + size, top + size)), dtype=np.uint8)   # writable


@dataclass(frozen=True)
class ImageFiles:
    """Labelled image files as an example source for training and inference
    (:mod:`askshift.nn.examples`): each file is decoded when it is read, by :func:`load_image`
    at side ``size``, so a DataLoader's workers decode in parallel and nothing is held in memory."""

    paths: tuple[Path, ...]
    labels: np.ndarray
    size: int

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, i: int) -> np.ndarray:
        try:
            return load_image(self.paths[i], self.size)
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise ImageSetError(f"cannot decode {self.paths[i]} ({type(e).__name__}: {e}); fix or remove it") from None

    def identity(self) -> str:
        """The files, their sizes and modification times, and the side: a changed file is other data."""
        stamps = []
        for p in self.paths:
            st = p.stat()
            stamps.append(f"{p}:{st.st_size}:{st.st_mtime_ns}")
        return f"{self.size}|" + "|".join(stamps)


def iter_batches(images: ImageSet, size: int, batch_size: int = 256, workers: int = 2,
                 role: str = "images") -> Iterator[np.ndarray]:
    """uint8 (B, size, size, 3) batches in the set's order; decoding runs in ``workers`` threads
    (Pillow releases the GIL). A file that fails to decode (e.g. truncated) stops with its name."""
    def load(p):
        try:
            return load_image(p, size)
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise ImageSetError(f"--{role}: cannot decode {p} ({type(e).__name__}: {e}); fix or remove it") from None

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for s in range(0, len(images.paths), batch_size):
            yield np.stack(list(pool.map(load, images.paths[s:s + batch_size])))


def label_codes(reference: ImageSet, shifted: ImageSet) -> tuple[np.ndarray | None, np.ndarray | None, list[str]]:
    """Integer labels of both sets over the reference's classes (sorted names). The shifted set
    may be unlabelled; a class it has that the reference lacks is an error."""
    if reference.labels is None:
        return None, None, []
    classes = reference.classes
    if len(classes) < 2:
        raise ImageSetError(f"--reference {reference.source}: one class only ({classes[0]!r}); a classifier needs two")
    code = {c: i for i, c in enumerate(classes)}
    ref = np.array([code[c] for c in reference.labels], dtype=np.int64)
    if shifted.labels is None:
        return ref, None, classes
    extra = sorted(set(shifted.labels) - set(classes))
    if extra:
        raise ImageSetError(f"--shifted {shifted.source}: label(s) {', '.join(map(repr, extra[:5]))} are not classes of "
                            f"the reference ({', '.join(map(repr, classes[:10]))}{', ...' if len(classes) > 10 else ''})")
    return ref, np.array([code[c] for c in shifted.labels], dtype=np.int64), classes
