"""askshift.train.fit(sample_weight=...): per-example loss weights for group-balanced
re-weighting; backwards compatible (no weights = the old loss)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from askshift.nn import models as M
from askshift.nn import train as T
from askshift.methods.interventions import group_balanced_weights
from tests.test_train import assert_same_state, cfg, make_data, make_model


def test_unit_weights_change_nothing():
    data = make_data(n=96)
    a, b = make_model(), make_model()
    ha = T.fit(a, data, None, cfg(epochs=2))
    hb = T.fit(b, data, None, cfg(epochs=2), sample_weight=np.ones(96))
    assert_same_state(a, b)
    assert [r["train_loss"] for r in ha] == pytest.approx([r["train_loss"] for r in hb], rel=1e-6)


def test_one_step_equals_the_weighted_loss_gradient():
    """Full batch, plain SGD, one step: the update is -lr * grad of mean_i(w_i * loss_i)."""
    x, y = make_data(n=48)
    w = np.random.default_rng(0).uniform(0, 3, 48)
    c = cfg(epochs=1, batch_size=48, lr=0.1, momentum=0.0, weight_decay=0.0, schedule="constant")
    fitted, manual = make_model(), make_model()
    T.fit(fitted, (x, y), None, c, sample_weight=w)

    manual.train()
    mean, std = M.normalization(manual)
    logits = manual(M.to_input(torch.from_numpy(x), mean, std).contiguous(memory_format=torch.channels_last))
    loss = (F.cross_entropy(logits, torch.from_numpy(y), reduction="none")
            * torch.as_tensor(w, dtype=torch.float32)).mean()
    loss.backward()
    with torch.no_grad():
        for p in manual.parameters():
            p -= 0.1 * p.grad
    for (k, a), b in zip(fitted.state_dict().items(), manual.state_dict().values()):
        if a.is_floating_point():
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)


def test_zero_weight_examples_do_not_train():
    """Examples with weight 0 have no influence: flipping their labels changes nothing."""
    x, y = make_data(n=64)
    w = np.r_[np.ones(32), np.zeros(32)]
    y_flipped = y.copy()
    y_flipped[32:] = (y[32:] + 1) % 4
    a, b = make_model(), make_model()
    T.fit(a, (x, y), None, cfg(epochs=2), sample_weight=w)
    T.fit(b, (x, y_flipped), None, cfg(epochs=2), sample_weight=w)
    for (k, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        if pa.is_floating_point():
            torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6, msg=k)


def test_group_balanced_weights_reach_the_loss():
    x, y = make_data(n=64)
    groups = (np.arange(64) < 48).astype(int)  # 48 vs 16
    w = group_balanced_weights(groups)
    assert w.sum() == pytest.approx(64) and w[groups == 1].sum() == pytest.approx(32)
    a, b = make_model(), make_model()
    T.fit(a, (x, y), None, cfg(epochs=1))
    T.fit(b, (x, y), None, cfg(epochs=1), sample_weight=w)
    assert any(not torch.equal(pa, pb) for pa, pb in zip(a.parameters(), b.parameters()))


def test_weights_are_part_of_the_checkpoint_identity(tmp_path):
    data = make_data(n=64)
    w = np.linspace(0.5, 1.5, 64)
    T.fit(make_model(), data, None, cfg(epochs=1), ckpt_dir=tmp_path, sample_weight=w)
    again = make_model(seed=3)
    T.fit(again, data, None, cfg(epochs=1), ckpt_dir=tmp_path, sample_weight=w)  # finished: restored
    with pytest.raises(ValueError, match="other data"):
        T.fit(make_model(), data, None, cfg(epochs=1), ckpt_dir=tmp_path, sample_weight=w[::-1].copy())
    with pytest.raises(ValueError, match="other data"):
        T.fit(make_model(), data, None, cfg(epochs=1), ckpt_dir=tmp_path)


@pytest.mark.parametrize("bad,match", [(np.ones(5), r"shape \(64,\)"), (-np.ones(64), ">= 0"),
                                       (np.zeros(64), "not all zero"), (np.full(64, np.nan), "finite")])
def test_bad_weights(bad, match):
    with pytest.raises(ValueError, match=match):
        T.fit(make_model(), make_data(n=64), None, cfg(epochs=1), sample_weight=bad)
