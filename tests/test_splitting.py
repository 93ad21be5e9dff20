"""Tests for askshift.splitting: cross-fitted, calibrated density-ratio split."""

import functools

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from askshift.methods.split import (
    DEFAULT_EPSILON,
    auroc,
    binary_log_loss,
    cross_fit_domain_logits,
    density_ratio,
    difficulty_matched_weights,
    fit_temperature,
    membership_scores,
    split_out_of_support,
)


def square_mixture(n_ref=1000, n_shift=1000, seed=0):
    """Reference ~ U([0,1]^2). Shifted: half U([0,1]^2) (in-support), half U([1.5,2.5]x[0,1])
    (out-of-support). Returns X_ref, X_shift, is_out_of_support (over the shifted examples)."""
    rng = np.random.default_rng(seed)
    x_ref = rng.uniform(0, 1, (n_ref, 2))
    n_in = n_shift // 2
    x_in = rng.uniform(0, 1, (n_in, 2))
    x_out = rng.uniform(0, 1, (n_shift - n_in, 2)) + np.array([1.5, 0.0])
    oos = np.r_[np.zeros(n_in, bool), np.ones(n_shift - n_in, bool)]
    return x_ref, np.vstack([x_in, x_out]), oos


@pytest.fixture(scope="module")
def mixture():
    return square_mixture()


@pytest.fixture(scope="module")
def default_split(mixture):
    x_ref, x_shift, _ = mixture
    return cross_fit_domain_logits(x_ref, x_shift, k=10, seed=0)


def test_default_classifier_recovers_membership(mixture, default_split):
    _, _, oos = mixture
    res = default_split
    scores = membership_scores(res.ratio_shift, oos, epsilon=DEFAULT_EPSILON)
    assert scores.auroc > 0.95
    assert scores.precision > 0.95
    assert scores.recall > 0.8
    assert scores.n_true_out == 500 and scores.n_total == 1000
    # in-support shifted points: true ratio p_ref/p_shift = 1 / 0.5 = 2
    assert 1.3 < np.median(res.ratio_shift[~oos]) < 3.0
    np.testing.assert_array_equal(res.out_of_support(0.2), split_out_of_support(res.ratio_shift, 0.2))
    assert res.ratio_ref.shape == (1000,) and res.ratio_shift.shape == (1000,)
    assert res.domain_auroc > 0.7
    assert res.temperature > 0


def test_flexible_classifier_recovers_membership(mixture):
    x_ref, x_shift, oos = mixture
    knn = functools.partial(KNeighborsClassifier, n_neighbors=25)
    res = cross_fit_domain_logits(x_ref, x_shift, k=5, make_classifier=knn, seed=0)
    for eps in (0.1, 0.2):
        s = membership_scores(res.ratio_shift, oos, epsilon=eps)
        assert s.auroc > 0.99 and s.precision > 0.95 and s.recall > 0.95


def test_cross_fitting_is_out_of_fold_and_stratified(default_split):
    res = default_split
    assert set(np.unique(res.fold_ref)) == set(range(10))
    counts_ref = np.bincount(res.fold_ref)
    counts_shift = np.bincount(res.fold_shift)
    assert counts_ref.min() == counts_ref.max() == 100
    assert counts_shift.min() == counts_shift.max() == 100


def test_deterministic_given_seed(mixture):
    x_ref, x_shift, _ = mixture
    a = cross_fit_domain_logits(x_ref[:300], x_shift[::3], k=5, seed=7)
    b = cross_fit_domain_logits(x_ref[:300], x_shift[::3], k=5, seed=7)
    np.testing.assert_array_equal(a.logits_shift, b.logits_shift)
    assert a.temperature == b.temperature


def test_estimator_instance_and_predict_proba_only_classifiers(mixture):
    x_ref, x_shift, oos = mixture
    res = cross_fit_domain_logits(x_ref, x_shift, k=4, make_classifier=KNeighborsClassifier(n_neighbors=25))
    assert membership_scores(res.ratio_shift, oos).auroc > 0.99


def test_class_prior_correction_identical_distributions():
    rng = np.random.default_rng(1)
    # equal sizes: ratio ~ 1
    res = cross_fit_domain_logits(rng.normal(size=(800, 3)), rng.normal(size=(800, 3)), k=5, seed=0)
    all_ratio = np.r_[res.ratio_ref, res.ratio_shift]
    assert 0.85 < np.median(all_ratio) < 1.15
    assert np.mean(split_out_of_support(res.ratio_shift, 0.2)) < 0.01
    # unequal sizes (4:1): without the n_shift/n_ref factor the ratio would be ~4
    res2 = cross_fit_domain_logits(rng.normal(size=(2000, 3)), rng.normal(size=(500, 3)), k=5, seed=0)
    all_ratio2 = np.r_[res2.ratio_ref, res2.ratio_shift]
    assert 0.85 < np.median(all_ratio2) < 1.15
    assert np.median(np.exp(-res2.logits_shift / res2.temperature)) > 3.0
    # the formula and its sign convention: logit = log-odds of "shifted"
    np.testing.assert_allclose(density_ratio([0.0, np.log(2)], 1.0, n_ref=100, n_shift=100), [1.0, 0.5])
    np.testing.assert_allclose(density_ratio([0.0], 2.0, n_ref=100, n_shift=300), [3.0])


class ScaledLR(ClassifierMixin, BaseEstimator):
    """Logistic regression whose logits are multiplied by `factor` (deliberately miscalibrated)."""

    def __init__(self, factor=10.0):
        self.factor = factor

    def fit(self, x, y):
        self.lr_ = LogisticRegression().fit(x, y)
        self.classes_ = self.lr_.classes_
        return self

    def decision_function(self, x):
        return self.factor * self.lr_.decision_function(x)


def test_temperature_fixes_artificially_scaled_logits():
    rng = np.random.default_rng(2)
    x_ref = rng.normal(0.0, 1.0, (600, 2))
    x_shift = rng.normal(0.7, 1.0, (600, 2))
    plain = cross_fit_domain_logits(x_ref, x_shift, k=5, seed=0)
    scaled = cross_fit_domain_logits(x_ref, x_shift, k=5, make_classifier=ScaledLR(10.0), seed=0)
    assert scaled.temperature > 0
    assert scaled.temperature == pytest.approx(10.0 * plain.temperature, rel=1e-3)
    assert scaled.log_loss_calibrated < scaled.log_loss_uncalibrated - 0.1
    # calibration removes the artificial scale: same ratios as the unscaled classifier
    np.testing.assert_allclose(scaled.ratio_shift, plain.ratio_shift, rtol=1e-3)


def test_fit_temperature_recovers_known_scale():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 2, 20000)
    y = (rng.random(z.size) < 1 / (1 + np.exp(-z))).astype(int)  # z calibrated
    assert fit_temperature(z, y) == pytest.approx(1.0, abs=0.05)
    assert fit_temperature(5 * z, y) == pytest.approx(5.0, rel=0.05)
    assert fit_temperature(0.2 * z, y) == pytest.approx(0.2, rel=0.05)
    t = fit_temperature(5 * z, y)
    assert binary_log_loss(5 * z, y, t) < binary_log_loss(5 * z, y, 1.0)
    assert fit_temperature(np.zeros(10), np.r_[np.zeros(5), np.ones(5)]) == 1.0


def test_membership_scores_and_auroc():
    ratio = np.array([0.01, 0.05, 0.3, 2.0, 0.15, 5.0])
    truth = np.array([True, True, False, False, True, False])
    s = membership_scores(ratio, truth, epsilon=0.2)
    assert s.auroc == 1.0 and s.precision == 1.0 and s.recall == 1.0
    s2 = membership_scores(ratio, truth, epsilon=0.1)
    assert s2.precision == 1.0 and s2.recall == pytest.approx(2 / 3)
    assert auroc([1, 2, 3, 4], [0, 0, 1, 1]) == 1.0
    assert auroc([1, 1, 1, 1], [0, 1, 0, 1]) == 0.5
    assert auroc([np.inf, 0.0], [1, 0]) == 1.0
    # inf ratios (deep in the reference support) are fine
    assert membership_scores(np.array([np.inf, 0.0]), [False, True]).auroc == 1.0


def test_difficulty_matched_weights():
    rng = np.random.default_rng(4)
    src = rng.uniform(0, 1, 5000)
    tgt = rng.beta(5, 2, 2000)
    res = difficulty_matched_weights(src, tgt, n_bins=10)
    assert res.weights.shape == src.shape and np.isclose(res.weights.sum(), 1.0)
    assert res.coverage == pytest.approx(1.0)
    assert abs(np.sum(res.weights * src) - tgt.mean()) < 0.02
    with pytest.raises(ValueError, match="n_bins must be a positive integer"):
        difficulty_matched_weights(src, tgt, n_bins=0)
    with pytest.raises(ValueError, match="non-empty"):
        difficulty_matched_weights([], tgt)


def test_errors(mixture):
    x_ref, x_shift, oos = mixture
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"epsilon must be in \(0, 1\]"):
            split_out_of_support(np.ones(3), bad)
    with pytest.raises(TypeError, match="epsilon must be a float"):
        split_out_of_support(np.ones(3), "small")
    with pytest.raises(ValueError, match="k must be an integer >= 2"):
        cross_fit_domain_logits(x_ref, x_shift, k=1)
    with pytest.raises(TypeError, match="k must be an integer"):
        cross_fit_domain_logits(x_ref, x_shift, k=2.5)
    with pytest.raises(ValueError, match="k=20 folds need at least k examples of each domain"):
        cross_fit_domain_logits(x_ref, x_shift[:10], k=20)
    with pytest.raises(ValueError, match="same feature shape"):
        cross_fit_domain_logits(x_ref, np.ones((50, 3)))
    with pytest.raises(ValueError, match="X_shift is empty"):
        cross_fit_domain_logits(x_ref, np.ones((0, 2)))
    with pytest.raises(TypeError, match="neither decision_function nor predict_proba"):

        class NoScores:
            def fit(self, x, y):
                return self

        cross_fit_domain_logits(x_ref, x_shift, k=2, make_classifier=NoScores)
    with pytest.raises(ValueError, match="length mismatch"):
        membership_scores(np.ones(3), [True, False])
    with pytest.raises(ValueError, match="non-negative"):
        split_out_of_support(np.array([-1.0, 1.0]), 0.2)
    with pytest.raises(ValueError, match="AUROC needs both classes"):
        membership_scores(np.ones(3), [True, True, True])
    with pytest.raises(ValueError, match="temperature must be a positive"):
        density_ratio([0.0], 0.0, 1, 1)
