"""askshift.nn.strategies: LP changes only the head, LP-FT starts FT from the LP head, FT trains
everything; the registry refuses unknown names."""
from __future__ import annotations

import pytest
import torch

from askshift.nn import models as M
from askshift.nn import strategies as S
from askshift.nn import train as T
from tests.test_models import ARCH, LP_CFG, cfg, make_data, non_head_state


def test_registry_matches_the_declared_steps():
    from askshift.nn.config import STRATEGY_STEPS

    assert list(S.STRATEGIES) == list(STRATEGY_STEPS)
    assert S.STRATEGIES["lpft"].probe and S.STRATEGIES["lpft"].tune and not S.STRATEGIES["lp"].tune


def test_linear_probe_changes_only_the_head():
    m = M.create_model(ARCH, 4, seed=0)
    T.fit(m, make_data(n=64), None, cfg(epochs=1))       # a "pre-trained" backbone
    m.reset_classifier(4)
    before_back = non_head_state(m)
    before_head = M.get_head(m)
    x, y = make_data(n=128, seed=1)
    hist = S.linear_probe(m, (x, y), make_data(n=64, seed=2), LP_CFG, device="cpu")
    assert len(hist) == LP_CFG.epochs and "val_acc" in hist[-1]
    for k, v in non_head_state(m).items():
        assert torch.equal(v, before_back[k]), k
    assert not torch.equal(M.get_head(m)[0], before_head[0])
    acc = (T.predict(m, x).argmax(1) == y).mean()
    assert acc == pytest.approx(hist[-1]["train_acc"], abs=0.05)


def test_lpft_starts_ft_from_the_lp_head(monkeypatch):
    data = make_data(n=128, seed=1)
    lp_only = M.create_model(ARCH, 4, seed=0)
    S.finetune(lp_only, data, None, "lp", cfg(), LP_CFG)
    lp_head = M.get_head(lp_only)

    seen = {}
    real_fit = T.fit

    def spy(model, *a, **k):
        seen["head"] = M.get_head(model)
        return real_fit(model, *a, **k)

    monkeypatch.setattr(T, "fit", spy)
    m = M.create_model(ARCH, 4, seed=0)
    out = S.finetune(m, data, None, "lpft", cfg(epochs=1), LP_CFG)
    assert len(out["lp"]) == LP_CFG.epochs and len(out["ft"]) == 1
    assert torch.equal(seen["head"][0], lp_head[0]) and torch.equal(seen["head"][1], lp_head[1])
    assert not torch.equal(M.get_head(m)[0], lp_head[0])      # FT then moved it


def test_ft_trains_everything_and_strategy_is_validated():
    m = M.create_model(ARCH, 4, seed=0)
    before = non_head_state(m)
    out = S.finetune(m, make_data(n=64), None, "ft", cfg(epochs=1))
    assert out["lp"] == [] and len(out["ft"]) == 1
    assert not torch.equal(non_head_state(m)["conv1.0.weight"], before["conv1.0.weight"])
    with pytest.raises(ValueError, match="strategy"):
        S.finetune(m, make_data(n=64), None, "zero-shot", cfg())
