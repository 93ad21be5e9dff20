"""askshift.train: determinism, exact resume, schedules, wiring of the loss / clipping, DVCLive."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from askshift.nn import models as M
from askshift.nn import train as T

ARCH = "test_resnet"


def make_data(n=192, num_classes=4, seed=0, size=16):
    """Separable synthetic task: the class decides which colour channel is bright."""
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


def make_model(num_classes=4, seed=0, **kw):
    return M.create_model(ARCH, num_classes, seed=seed, **kw)


def cfg(**kw):
    base = dict(epochs=3, batch_size=64, lr=0.05, progress=False, device="cpu", seed=0,
                num_threads=1)
    base.update(kw)
    return T.TrainConfig(**base)


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ---------------------------------------------------------------------------------- determinism
def test_two_runs_same_seed_identical_weights():
    data = make_data()
    c = cfg(random_crop=2, random_flip=True)
    m1, m2 = make_model(drop_rate=0.3), make_model(drop_rate=0.3)
    h1 = T.fit(m1, data, None, c)
    h2 = T.fit(m2, data, None, c)
    assert_same_state(m1, m2)
    assert [r["train_loss"] for r in h1] == [r["train_loss"] for r in h2]
    m3 = make_model(drop_rate=0.3)
    T.fit(m3, data, None, cfg(random_crop=2, random_flip=True, seed=1))
    assert not torch.equal(m1.state_dict()["conv1.0.weight"], m3.state_dict()["conv1.0.weight"])


def test_deterministic_with_two_threads():
    # kept tiny: two OpenMP threads stall badly when other processes load the cores
    data = make_data(n=64)
    c = cfg(epochs=1, batch_size=32, num_threads=2)
    m1, m2 = make_model(), make_model()
    T.fit(m1, data, None, c)
    T.fit(m2, data, None, c)
    assert_same_state(m1, m2)


def test_fit_restores_global_settings():
    before = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
    T.fit(make_model(), make_data(n=64), None, cfg(epochs=1, num_threads=1))
    assert (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()) == before


# ---------------------------------------------------------------------------------- resume
@pytest.mark.parametrize("how", ["crash", "stop"])
def test_resume_equals_uninterrupted(tmp_path, how):
    data, val = make_data(), make_data(n=64, seed=1)
    c = cfg(epochs=4, schedule="triangular", peak_epoch=1.5, random_crop=2, random_flip=True,
            label_smoothing=0.1, grad_clip=5.0)
    ref = make_model(drop_rate=0.3)
    h_ref = T.fit(ref, data, val, c, ckpt_dir=tmp_path / "ref")

    def interrupt(epoch, rec):
        if epoch == 2:
            if how == "crash":
                raise KeyboardInterrupt("simulated kill")
            raise T.StopTraining

    m = make_model(drop_rate=0.3)
    if how == "crash":
        with pytest.raises(KeyboardInterrupt):
            T.fit(m, data, val, c, ckpt_dir=tmp_path / "run", on_epoch_end=interrupt)
    else:
        h_part = T.fit(m, data, val, c, ckpt_dir=tmp_path / "run", on_epoch_end=interrupt)
        assert len(h_part) == 2
    # a fresh process would rebuild the model with another init: the checkpoint must win
    resumed = make_model(seed=123, drop_rate=0.3)
    h = T.fit(resumed, data, val, c, ckpt_dir=tmp_path / "run")
    assert_same_state(ref, resumed)
    assert [r["train_loss"] for r in h] == [r["train_loss"] for r in h_ref]
    assert [r["lr"] for r in h] == [r["lr"] for r in h_ref]


def test_resume_refuses_other_schedule_or_data(tmp_path):
    data = make_data(n=64)
    T.fit(make_model(), data, None, cfg(epochs=2), ckpt_dir=tmp_path)
    with pytest.raises(ValueError, match="epochs"):   # the schedule is defined by cfg.epochs
        T.fit(make_model(), data, None, cfg(epochs=4), ckpt_dir=tmp_path)
    with pytest.raises(ValueError, match="other data"):
        T.fit(make_model(), make_data(n=64, seed=5), None, cfg(epochs=2), ckpt_dir=tmp_path)


def test_finished_checkpoint_returns_at_once_and_snapshots(tmp_path):
    data = make_data(n=64)
    m = make_model()
    init = {k: v.clone() for k, v in m.state_dict().items()}
    h = T.fit(m, data, None, cfg(epochs=3), ckpt_dir=tmp_path, save_epochs=(0, 2))
    assert T.checkpoint_path(tmp_path).exists()
    assert h[1]["snapshot"] == str(T.snapshot_path(tmp_path, 2))
    snap0 = M.load_model(T.snapshot_path(tmp_path, 0))
    for k, v in snap0.state_dict().items():
        assert torch.equal(v, init[k]), k
    assert M.load_model(T.snapshot_path(tmp_path, 2)).num_classes == 4
    again = make_model(seed=7)
    h2 = T.fit(again, data, None, cfg(epochs=3), ckpt_dir=tmp_path, save_epochs=(0, 2))
    assert h2 == h
    assert_same_state(m, again)
    with pytest.raises(ValueError, match="ckpt_dir"):
        T.fit(make_model(), data, None, cfg(epochs=1), save_epochs=(1,))


# ---------------------------------------------------------------------------------- schedules
def test_cosine_with_warmup_endpoints():
    c = cfg(epochs=10, schedule="cosine", warmup_epochs=2, min_lr_ratio=0.0)
    spe = 5
    w, total = 10, 50
    assert T.lr_factor(0, c, spe) == pytest.approx(1 / w)
    assert T.lr_factor(w - 1, c, spe) == pytest.approx(1.0)
    assert T.lr_factor(w, c, spe) == pytest.approx(1.0)
    mid = w + (total - w) // 2
    assert T.lr_factor(mid, c, spe) == pytest.approx(0.5)
    assert T.lr_factor(total, c, spe) == pytest.approx(0.0, abs=1e-12)
    assert 0 < T.lr_factor(total - 1, c, spe) < 0.01
    c2 = cfg(epochs=10, warmup_steps=3, min_lr_ratio=0.1)
    assert T.lr_factor(2, c2, spe) == pytest.approx(1.0)
    assert T.lr_factor(total, c2, spe) == pytest.approx(0.1)
    vals = [T.lr_factor(s, c, spe) for s in range(w, total + 1)]
    assert all(a >= b for a, b in zip(vals, vals[1:]))


def test_triangular_and_constant():
    c = cfg(epochs=10, schedule="triangular", peak_epoch=2)
    spe = 4
    assert T.lr_factor(0, c, spe) == pytest.approx(1e-4)
    assert T.lr_factor(8, c, spe) == pytest.approx(1.0)
    assert T.lr_factor(4, c, spe) == pytest.approx((1 + 1e-4) / 2)
    assert T.lr_factor(24, c, spe) == pytest.approx(0.5)
    assert T.lr_factor(40, c, spe) == pytest.approx(0.0)
    assert max(T.lr_factor(s, c, spe) for s in range(41)) == pytest.approx(1.0)
    k = cfg(schedule="constant", warmup_steps=2)
    assert [T.lr_factor(s, k, 3) for s in range(4)] == [0.5, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="peak_epoch"):
        cfg(epochs=2, schedule="triangular", peak_epoch=2)


def test_scheduler_drives_optimizer_lr():
    c = cfg(epochs=2, lr=0.4, schedule="triangular", peak_epoch=1)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=c.lr)
    sched = T.make_scheduler(opt, c, spe=3)
    seen = []
    for _ in range(6):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.4 * T.lr_factor(s, c, 3) for s in range(6)])
    assert seen[3] == pytest.approx(0.4)


def test_history_lr_follows_schedule():
    n, bs = 64, 32
    c = cfg(epochs=3, batch_size=bs, lr=0.1, schedule="cosine", warmup_epochs=1)
    h = T.fit(make_model(), make_data(n=n), None, c)
    spe = T.steps_per_epoch(n, bs)
    for r in h:   # the lr of the last step of each epoch
        assert r["lr"] == pytest.approx(0.1 * T.lr_factor(r["epoch"] * spe - 1, c, spe))


# ---------------------------------------------------------------------------------- wiring
def test_label_smoothing_is_used():
    x, y = make_data(n=64)
    m = make_model()
    c = cfg(epochs=1, batch_size=64, lr=0.0, label_smoothing=0.3, schedule="constant")
    ref = make_model()
    ref.train()
    with torch.no_grad():
        logits = ref(M.to_input(torch.from_numpy(x), *M.normalization(ref)).contiguous())
    h = T.fit(m, (x, y), None, c)
    want = F.cross_entropy(logits, torch.from_numpy(y), label_smoothing=0.3).item()
    plain = F.cross_entropy(logits, torch.from_numpy(y)).item()
    assert h[0]["train_loss"] == pytest.approx(want, rel=1e-4)
    assert abs(want - plain) > 1e-3


def test_grad_clip_caps_the_update():
    data = make_data(n=64)
    base = dict(epochs=1, batch_size=64, lr=1.0, momentum=0.0, weight_decay=0.0,
                schedule="constant")

    def update_norm(**kw):
        m = make_model()
        before = [p.detach().clone() for p in m.parameters()]
        T.fit(m, data, None, cfg(**base, **kw))
        return math.sqrt(sum(float((p.detach() - b).pow(2).sum())
                             for p, b in zip(m.parameters(), before)))

    clip = 1e-3
    assert update_norm() > 10 * clip
    assert 0.5 * clip < update_norm(grad_clip=clip) <= clip * (1 + 1e-4)


def test_learns_a_separable_task():
    m = make_model()
    h = T.fit(m, make_data(n=256), make_data(n=128, seed=1),
              cfg(epochs=4, lr=0.05, schedule="cosine", warmup_epochs=0.5))
    assert h[-1]["val_acc"] > 0.9
    x, y = make_data(n=128, seed=2)
    logits = T.predict(m, x, batch_size=50)
    assert logits.dtype == np.float32 and logits.shape == (128, 4)
    assert (logits.argmax(1) == y).mean() > 0.9


def test_predict_and_features_eval_mode_no_side_effects():
    m = make_model()
    m.train()
    x, _ = make_data(n=10)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    f = T.extract_features(m, x, batch_size=4)
    assert f.shape == (10, m.num_features) and f.dtype == np.float32
    p1, p2 = T.predict(m, x, batch_size=3), T.predict(m, x, batch_size=10)
    np.testing.assert_allclose(p1, p2, rtol=1e-5, atol=1e-5)
    assert m.training
    for k, v in m.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_select_device_and_config_validation():
    assert T.select_device("cpu").type == "cpu"
    assert T.select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="cuda"):
            T.select_device("cuda")
    assert T.amp_dtype("auto", torch.device("cpu")) is None
    with pytest.raises(ValueError, match="device"):
        T.select_device("tpu")
    with pytest.raises(ValueError, match=r"schedule=.*cosine"):
        T.TrainConfig(schedule="cosin")
    with pytest.raises(ValueError, match="unknown key"):
        T.TrainConfig.from_dict({"epochs": 2, "lrr": 0.1})
    assert T.TrainConfig.from_dict(T.TrainConfig(lr=0.3).to_dict()).lr == 0.3
    with pytest.raises(ValueError, match="uint8"):
        T.fit(make_model(), (np.zeros((4, 32, 32, 3), np.float32), np.zeros(4)), None, cfg())


def test_batches_never_tiny():
    # 130 images with batch 128: two batches of 65, not 128 + 2
    idx = torch.tensor_split(torch.arange(130), T.steps_per_epoch(130, 128))
    assert [len(i) for i in idx] == [65, 65]


def test_augment_shapes_and_flip():
    x = torch.randint(0, 256, (8, 6, 6, 3), dtype=torch.uint8)
    u = T.example_uniforms(0, 1, np.arange(8))
    assert T.augment(x, 2, True, u).shape == x.shape
    assert torch.equal(T.augment(x, 0, False, u), x)
    out = T.augment(x, 0, True, u)
    flipped = [not torch.equal(a, b) for a, b in zip(out, x)]
    for a, b in zip(out, x):
        assert torch.equal(a, b) or torch.equal(a, b.flip(1))
    assert flipped == list(u[:, 2] < 0.5)


def test_augment_crop_is_a_shifted_window_of_the_padded_image():
    x = torch.arange(4 * 4 * 3, dtype=torch.uint8).reshape(1, 4, 4, 3)
    u = np.array([[0.0, 0.999, 0.9]])          # top row of the padding, rightmost column offset
    out = T.augment(x, 1, False, u)[0]
    padded = torch.zeros(6, 6, 3, dtype=torch.uint8)
    padded[1:5, 1:5] = x[0]
    assert torch.equal(out, padded[0:4, 2:6])
    with pytest.raises(ValueError, match="shape"):
        T.augment(x, 1, False, np.zeros((2, 3)))


def test_example_uniforms_depend_only_on_seed_epoch_and_index():
    u = T.example_uniforms(3, 2, np.arange(1000))
    assert u.shape == (1000, 3) and (u >= 0).all() and (u < 1).all()
    # one example's numbers do not depend on the batch it comes in
    assert np.array_equal(T.example_uniforms(3, 2, [7, 500])[1], u[500])
    assert np.array_equal(T.example_uniforms(3, 2, [500, 7])[0], u[500])
    # another epoch, seed or index gives other numbers, roughly uniform
    assert not np.array_equal(T.example_uniforms(3, 3, [500]), u[[500]])
    assert not np.array_equal(T.example_uniforms(4, 2, [500]), u[[500]])
    assert abs(u.mean() - 0.5) < 0.03 and abs((u[:, 2] < 0.5).mean() - 0.5) < 0.06
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 0.1
    with pytest.raises(ValueError, match=">= 0"):
        T.example_uniforms(0, 1, [-1])


def test_each_example_gets_its_augmentation_whatever_the_batch_size():
    # the inputs the model sees in one epoch, in the permutation's order: one batch of 64 and
    # two batches of 32 hold the same augmented images (a stream shared by the batch would not)
    data = make_data(n=64)

    def epoch_inputs(batch_size, crop=2, flip=True):
        seen = []
        m = make_model()
        m.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone())
                                    if mod.training else None)
        T.fit(m, data, None, cfg(epochs=1, batch_size=batch_size, random_crop=crop, random_flip=flip))
        return torch.cat(seen)

    one, two = epoch_inputs(64), epoch_inputs(32)
    assert torch.equal(one, two)
    assert not torch.equal(one, epoch_inputs(64, 0, False))   # the augmentation did act


def test_linear_probe_refuses_augmentation():
    from askshift.nn import strategies as S
    with pytest.raises(ValueError, match="cannot augment"):
        S.fit_linear(torch.zeros(4, 3), torch.tensor([0, 1, 0, 1]), 2, cfg(random_flip=True))


def test_dvclive_logging(tmp_path):
    dvclive = pytest.importorskip("dvclive")
    with dvclive.Live(str(tmp_path / "live"), dvcyaml=False, save_dvc_exp=False) as live:
        T.fit(make_model(), make_data(n=64), make_data(n=32, seed=1), cfg(epochs=2), live=live)
    tsv = tmp_path / "live" / "plots" / "metrics" / "val" / "acc.tsv"
    rows = tsv.read_text().strip().splitlines()
    assert len(rows) == 3 and rows[0].startswith("step")
    assert (tmp_path / "live" / "plots" / "metrics" / "train" / "loss.tsv").exists()


def test_dvclive_logs_recorded_epochs_and_replays_them_on_resume(tmp_path):
    """eval_every=2 over 5 epochs: epochs 2, 4 and 5 are logged; a run stopped after epoch 3
    and resumed (a fresh Live, as a re-run stage gets) logs the same three points."""
    dvclive = pytest.importorskip("dvclive")

    def steps(folder):
        rows = (folder / "plots" / "metrics" / "train" / "loss.tsv").read_text().strip().splitlines()[1:]
        return [r.split("\t")[1] for r in rows]

    c = cfg(epochs=5, eval_every=2)
    with dvclive.Live(str(tmp_path / "a"), dvcyaml=False, save_dvc_exp=False) as live:
        T.fit(make_model(), make_data(n=64), make_data(n=32, seed=1), c, live=live)
    assert len(steps(tmp_path / "a")) == 3

    def stop_after_3(epoch, rec):
        if epoch == 3:
            raise T.StopTraining

    with dvclive.Live(str(tmp_path / "b"), dvcyaml=False, save_dvc_exp=False) as live:
        T.fit(make_model(), make_data(n=64), make_data(n=32, seed=1), c, ckpt_dir=tmp_path / "ck", live=live,
              on_epoch_end=stop_after_3)
    with dvclive.Live(str(tmp_path / "b"), dvcyaml=False, save_dvc_exp=False) as live:
        T.fit(make_model(), make_data(n=64), make_data(n=32, seed=1), c, ckpt_dir=tmp_path / "ck", live=live)
    assert steps(tmp_path / "b") == steps(tmp_path / "a")
