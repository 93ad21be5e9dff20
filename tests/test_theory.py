"""Tests for askshift.theory: Theorem 4.1 (GD limit = w* + proj_{W-perp}(w_init))."""

import numpy as np
import pytest
from scipy import optimize

from askshift.methods.theory import (
    default_step,
    fit_gd,
    is_separable,
    logistic_gradient,
    logistic_loss,
    make_subspace_data,
    minimize_in_subspace,
    random_subspace,
    simulate,
    theorem_prediction,
)


@pytest.fixture(scope="module")
def default_run():
    return simulate()  # d=20, k=5, n=500, noise=0.5, n_inits=5, steps=2000, seed=0


def test_theorem_holds_in_default_setting(default_run):
    r = default_run
    assert not r.separable
    assert r.theorem_error < 1e-4
    assert r.w_star_error < 1e-6  # GD's W-part reaches the independently computed w*
    assert max(r.perp_drift.values()) < 1e-8  # orthogonal part of every init untouched
    assert r.newton_grad_norm < 1e-8
    assert r.init_names[:3] == ["zero", "pretrained", "oracle"] and len(r.init_names) == 8
    assert r.lr == pytest.approx(default_step(make_subspace_data(20, 5, 500, 0.5, 0).X))


def test_in_support_predictions_identical_across_inits(default_run):
    r = default_run
    assert r.in_support_max_logit_diff < 1e-6
    assert len(set(r.in_support_accuracy.values())) == 1
    assert r.in_support_accuracy["zero"] > 0.9


def test_pretrained_init_wins_out_of_support(default_run):
    """The default "pre-trained" init is fitted on a related task (relatedness 0.9), not the
    true weights: it wins out of support, below the oracle (the true weights)."""
    r = default_run
    assert r.oos_accuracy_pretrained < r.out_of_support_accuracy["oracle"]
    assert r.oos_accuracy_pretrained > r.oos_accuracy_random_mean + 0.1
    assert r.oos_accuracy_pretrained > r.oos_accuracy_zero
    assert r.oos_accuracy_pretrained > max(r.out_of_support_accuracy[n] for n in r.init_names if n.startswith("random"))
    # out-of-support accuracy really depends on the init
    assert len(set(r.out_of_support_accuracy.values())) > 1
    metrics = r.as_metrics()
    assert metrics["theorem_error"] == r.theorem_error and all(isinstance(v, float) for v in metrics.values())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_pretrained_wins_on_average_over_seeds(seed):
    r = simulate(seed=seed, n_inits=4, steps=500)
    assert r.theorem_error < 1e-4
    assert r.oos_accuracy_pretrained > r.oos_accuracy_random_mean


def test_theorem_check_fails_with_too_few_steps():
    r = simulate(steps=10)
    assert r.theorem_error > 1e-2


def test_theorem_check_fails_with_far_too_large_step():
    x = make_subspace_data(20, 5, 500, 0.5, 0).X
    r = simulate(lr=20 * default_step(x))
    assert r.theorem_error > 1.0
    # the oscillation is inside W: gradients still never touch W-perp
    assert max(r.perp_drift.values()) < 1e-6


def test_theorem_check_fails_when_data_spans_rd():
    r = simulate(off_subspace_noise=0.3)
    assert r.theorem_error > 1.0
    assert max(r.perp_drift.values()) > 1.0  # the init's orthogonal component is not preserved


def test_newton_minimiser_matches_scipy_on_restricted_problem():
    data = make_subspace_data(12, 3, 300, 0.7, seed=4)
    w_star, _ = minimize_in_subspace(data.X, data.y, data.basis)
    z = data.X @ data.basis

    def f(v):
        return np.sum(np.logaddexp(0, -data.y * (z @ v)))

    def g(v):
        return -(z.T @ (data.y / (1 + np.exp(data.y * (z @ v)))))

    res = optimize.minimize(f, np.zeros(3), jac=g, method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose(w_star, data.basis @ res.x, atol=1e-5)
    # and GD from a random init lands on w* + proj_perp(w_init)
    w0 = np.random.default_rng(0).standard_normal(12)
    w = fit_gd(data.X, data.y, w0, steps=3000)
    np.testing.assert_allclose(w, theorem_prediction(w_star, w0, data.basis), atol=1e-6)


def test_gradient_and_step_conventions():
    data = make_subspace_data(8, 3, 100, 0.5, seed=1)
    x, y = data.X, data.y
    w = np.random.default_rng(1).standard_normal(8)
    # finite-difference gradient check of the sum loss
    eps = 1e-6
    fd = np.array([(logistic_loss(w + eps * e, x, y) - logistic_loss(w - eps * e, x, y)) / (2 * eps) for e in np.eye(8)])
    np.testing.assert_allclose(logistic_gradient(w, x, y), fd, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logistic_gradient(w, x, y, "mean"), fd / 100, rtol=1e-5, atol=1e-8)
    assert logistic_loss(w, x, y, "mean") == pytest.approx(logistic_loss(w, x, y) / 100)
    # gradient lies in W
    g = logistic_gradient(w, x, y)
    assert np.linalg.norm(data.perp_basis.T @ g) < 1e-10
    # step 4/||X||_op^2 for the sum, 4n/||X||_op^2 for the mean: identical iterates
    assert default_step(x) == pytest.approx(4 / np.linalg.norm(x, 2) ** 2)
    assert default_step(x, "mean") == pytest.approx(4 * 100 / np.linalg.norm(x, 2) ** 2)
    np.testing.assert_allclose(fit_gd(x, y, w, 50), fit_gd(x, y, w, 50, reduction="mean"), atol=1e-12)
    # the loss decreases monotonically with the default step (it is 1/L)
    losses = [logistic_loss(fit_gd(x, y, w, s), x, y) for s in (0, 1, 5, 20, 100)]
    assert all(a >= b for a, b in zip(losses, losses[1:]))
    np.testing.assert_array_equal(fit_gd(x, y, w, 0), w)


def test_subspace_and_prediction_helpers():
    rng = np.random.default_rng(0)
    b, p = random_subspace(6, 2, rng)
    q = np.hstack([b, p])
    np.testing.assert_allclose(q.T @ q, np.eye(6), atol=1e-12)
    w_star = b @ np.array([1.0, -2.0])
    w0 = rng.standard_normal(6)
    pred = theorem_prediction(w_star, w0, b)
    np.testing.assert_allclose(b.T @ pred, [1.0, -2.0], atol=1e-12)
    np.testing.assert_allclose(p.T @ pred, p.T @ w0, atol=1e-12)


def test_separability_detection():
    data = make_subspace_data(10, 3, 20, 0.0, seed=0)  # noiseless, few points: separable
    assert is_separable(data.X, data.y)
    noisy = make_subspace_data(10, 3, 400, 0.5, seed=0)
    assert not is_separable(noisy.X, noisy.y)
    with pytest.raises(ValueError, match="separable"):
        simulate(n=15, noise=1e-3, steps=10)


def test_deterministic():
    a = simulate(steps=100, n_inits=2, seed=5)
    b = simulate(steps=100, n_inits=2, seed=5)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.out_of_support_accuracy == b.out_of_support_accuracy


def test_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="k must be smaller than d"):
        random_subspace(3, 3, rng)
    data = make_subspace_data(5, 2, 30, 0.5, seed=0)
    with pytest.raises(ValueError, match="reduction must be 'sum' or 'mean'"):
        fit_gd(data.X, data.y, np.zeros(5), 1, reduction="avg")
    with pytest.raises(ValueError, match=r"w_init must have shape \(5,\)"):
        fit_gd(data.X, data.y, np.zeros(4), 1)
    with pytest.raises(ValueError, match=r"y must hold labels in \{-1, \+1\}"):
        fit_gd(data.X, (data.y > 0).astype(float), np.zeros(5), 1)
    with pytest.raises(ValueError, match="lr must be a positive"):
        fit_gd(data.X, data.y, np.zeros(5), 1, lr=-1.0)
    with pytest.raises(ValueError, match="steps must be an integer >= 0"):
        fit_gd(data.X, data.y, np.zeros(5), -1)
    with pytest.raises(ValueError, match="noise must be a positive"):
        simulate(noise=0.0)
    with pytest.raises(ValueError, match="basis must have shape"):
        minimize_in_subspace(data.X, data.y, np.eye(4)[:, :2])


def test_the_pretrained_init_helps_only_as_far_as_its_task_is_related():
    """An unrelated pre-training task (relatedness 0) gives no better out-of-support accuracy
    than random initialisations; the benefit grows with relatedness; in-support predictions do
    not depend on it at all."""
    runs = {rel: simulate(steps=800, n_inits=4, relatedness=rel) for rel in (0.0, 0.5, 0.9, 1.0)}
    acc = {rel: r.oos_accuracy_pretrained for rel, r in runs.items()}
    assert acc[0.0] < runs[0.0].oos_accuracy_zero                  # unrelated: worse than starting at 0
    assert acc[0.0] < acc[0.5] < acc[0.9] < acc[1.0]
    assert len({round(r.in_support_accuracy["pretrained"], 12) for r in runs.values()}) == 1
    assert all(r.theorem_error < 1e-4 for r in runs.values())
