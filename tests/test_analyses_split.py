"""askshift.analyses.split: the splitter on synthetic 2-D data with a known support, part
weights (incl. the difficulty-matched control), and ER per part."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from askshift import splitting as S
from askshift.analyses import split as SP


def known_support(seed=0, n=800):
    """Reference ~ N(0, I_2). Shifted: half from the reference (in-support), half from a blob at
    (6, 6) where the reference has (almost) no mass (out-of-support)."""
    rng = np.random.default_rng(seed)
    ref = rng.standard_normal((n, 2))
    shift = np.vstack([rng.standard_normal((n // 2, 2)), rng.standard_normal((n // 2, 2)) * 0.5 + 6])
    return ref, shift, np.r_[np.zeros(n // 2, bool), np.ones(n // 2, bool)]


def test_split_shift_recovers_the_known_support():
    ref, shift, true_out = known_support()
    res, oos = SP.split_shift(ref, shift, k=5, C=1.0, seed=0, epsilon=0.2)
    s = S.membership_scores(res.ratio_shift, true_out, epsilon=0.2)
    assert s.auroc > 0.99 and s.precision > 0.97 and s.recall > 0.95
    np.testing.assert_array_equal(oos, res.ratio_shift < 0.2)
    assert res.k == 5 and np.isfinite(res.temperature)
    # in-support shifted points: p_ref / p_shift = 1 / 0.5 = 2
    assert 1.2 < np.median(res.ratio_shift[~true_out]) < 3.5


def test_part_weights():
    # 4 baselines: an example's difficulty (mean baseline correctness) is k/4
    n_correct_in = np.array([1, 2, 3, 4] * 5)           # in-support: easy and hard
    n_correct_out = np.array([1, 2, 1, 2, 1])            # out-of-support: hard
    k = np.r_[n_correct_in, n_correct_out]
    base = np.arange(4)[:, None] < k[None, :]
    oos = np.r_[np.zeros(20, bool), np.ones(5, bool)]
    parts = SP.part_weights(oos, base, true_out=~oos)
    assert set(parts) == {"all", "in", "out", "in_matched", "true_in", "true_out"}
    np.testing.assert_array_equal(parts["out"], oos.astype(float))
    w = parts["in_matched"]
    assert w[oos].sum() == 0 and w.sum() == pytest.approx(1.0)
    # matched: the re-weighted in-support part is as hard as the out-of-support part
    diff = base.mean(axis=0)
    assert np.average(diff[~oos], weights=w[~oos]) == pytest.approx(diff[oos].mean())
    assert np.average(diff[~oos], weights=w[~oos]) < diff[~oos].mean()
    assert "in_matched" not in SP.part_weights(np.zeros(25, bool), base)


def test_part_points_and_er_per_part():
    """Baselines on one line for every part; the pre-trained models are ~on the line in-support
    and 10 points above it out-of-support -> ER(out) > ER(in) ~ 0."""
    rng = np.random.default_rng(0)
    n_in, n_out = 600, 400
    oos = np.r_[np.zeros(n_in, bool), np.ones(n_out, bool)]
    rows, correct = [], []
    specs = [(f"b{i}", "baseline", "scratch", 0, a) for i, a in enumerate([0.6, 0.7, 0.8, 0.85, 0.9])]
    specs += [(f"p{c}", "pretrained", "ft", c, 0.88) for c in range(2)]
    for name, role, strategy, copy, ref in specs:
        p_in = stats.norm.cdf(stats.norm.ppf(ref) - 0.3)
        p_out = stats.norm.cdf(stats.norm.ppf(ref) - 1.0) + (0.1 if role == "pretrained" else 0.0)
        correct.append(np.r_[rng.random(n_in) < p_in, rng.random(n_out) < p_out])
        rows.append({"model": name, "variant": "plain", "role": role, "strategy": strategy, "copy": copy,
                     "ref_acc": ref})
    info, correct = pd.DataFrame(rows), np.array(correct)
    parts = SP.part_weights(oos, correct[info["role"] == "baseline"])
    pts = SP.part_points(correct, info, parts)
    assert set(pts["part"]) == {"all", "in", "out", "in_matched"}
    got = pts[(pts.part == "out") & (pts.model == "b0")]["shift_acc"].iloc[0]
    assert got == pytest.approx(correct[0, oos].mean())
    er = SP.part_er(pts, min_examples=20).set_index("part")
    assert er.loc["out", "er"] > 0.05 and abs(er.loc["in", "er"]) < 0.04
    assert er.loc["out", "n_baseline"] == 5 and er.loc["out", "n_copies"] == 2
    assert er.loc["in", "n_examples"] == n_in and er.loc["in_matched", "effective_n"] <= n_in
    few = SP.part_er(pts, min_examples=500).set_index("part")
    assert few.loc["out", "note"].startswith("only 400 examples") and np.isnan(few.loc["out"].get("er", np.nan))
