"""askshift.analyses.split: the splitter on synthetic 2-D data with a known support, part
weights (incl. the difficulty-matched control), and ER per part."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from askshift.methods import split as S
from askshift.methods import split as SP


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


def test_part_weights_and_matched_weights():
    oos = np.r_[np.zeros(20, bool), np.ones(5, bool)]
    parts = SP.part_weights(oos, true_out=~oos)
    assert set(parts) == {"all", "in", "out", "true_in", "true_out"}
    np.testing.assert_array_equal(parts["out"], oos.astype(float))
    # difficulty k/4: in-support examples easy and hard, out-of-support ones hard
    diff = np.r_[np.array([1, 2, 3, 4] * 5), np.array([1, 2, 1, 2, 1])] / 4
    w = SP.matched_weights(oos, diff)
    assert w[oos].sum() == 0 and w.sum() == pytest.approx(1.0)
    # the re-weighted in-support part is as hard as the out-of-support part
    assert np.average(diff[~oos], weights=w[~oos]) == pytest.approx(diff[oos].mean())
    assert np.average(diff[~oos], weights=w[~oos]) < diff[~oos].mean()
    assert SP.matched_weights(np.zeros(25, bool), diff) is None


def test_matched_er_is_cross_fitted_against_selection_bias():
    """No model is robust (all share one line on every example); in-support examples are easier.
    Weights from the same baselines that fit the line would favour the examples those baselines
    got wrong and make every other model look robust; cross-fitting removes that."""
    rng = np.random.default_rng(1)
    n_in, n_out = 3000, 1000
    oos = np.r_[np.zeros(n_in, bool), np.ones(n_out, bool)]
    ease = np.r_[rng.normal(1.0, 1.0, n_in), rng.normal(-0.5, 1.0, n_out)]   # per-example ease
    specs = [(f"b{i}", "baseline", "scratch", 0, a) for i, a in enumerate(np.linspace(-0.5, 1.5, 10))]
    specs += [(f"p{c}", "pretrained", "ft", c, 1.2) for c in range(2)]
    rows, correct = [], []
    for name, role, strategy, copy, skill in specs:
        correct.append(rng.random(n_in + n_out) < stats.norm.cdf(skill + ease))
        rows.append({"model": name, "variant": "plain", "role": role, "strategy": strategy, "copy": copy,
                     "ref_acc": float(stats.norm.cdf(skill + 1.0))})
    info, correct = pd.DataFrame(rows), np.array(correct)
    er = SP.matched_er(correct, info, oos)
    assert list(er["part"]) == ["in_matched"] and er["n_baseline"].iloc[0] == 5
    # reference: difficulty from an independent set of baselines (no selection bias at all)
    fresh = np.array([rng.random(n_in + n_out) < stats.norm.cdf(a + ease) for a in np.linspace(-0.5, 1.5, 10)])
    w = SP.matched_weights(oos, fresh.mean(axis=0))
    unbiased = SP.part_er(SP.part_points(correct, info, {"in_matched": w}))["er"].iloc[0]
    assert abs(er["er"].iloc[0] - unbiased) < 0.02
    # the naive version (difficulty from the same baselines that fit the line) is biased up
    w = SP.matched_weights(oos, correct[info["role"] == "baseline"].mean(axis=0))
    naive = SP.part_er(SP.part_points(correct, info, {"in_matched": w}))["er"].iloc[0]
    assert naive > unbiased + 0.03 and naive > er["er"].iloc[0] + 0.03
    few = SP.matched_er(correct[[0, 1, 2, 3, 10]], info.iloc[[0, 1, 2, 3, 10]].reset_index(drop=True), oos)
    assert few["note"].iloc[0].startswith("needs two halves of independent baseline runs")


def test_matched_er_with_correlated_snapshots_needs_halves_of_whole_runs():
    """Baselines are snapshots of a few training runs: the snapshots of one run share their
    errors (one noise draw per run and example). No model is robust. Halves made of whole runs
    give ~0 ER like an independent reference; halves that split each run's snapshots (what the
    alternating split did) share the noise between the difficulty and the line, and are biased."""
    rng = np.random.default_rng(3)
    n_in, n_out = 3000, 1000
    oos = np.r_[np.zeros(n_in, bool), np.ones(n_out, bool)]
    ease = np.r_[rng.normal(1.0, 1.0, n_in), rng.normal(-0.5, 1.0, n_out)]

    def run_models(n_runs, label):
        rows, correct = [], []
        for r in range(n_runs):
            noise = rng.normal(0, 1.0, n_in + n_out)          # the run's own errors
            for skill in (-0.6, -0.1, 0.4, 0.9, 1.4):          # its snapshots
                correct.append(rng.random(n_in + n_out) < stats.norm.cdf(skill + ease + noise))
                rows.append({"model": f"{label}{r}-{skill}", "variant": "plain", "role": "baseline",
                             "strategy": "scratch", "copy": 0, "run": f"{label}{r}",
                             "ref_acc": float(stats.norm.cdf((skill + 1.0) / np.sqrt(2)))})
        return rows, correct

    rows, correct = run_models(4, "run")
    for c in range(2):  # on the line: the same latent model as the baselines
        correct.append(rng.random(n_in + n_out) < stats.norm.cdf(0.9 + ease + rng.normal(0, 1.0, n_in + n_out)))
        rows.append({"model": f"p{c}", "variant": "plain", "role": "pretrained", "strategy": "ft", "copy": c,
                     "run": f"p{c}", "ref_acc": float(stats.norm.cdf(1.9 / np.sqrt(2)))})
    info, correct = pd.DataFrame(rows), np.array(correct)
    halves = SP.baseline_halves(correct, info)
    assert not set(info["run"].iloc[halves[0]]) & set(info["run"].iloc[halves[1]])   # whole runs
    whole = SP.matched_er(correct, info, oos)["er"].iloc[0]
    split_runs = info.assign(run=info["model"])  # every snapshot its own "run": runs split across halves
    mixed = SP.matched_er(correct, split_runs, oos)["er"].iloc[0]
    print(f"whole runs {whole:+.4f}, split runs {mixed:+.4f}")
    assert abs(whole) < 0.015            # truth: 0 (the fine-tunes are the baselines' latent model)
    assert mixed > whole + 0.02          # the shared noise pushes it up


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
    parts = SP.part_weights(oos)
    pts = SP.part_points(correct, info, parts)
    assert set(pts["part"]) == {"all", "in", "out"}
    got = pts[(pts.part == "out") & (pts.model == "b0")]["shift_acc"].iloc[0]
    assert got == pytest.approx(correct[0, oos].mean())
    er = SP.part_er(pts, min_examples=20).set_index("part")
    assert er.loc["out", "er"] > 0.05 and abs(er.loc["in", "er"]) < 0.04
    assert er.loc["out", "n_baseline"] == 5 and er.loc["out", "n_copies"] == 2
    assert er.loc["in", "n_examples"] == n_in and er.loc["in", "effective_n"] == n_in
    few = SP.part_er(pts, min_examples=500).set_index("part")
    assert few.loc["out", "note"].startswith("only 400 examples") and np.isnan(few.loc["out"].get("er", np.nan))


def test_pixel_features_pool_and_flatten():
    x = np.zeros((2, 32, 32, 3), np.uint8)
    x[0, :16, :16, 0] = 255          # top-left quarter red in image 0
    f = SP.pixel_features(x, 2)
    assert f.shape == (2, 2 * 2 * 3) and f.dtype == np.float32
    np.testing.assert_allclose(f[0].reshape(2, 2, 3)[..., 0], [[1, 0], [0, 0]])
    assert f[1].sum() == 0
    assert SP.pixel_features(x, 32).shape == (2, 32 * 32 * 3)
    with pytest.raises(ValueError, match="must divide"):
        SP.pixel_features(x, 5)


def test_matched_er_gate_on_difficulty_overlap():
    """Two model families with their own per-example errors (scratch baselines share one,
    the fine-tunes another); no shift inside the support, so the truth in-support is ER = 0.
    When the out-of-support part is far harder, the re-weighted in-support part is a handful of
    the examples scratch models find hardest, where the other family looks robust: the share is
    small and the gate refuses. With an out-of-support part about as hard, the share is large and
    the estimate is near 0."""
    rng = np.random.default_rng(5)
    n_in, n_out = 2000, 1000

    def world(out_ease):
        oos = np.r_[np.zeros(n_in, bool), np.ones(n_out, bool)]
        ease = np.r_[rng.normal(1.0, 0.7, n_in), rng.normal(out_ease, 0.7, n_out)]
        scratch_err, other_err = rng.normal(0, 1.0, (2, n_in + n_out))   # each family's own hard examples
        rows, correct = [], []
        for r in range(6):
            for skill in (-0.6, 0.0, 0.6):
                correct.append(rng.random(n_in + n_out) < stats.norm.cdf(skill + ease + scratch_err))
                rows.append({"model": f"b{r}-{skill}", "variant": "plain", "role": "baseline", "strategy": "scratch",
                             "copy": 0, "run": f"b{r}", "ref_acc": float(stats.norm.cdf((skill + 1.0) / np.sqrt(1.49 + 1)))})
        for c in range(4):
            correct.append(rng.random(n_in + n_out) < stats.norm.cdf(0.6 + ease + other_err))
            rows.append({"model": f"p{c}", "variant": "plain", "role": "pretrained", "strategy": "ft", "copy": c,
                         "run": f"p{c}", "ref_acc": float(stats.norm.cdf(1.6 / np.sqrt(1.49 + 1)))})
        return np.array(correct), pd.DataFrame(rows), oos

    correct, info, oos = world(out_ease=-2.5)           # out-of-support far harder: little overlap
    open_ = SP.matched_er(correct, info, oos)
    assert open_["share"].iloc[0] < 0.1 and open_["er"].iloc[0] > 0.03     # biased up, as on the digits mixture
    gated = SP.matched_er(correct, info, oos, min_share=0.25)
    assert "er" not in gated and gated["note"].iloc[0].startswith("difficulty overlap too small")
    assert gated["share"].iloc[0] == pytest.approx(open_["share"].iloc[0])
    correct, info, oos = world(out_ease=0.8)             # about as hard: most of the part counts
    close = SP.matched_er(correct, info, oos, min_share=0.25)
    assert close["share"].iloc[0] > 0.5 and abs(close["er"].iloc[0]) < 0.02


def test_part_points_of_an_all_correct_model_is_exactly_one():
    """A weighted mean of ones is 1, not 1 + 2e-16 (which the ER fit refuses as out of [0, 1])."""
    from askshift.methods.split import part_points

    w = np.random.default_rng(6).uniform(0.1, 3.0, 200)   # ones @ w / w.sum() = 1.0000000000000004
    info = pd.DataFrame({"model": ["m"]})
    pts = part_points(np.ones((1, 200)), info, {"in": w})
    assert pts["shift_acc"].iloc[0] == 1.0
