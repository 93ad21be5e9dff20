"""askshift.probe: linear decodability of an attribute from features, and the `probe` command."""
import numpy as np
import pandas as pd
import pytest

from askshift import cli
from askshift.nn import models as M
from askshift.data import store
from askshift.methods.probe import attribute_decodability


def test_encoded_attribute_is_decodable_and_an_absent_one_is_not():
    rng = np.random.default_rng(0)
    n = 600
    tint = rng.integers(0, 4, n)
    noise = rng.normal(size=(n, 8))
    encoded = np.c_[noise, np.eye(4)[tint] * 3 + rng.normal(scale=0.3, size=(n, 4))]
    r = attribute_decodability(encoded, tint)
    assert r["accuracy"] > 0.95 and r["n_values"] == 4 and r["n"] == n
    r = attribute_decodability(noise, tint)
    assert abs(r["accuracy"] - 0.25) < 0.08 and r["chance"] == pytest.approx(np.bincount(tint).max() / n)


def test_decodability_errors():
    with pytest.raises(ValueError, match="single value"):
        attribute_decodability(np.zeros((10, 2)), np.zeros(10))
    with pytest.raises(ValueError, match="rarest attribute value has 2"):
        attribute_decodability(np.zeros((12, 2)), np.r_[np.zeros(10), np.ones(2)])
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        attribute_decodability(np.zeros((10, 2)), np.zeros(9))


def test_probe_command(tmp_path, capsys):
    rng = np.random.default_rng(1)
    n = 60
    images = rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8)
    meta = pd.DataFrame({"index": np.arange(n), "label": np.arange(n) % 3, "tint": np.arange(n) % 2,
                         "split": "test", "class_name": "x", "group": 0, "source": "fixture"})
    store.save(store.Dataset(images, meta), tmp_path / "ds")
    M.save_model(M.create_model("resnet10t", 3, seed=0, channels=[8, 8, 8, 8], stem_width=8), tmp_path / "m.pt")
    argv = ["probe", "--dataset", str(tmp_path / "ds"), "--attribute", "tint", "--device", "cpu", str(tmp_path / "m.pt")]
    assert cli.main(argv) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1].split()
    assert line[1] == "tint" and 0 <= float(line[2]) <= 1 and float(line[3]) == 0.5
    assert cli.main(argv[:4] + ["colour"] + argv[5:]) == 2
    assert "--attribute 'colour' is not a column" in capsys.readouterr().err
    assert cli.main(["probe", "--dataset", str(tmp_path), "--attribute", "tint", str(tmp_path / "m.pt")]) == 2
    assert "no meta.parquet there" in capsys.readouterr().err
