"""askshift.analyses.common: accuracy points, ER of repeated arms, trial intervals."""
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from askshift import io
from askshift.methods import er_tables as common
from askshift.methods.metrics import accuracy_points


def preds(model, dataset, labels, groups, correct):
    labels = np.asarray(labels)
    return pd.DataFrame({"model": model, "dataset": dataset, "index": np.arange(len(labels)), "label": labels,
                         "group": groups, "pred": np.where(correct, labels, (labels + 1) % 10)})


def test_accuracy_points_and_pair_frame():
    y = np.arange(20) % 2
    g = np.r_[np.zeros(10, int), np.ones(10, int)]
    correct = np.r_[np.ones(10, bool), np.ones(5, bool), np.zeros(5, bool)]   # group 1: 50%
    p = pd.concat([preds("m", "ref", y, g, np.ones(20, bool)), preds("m", "shift", y, g, correct),
                   preds("only_ref", "ref", y, g, np.ones(20, bool))])
    pts = accuracy_points(p)
    row = pts[(pts.model == "m") & (pts.dataset == "shift")].iloc[0]
    assert row.accuracy == 0.75 and row.worst_group_accuracy == 0.5 and row.n == 20
    info = pd.DataFrame({"model": ["m", "only_ref"], "arm": ["a", "b"], "trial": [0, 0]})
    pairs = common.pair_frame(pts, info, "ref", "shift")
    assert list(pairs["model"]) == ["m"]  # models without both datasets are dropped
    assert pairs.iloc[0][["ref_acc", "shift_acc", "shift_wga"]].tolist() == [1.0, 0.75, 0.5]


def test_trial_interval():
    m, lo, hi = common.trial_interval([1.0, 2.0, 3.0])
    half = stats.t(2).ppf(0.975) * 1.0 / np.sqrt(3)
    assert (m, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert np.isnan(common.trial_interval([1.0])[1])
    assert np.isnan(common.trial_interval([])[0])


def line_pairs():
    """Baselines exactly on probit(shift) = probit(ref) - 0.5; arm `on` on the line, arm `up`
    5 points above it in every trial."""
    ref = np.array([0.6, 0.7, 0.8, 0.9, 0.95])
    shift = stats.norm.cdf(stats.norm.ppf(ref) - 0.5)
    rows = [{"model": f"b{i}", "arm": "baseline", "trial": i, "ref_acc": r, "shift_acc": s, "shift_wga": s / 2}
            for i, (r, s) in enumerate(zip(ref, shift))]
    for t, r in enumerate([0.85, 0.88, 0.9]):
        s = stats.norm.cdf(stats.norm.ppf(r) - 0.5)
        rows.append({"model": f"on{t}", "arm": "on", "trial": t, "ref_acc": r, "shift_acc": s, "shift_wga": s / 2})
        rows.append({"model": f"up{t}", "arm": "up", "trial": t, "ref_acc": r, "shift_acc": s + 0.05,
                     "shift_wga": s / 2})
    return pd.DataFrame(rows)


def test_arm_er_on_and_above_the_line():
    er = common.arm_er(line_pairs()).set_index("arm")
    assert set(er.index) == {"on", "up"}
    assert er.loc["on", "r2"] == pytest.approx(1.0) and er.loc["on", "n_baseline"] == 5
    # trials averaged first: the mean of points on a curved line is slightly off it
    assert abs(er.loc["on", "er"]) < 2e-3 and er.loc["on", "er_trials_mean"] == pytest.approx(0, abs=1e-9)
    assert er.loc["up", "er_trials_mean"] == pytest.approx(0.05, abs=1e-9)
    assert er.loc["up", "er"] == pytest.approx(0.05, abs=2e-3)
    assert er.loc["up", "er_low"] <= er.loc["up", "er"] <= er.loc["up", "er_high"]
    assert er.loc["up", "n_trials"] == 3
    wga = common.arm_er(line_pairs(), y="shift_wga").set_index("arm")
    assert wga.loc["up", "er_trials_mean"] == pytest.approx(wga.loc["on", "er_trials_mean"])


def test_arm_summary_and_correctness_matrix():
    s = common.arm_summary(line_pairs()).set_index("arm")
    assert s.loc["up", "n_trials"] == 3 and s.loc["up", "ref_acc_low"] < s.loc["up", "ref_acc"]
    y = np.arange(6) % 2
    p = pd.concat([preds("a", "d", y, y, [1, 1, 0, 0, 1, 1]), preds("b", "d", y, y, [0, 1, 0, 1, 0, 1])])
    m, idx = common.correctness_matrix(p, ["b", "a"], "d")
    np.testing.assert_array_equal(m, [[0, 1, 0, 1, 0, 1], [1, 1, 0, 0, 1, 1]])
    np.testing.assert_array_equal(idx, np.arange(6))
    with pytest.raises(ValueError, match="incomplete"):
        common.correctness_matrix(p, ["a", "c"], "d")


def test_json_clean():
    doc = io.json_clean({"a": np.float64(np.nan), "b": [np.int64(3), np.bool_(True)], "c": {1: np.inf}})
    assert json.loads(json.dumps(doc, allow_nan=False)) == {"a": None, "b": [3, True], "c": {"1": None}}
