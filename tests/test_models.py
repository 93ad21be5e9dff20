"""askshift.nn.models: factory and weight sources, features / heads, our checkpoint format."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from askshift.nn import models as M
from askshift.nn import train as T

ARCH = "test_resnet"


def make_data(n=128, num_classes=4, seed=0, size=16):
    g = np.random.default_rng(seed)
    y = np.arange(n) % num_classes
    g.shuffle(y)
    x = g.integers(0, 90, (n, size, size, 3)).astype(np.int64)
    for c in range(num_classes):
        if c < 3:
            x[y == c, :, :, c] += 150
        else:
            x[y == c] += 100
    return x.clip(0, 255).astype(np.uint8), y.astype(np.int64)


def cfg(**kw):
    base = dict(epochs=2, batch_size=64, lr=0.05, progress=False, device="cpu", seed=0,
                num_threads=1)
    base.update(kw)
    return T.TrainConfig(**base)


LP_CFG = T.TrainConfig(epochs=30, batch_size=64, optimizer="adamw", lr=1e-2, weight_decay=0.0,
                       progress=False, device="cpu", seed=0, num_threads=1)


def batch(n=6, size=32):
    x, _ = make_data(n=max(n, 4), size=size)
    return M.to_input(torch.from_numpy(x[:n]), M.DEFAULT_MEAN, M.DEFAULT_STD)


def non_head_state(model):
    head = M._head_keys(model)
    return {k: v.clone() for k, v in model.state_dict().items() if k not in head}


# ---------------------------------------------------------------------------------- factory
def test_create_scratch_records_recipe_and_is_seeded():
    m = M.create_model(ARCH, 5, seed=3)
    cfg_ = M.model_config(m)
    assert cfg_["arch"] == ARCH and cfg_["num_classes"] == 5 and cfg_["img_size"] == 32
    assert cfg_["mean"] == [0.5] * 3 and cfg_["std"] == [0.5] * 3
    m2 = M.create_model(ARCH, 5, seed=3)
    for a, b in zip(m.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(a, b)
    assert m.eval()(batch()).shape == (6, 5)
    state = torch.get_rng_state()
    M.create_model(ARCH, 5, seed=4)
    assert torch.equal(state, torch.get_rng_state())    # global RNG untouched


def test_to_input_normalises_and_is_nchw():
    x = torch.zeros((2, 4, 4, 3), dtype=torch.uint8)
    x[0] = 255
    out = M.to_input(x, (0.5, 0.5, 0.5), (0.5, 0.25, 0.5))
    assert out.shape == (2, 3, 4, 4) and out.dtype == torch.float32
    assert torch.allclose(out[0, 0], torch.ones(4, 4))
    assert torch.allclose(out[0, 1], torch.full((4, 4), 2.0))
    assert torch.allclose(out[1, 0], -torch.ones(4, 4))


@pytest.mark.parametrize("arch,kw", [
    ("test_resnet", {}),
    ("test_vit", {"patch_size": 8}),         # img_size=32 is passed to archs that take it
    ("test_convnext", {}),
    ("resnet10t", {"channels": [8, 16, 32, 64], "stem_width": 8}),
    ("askshift_resnet9", {"channels": [8, 16, 32, 64]}),   # askshift.nn.fast_resnet
])
def test_features_shape_is_num_features(arch, kw):
    m = M.create_model(arch, 3, seed=0, **kw).eval()
    x = batch(n=5)
    with torch.no_grad():
        f = M.features(m, x)
        assert f.shape == (5, m.num_features)
        w, b = M.get_head(m)
        assert torch.allclose(m(x), f @ w.T + b, atol=1e-5)


def test_heads_and_backbone_partition_parameters():
    m = M.create_model(ARCH, 4, seed=0)
    head, back = M.head_parameters(m), M.backbone_parameters(m)
    assert {id(p) for p in head} == {id(p) for p in m.get_classifier().parameters()}
    assert len(head) + len(back) == len(list(m.parameters()))
    assert not {id(p) for p in head} & {id(p) for p in back}


def test_set_head_roundtrip_and_resize():
    m = M.create_model(ARCH, 4, seed=0).eval()
    w = torch.randn(7, m.num_features)
    b = torch.randn(7)
    M.set_head(m, w, b)
    assert m.num_classes == 7
    w2, b2 = M.get_head(m)
    assert torch.equal(w2, w) and torch.equal(b2, b)
    x = batch()
    with torch.no_grad():
        assert torch.allclose(m(x), M.features(m, x) @ w.T + b, atol=1e-5)
    M.set_head(m, w.numpy(), None)
    assert torch.equal(M.get_head(m)[1], torch.zeros(7))
    with pytest.raises(ValueError):
        M.set_head(m, torch.randn(7, m.num_features + 1))


# ---------------------------------------------------------------------------------- weights
def test_parse_weights():
    assert M.parse_weights("scratch") == ("scratch", "", None)
    assert M.parse_weights("pipeline:models/pre.pt") == ("pipeline", "models/pre.pt", None)
    assert M.parse_weights("timm:resnet18.a1_in1k") == ("timm", "resnet18.a1_in1k", None)
    assert M.parse_weights("timm:vit.t@/x/y.safetensors") == ("timm", "vit.t", "/x/y.safetensors")
    for bad in ("", "imagenet", "timm:", "foo:bar", "timm:a.b@"):
        with pytest.raises(ValueError, match="weights"):
            M.parse_weights(bad)


def test_pipeline_checkpoint_resets_classifier_keeps_backbone(tmp_path):
    src = M.create_model(ARCH, 6, seed=0)
    T.fit(src, make_data(n=64, num_classes=6), None, cfg(epochs=1), ckpt_dir=tmp_path / "ck")
    M.save_model(src, tmp_path / "pre.pt")
    backbone = non_head_state(src)
    for path in (tmp_path / "pre.pt", T.checkpoint_path(tmp_path / "ck")):
        m = M.create_model(ARCH, 3, weights=f"pipeline:{path}", seed=1)
        assert m.num_classes == 3 and M.model_config(m)["num_classes"] == 3
        assert m.get_classifier().weight.shape == (3, m.num_features)
        got = non_head_state(m)
        assert got.keys() == backbone.keys()
        for k in backbone:
            assert torch.equal(got[k], backbone[k]), k
        assert m(batch()).shape == (6, 3)
    with pytest.raises(ValueError, match="arch"):
        M.create_model("resnet18", 3, weights=f"pipeline:{tmp_path / 'pre.pt'}")
    with pytest.raises(FileNotFoundError):
        M.create_model(ARCH, 3, weights=f"pipeline:{tmp_path / 'missing.pt'}")


def test_timm_weights_from_local_file_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import timm
    from safetensors.torch import save_file

    ref = timm.create_model("test_resnet", num_classes=1000)   # stands in for hub weights
    sd = {k: v.contiguous() for k, v in ref.state_dict().items()}
    torch.save(sd, tmp_path / "w.pth")
    save_file(sd, str(tmp_path / "w.safetensors"))
    head_keys = M._head_keys(ref)
    for fname in ("w.pth", "w.safetensors"):
        m = M.create_model("test_resnet", 10,
                           weights=f"timm:test_resnet.r160_in1k@{tmp_path / fname}")
        assert m.num_classes == 10
        got = m.state_dict()
        for k, v in sd.items():
            if k not in head_keys:
                assert torch.equal(got[k], v), k
        assert M.model_config(m)["mean"] == list(m.pretrained_cfg["mean"])
    same = M.create_model("test_resnet", 1000, weights=f"timm:test_resnet.r160_in1k@{tmp_path}/w.pth")
    for k, v in sd.items():
        assert torch.equal(same.state_dict()[k], v), k
    with pytest.raises(ValueError, match="architecture"):
        M.create_model("resnet18", 10, weights=f"timm:test_resnet.r160_in1k@{tmp_path}/w.pth")
    with pytest.raises(FileNotFoundError):
        M.create_model("test_resnet", 10, weights="timm:test_resnet.r160_in1k@/no/such/file")


def test_plain_state_dict_file_weights(tmp_path):
    src = M.create_model(ARCH, 9, seed=0)
    torch.save({"state_dict": src.state_dict()}, tmp_path / "plain.pth")
    m = M.create_model(ARCH, 2, weights=f"file:{tmp_path / 'plain.pth'}", seed=1)
    assert m.num_classes == 2
    want = non_head_state(src)
    for k, v in non_head_state(m).items():
        assert torch.equal(v, want[k]), k
    wrong = M.create_model("test_convnext", 2)
    torch.save(wrong.state_dict(), tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="do not match"):
        M.create_model(ARCH, 2, weights=f"file:{tmp_path / 'wrong.pth'}")


def test_timm_hub_failure_says_how_to_load_offline(monkeypatch):
    import timm.models._builder as builder

    def offline(*a, **k):
        raise ConnectionError("no network")

    monkeypatch.setattr(builder, "load_pretrained", offline)
    with pytest.raises(RuntimeError, match=r"timm:test_resnet.r160_in1k@/path/to/file"):
        M.create_model("test_resnet", 10, weights="timm:test_resnet.r160_in1k")


# ---------------------------------------------------------------------------------- input size
def test_resize_input_whole_image_to_the_model_side():
    x = batch(3, size=32)
    assert M.resize_input(x, 32) is x and M.resize_input(x, None) is x       # nothing to do
    for mode in M.INTERPOLATIONS:
        y = M.resize_input(x, 64, mode)
        assert y.shape == (3, 3, 64, 64)
    flat = torch.full((2, 3, 32, 32), 0.25)
    assert torch.allclose(M.resize_input(flat, 160, "bicubic"), torch.tensor(0.25), atol=1e-6)
    assert torch.allclose(M.resize_input(flat, 8, "bilinear"), torch.tensor(0.25), atol=1e-6)  # antialiased
    with pytest.raises(ValueError, match="interpolation='lanczos'; valid: bilinear, bicubic, nearest"):
        M.resize_input(x, 64, "lanczos")


def test_pretrained_weights_bring_their_input_size_and_interpolation(tmp_path, monkeypatch):
    """A ViT pre-trained at 160 (timm's data config) sees the 32x32 datasets at 160 with its
    own bicubic interpolation, in fit, predict and features, and keeps it through our file
    format and the `pipeline:` weights that fine-tuning starts from; a scratch model stays at 32."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import timm

    torch.save(timm.create_model("test_vit", num_classes=1000, img_size=160).state_dict(), tmp_path / "vit.pth")
    vit = M.create_model("test_vit", 4, weights=f"timm:test_vit.r160_in1k@{tmp_path / 'vit.pth'}", seed=0)
    assert M.input_size(vit) == (160, "bicubic") and vit.patch_embed.img_size == (160, 160)
    assert M.input_size(M.create_model(ARCH, 4, seed=0)) == (None, "bilinear")   # scratch: images as they come
    x, y = make_data(n=8, num_classes=4, size=32)
    T.fit(vit, (x, y), cfg=cfg(epochs=1, batch_size=4))
    assert T.predict(vit, x, device="cpu").shape == (8, 4)
    assert T.extract_features(vit, x, device="cpu").shape == (8, vit.num_features)
    M.save_model(vit, tmp_path / "pre.pt")
    again = M.load_model(tmp_path / "pre.pt")
    assert M.input_size(again) == (160, "bicubic")
    np.testing.assert_array_equal(T.predict(again, x, device="cpu"), T.predict(vit, x, device="cpu"))
    tuned = M.create_model("test_vit", 2, weights=f"pipeline:{tmp_path / 'pre.pt'}", seed=1)
    assert M.input_size(tuned) == (160, "bicubic")
    with pytest.raises(ValueError, match="built for img_size=160 but img_size=32"):
        M.create_model("test_vit", 2, weights=f"pipeline:{tmp_path / 'pre.pt'}", img_size=32)
    with torch.no_grad():    # what the model saw: the resized images, not 32x32 ones with a 1-token grid
        model_in = T._prepare(torch.from_numpy(x), *M.normalization(vit), torch.device("cpu"), False, M.input_size(vit))
    assert model_in.shape == (8, 3, 160, 160)
