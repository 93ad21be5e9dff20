"""Tests for askshift.methods.interventions: DFR, group weights, corrected examples, overlap."""

import numpy as np
import pytest
from scipy import stats

from askshift.methods.interventions import (
    DEFAULT_CS,
    corrected_examples,
    fit_dfr,
    group_balanced_sampler_weights,
    group_balanced_weights,
    overlap,
    select_C,
    split_heldout,
)
from askshift.methods.metrics import worst_group_accuracy

SIGMA_CORE = 0.6
SCALE = np.array([1.0, 3.0, 1.0, 1.0, 1.0])
SHIFT = np.array([5.0, -2.0, 0.0, 1.0, 0.0])


def make_spurious(n, p_agree, seed):
    """Binary task: column 0 is the core feature (+-1 + N(0, 0.6^2)), column 1 the spurious
    one (attribute a, +-1 + N(0, 0.1^2)), three noise columns; raw features are affinely
    distorted so that standardisation matters. a == y with probability p_agree.
    Group = 2*y + a. Bayes-optimal logit on balanced data: 2/0.6^2 * core (un-distorted)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    a = np.where(rng.random(n) < p_agree, y, 1 - y)
    core = (2 * y - 1) + SIGMA_CORE * rng.standard_normal(n)
    spur = (2 * a - 1) + 0.1 * rng.standard_normal(n)
    x = np.column_stack([core, spur, rng.standard_normal((n, 3))]) * SCALE + SHIFT
    return x, y, 2 * y + a


@pytest.fixture(scope="module")
def data():
    return {
        "biased": make_spurious(4000, 0.9, seed=1),
        "heldout": make_spurious(4000, 0.5, seed=2),
        "test": make_spurious(8000, 0.5, seed=3),
    }


def logit_contribution(head, col):
    """How much the binary logit moves per unit of the un-distorted feature `col`."""
    w = head.weight[1] - head.weight[0]
    return abs(w[col]) * SCALE[col]


# ---------------------------------------------------------------- weights
def test_group_balanced_weights_sum_and_group_totals():
    groups = np.array(["a"] * 7 + ["b"] * 2 + ["c"] * 11)
    w = group_balanced_weights(groups)
    n, g = len(groups), 3
    assert w.shape == (n,)
    assert np.isclose(w.sum(), n)
    for grp in "abc":
        assert np.isclose(w[groups == grp].sum(), n / g)
    assert np.isclose(w[0], n / (g * 7))


def test_sampler_weights_are_probabilities_equalising_groups():
    groups = np.array([0] * 90 + [1] * 10)
    p = group_balanced_sampler_weights(groups)
    assert np.isclose(p.sum(), 1.0)
    assert np.isclose(p[groups == 0].sum(), 0.5) and np.isclose(p[groups == 1].sum(), 0.5)
    draws = np.random.default_rng(0).choice(len(groups), size=20000, p=p)
    assert abs(np.mean(groups[draws] == 1) - 0.5) < 0.02


def test_weights_errors():
    with pytest.raises(ValueError, match="groups is empty"):
        group_balanced_weights([])
    with pytest.raises(ValueError, match="1-D"):
        group_balanced_weights(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"no examples for group\(s\) \[3\]"):
        group_balanced_weights([0, 1, 2], expected_groups=[0, 1, 2, 3])


# ---------------------------------------------------------------- DFR
def test_dfr_recovers_core_last_layer_and_ignores_spurious(data):
    xh, yh, gh = data["heldout"]
    xt, yt, gt = data["test"]
    head = fit_dfr(xh, yh, gh, C=1.0, seed=0)
    assert head.converged
    w = head.weight[1] - head.weight[0]
    # known Bayes-optimal last layer on balanced data: logit = (2 / sigma^2) * core
    true_core = 2 / SIGMA_CORE**2
    assert abs(w[0] * SCALE[0] - true_core) / true_core < 0.15
    cos = abs(w[0]) / np.linalg.norm(w * SCALE)
    assert cos > 0.99
    assert logit_contribution(head, 1) < 0.05 * logit_contribution(head, 0)
    assert worst_group_accuracy(yt, head.predict(xt), gt) > 0.92


def test_group_weights_remove_reliance_on_spurious_feature(data):
    xb, yb, gb = data["biased"]
    xt, yt, gt = data["test"]
    dfr = fit_dfr(xb, yb, gb, C=1.0, seed=0)
    plain = fit_dfr(xb, yb, gb, C=1.0, seed=0, balance_groups=False)
    # the unweighted fit on biased data leans on the spurious feature ...
    assert logit_contribution(plain, 1) > 0.3 * logit_contribution(plain, 0)
    # ... group-balanced weights make it uninformative
    assert logit_contribution(dfr, 1) < 0.05 * logit_contribution(dfr, 0)
    wga_dfr = worst_group_accuracy(yt, dfr.predict(xt), gt)
    wga_plain = worst_group_accuracy(yt, plain.predict(xt), gt)
    assert wga_dfr > 0.92
    assert wga_dfr > wga_plain + 0.05
    assert np.isclose(dfr.sample_weight_sum, len(yb))


def test_folded_head_equals_sklearn_on_standardised_features_binary(data):
    xh, yh, gh = data["heldout"]
    xt = data["test"][0]
    head = fit_dfr(xh, yh, gh, C=0.3, seed=0)
    xs = (xt - head.mean) / head.scale
    np.testing.assert_allclose(head.decision_function(xt), head.estimator.decision_function(xs), atol=1e-8)
    np.testing.assert_allclose(head.predict_proba(xt), head.estimator.predict_proba(xs), atol=1e-10)
    np.testing.assert_array_equal(head.predict(xt), head.estimator.predict(xs))
    assert head.weight.shape == (2, xt.shape[1]) and head.bias.shape == (2,)
    # standardisation fitted on the held-out set
    np.testing.assert_allclose(head.mean, xh.mean(0))
    np.testing.assert_allclose(head.scale, xh.std(0))


def test_folded_head_multiclass_like_a_linear_layer():
    rng = np.random.default_rng(5)
    k, d, n = 4, 6, 600
    y = rng.integers(0, k, n)
    centers = rng.standard_normal((k, d)) * 2
    x = centers[y] + rng.standard_normal((n, d))
    x[:, 2] = 7.0  # constant feature: std 0 must not break standardisation
    groups = y * 2 + rng.integers(0, 2, n)
    head = fit_dfr(x, y, groups, C=0.5, seed=0, num_classes=k)
    assert head.weight.shape == (k, d) and head.bias.shape == (k,)
    xs = (x - head.mean) / head.scale
    logits = x @ head.weight.T + head.bias  # exactly what nn.Linear computes
    np.testing.assert_allclose(logits, head.estimator.decision_function(xs), atol=1e-8)
    np.testing.assert_allclose(head.predict_proba(x), head.estimator.predict_proba(xs), atol=1e-10)
    np.testing.assert_array_equal(head.classes, np.arange(k))


def test_dfr_is_deterministic(data):
    xh, yh, gh = data["heldout"]
    a = fit_dfr(xh, yh, gh, C=0.1, seed=3)
    b = fit_dfr(xh, yh, gh, C=0.1, seed=3)
    np.testing.assert_array_equal(a.weight, b.weight)
    np.testing.assert_array_equal(a.bias, b.bias)


def test_dfr_errors(data):
    xh, yh, gh = data["heldout"]
    with pytest.raises(ValueError, match="length mismatch"):
        fit_dfr(xh, yh[:-1], gh)
    with pytest.raises(ValueError, match="length mismatch"):
        fit_dfr(xh, yh, gh[:10])
    with pytest.raises(ValueError, match="C must be a positive"):
        fit_dfr(xh, yh, gh, C=0.0)
    with pytest.raises(ValueError, match="features must be a 2-D"):
        fit_dfr(xh[:, 0], yh, gh)
    with pytest.raises(ValueError, match="features must be non-empty"):
        fit_dfr(np.zeros((0, 3)), [], [])
    with pytest.raises(ValueError, match="NaN"):
        bad = xh.copy()
        bad[0, 0] = np.nan
        fit_dfr(bad, yh, gh)
    with pytest.raises(ValueError, match="at least 2 classes"):
        fit_dfr(xh, np.zeros_like(yh), gh)
    with pytest.raises(ValueError, match=r"no examples of class\(es\) \[2\]"):
        fit_dfr(xh, yh, gh, num_classes=3)
    with pytest.raises(ValueError, match="features has 4 columns"):
        fit_dfr(xh, yh, gh).predict(xh[:, :4])


def test_select_c_by_group_balanced_accuracy(data):
    xh, yh, gh = data["heldout"]
    fit_idx, val_idx = split_heldout(gh, val_fraction=0.5, seed=0)
    assert len(np.intersect1d(fit_idx, val_idx)) == 0
    assert len(fit_idx) + len(val_idx) == len(gh)
    for g in np.unique(gh):  # stratified by group
        assert abs(np.sum(gh[val_idx] == g) - np.sum(gh == g) / 2) <= 1
    sel = select_C(xh[fit_idx], yh[fit_idx], gh[fit_idx], xh[val_idx], yh[val_idx], gh[val_idx], seed=0)
    assert sel.best_C in DEFAULT_CS
    assert sel.group_balanced_accuracy.shape == (len(DEFAULT_CS),)
    best = int(np.flatnonzero(sel.Cs == sel.best_C)[0])
    assert sel.group_balanced_accuracy[best] == sel.group_balanced_accuracy.max()
    assert sel.group_balanced_accuracy[best] > 0.9
    with pytest.raises(ValueError, match="Cs must be a non-empty"):
        select_C(xh, yh, gh, xh, yh, gh, Cs=[])
    with pytest.raises(ValueError, match="Cs entry must be a positive"):
        select_C(xh, yh, gh, xh, yh, gh, Cs=[1.0, -1.0])
    with pytest.raises(ValueError, match="val_fraction"):
        split_heldout(gh, val_fraction=1.0)


# ---------------------------------------------------------------- corrected examples
def test_corrected_examples_rule():
    base = np.array(
        [
            [0, 0, 1, 1, 0, 0],
            [0, 1, 1, 0, 0, 1],
            [0, 0, 1, 0, 1, 1],
        ]
    )  # baseline correct-rate: 0, 1/3, 1, 1/3, 1/3, 2/3
    inter = np.array(
        [
            [1, 1, 1, 0, 1, 1],
            [1, 0, 1, 0, 1, 1],
        ]
    )  # intervention correct-rate: 1, .5, 1, 0, 1, 1
    mask = corrected_examples(base, inter)
    np.testing.assert_array_equal(mask, [True, False, False, False, True, False])
    # the threshold is a parameter; 0.5 rate is not "> 0.5" but is "> 0.4"
    mask2 = corrected_examples(base, inter, threshold=0.5, intervention_threshold=0.4)
    np.testing.assert_array_equal(mask2, [True, True, False, False, True, False])
    # a single model can be passed as a vector
    np.testing.assert_array_equal(corrected_examples(base[0], inter[0]), [True, True, False, False, True, True])
    with pytest.raises(ValueError, match="6 examples but intervention_correct has 5"):
        corrected_examples(base, inter[:, :5])
    with pytest.raises(ValueError, match="bool or 0/1"):
        corrected_examples(base * 2, inter)
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\]"):
        corrected_examples(base, inter, threshold=1.5)


def test_overlap_counts_jaccard_and_chance():
    n = 100
    a = np.zeros(n, bool)
    b = np.zeros(n, bool)
    a[:20] = True
    b[10:40] = True
    res = overlap(a, b)
    assert (res.n_total, res.n_a, res.n_b, res.n_both, res.n_either) == (100, 20, 30, 10, 40)
    assert np.isclose(res.jaccard, 10 / 40)
    assert np.isclose(res.expected_both, 20 * 30 / 100)
    assert np.isclose(res.ratio_to_chance, 10 / 6)
    assert np.isclose(res.p_value_greater, stats.hypergeom(100, 20, 30).sf(9))
    assert np.isclose(res.p_value_less, stats.hypergeom(100, 20, 30).cdf(10))
    # same via index sets
    res_idx = overlap(np.arange(20), np.arange(10, 40), n_total=n)
    assert res_idx == res
    # disjoint sets: less overlap than chance is detectable
    dis = overlap(np.arange(0, 30), np.arange(30, 60), n_total=n)
    assert dis.n_both == 0 and dis.jaccard == 0 and dis.p_value_less < 1e-4
    # identical sets
    same = overlap(np.arange(30), np.arange(30), n_total=n)
    assert same.jaccard == 1.0 and same.p_value_greater < 1e-10
    assert set(res.as_dict()) >= {"jaccard", "expected_both", "p_value_less"}


def test_overlap_errors():
    with pytest.raises(ValueError, match="n_total .* is required"):
        overlap([1, 2], [2, 3])
    with pytest.raises(ValueError, match=r"indices outside \[0, 3\)"):
        overlap([1, 5], [2], n_total=3)
    with pytest.raises(ValueError, match="equal length"):
        overlap(np.ones(3, bool), np.ones(4, bool))
    with pytest.raises(ValueError, match="both be boolean"):
        overlap(np.ones(3, bool), [1], n_total=3)
