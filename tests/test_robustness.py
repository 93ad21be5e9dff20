"""Effective robustness: hand-computed values, interval formula, bootstrap, copies."""

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from askshift.methods import robustness as R

# A table built so that the OLS by hand is trivial. In transformed space the baselines
# are x = [-1, 0, 1, 2] and y = 0.5 x - 0.2 + e with e = [0.1, -0.1, -0.1, 0.1]:
#   mean(x) = 0.5, Sxx = 5, sum((x - mean) e) = 0  =>  slope 0.5, intercept -0.2 exactly,
#   SSE = sum(e^2) = 0.04, Syy = 0.25 * 5 + 0.04 = 1.29, r^2 = 1.25 / 1.29,
#   s_e (official, np.std ddof=0) = std0(y) sqrt((1-r^2)(n-1)/(n-2)) = sqrt(3 SSE / (2 n)) = sqrt(0.015)
#   s_e (ddof=1, textbook)        = sqrt(SSE / (n - 2)) = sqrt(0.02)
X_T = np.array([-1.0, 0.0, 1.0, 2.0])
E = np.array([0.1, -0.1, -0.1, 0.1])
Y_T = 0.5 * X_T - 0.2 + E
# t(df=2) quantile in closed form: t_p = (2p - 1) sqrt(2 / (4 p (1 - p)))
T975_2 = 0.95 * np.sqrt(2 / (4 * 0.975 * 0.025))  # 4.3027 (tables: 4.303)
INV = {"probit": stats.norm.cdf, "logit": special.expit}


def _baselines(scale):
    inv = INV[scale]
    return inv(X_T), inv(Y_T)


@pytest.mark.parametrize("scale", ["probit", "logit"])
def test_fit_matches_hand_algebra(scale):
    xr, yr = _baselines(scale)
    fit = R.fit_line(xr, yr, scale)
    assert fit.slope == pytest.approx(0.5, abs=1e-12)
    assert fit.intercept == pytest.approx(-0.2, abs=1e-12)
    assert fit.r2 == pytest.approx(1.25 / 1.29, abs=1e-12)
    assert fit.r == pytest.approx(np.sqrt(1.25 / 1.29), abs=1e-12)
    assert fit.n == 4
    assert fit.x_mean == pytest.approx(0.5, abs=1e-12)
    assert fit.sxx == pytest.approx(5.0, abs=1e-12)
    assert fit.s_e == pytest.approx(np.sqrt(0.015), abs=1e-12)
    assert fit.t_crit == pytest.approx(T975_2, abs=1e-10)
    q = fit.quality()
    assert set(q) == {"scale", "slope", "intercept", "r", "r2", "n"} and q["n"] == 4
    assert R.fit_line(xr, yr, scale, ddof=1).s_e == pytest.approx(np.sqrt(0.02), abs=1e-12)


@pytest.mark.parametrize("scale", ["probit", "logit"])
def test_er_and_interval_hand_values(scale):
    inv = INV[scale]
    xr, yr = _baselines(scale)
    fit = R.fit_line(xr, yr, scale)
    t = T975_2
    # model A at x = mean(x) = 0.5: prediction 0.05, band half-width t s_e sqrt(1/4)
    # model B at x = 3: prediction 1.3, half-width t s_e sqrt(1/4 + 2.5^2 / 5)
    ref = inv(np.array([0.5, 3.0]))
    shift = inv(np.array([0.3, 1.5]))
    res = R.effective_robustness(fit, ref, shift, models=["A", "B"])
    pred_t = np.array([0.05, 1.3])
    h = t * np.sqrt(0.015) * np.sqrt(np.array([0.25, 0.25 + 6.25 / 5]))
    np.testing.assert_allclose(res.predicted, inv(pred_t), atol=1e-12)
    np.testing.assert_allclose(res.er, shift - inv(pred_t), atol=1e-12)
    np.testing.assert_allclose(res.er_low, shift - inv(pred_t + h), atol=1e-12)
    np.testing.assert_allclose(res.er_high, shift - inv(pred_t - h), atol=1e-12)
    assert np.all(res.er_low < res.er) and np.all(res.er < res.er_high)
    assert res.models == ("A", "B")
    # in transformed space the band is narrowest at mean(x)
    np.testing.assert_allclose(fit.half_width(ref), h, atol=1e-12)


def test_interval_formula_against_independent_linregress():
    rng = np.random.default_rng(3)
    n = 12
    x = rng.uniform(0.3, 0.9, n)
    y = np.clip(x - 0.15 + rng.normal(0, 0.02, n), 0.01, 0.99)
    xt, yt = stats.norm.ppf(x), stats.norm.ppf(y)
    lr = stats.linregress(xt, yt)
    resid = yt - (lr.slope * xt + lr.intercept)
    sse = np.sum(resid**2)
    sxx = np.sum((xt - xt.mean()) ** 2)
    tc = stats.t(n - 2).ppf(0.975)
    grid = np.array([0.2, 0.5, 0.75, 0.95])
    g = stats.norm.ppf(grid)
    for ddof, s_e in [(1, np.sqrt(sse / (n - 2))), (0, np.sqrt(sse / (n - 2)) * np.sqrt((n - 1) / n))]:
        fit = R.fit_line(x, y, "probit", ddof=ddof)
        assert fit.slope == pytest.approx(lr.slope, abs=1e-12)
        assert fit.intercept == pytest.approx(lr.intercept, abs=1e-12)
        assert fit.r == pytest.approx(lr.rvalue, abs=1e-12)
        assert fit.s_e == pytest.approx(s_e, rel=1e-10)
        h = tc * s_e * np.sqrt(1 / n + (g - xt.mean()) ** 2 / sxx)
        lo, pred, hi = fit.band(grid)
        np.testing.assert_allclose(pred, stats.norm.cdf(lr.slope * g + lr.intercept), atol=1e-12)
        np.testing.assert_allclose(lo, stats.norm.cdf(lr.slope * g + lr.intercept - h), atol=1e-12)
        np.testing.assert_allclose(hi, stats.norm.cdf(lr.slope * g + lr.intercept + h), atol=1e-12)
    # a 90% band is narrower than the 95% one
    assert R.fit_line(x, y, confidence=0.9).half_width(0.5) < R.fit_line(x, y).half_width(0.5)


def test_er_from_frame_and_subset():
    xr, yr = _baselines("probit")
    df = pd.DataFrame({
        "model": ["b1", "b2", "b3", "b4", "pt"],
        "kind": ["scratch"] * 4 + ["pretrained"],
        "ref": list(xr) + [stats.norm.cdf(0.5)],
        "shift": list(yr) + [stats.norm.cdf(0.3)],
    })
    res = R.er_from_frame(df, "ref", "shift", df["kind"] == "scratch")
    assert res.fit.n == 4 and res.fit.slope == pytest.approx(0.5)
    pt = res.subset(~res.is_baseline)
    assert pt.models == ("pt",)
    assert pt.er[0] == pytest.approx(stats.norm.cdf(0.3) - stats.norm.cdf(0.05), abs=1e-12)
    # baseline residuals in transformed space are e, so baseline ER signs follow e
    np.testing.assert_array_equal(np.sign(res.er[:4]), np.sign(E))
    frame = res.to_frame()
    for c in ["model", "ref_acc", "shift_acc", "predicted", "er", "er_low", "er_high",
              "is_baseline", "scale", "slope", "intercept", "r", "r2", "n_baseline"]:
        assert c in frame.columns
    assert (frame["n_baseline"] == 4).all()
    s = pt.summary()
    assert s["n"] == 1 and s["argmax_model"] == "pt" and s["fit"]["n"] == 4
    # model names from the index when model_col=None
    res2 = R.er_from_frame(df.set_index("model"), "ref", "shift", (df["kind"] == "scratch").to_numpy(),
                           model_col=None)
    assert res2.models == tuple(df["model"])
    np.testing.assert_allclose(res2.er, res.er)


def test_clipping_makes_extremes_finite():
    fit = R.fit_line([0.0, 0.5, 1.0, 0.7], [0.0, 0.4, 1.0, 0.6])
    assert np.isfinite([fit.slope, fit.intercept, fit.r, fit.s_e]).all()
    res = R.effective_robustness(fit, [1.0, 0.0], [1.0, 0.0])
    assert np.isfinite(res.er).all() and np.isfinite(res.er_low).all()
    assert R.transform(1.0) == pytest.approx(stats.norm.ppf(1 - R.EPS))
    assert R.transform(0.0, "logit") == pytest.approx(special.logit(R.EPS))


@pytest.mark.parametrize(
    "x, y, match",
    [
        ([0.5, 0.6], [0.4, 0.5], "at least 3 baseline"),
        ([0.5, 0.6, 1.2], [0.4, 0.5, 0.6], r"'ref'.*model '2'.*outside \[0, 1\]"),
        ([0.5, 0.6, 0.7], [0.4, np.nan, 0.6], r"'shift'.*model '1'.*missing"),
        ([0.6, 0.6, 0.6], [0.4, 0.5, 0.6], "same 'ref' accuracy"),
        ([0.5, 0.6, 0.7], [0.4, 0.5], "baseline"),
    ],
)
def test_fit_errors(x, y, match):
    with pytest.raises(ValueError, match=match):
        R.fit_line(x, y)


def test_errors_name_model_and_column():
    with pytest.raises(R.AccuracyError, match=r"column 'sketch': model 'vit' has accuracy 57 .*percent"):
        R.check_accuracies([0.5, 57.0], column="sketch", models=["rn", "vit"])
    with pytest.raises(R.AccuracyError, match=r"model 'rn' has a non-numeric"):
        R.check_accuracies(np.array(["abc", 0.5], dtype=object), column="c", models=["rn", "vit"])
    with pytest.raises(ValueError, match="unknown scale 'probitt'.*probit, logit"):
        R.fit_line([0.5, 0.6, 0.7], [0.4, 0.5, 0.6], "probitt")
    df = pd.DataFrame({"model": ["a", "b", "c"], "ref": [0.5, 0.6, 0.7], "s": [0.4, 0.5, np.nan]})
    with pytest.raises(R.AccuracyError, match=r"column 's': model 'c'"):
        R.er_from_frame(df, "ref", "s", [True, True, True])
    with pytest.raises(KeyError, match="available columns: model, ref, s"):
        R.er_from_frame(df, "ref", "nope", [True, True, True])


def test_bootstrap_deterministic_and_contains_point():
    rng = np.random.default_rng(0)
    bx = rng.uniform(0.4, 0.85, 30)
    by = stats.norm.cdf(1.1 * stats.norm.ppf(bx) - 0.4 + rng.normal(0, 0.05, 30))
    ref = np.array([0.6, 0.75, 0.8])
    shift = np.array([0.55, 0.66, 0.74])
    a = R.bootstrap_er(bx, by, ref, shift, n_boot=300, seed=7, models=["m1", "m2", "m3"])
    b = R.bootstrap_er(bx, by, ref, shift, n_boot=300, seed=7, models=["m1", "m2", "m3"])
    c = R.bootstrap_er(bx, by, ref, shift, n_boot=300, seed=8, models=["m1", "m2", "m3"])
    np.testing.assert_array_equal(a.er_low, b.er_low)
    np.testing.assert_array_equal(a.er_high, b.er_high)
    assert not np.array_equal(a.er_low, c.er_low)
    assert np.all(a.er_low <= a.er) and np.all(a.er <= a.er_high)
    assert np.all(a.er_low < a.er_high)
    assert a.n_used == 300 and a.fit.n == 30
    point = R.effective_robustness(R.fit_line(bx, by), ref, shift)
    np.testing.assert_allclose(a.er, point.er)
    df = a.to_frame()
    assert list(df["model"]) == ["m1", "m2", "m3"] and (df["n_baseline"] == 30).all()
    # logit works too
    d = R.bootstrap_er(bx, by, ref, shift, "logit", n_boot=100, seed=1)
    assert np.all(d.er_low <= d.er) and np.all(d.er <= d.er_high)


def test_average_copies_and_variant_summary():
    df = pd.DataFrame({
        "model": ["ft", "ft", "ft", "lpft", "lpft", "scratch"],
        "variant": ["clip", "clip", "clip", "clip", "clip", "none"],
        "seed": [0, 1, 2, 0, 1, 0],
        "ref": [0.80, 0.82, 0.84, 0.70, 0.72, 0.6],
        "shift": [0.60, 0.61, 0.65, 0.50, 0.54, 0.4],
    })
    avg = R.average_copies(df, "model", ["ref", "shift"])
    assert list(avg.columns) == ["model", "ref", "shift", "n_copies", "variant"]
    assert list(avg["model"]) == ["ft", "lpft", "scratch"]
    np.testing.assert_allclose(avg["ref"], [0.82, 0.71, 0.6])
    np.testing.assert_allclose(avg["shift"], [0.62, 0.52, 0.4])
    assert list(avg["n_copies"]) == [3, 2, 1]
    assert "seed" not in avg.columns  # varies within a model
    with pytest.raises(R.AccuracyError, match="'shift'.*'model': 'ft'"):
        R.average_copies(df.assign(shift=[np.nan, 0.6, 0.6, 0.5, 0.5, 0.4]), "model", ["ref", "shift"])

    er = pd.DataFrame({"model": ["a", "b", "c", "d"], "variant": ["x", "x", "y", "y"],
                       "er": [0.01, 0.03, -0.02, 0.05], "n_baseline": 10})
    s = R.summarize_er(er, by="variant").set_index("variant")
    assert s.loc["x", "n"] == 2 and s.loc["x", "mean_er"] == pytest.approx(0.02)
    assert s.loc["x", "max_er"] == pytest.approx(0.03) and s.loc["x", "argmax_model"] == "b"
    assert s.loc["y", "mean_er"] == pytest.approx(0.015) and s.loc["y", "max_er"] == pytest.approx(0.05)
    assert (s["n_baseline"] == 10).all()
    overall = R.summarize_er(er)
    assert len(overall) == 1 and overall.loc[0, "n"] == 4 and overall.loc[0, "mean_er"] == pytest.approx(0.0175)


def test_line_plot_data():
    xr, yr = _baselines("probit")
    fit = R.fit_line(xr, yr)
    pdat = R.line_plot_data(fit, num=50)
    assert len(pdat) == 50
    assert pdat["x"].iloc[0] == pytest.approx(xr.min()) and pdat["x"].iloc[-1] == pytest.approx(xr.max())
    assert (np.diff(pdat["x"]) > 0).all() and (np.diff(pdat["predicted"]) > 0).all()
    assert (pdat["lower"] <= pdat["predicted"]).all() and (pdat["predicted"] <= pdat["upper"]).all()
    np.testing.assert_allclose(np.diff(pdat["x_t"]), np.diff(pdat["x_t"])[0])  # even in probit space
    wide = R.line_plot_data(fit, extra_points=[0.999])
    assert wide["x"].iloc[-1] == pytest.approx(0.999)
    with pytest.raises(ValueError):
        R.line_plot_data(fit, x_range=(0.9, 0.2))
