"""Logistic-regression theory of paper Sec. 4 (Theorem 4.1) and its simulation.

Setting: training inputs lie in a k-dimensional subspace W of R^d (k < d), labels in {-1, +1}
come from a noisy linear model, so the data is not separable inside W and the logistic loss
restricted to W has a unique minimiser ``w*``. Plain full-batch gradient descent on the
*sum* of logistic losses

    L(w) = sum_i log(1 + exp(-y_i <w, x_i>))

with step ``4 / ||X||_op^2`` (the Hessian ``X^T D X`` has ``D <= 1/4``, so ``L`` is
``||X||_op^2 / 4``-smooth and this is step ``1/L``) started from ``w_init`` converges to

    w* + proj_{W-perp}(w_init)

because every gradient is a combination of the x_i and therefore lies in W: the component of
``w_init`` orthogonal to W is never touched. The data fixes behaviour on the reference support;
the initialisation (pre-training) alone decides behaviour off it.

Loss convention: :func:`fit_gd` uses ``reduction="sum"`` by default, with default step
``4 / ||X||_op^2``. ``reduction="mean"`` (loss divided by n) uses the default step
``4 n / ||X||_op^2``; the two produce *identical* iterates.

:func:`simulate` checks the theorem numerically (``w*`` from an independent Newton solve in W
coordinates) and shows that in-support predictions do not depend on the initialisation while
out-of-support accuracy does, with a "pre-trained" initialisation (aligned with the ground
truth off W) winning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

__all__ = [
    "SubspaceData",
    "TheoryResult",
    "random_subspace",
    "make_subspace_data",
    "logistic_loss",
    "logistic_gradient",
    "default_step",
    "fit_gd",
    "minimize_in_subspace",
    "is_separable",
    "theorem_prediction",
    "simulate",
]


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------
def _pos_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _nonneg_float(name: str, value: Any, positive: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a float, got {value!r}") from None
    if not np.isfinite(v) or v < 0 or (positive and v == 0):
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"{name} must be a {kind} finite float, got {value!r}")
    return v


def _check_xy(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(X, dtype=np.float64)
    yy = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"X must be a non-empty 2-D array (n, d), got shape {x.shape}")
    if yy.shape != (x.shape[0],):
        raise ValueError(f"y must have shape ({x.shape[0]},) to match X, got {yy.shape}")
    if not np.all(np.isin(yy, (-1.0, 1.0))):
        raise ValueError("y must hold labels in {-1, +1}")
    return x, yy


def _reduction_scale(reduction: str, n: int) -> float:
    if reduction == "sum":
        return 1.0
    if reduction == "mean":
        return 1.0 / n
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def random_subspace(d: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random orthonormal bases ``(basis (d, k), perp_basis (d, d-k))`` of W and W-perp."""
    d = _pos_int("d", d, 2)
    k = _pos_int("k", k, 1)
    if k >= d:
        raise ValueError(f"k must be smaller than d (W is a proper subspace), got k={k}, d={d}")
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q = q * np.sign(np.diag(r))  # unique (Haar) orthogonal matrix
    return q[:, :k], q[:, k:]


@dataclass
class SubspaceData:
    """Training data of the Sec. 4 setting.

    X : (n, d) inputs, ``X = Z @ basis.T`` (+ optional off-subspace noise); Z : (n, k) the
    coordinates in W; y : (n,) labels in {-1, +1}, ``y = sign(<w_true, x> + noise * eps)``,
    eps ~ standard logistic (so P(y=1|x) = sigmoid(<w_true, x> / noise)); basis (d, k),
    perp_basis (d, d-k); w_true (d,) = unit direction in W + ``perp_strength`` x unit
    direction in W-perp (the latter only matters off W).
    """

    X: np.ndarray
    Z: np.ndarray
    y: np.ndarray
    basis: np.ndarray
    perp_basis: np.ndarray
    w_true: np.ndarray
    noise: float


def _labels(scores: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    eps = rng.logistic(size=scores.shape) if noise > 0 else 0.0
    s = scores + noise * eps
    return np.where(s >= 0, 1.0, -1.0)


def make_subspace_data(
    d: int,
    k: int,
    n: int,
    noise: float,
    seed: int,
    *,
    perp_strength: float = 1.0,
    off_subspace_noise: float = 0.0,
) -> SubspaceData:
    """Seeded data in a random k-dim subspace of R^d with noisy linear labels.

    ``off_subspace_noise > 0`` adds isotropic N(0, s^2 I_d) noise to X after the labels are
    drawn, so the data spans R^d -- this deliberately breaks the theorem's assumption.
    """
    rng = np.random.default_rng(seed)
    n = _pos_int("n", n)
    noise = _nonneg_float("noise", noise)
    basis, perp = random_subspace(d, k, rng)
    beta_w = rng.standard_normal(basis.shape[1])
    beta_p = rng.standard_normal(perp.shape[1])
    w_true = basis @ (beta_w / np.linalg.norm(beta_w)) + perp_strength * perp @ (beta_p / np.linalg.norm(beta_p))
    Z = rng.standard_normal((n, basis.shape[1]))
    X = Z @ basis.T
    y = _labels(X @ w_true, noise, rng)
    s = _nonneg_float("off_subspace_noise", off_subspace_noise)
    if s > 0:  # labels stay those of the clean in-W points; only the inputs leave W
        X = X + s * rng.standard_normal(X.shape)
    return SubspaceData(X=X, Z=Z, y=y, basis=basis, perp_basis=perp, w_true=w_true, noise=noise)


# --------------------------------------------------------------------------------------------
# loss, gradient descent, exact minimiser
# --------------------------------------------------------------------------------------------
def logistic_loss(w: Any, X: Any, y: Any, reduction: str = "sum") -> float:
    """``sum_i log(1 + exp(-y_i <w, x_i>))`` (``reduction="mean"``: divided by n)."""
    x, yy = _check_xy(X, y)
    m = yy * (x @ np.asarray(w, dtype=np.float64))
    return float(np.sum(np.logaddexp(0.0, -m)) * _reduction_scale(reduction, x.shape[0]))


def logistic_gradient(w: Any, X: Any, y: Any, reduction: str = "sum") -> np.ndarray:
    """Gradient of :func:`logistic_loss`: ``-X^T (y * sigmoid(-y X w))`` (a combination of rows
    of X, hence inside their span)."""
    x, yy = _check_xy(X, y)
    m = yy * (x @ np.asarray(w, dtype=np.float64))
    return -(x.T @ (yy * special.expit(-m))) * _reduction_scale(reduction, x.shape[0])


def default_step(X: Any, reduction: str = "sum") -> float:
    """Theorem 4.1's step: ``4 / ||X||_op^2`` for the sum loss (``4 n / ||X||_op^2`` for the mean)."""
    x = np.asarray(X, dtype=np.float64)
    op = np.linalg.norm(x, ord=2)
    if op == 0:
        raise ValueError("X is all zeros; the step 4 / ||X||_op^2 is undefined")
    return 4.0 / op**2 / _reduction_scale(reduction, x.shape[0])


def fit_gd(
    X: Any,
    y: Any,
    w_init: Any,
    steps: int,
    lr: float | None = None,
    reduction: str = "sum",
) -> np.ndarray:
    """Plain full-batch gradient descent ``w <- w - lr * grad L(w)`` for ``steps`` steps.

    ``L`` is the SUM of logistic losses by default (``reduction="mean"`` for the mean);
    ``lr=None`` uses :func:`default_step` (``4/||X||_op^2`` for the sum), the theorem's step.
    Returns the final weights (d,).
    """
    x, yy = _check_xy(X, y)
    w = np.array(w_init, dtype=np.float64, copy=True).reshape(-1)
    if w.shape != (x.shape[1],):
        raise ValueError(f"w_init must have shape ({x.shape[1]},) to match X, got {np.shape(w_init)}")
    steps = _pos_int("steps", steps, 0)
    scale = _reduction_scale(reduction, x.shape[0])
    step = default_step(x, reduction) if lr is None else _nonneg_float("lr", lr, positive=True)
    xy = x * yy[:, None]  # rows y_i x_i
    for _ in range(steps):
        m = xy @ w
        w -= step * (-(xy.T @ special.expit(-m)) * scale)
    return w


def minimize_in_subspace(
    X: Any, y: Any, basis: Any, tol: float = 1e-12, max_iter: int = 200
) -> tuple[np.ndarray, float]:
    """The unique minimiser ``w*`` in ``span(basis)`` of the sum logistic loss, by damped
    Newton in W coordinates (independent of gradient descent).

    Solves ``min_v sum_i log(1 + exp(-y_i <v, B^T x_i>))`` and returns ``(B v*, ||grad||)``;
    raises if it does not converge (e.g. separable data: no finite minimiser).
    """
    x, yy = _check_xy(X, y)
    B = np.asarray(basis, dtype=np.float64)
    if B.ndim != 2 or B.shape[0] != x.shape[1]:
        raise ValueError(f"basis must have shape ({x.shape[1]}, k), got {B.shape}")
    zy = (x @ B) * yy[:, None]

    def f(v: np.ndarray) -> float:
        return float(np.sum(np.logaddexp(0.0, -(zy @ v))))

    v = np.zeros(B.shape[1])
    gnorm = np.inf
    for _ in range(max_iter):
        m = zy @ v
        s = special.expit(-m)
        g = -(zy.T @ s)
        gnorm = float(np.linalg.norm(g))
        if gnorm <= tol * max(1.0, x.shape[0]):
            return B @ v, gnorm
        h = (zy * (s * (1 - s))[:, None]).T @ zy
        try:
            direction = -np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            direction = -np.linalg.lstsq(h, g, rcond=None)[0]
        t, f0, slope = 1.0, f(v), float(g @ direction)
        while f(v + t * direction) > f0 + 1e-4 * t * slope and t > 1e-12:
            t *= 0.5
        v = v + t * direction
    raise RuntimeError(
        f"Newton did not converge in {max_iter} iterations (gradient norm {gnorm:.3g}); "
        "is the data separable in W (no finite minimiser)? increase noise or n"
    )


def related_task_weights(w_true: Any, relatedness: float, rng: np.random.Generator) -> np.ndarray:
    """The labelling direction of a related task: ``relatedness * w + sqrt(1 - relatedness^2) * v``
    for a random unit ``v`` orthogonal to ``w = w_true / ||w_true||``, scaled to ``||w_true||``
    (``relatedness`` 1: the same task; 0: an unrelated one)."""
    r = float(relatedness)
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"relatedness must lie in [0, 1], got {relatedness!r}")
    w = np.asarray(w_true, dtype=np.float64)
    u = w / np.linalg.norm(w)
    v = rng.standard_normal(w.size)
    v -= u * (u @ v)
    v /= np.linalg.norm(v)
    return np.linalg.norm(w) * (r * u + np.sqrt(max(0.0, 1.0 - r * r)) * v)


def pretrain_on_related_task(w_true: Any, relatedness: float, n: int, noise: float, rng: np.random.Generator,
                             l2: float = 1e-3) -> np.ndarray:
    """A "pre-trained" initialisation that is not the answer: logistic regression (L2 ``l2``, so
    it exists even on separable data) fitted on ``n`` points spread over all of R^d, hence
    covering the out-of-support directions too, labelled by :func:`related_task_weights`."""
    w_rel = related_task_weights(w_true, relatedness, rng)
    d = w_rel.size
    X = rng.standard_normal((_pos_int("n_pretrain", n), d))
    y = _labels(X @ w_rel, noise, rng)
    zy = X * y[:, None]

    def f(w):
        m = zy @ w
        return float(np.sum(np.logaddexp(0.0, -m)) + 0.5 * l2 * w @ w), -(zy.T @ special.expit(-m)) + l2 * w

    res = optimize.minimize(f, np.zeros(d), jac=True, method="L-BFGS-B", options={"maxiter": 2000, "gtol": 1e-10})
    return res.x


def is_separable(X: Any, y: Any) -> bool:
    """True if some w has ``y_i <w, x_i> >= 1`` for all i (homogeneous linear separability),
    decided by a linear program (scipy HiGHS)."""
    x, yy = _check_xy(X, y)
    res = optimize.linprog(
        c=np.zeros(x.shape[1]),
        A_ub=-(x * yy[:, None]),
        b_ub=-np.ones(x.shape[0]),
        bounds=[(None, None)] * x.shape[1],
        method="highs",
    )
    if res.status not in (0, 2):
        raise RuntimeError(f"separability LP failed: {res.message}")
    return res.status == 0


def theorem_prediction(w_star: Any, w_init: Any, basis: Any) -> np.ndarray:
    """Theorem 4.1's limit: ``w* + proj_{W-perp}(w_init)``, with W = span(basis) (orthonormal)."""
    ws = np.asarray(w_star, dtype=np.float64).reshape(-1)
    wi = np.asarray(w_init, dtype=np.float64).reshape(-1)
    B = np.asarray(basis, dtype=np.float64)
    if B.ndim != 2 or B.shape[0] != ws.size or wi.size != ws.size:
        raise ValueError(f"shapes disagree: w_star {ws.shape}, w_init {wi.shape}, basis {B.shape} (need (d,), (d,), (d, k))")
    return ws + (wi - B @ (B.T @ wi))


# --------------------------------------------------------------------------------------------
# simulation
# --------------------------------------------------------------------------------------------
@dataclass
class TheoryResult:
    """Output of :func:`simulate`.

    init_names : ["zero", "pretrained", "random_0", ...].
    theorem_errors : per init, ``||w_gd - (w* + proj_perp(w_init))||``; theorem_error : max.
    perp_drift : per init, ``||proj_perp(w_gd - w_init)||`` (0 when the orthogonal part of the
        init is preserved).
    w_star_error : max over inits of ``||proj_W(w_gd) - w*||``.
    newton_grad_norm : gradient norm at the Newton solution ``w*``.
    in_support_max_logit_diff : max over in-support test points of (max - min over inits) of
        the logit ``<w_gd, x>``.
    in_support_accuracy, out_of_support_accuracy : per init, against the noiseless ground truth
        ``sign(<w_true, x>)``.
    oos_accuracy_zero / oos_accuracy_pretrained / oos_accuracy_random_mean /
        oos_accuracy_random_std : summaries.
    lr : the step actually used; separable : whether the training data was separable.
    w_star (d,), weights (n_inits + 2, d) final GD weights in ``init_names`` order.
    """

    d: int
    k: int
    n: int
    noise: float
    steps: int
    lr: float
    seed: int
    off_subspace_noise: float
    separable: bool
    init_names: list[str]
    theorem_errors: dict[str, float]
    theorem_error: float
    perp_drift: dict[str, float]
    w_star_error: float
    newton_grad_norm: float
    in_support_max_logit_diff: float
    in_support_accuracy: dict[str, float]
    out_of_support_accuracy: dict[str, float]
    oos_accuracy_zero: float
    oos_accuracy_pretrained: float
    oos_accuracy_random_mean: float
    oos_accuracy_random_std: float
    w_star: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)

    def as_metrics(self) -> dict[str, float]:
        """Flat dict of scalars (for a DVC metrics file)."""
        out: dict[str, float] = {
            "theorem_error": self.theorem_error,
            "w_star_error": self.w_star_error,
            "max_perp_drift": max(self.perp_drift.values()),
            "in_support_max_logit_diff": self.in_support_max_logit_diff,
            "oos_accuracy_zero": self.oos_accuracy_zero,
            "oos_accuracy_pretrained": self.oos_accuracy_pretrained,
            "oos_accuracy_random_mean": self.oos_accuracy_random_mean,
            "oos_accuracy_random_std": self.oos_accuracy_random_std,
            "in_support_accuracy_mean": float(np.mean(list(self.in_support_accuracy.values()))),
            "lr": self.lr,
        }
        return {k_: float(v) for k_, v in out.items()}


def simulate(
    d: int = 20,
    k: int = 5,
    n: int = 500,
    noise: float = 0.5,
    n_inits: int = 5,
    steps: int = 2000,
    seed: int = 0,
    *,
    lr: float | None = None,
    n_test: int = 2000,
    oos_scale: float = 1.0,
    perp_strength: float = 1.0,
    relatedness: float = 0.9,
    n_pretrain: int = 2000,
    off_subspace_noise: float = 0.0,
) -> TheoryResult:
    """Numerical check of Theorem 4.1 plus the in-/out-of-support consequence.

    Data: :func:`make_subspace_data` (labels ``sign(<w_true, x> + noise * logistic)``).
    Initialisations, all run with the same :func:`fit_gd` (sum loss, ``steps``, ``lr`` --
    default ``4/||X||_op^2``):

    * ``zero`` -- w_init = 0;
    * ``pretrained`` -- :func:`pretrain_on_related_task`: logistic regression on ``n_pretrain``
      points of all of R^d labelled by a task of the given ``relatedness`` to the true one (1:
      the same task, 0: unrelated). Not the ground truth: how much it helps out of support is
      what the simulation measures;
    * ``oracle`` -- ``w_true / noise``, the ground truth on the logit scale (an upper bound);
    * ``random_i`` -- isotropic Gaussian with the same expected norm as ``w_true / noise``.

    ``w*`` comes from :func:`minimize_in_subspace` (Newton in W coordinates). Test points: in
    support ``x = B z``; out of support ``x = B z + oos_scale * B_perp u`` (z, u standard
    normal). Accuracies are against ``sign(<w_true, x>)``. ``off_subspace_noise > 0`` breaks the
    subspace assumption (the theorem then should fail).
    """
    n_inits = _pos_int("n_inits", n_inits, 0)
    steps = _pos_int("steps", steps, 0)
    n_test = _pos_int("n_test", n_test)
    oos_scale = _nonneg_float("oos_scale", oos_scale)
    noise = _nonneg_float("noise", noise, positive=True)
    data = make_subspace_data(
        d, k, n, noise, seed, perp_strength=perp_strength, off_subspace_noise=off_subspace_noise
    )
    X, y, B, P = data.X, data.y, data.basis, data.perp_basis
    separable = is_separable(X, y)
    if separable:
        raise ValueError(
            f"training data is linearly separable (n={n}, d={d}, k={k}, noise={noise}); the logistic "
            "loss has no finite minimiser -- increase noise or n"
        )
    w_star, gnorm = minimize_in_subspace(X, y, B)
    step = default_step(X) if lr is None else _nonneg_float("lr", lr, positive=True)

    rng = np.random.default_rng([seed, 1])
    w_scaled = data.w_true / noise
    inits: dict[str, np.ndarray] = {
        "zero": np.zeros(d),
        "pretrained": pretrain_on_related_task(data.w_true, relatedness, n_pretrain, noise,
                                               np.random.default_rng([seed, 2])),
        "oracle": w_scaled,
    }
    for i in range(n_inits):
        inits[f"random_{i}"] = rng.standard_normal(d) * np.linalg.norm(w_scaled) / np.sqrt(d)

    z_in = rng.standard_normal((n_test, B.shape[1]))
    x_in = z_in @ B.T
    x_out = rng.standard_normal((n_test, B.shape[1])) @ B.T + oos_scale * rng.standard_normal((n_test, P.shape[1])) @ P.T
    y_in = np.sign(x_in @ data.w_true)
    y_out = np.sign(x_out @ data.w_true)

    names = list(inits)
    weights = np.empty((len(names), d))
    errors, drift, in_acc, out_acc = {}, {}, {}, {}
    w_star_err = 0.0
    for j, name in enumerate(names):
        w0 = inits[name]
        w = fit_gd(X, y, w0, steps=steps, lr=step)
        weights[j] = w
        errors[name] = float(np.linalg.norm(w - theorem_prediction(w_star, w0, B)))
        delta = w - w0
        drift[name] = float(np.linalg.norm(delta - B @ (B.T @ delta)))
        w_star_err = max(w_star_err, float(np.linalg.norm(B @ (B.T @ w) - w_star)))
        in_acc[name] = float(np.mean(np.sign(x_in @ w) == y_in))
        out_acc[name] = float(np.mean(np.sign(x_out @ w) == y_out))
    logits_in = x_in @ weights.T
    in_diff = float(np.max(logits_in.max(axis=1) - logits_in.min(axis=1)))
    random_acc = np.array([out_acc[nm] for nm in names if nm.startswith("random_")])
    relatedness = float(relatedness)
    return TheoryResult(
        d=d,
        k=k,
        n=n,
        noise=noise,
        steps=steps,
        lr=float(step),
        seed=seed,
        off_subspace_noise=float(off_subspace_noise),
        separable=separable,
        init_names=names,
        theorem_errors=errors,
        theorem_error=max(errors.values()),
        perp_drift=drift,
        w_star_error=w_star_err,
        newton_grad_norm=gnorm,
        in_support_max_logit_diff=in_diff,
        in_support_accuracy=in_acc,
        out_of_support_accuracy=out_acc,
        oos_accuracy_zero=out_acc["zero"],
        oos_accuracy_pretrained=out_acc["pretrained"],
        oos_accuracy_random_mean=float(random_acc.mean()) if random_acc.size else float("nan"),
        oos_accuracy_random_std=float(random_acc.std()) if random_acc.size else float("nan"),
        w_star=w_star,
        weights=weights,
    )


# --------------------------------------------------------------------------------------------
# the simulation as a report: the check, two negative controls, the convergence curve
# --------------------------------------------------------------------------------------------
def theory_report(*, d: int, k: int, n: int, noise: float, inits: int, steps: int, seed: int,
                  n_test: int = 2000, oos_scale: float = 1.0, relatedness: float = 0.9, n_pretrain: int = 2000,
                  relatedness_grid=(0.0, 0.25, 0.5, 0.75, 0.9, 1.0), broken_step_factor: float = 20.0,
                  broken_off_subspace_noise: float = 0.3, curve_points: int = 12
                  ) -> tuple[dict, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The simulation at ``relatedness``, its two controls, the convergence curve, and the
    out-of-support accuracy of the pre-trained initialisation across ``relatedness_grid``.
    Returns ``(metrics, per_init, convergence, relatedness_curve)``."""
    common = dict(d=d, k=k, n=n, noise=noise, n_inits=inits, seed=seed, n_test=n_test,
                  oos_scale=oos_scale, n_pretrain=n_pretrain)
    r = simulate(steps=steps, relatedness=relatedness, **common)
    big_step = simulate(steps=steps, lr=broken_step_factor * r.lr, relatedness=relatedness, **common)
    off_w = simulate(steps=steps, off_subspace_noise=broken_off_subspace_noise, relatedness=relatedness, **common)
    others = [v for name, v in r.out_of_support_accuracy.items() if name not in ("pretrained", "oracle")]
    metrics = {
        "theorem_error": r.theorem_error,
        "w_star_error": r.w_star_error,
        "max_perp_drift": max(r.perp_drift.values()),
        "newton_grad_norm": r.newton_grad_norm,
        "in_support_max_logit_diff": r.in_support_max_logit_diff,
        "in_support_accuracy": float(np.mean(list(r.in_support_accuracy.values()))),
        "in_support_accuracy_identical": len(set(r.in_support_accuracy.values())) == 1,
        "relatedness": float(relatedness),
        "oos_accuracy_pretrained": r.oos_accuracy_pretrained,
        "oos_accuracy_oracle": r.out_of_support_accuracy["oracle"],
        "oos_accuracy_zero": r.oos_accuracy_zero,
        "oos_accuracy_random_mean": r.oos_accuracy_random_mean,
        "oos_accuracy_random_std": r.oos_accuracy_random_std,
        "pretrained_margin": r.oos_accuracy_pretrained - max(others),
        "pretrained_wins": bool(r.oos_accuracy_pretrained > max(others)),
        "lr": r.lr,
        "separable": r.separable,
        "control_big_step": {"lr": big_step.lr, "theorem_error": big_step.theorem_error,
                             "max_perp_drift": max(big_step.perp_drift.values())},
        "control_off_subspace": {"off_subspace_noise": broken_off_subspace_noise,
                                 "theorem_error": off_w.theorem_error,
                                 "max_perp_drift": max(off_w.perp_drift.values())},
    }
    per_init = pd.DataFrame({
        "init": r.init_names,
        "in_support_accuracy": [r.in_support_accuracy[i] for i in r.init_names],
        "out_of_support_accuracy": [r.out_of_support_accuracy[i] for i in r.init_names],
        "theorem_error": [r.theorem_errors[i] for i in r.init_names],
        "perp_drift": [r.perp_drift[i] for i in r.init_names],
    })
    grid = np.unique(np.round(np.geomspace(1, max(steps, 1), curve_points)).astype(int))
    curve = []
    for s in grid:
        rs = simulate(steps=int(s), relatedness=relatedness, **common)
        curve.append({"steps": int(s), "theorem_error": rs.theorem_error, "w_star_error": rs.w_star_error,
                      "in_support_max_logit_diff": rs.in_support_max_logit_diff,
                      "oos_accuracy_pretrained": rs.oos_accuracy_pretrained,
                      "oos_accuracy_random_mean": rs.oos_accuracy_random_mean})
    related = []
    for rel in relatedness_grid:
        rr = r if rel == relatedness else simulate(steps=steps, relatedness=rel, **common)
        related.append({"relatedness": float(rel), "oos_accuracy_pretrained": rr.oos_accuracy_pretrained,
                        "oos_accuracy_zero": rr.oos_accuracy_zero, "oos_accuracy_random_mean": rr.oos_accuracy_random_mean,
                        "oos_accuracy_oracle": rr.out_of_support_accuracy["oracle"],
                        "in_support_accuracy": rr.in_support_accuracy["pretrained"],
                        "theorem_error": rr.theorem_error})
    return metrics, per_init, pd.DataFrame(curve), pd.DataFrame(related)
