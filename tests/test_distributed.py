"""fit with ddp > 1 (askshift.nn.distributed): one run across processes, on the CPU with gloo."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from askshift.nn import models as M
from askshift.nn import train as T
from tests.test_train import assert_same_state, cfg, make_data


def ddp(c: T.TrainConfig, n: int = 2) -> T.TrainConfig:
    return T.TrainConfig(**{**c.to_dict(), "ddp": n})


def vit():
    # no batch norm and no dropout: DDP's averaged gradient is then the serial batch's, so the two
    # runs may differ only by the order of floating-point sums
    return M.create_model("test_vit", 4, seed=0, patch_size=8, img_size=16)


def assert_close_state(a, b):
    for k, v in a.state_dict().items():
        assert torch.allclose(b.state_dict()[k], v, rtol=1e-4, atol=1e-5), k


def test_two_processes_train_what_one_does(tmp_path):
    data, val = make_data(n=128), make_data(n=32, seed=1)
    c = cfg(epochs=3, batch_size=32, lr=0.05, random_crop=2, random_flip=True, label_smoothing=0.1)
    serial, spread = vit(), vit()
    h1 = T.fit(serial, data, val, c, ckpt_dir=tmp_path / "serial")
    h2 = T.fit(spread, data, val, ddp(c), ckpt_dir=tmp_path / "ddp", save_epochs=[1, 3])
    assert_close_state(serial, spread)
    assert not torch.equal(spread.state_dict()["head.weight"], vit().state_dict()["head.weight"])  # it trained
    assert [r["epoch"] for r in h2] == [1, 2, 3]
    np.testing.assert_allclose([r["train_loss"] for r in h2], [r["train_loss"] for r in h1], rtol=1e-4)
    np.testing.assert_allclose([r["train_acc"] for r in h2], [r["train_acc"] for r in h1], atol=1 / 128)
    assert [r["val_acc"] for r in h2] == pytest.approx([r["val_acc"] for r in h1], abs=1 / 32)
    assert_same_state(M.load_model(T.snapshot_path(tmp_path / "ddp", 3)), spread)   # rank 0 wrote it
    assert torch.load(T.checkpoint_path(tmp_path / "ddp"), weights_only=True)["world_size"] == 2


def test_without_a_checkpoint_folder_the_weights_come_back_all_the_same():
    # the pipeline's runs without a ckpt_dir (e.g. `ask`) under compute.ddp
    data = make_data(n=64)
    c = cfg(epochs=2, batch_size=32, lr=0.05)
    serial, spread = vit(), vit()
    T.fit(serial, data, None, c)
    assert [r["epoch"] for r in T.fit(spread, data, None, ddp(c))] == [1, 2]
    assert_close_state(serial, spread)
    with pytest.raises(ValueError, match="on_epoch_end cannot run"):
        T.fit(vit(), data, None, ddp(c), on_epoch_end=lambda e, r: None)


def test_batch_norm_model_and_sample_weights_under_ddp(tmp_path):
    # per-process batch norm on the CPU (torch has no synchronised one there): not the serial
    # numbers, but the same training (a serial run of this recipe also reaches 100%)
    data = make_data(n=128)
    w = np.where(data[1] == 0, 3.0, 1.0)
    m = M.create_model("test_resnet", 4, seed=0)
    hist = T.fit(m, data, None, ddp(cfg(epochs=6, batch_size=64)), ckpt_dir=tmp_path / "bn", sample_weight=w)
    assert hist[-1]["train_loss"] < 0.2 * hist[0]["train_loss"]
    assert (T.predict(m, data[0], device="cpu").argmax(1) == data[1]).mean() == 1.0


def test_refusals_and_resume(tmp_path):
    data = make_data(n=12)
    with pytest.raises(ValueError, match="train config: ddp=0 must be an integer >= 1"):
        cfg(ddp=0)
    # batches of 6 cannot give 4 processes 2 examples each (the processes' error fails the run)
    with pytest.raises(Exception, match="cannot be cut into 4 shards"):
        T.fit(vit(), data, None, ddp(cfg(batch_size=6, epochs=1), 4), ckpt_dir=tmp_path / "x")
    # an unfinished checkpoint of one process is not resumed by two (ddp is part of the run)
    data = make_data(n=64)
    c = cfg(epochs=2, batch_size=32)

    def stop(epoch, rec):
        raise T.StopTraining

    T.fit(vit(), data, None, c, ckpt_dir=tmp_path / "r", on_epoch_end=stop)   # epoch 1 of 2
    with pytest.raises(Exception, match=r"config differs in \{'ddp': \(1, 2\)\}"):
        T.fit(vit(), data, None, ddp(c), ckpt_dir=tmp_path / "r")
