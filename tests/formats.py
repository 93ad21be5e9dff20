"""Fixture writers: small files in the exact on-disk formats of the paper-scale worlds' sources.

The real files cannot be downloaded here; each writer reproduces its format's layout, keys and
encoding, with fewer, synthetic images whose class is learnable (a class-specific colour and
stripe pattern under noise), so a smoke run trains models that beat chance.
"""
from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def class_images(labels: np.ndarray, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """(N, size, size, 3) uint8: class k is stripes at angle 18k degrees in the class's colour,
    with random phase, contrast and noise."""
    n = len(labels)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    angle = np.deg2rad(18.0 * labels)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, n)[:, None, None]
    wave = 0.5 + 0.5 * np.sin((np.cos(angle) * xx + np.sin(angle) * yy) * 0.6 + phase)
    hue = np.stack([np.cos(2 * np.pi * labels / 10), np.cos(2 * np.pi * (labels / 10 + 1 / 3)),
                    np.cos(2 * np.pi * (labels / 10 + 2 / 3))], 1) * 0.15 + 0.6
    img = wave[..., None] * hue[:, None, None, :] * rng.uniform(0.3, 1.0, n)[:, None, None, None]
    img = img + rng.normal(0, 0.3, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _batch(images: np.ndarray, labels: np.ndarray, label: str, offset: int) -> bytes:
    # as the official batches: (N, 3072) uint8 rows of R, G, B planes; protocol 2 (Python 2's)
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    doc = {"batch_label": label, "labels": [int(x) for x in labels], "data": data,
           "filenames": [f"fixture_{offset + i:05d}.png" for i in range(len(labels))]}
    return pickle.dumps(doc, protocol=2)


def write_cifar10_python(path: Path, per_class_train: int = 100, per_class_test: int = 30, seed: int = 0) -> str:
    """A ``cifar-10-python.tar.gz``: cifar-10-batches-py/ with data_batch_1..5, test_batch and
    batches.meta, as in the official tarball. ``per_class_train`` must be a multiple of 5 (the
    five batches are class-balanced, like the original's classes overall). Returns the sha256."""
    if per_class_train % 5:
        raise ValueError("per_class_train must be a multiple of the 5 training batches")
    rng = np.random.default_rng(seed)
    members = {"cifar-10-batches-py/batches.meta": pickle.dumps(
        {"num_cases_per_batch": 10 * per_class_train // 5, "label_names": list(CIFAR10_CLASSES), "num_vis": 3072},
        protocol=2)}
    offset = 0
    for b in range(1, 6):
        y = rng.permutation(np.repeat(np.arange(10), per_class_train // 5))
        members[f"cifar-10-batches-py/data_batch_{b}"] = _batch(class_images(y, rng), y, f"training batch {b} of 5", offset)
        offset += len(y)
    y = rng.permutation(np.repeat(np.arange(10), per_class_test))
    members["cifar-10-batches-py/test_batch"] = _batch(class_images(y, rng), y, "testing batch 1 of 1", offset)
    members["cifar-10-batches-py/readme.html"] = b"<meta HTTP-EQUIV=\"REFRESH\" content=\"0; url=http://www.cs.toronto.edu/~kriz/cifar.html\">\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        dir_info = tarfile.TarInfo("cifar-10-batches-py")
        dir_info.type, dir_info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(dir_info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_cifar10_1(folder: Path, per_class: int = 20, seed: int = 1) -> dict[str, dict[str, str]]:
    """CIFAR-10.1 v6's two files as its authors publish them: ``cifar10.1_v6_data.npy`` (uint8
    (N, 32, 32, 3)) and ``cifar10.1_v6_labels.npy`` (int32 (N,)), ``per_class`` images per class.
    Returns each file's ``{"sha256", "git_sha1"}`` (the git blob id the real table pins)."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat(np.arange(10), per_class))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"cifar10.1_v6_data.npy": class_images(y, rng), "cifar10.1_v6_labels.npy": y.astype(np.int32)}
    out = {}
    for name, a in arrays.items():
        np.save(folder / name, a, allow_pickle=False)
        data = (folder / name).read_bytes()
        out[name] = {"sha256": hashlib.sha256(data).hexdigest(),
                     "git_sha1": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}
    return out

