"""`python -m askshift er`: held-out reproduction, outputs, and every input error."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from askshift.methods import robustness as R
from askshift.cli import main
from askshift.cli.er import OUT_COLUMNS

REPO = Path(__file__).resolve().parents[1]
HELDOUT = REPO.parent / "shared" / "heldout" / "timm-sec3"


# --------------------------------------------------------------------------- held-out
@pytest.fixture(scope="module")
def heldout():
    acc, exp = HELDOUT / "accuracies.csv", HELDOUT / "expected.json"
    if not (acc.is_file() and exp.is_file()):
        pytest.skip(f"held-out timm Sec. 3 data not found at {HELDOUT} (needs ../shared/heldout/timm-sec3 "
                    "next to the repo, with accuracies.csv and expected.json)")
    return acc, json.loads(exp.read_text())


@pytest.mark.parametrize("scale", ["probit", "logit"])
def test_heldout_cli_reproduces_expected(heldout, scale, tmp_path, capsys):
    acc, exp = heldout
    shifts = sorted({k.split("/")[0] for k in exp["results"]})
    out = tmp_path / "er.csv"
    argv = ["er", str(acc), "--ref", "imagenet", "--baseline", "group=baseline", "--percent",
            "--scale", scale, "--out", str(out)]
    for s in shifts:
        argv += ["--shift", s]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    df = pd.read_csv(out)
    assert list(df.columns) == OUT_COLUMNS
    assert (df["scale"] == scale).all()
    for s in shifts:
        e = exp["results"][f"{s}/{scale}"]
        assert e["ref"] == "imagenet" and e["scale"] == scale
        d = df[df["shift"] == s].set_index("model")
        assert len(d) == e["n_pretrained"]
        per = pd.Series(e["per_model_er"])
        assert set(d.index) == set(per.index)
        np.testing.assert_allclose(d.loc[per.index, "er"] / 100, per.to_numpy(), rtol=0, atol=1e-9)
        er = d["er"] / 100
        assert er.mean() == pytest.approx(e["pretrained_mean_er"], abs=1e-9)
        assert er.max() == pytest.approx(e["pretrained_max_er"], abs=1e-9)
        assert er.idxmax() == e["pretrained_argmax_model"]
        assert er.median() == pytest.approx(e["pretrained_median_er"], abs=1e-9)
        assert er.min() == pytest.approx(e["pretrained_min_er"], abs=1e-9)
        assert int((er > 0).sum()) == e["pretrained_n_er_above_0"]
        assert (d["er_low"] <= d["er"]).all() and (d["er"] <= d["er_high"]).all()
        f = e["fit_on_baselines"]
        assert f"fit: slope={f['slope']:.6f} intercept={f['intercept']:.6f} r={f['r']:.6f}" in printed
        assert f"n={f['n']}" in printed
        assert f"{s}: {e['n_pretrained']} non-baseline models, mean ER = {e['pretrained_mean_er'] * 100:.4f}, " \
               f"max ER = {e['pretrained_max_er'] * 100:.4f} ({e['pretrained_argmax_model']})" in printed


def test_heldout_library_fit_and_headline(heldout):
    acc, exp = heldout
    df = pd.read_csv(acc)
    cols = ["imagenet", "imagenetv2", "sketch", "imagenet_r"]
    df[cols] = df[cols] / 100
    for key, e in exp["results"].items():
        shift, scale = key.split("/")
        res = R.er_from_frame(df, "imagenet", shift, df["group"] == "baseline", scale=scale)
        f = e["fit_on_baselines"]
        assert res.fit.slope == pytest.approx(f["slope"], abs=1e-9)
        assert res.fit.intercept == pytest.approx(f["intercept"], abs=1e-9)
        assert res.fit.r == pytest.approx(f["r"], abs=1e-9)
        assert res.fit.n == f["n"]
        base = res.subset(res.is_baseline)
        assert base.er.mean() == pytest.approx(e["baseline_er_mean"], abs=1e-9)
        assert base.er.max() == pytest.approx(e["baseline_er_max"], abs=1e-9)
        assert base.er.std() == pytest.approx(e["baseline_er_std"], abs=1e-9)  # np.std, ddof=0
    h = exp["headline"]
    v2 = R.er_from_frame(df, "imagenet", "imagenetv2", df["group"] == "baseline")
    v2 = v2.subset(~v2.is_baseline).summary()
    assert v2["max_er"] == pytest.approx(h["max_er_v2_pretrained_probit"], abs=1e-9)
    assert v2["argmax_model"] == h["argmax_v2_model"]
    sk = R.er_from_frame(df, "imagenet", "sketch", df["group"] == "baseline")
    assert sk.subset(~sk.is_baseline).summary()["mean_er"] == pytest.approx(
        h["mean_er_sketch_pretrained_probit"], abs=1e-9)


# --------------------------------------------------------------------------- small table
def _table(tmp_path, percent=False, **extra):
    """4 baselines on an exact probit line 0.5 x - 0.2 (+-0.1) and 2 pre-trained models."""
    x = np.array([-1.0, 0.0, 1.0, 2.0, 0.5, 3.0])
    y = np.array([-0.6, -0.3, 0.2, 0.9, 0.3, 1.5])  # baselines: 0.5x - 0.2 + [.1,-.1,-.1,.1]
    k = 100.0 if percent else 1.0
    df = pd.DataFrame({
        "model": ["b1", "b2", "b3", "b4", "ptA", "ptB"],
        "kind": ["scratch"] * 4 + ["pre"] * 2,
        "ref": stats.norm.cdf(x) * k,
        "shift": stats.norm.cdf(y) * k,
        "shift2": stats.norm.cdf(y - 0.1) * k,
    })
    for c, v in extra.items():
        df[c] = v
    p = tmp_path / "t.csv"
    df.to_csv(p, index=False)
    return p, df


def test_small_table_values_units_and_formats(tmp_path, capsys):
    p, _ = _table(tmp_path)
    out = tmp_path / "o.csv"
    assert main(["er", str(p), "--ref", "ref", "--shift", "shift", "--baseline", "kind=scratch",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "fit: slope=0.500000 intercept=-0.200000" in text and "n=4" in text
    d = pd.read_csv(out)
    assert list(d.columns) == OUT_COLUMNS and list(d["model"]) == ["ptA", "ptB"]
    expect = stats.norm.cdf([0.3, 1.5]) - stats.norm.cdf([0.05, 1.3])
    np.testing.assert_allclose(d["er"], expect, atol=1e-12)
    assert f"shift: 2 non-baseline models, mean ER = {expect.mean():.6f}, max ER = {expect.max():.6f} (ptA)" in text

    # percent input gives the same numbers x 100; JSON holds the same records
    pp, _ = _table(tmp_path, percent=True)
    outj = tmp_path / "o.json"
    assert main(["er", str(pp), "--ref", "ref", "--shift", "shift", "--baseline", "kind=scratch",
                 "--percent", "--out", str(outj)]) == 0
    j = pd.DataFrame(json.loads(outj.read_text()))
    assert list(j.columns) == OUT_COLUMNS
    for c in ["ref_acc", "shift_acc", "predicted", "er", "er_low", "er_high"]:
        np.testing.assert_allclose(j[c], d[c] * 100, rtol=1e-10)


def test_multiple_shifts_logit_and_index_models(tmp_path, capsys):
    p, df = _table(tmp_path)
    df.drop(columns="model").to_csv(p, index=False)
    out = tmp_path / "o.csv"
    assert main(["er", str(p), "--ref", "ref", "--shift", "shift", "--shift", "shift2",
                 "--baseline", "kind=scratch", "--scale", "logit", "--out", str(out)]) == 0
    d = pd.read_csv(out)
    assert list(d["shift"]) == ["shift", "shift", "shift2", "shift2"]
    assert list(d["model"]) == [4, 5, 4, 5]  # row index
    assert (d["scale"] == "logit").all()
    text = capsys.readouterr().out
    assert text.count("fit: slope=") == 2


def test_model_col_and_numeric_baseline(tmp_path, capsys):
    p, _ = _table(tmp_path, name=list("abcdef"), is_base=[1, 1, 1, 1, 0, 0])
    out = tmp_path / "o.csv"
    assert main(["er", str(p), "--ref", "ref", "--shift", "shift", "--baseline", "is_base=1",
                 "--model-col", "name", "--out", str(out)]) == 0
    assert list(pd.read_csv(out)["model"]) == ["e", "f"]


def test_python_dash_m_entry_point(tmp_path):
    p, _ = _table(tmp_path)
    ok = subprocess.run([sys.executable, "-m", "askshift", "er", str(p), "--ref", "ref", "--shift", "shift",
                         "--baseline", "kind=scratch"], capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    assert "fit: slope=0.500000" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "askshift", "er", str(p), "--ref", "nope", "--shift", "shift",
                          "--baseline", "kind=scratch"], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert "available columns: model, kind, ref, shift, shift2" in bad.stderr


# --------------------------------------------------------------------------- errors
def _err(capsys, argv):
    code = main(argv)
    cap = capsys.readouterr()
    assert code == 2, cap
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1, cap.err
    assert "Traceback" not in cap.err
    assert not cap.out
    return lines[0]


def _argv(p, *more, baseline="kind=scratch", ref="ref", shift="shift"):
    return ["er", str(p), "--ref", ref, "--shift", shift, "--baseline", baseline, *more]


def test_error_missing_file(tmp_path, capsys):
    msg = _err(capsys, _argv(tmp_path / "nope.csv"))
    assert "table not found" in msg and "nope.csv" in msg


def test_error_missing_column_lists_available(tmp_path, capsys):
    p, _ = _table(tmp_path)
    msg = _err(capsys, _argv(p, shift="sketch"))
    assert "--shift column 'sketch' not found" in msg and "available columns: model, kind, ref, shift, shift2" in msg
    msg = _err(capsys, _argv(p, baseline="group=x"))
    assert "--baseline column 'group' not found" in msg
    msg = _err(capsys, _argv(p, "--model-col", "name"))
    assert "--model-col column 'name' not found" in msg


def test_error_accuracy_out_of_range(tmp_path, capsys):
    p, df = _table(tmp_path)
    df.loc[4, "shift"] = 1.7
    df.to_csv(p, index=False)
    msg = _err(capsys, _argv(p))
    assert "row 6 (model 'ptA'), column 'shift'" in msg and "1.7 is outside [0, 1]" in msg and "--percent" in msg
    pp, dfp = _table(tmp_path, percent=True)
    dfp.loc[1, "ref"] = 101.0
    dfp.to_csv(pp, index=False)
    msg = _err(capsys, _argv(pp, "--percent"))
    assert "model 'b2'), column 'ref'" in msg and "outside [0, 100]" in msg
    dfp.loc[1, "ref"] = np.nan
    dfp.to_csv(pp, index=False)
    msg = _err(capsys, _argv(pp, "--percent"))
    assert "model 'b2'), column 'ref': accuracy is missing" in msg
    dfp["ref"] = dfp["ref"].astype(object)
    dfp.loc[1, "ref"] = "n/a?"
    dfp.to_csv(pp, index=False)
    msg = _err(capsys, _argv(pp, "--percent"))
    assert "model 'b2'), column 'ref': accuracy is not a finite number" in msg


def test_error_too_few_baselines(tmp_path, capsys):
    p, _ = _table(tmp_path, kind=["scratch", "scratch", "pre", "pre", "pre", "pre"])
    msg = _err(capsys, _argv(p))
    assert "only 2 baseline row(s) with kind='scratch'" in msg and "at least 3" in msg


def test_error_no_matching_rows(tmp_path, capsys):
    p, _ = _table(tmp_path)
    msg = _err(capsys, _argv(p, baseline="kind=baseline"))
    assert "no rows with kind='baseline'" in msg and "'scratch'" in msg and "'pre'" in msg


@pytest.mark.parametrize("spec", ["kind", "=scratch", "kind=", ""])
def test_error_malformed_baseline(tmp_path, capsys, spec):
    p, _ = _table(tmp_path)
    msg = _err(capsys, _argv(p, baseline=spec))
    assert "malformed --baseline" in msg and "COL=VALUE" in msg


def test_error_bad_out_extension_and_args(tmp_path, capsys):
    p, _ = _table(tmp_path)
    msg = _err(capsys, _argv(p, "--out", str(tmp_path / "o.txt")))
    assert "unknown extension '.txt'" in msg and ".csv or .json" in msg
    assert not (tmp_path / "o.txt").exists()
    msg = _err(capsys, _argv(p, "--scale", "cloglog"))
    assert "invalid choice" in msg
    msg = _err(capsys, ["er", str(p), "--ref", "ref", "--baseline", "kind=scratch"])
    assert "--shift" in msg and "required" in msg
    msg = _err(capsys, ["frobnicate"])
    assert "invalid choice" in msg


def test_error_duplicate_models_and_degenerate_fit(tmp_path, capsys):
    p, _ = _table(tmp_path, model=["b1", "b1", "b3", "b4", "ptA", "ptB"])
    msg = _err(capsys, _argv(p))
    assert "model 'b1' appears in more than one row" in msg
    p, _ = _table(tmp_path, ref=[0.5, 0.5, 0.5, 0.5, 0.6, 0.7])
    msg = _err(capsys, _argv(p))
    assert "shift 'shift'" in msg and "same 'ref' accuracy" in msg
