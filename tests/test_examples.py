"""askshift.nn.examples: training and inference on data read example by example (DataLoader)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from askshift.data.imagesets import ImageFiles, ImageSetError, load_image
from askshift.nn import examples as EX
from askshift.nn import models as M
from askshift.nn import train as T
from tests.test_train import assert_same_state, cfg, make_data, make_model


class Arrays:
    """The smallest example source: arrays read one example at a time."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def read(self, i):
        return self.images[i]

    def identity(self):
        return f"arrays {self.images.shape}"


def test_a_source_trains_what_its_arrays_train_whatever_the_workers():
    data, val = make_data(n=96), make_data(n=32, seed=1)
    c = cfg(epochs=2, batch_size=32, random_crop=2, random_flip=True)
    ref = make_model()
    h_ref = T.fit(ref, data, val, c)
    for workers in (0, 2):
        m = make_model()
        h = T.fit(m, Arrays(*data), Arrays(*val), T.TrainConfig(**{**c.to_dict(), "workers": workers}))
        assert_same_state(ref, m)                                     # bitwise, on the CPU
        assert [r["val_acc"] for r in h] == [r["val_acc"] for r in h_ref]
    assert np.array_equal(T.predict(ref, Arrays(*val), batch_size=10, device="cpu", workers=2),
                          T.predict(ref, val[0], batch_size=10, device="cpu"))


def test_a_source_in_a_checkpoint_is_known_by_its_identity(tmp_path):
    data = make_data(n=64)
    c = cfg(epochs=2, batch_size=32)

    def stop(epoch, rec):
        raise T.StopTraining

    T.fit(make_model(), Arrays(*data), None, c, ckpt_dir=tmp_path, on_epoch_end=stop)   # epoch 1 of 2
    other = Arrays(*data)
    other.identity = lambda: "other files"
    with pytest.raises(ValueError, match="trained on other data"):
        T.fit(make_model(), other, None, c, ckpt_dir=tmp_path)
    assert len(T.fit(make_model(), Arrays(*data), None, c, ckpt_dir=tmp_path)) == 2     # resumes its own
    assert EX.fingerprint(Arrays(*data)) != EX.fingerprint(other)


def test_bad_examples_are_named():
    x, y = make_data(n=8)
    with pytest.raises(ValueError, match=r"example 0 of Arrays: expected uint8 \(H, W, C\)"):
        T.predict(make_model(), Arrays(x.astype(np.float32), y), device="cpu")
    with pytest.raises(ValueError, match=r"train labels must have shape \(8,\)"):
        T.fit(make_model(), Arrays(x, y[:4]), None, cfg())


def write_images(root: Path, data) -> list[Path]:
    paths = []
    for i, (img, label) in enumerate(zip(*data)):
        p = root / str(label) / f"{i:03d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(p)
        paths.append(p)
    return paths


def test_image_files_train_like_their_decoded_images(tmp_path):
    data = make_data(n=48)
    files = ImageFiles(tuple(write_images(tmp_path, data)), data[1], 16)
    assert np.array_equal(files.read(3), data[0][3])                  # PNG round trip at its own side
    c = cfg(epochs=1, batch_size=16, random_flip=True, workers=2)
    a, b = make_model(), make_model()
    T.fit(a, files, None, c)
    T.fit(b, data, None, c)
    assert_same_state(a, b)
    before = files.identity()
    Image.fromarray(data[0][0] // 2).save(files.paths[0])            # a file changed: other data
    assert files.identity() != before
    files.paths[1].write_bytes(b"not an image")
    with pytest.raises(ImageSetError, match=f"cannot decode {files.paths[1]}"):
        files.read(1)
    assert load_image(files.paths[2], 8).shape == (8, 8, 3)
