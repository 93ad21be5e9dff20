"""askshift.nn.fast_resnet: the fast CIFAR-10 ResNet-9 through the pipeline's timm model API."""
from __future__ import annotations

import pytest
import torch

from askshift.nn import models as M
from askshift.nn import train as T
from askshift.study.baseline import scaled
from tests.test_train import cfg, make_data

NARROW = {"channels": [8, 16, 32, 64]}


def test_layout_follows_the_resnet9_of_the_fast_recipes():
    m = M.create_model("askshift_resnet9", 10, seed=0)
    assert m.num_features == 512
    convs = [c for c in m.modules() if isinstance(c, torch.nn.Conv2d)]
    assert len(convs) == 8 and all(c.kernel_size == (3, 3) for c in convs)   # stem, 1+2, 1, 1+2
    assert [c.out_channels for c in convs] == [64, 128, 128, 128, 256, 512, 512, 512]
    x = torch.zeros(2, 3, 32, 32)
    assert m.forward_features(x).shape == (2, 512, 4, 4)      # three max-pools: 32 -> 4
    assert 6.5e6 < sum(p.numel() for p in m.parameters()) < 6.6e6


def test_widths_scale_every_stage():
    kw = scaled({"channels": [64, 128, 256, 512]}, 0.5)
    m = M.create_model("askshift_resnet9", 10, seed=0, **kw)
    assert kw == {"channels": [32, 64, 128, 256]} and m.num_features == 256


def test_bad_arguments_are_refused_with_the_name():
    with pytest.raises(ValueError, match="4 positive widths"):
        M.create_model("askshift_resnet9", 10, channels=[8, 16])
    with pytest.raises(TypeError, match="stem_width"):
        M.create_model("askshift_resnet9", 10, stem_width=8)
    import timm
    with pytest.raises(ValueError, match="no pre-trained weights"):
        timm.create_model("askshift_resnet9", pretrained=True)


def test_seeded_save_load_and_reset(tmp_path):
    a = M.create_model("askshift_resnet9", 4, seed=3, **NARROW)
    b = M.create_model("askshift_resnet9", 4, seed=3, **NARROW)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    path = M.save_model(a, tmp_path / "m.pt")
    c = M.load_model(path).eval()
    x = torch.randn(3, 3, 32, 32)
    assert torch.equal(c(x), a.eval()(x))
    d = M.create_model("askshift_resnet9", 7, weights=f"pipeline:{path}")
    assert d.get_classifier().out_features == 7 and d.num_features == 64


def test_trains_with_the_fast_recipe_augmentation():
    x, y = make_data(n=256, size=32)
    m = M.create_model("askshift_resnet9", 4, seed=0, **NARROW)
    hist = T.fit(m, (x, y), None, cfg(epochs=4, batch_size=64, lr=0.05, random_crop=4, random_flip=True,
                                      label_smoothing=0.2))
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert (T.predict(m, x, device="cpu").argmax(1) == y).mean() > 0.9
