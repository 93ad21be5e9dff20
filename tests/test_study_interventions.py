"""askshift.analyses.bias: DFR folded into a model, composed shifts, corrected examples, the
arms of Sec. 6 end to end on a tiny task."""
import numpy as np
import pandas as pd
import pytest
import torch

from askshift.methods import interventions as I
from askshift.nn import models as M
from askshift.nn import train as T
from askshift.study import interventions as bias
from askshift.data.store import Dataset
from tests.test_train import make_data

ARCH = "test_resnet"


def dataset(n=96, num_classes=4, seed=0, split="val"):
    x, y = make_data(n=n, num_classes=num_classes, seed=seed)
    g = 2 * y + (np.arange(n) % 3 == 0)  # a minority half-group per class
    meta = pd.DataFrame({"index": np.arange(n), "label": y, "class_name": y.astype(str), "group": g,
                         "split": split, "source": "test"})
    return Dataset(x, meta)


def test_dfr_is_folded_into_the_last_layer_only():
    model = M.create_model(ARCH, 4, seed=0)
    held = dataset()
    dfr, info = bias.apply_dfr(model, held, Cs=(1.0, 0.1), seed=0, device="cpu")
    assert info["fold_error"] < 1e-3          # folded logits == the logistic regression's
    assert info["sample_weight_sum"] == pytest.approx(len(held))  # weights N / (G n_g) sum to N
    assert info["C"] in (1.0, 0.1) and info["n_groups"] == 8
    # only the head changed; the original model is untouched
    head = {id(p) for p in M.head_parameters(dfr)}
    for (name, a), b in zip(dfr.named_parameters(), model.parameters()):
        if id(a) in head:
            assert not torch.equal(a, b), name
        else:
            assert torch.equal(a, b), name
    # the folded model predicts what the DFR head predicts on standardised features
    feats = T.extract_features(model, held.images, device="cpu")
    w = I.group_balanced_weights(held.groups)
    assert w.sum() == pytest.approx(len(held))
    h = I.fit_dfr(feats, held.labels, held.groups, C=info["C"], num_classes=4)
    np.testing.assert_array_equal(T.predict(dfr, held.images, device="cpu").argmax(1), h.predict(feats))


def test_compose_shift_and_minority_groups():
    ds = dataset(n=8)
    assert bias.compose_shift(ds, "none") is ds
    padded = bias.compose_shift(ds, "pad", pad_pixels=6, pad_value=255)
    assert padded.images.shape == ds.images.shape and (padded.images[:, 0, 0] > 200).all()
    pd.testing.assert_frame_equal(padded.meta, ds.meta)
    np.testing.assert_array_equal(bias.compose_shift(ds, "flip").images, ds.images[:, ::-1])
    with pytest.raises(ValueError, match="compose"):
        bias.compose_shift(ds, "rotate")
    assert I.minority_groups([0] * 5 + [1] * 2 + [2] * 5 + [3] * 2) == {1, 3}


def frame(models_correct: dict, labels):
    rows = []
    for name, correct in models_correct.items():
        correct = np.asarray(correct, bool)
        rows.append(pd.DataFrame({"model": name, "dataset": "d", "index": np.arange(len(labels)),
                                  "label": labels, "group": 2 * labels + (np.arange(len(labels)) < 4),
                                  "pred": np.where(correct, labels, (labels + 1) % 4)}))
    return pd.concat(rows, ignore_index=True)


def test_corrected_examples_and_overlap():
    labels = np.arange(10) % 4
    base = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    p = frame({"s0": base, "s1": base,
               "p0": [1, 1, 1, 0, 0, 1, 1, 1, 1, 1], "p1": [1, 1, 1, 0, 0, 1, 1, 1, 1, 1],   # fixes 0,1,2
               "d0": [0, 0, 1, 1, 0, 1, 1, 1, 1, 1], "d1": [0, 0, 1, 1, 0, 1, 1, 1, 1, 1]},  # fixes 2,3
              labels)
    arms = {"scratch": ["s0", "s1"], "pretrained": ["p0", "p1"], "scratch_dfr": ["d0", "d1"]}
    counts, pairs = I.corrected_analysis(p, arms, "d", baseline="scratch", minority={1, 3})
    c = counts.set_index("arm")
    assert c.loc["pretrained", "n_corrected"] == 3 and c.loc["scratch_dfr", "n_corrected"] == 2
    assert c.loc["pretrained", "n_baseline_usually_wrong"] == 5
    assert c.loc["pretrained", "fraction_of_baseline_errors"] == pytest.approx(0.6)
    o = pairs.iloc[0]
    # the universe is the 5 examples scratch usually gets wrong, not all 10: every corrected
    # example is one of them, so chance overlap is 3 * 2 / 5 (all 10 would halve it)
    assert (o.arm_a, o.arm_b, o.n_both, o.n_either, o.n_total) == ("pretrained", "scratch_dfr", 1, 4, 5)
    assert o.expected_both == pytest.approx(3 * 2 / 5)


def test_overlap_chance_level_within_the_baseline_errors():
    """Two interventions that each correct a random half of the baseline's errors, independently:
    their overlap is at chance within the universe of baseline errors (p-values not small), while
    the full test set as the universe would call it far above chance."""
    rng = np.random.default_rng(0)
    n, wrong = 4000, 400
    labels = rng.integers(0, 4, n)
    base = np.ones(n, bool)
    base[:wrong] = False
    fix_a, fix_b = base.copy(), base.copy()
    fix_a[:wrong] = rng.random(wrong) < 0.5
    fix_b[:wrong] = rng.random(wrong) < 0.5
    p = frame({"s0": base, "a0": fix_a, "b0": fix_b}, labels)
    _, pairs = I.corrected_analysis(p, {"scratch": ["s0"], "a": ["a0"], "b": ["b0"]}, "d", baseline="scratch")
    o = pairs.iloc[0]
    assert o.n_total == wrong and 0.7 < o.ratio_to_chance < 1.3
    assert o.p_value_greater > 0.05 and o.p_value_less > 0.05
    naive = I.overlap(np.asarray(~fix_a & False) | (fix_a & ~base), (fix_b & ~base))  # universe: all n
    assert naive.ratio_to_chance > 5


def test_analyse_reports_every_arm_and_the_overlap():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 400)
    models, info = {}, []
    for i, acc in enumerate([0.5, 0.6, 0.7, 0.8, 0.9]):  # baselines: shift acc follows ref acc
        models[f"b{i}"] = (rng.random(400) < acc, rng.random(400) < acc - 0.1)
        info.append({"model": f"b{i}", "arm": "baseline", "trial": i})
    for arm, (ra, sa) in {"scratch": (0.9, 0.8), "scratch_dfr": (0.88, 0.85), "pretrained": (0.9, 0.82),
                          "pretrained_dfr": (0.9, 0.9)}.items():
        for t in range(2):
            models[f"{arm}{t}"] = (rng.random(400) < ra, rng.random(400) < sa)
            info.append({"model": f"{arm}{t}", "arm": arm, "trial": t})
    rows = []
    for name, (cr, cs) in models.items():
        for ds, correct in (("ref", cr), ("shift", cs)):
            rows.append(pd.DataFrame({"model": name, "dataset": ds, "index": np.arange(400), "label": labels,
                                      "group": 2 * labels + (np.arange(400) % 2),
                                      "pred": np.where(correct, labels, (labels + 1) % 4)}))
    er, counts, pairs, metrics = bias.analyse(pd.concat(rows), pd.DataFrame(info), "ref", {"s": "shift"},
                                              minority={1, 3, 5, 7})
    assert set(er["arm"]) == {"scratch", "scratch_dfr", "pretrained", "pretrained_dfr"}
    assert {"er", "er_low", "er_high", "wga_er", "shift_wga", "shift_wga_low", "er_trials_mean"} <= set(er)
    e = er.set_index("arm")["er"]
    assert e["pretrained_dfr"] > e["scratch"]
    m = metrics["corrected"]["s"]
    assert m["pretrained"] == counts.set_index("arm").loc["pretrained", "n_corrected"]
    assert metrics["arms"]["s"]["n_baseline"] == 5 and "pretrained_dfr" in metrics["arms"]["s"]
    assert len(pairs) == 3  # pairs among the three interventions
    gain = metrics["arms"]["s"]["combination_gain"]
    assert gain["over"] in ("scratch", "scratch_dfr", "pretrained") and gain["low"] <= gain["er_difference"]
    rows = bias.claims(metrics["arms"], "s", "s")
    assert [r["rule"] for r in rows] == ["positive"] * 3
    assert rows[2]["er"] == gain["er_difference"] and rows[0]["n_baseline"] == 5
    assert bias.claims(metrics["arms"], "s", None)[0]["what"].startswith("scratch_dfr")


def test_run_arms_tiny(tmp_path):
    pre = M.create_model(ARCH, 3, seed=1)
    M.save_model(pre, tmp_path / "pre.pt")
    train_set, held = dataset(n=64, split="train"), dataset(n=48, seed=1)

    configs = {(kind, 0): T.TrainConfig(epochs=1, batch_size=32, lr=0.05, progress=False, device="cpu", seed=1)
               for kind in ("scratch", "pretrained")}
    trained, info, preds, dinfo = bias.run_arms(
        train_set, held, {"ref": held}, trials=1, reweight=True, configs=configs, arch=ARCH, arch_kwargs={},
        num_classes=4, pretrained=str(tmp_path / "pre.pt"), dfr_kwargs={"Cs": (1.0,)}, device="cpu", prefix="v/")
    assert list(info["arm"]) == ["scratch", "scratch_dfr", "scratch_rw", "pretrained", "pretrained_dfr",
                                 "pretrained_rw"]
    assert set(trained) == set(info["model"]) == set(preds["model"])
    assert set(dinfo) == {"v/scratch_dfr-t0", "v/pretrained_dfr-t0"}
    assert all(d["fold_error"] < 1e-3 for d in dinfo.values())
    # an arm and its re-weighted twin share the trial's seed (paired) but differ
    assert info.groupby("kind")["seed"].nunique().eq(1).all()
    a, b = trained["v/scratch-t0"], trained["v/scratch_rw-t0"]
    assert any(not torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
