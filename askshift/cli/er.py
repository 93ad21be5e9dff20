"""``python -m askshift er``: effective robustness of every model of an accuracy table against
the line fitted on its baseline rows (any models, e.g. the paper's published timm accuracies)."""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd

from askshift.cli import CLIError, register
from askshift.io import write_text
from askshift.methods.robustness import AccuracyError, FitError, er_from_frame

OUT_COLUMNS = ["model", "shift", "scale", "ref_acc", "shift_acc", "predicted", "er", "er_low", "er_high"]


def _configure_er(p: argparse.ArgumentParser) -> None:
    p.add_argument("table", metavar="TABLE.csv", help="one row per model, one column per accuracy")
    p.add_argument("--ref", required=True, metavar="COL", help="reference accuracy column (x axis)")
    p.add_argument("--shift", required=True, action="append", metavar="COL",
                   help="shifted accuracy column (y axis); repeat for several shifts")
    p.add_argument("--baseline", required=True, metavar="COL=VALUE",
                   help="baseline (from-scratch) rows are those where column COL equals VALUE")
    p.add_argument("--scale", choices=["probit", "logit"], default="probit", help="axis scaling (default probit)")
    p.add_argument("--percent", action="store_true", help="accuracies are in percent [0, 100] (input and output)")
    p.add_argument("--model-col", default=None, metavar="COL",
                   help="column with the model name (default 'model' if present, else the row index)")
    p.add_argument("--out", default=None, metavar="FILE", help="also write the results as .csv or .json")


def _parse_baseline(spec: str) -> tuple[str, str]:
    col, sep, value = spec.partition("=")
    col, value = col.strip(), value.strip()
    if not sep or not col or not value:
        raise CLIError(f"malformed --baseline {spec!r}: expected COL=VALUE, e.g. --baseline group=baseline")
    return col, value


def _columns_msg(df: pd.DataFrame) -> str:
    return ", ".join(map(str, df.columns))


def _baseline_mask(df: pd.DataFrame, col: str, value: str) -> np.ndarray:
    s = df[col]
    mask = s.astype(str).str.strip().to_numpy() == value
    if not mask.any() and pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        try:
            mask = (s == float(value)).to_numpy()
        except ValueError:
            pass
    if not mask.any() and pd.api.types.is_bool_dtype(s) and value.lower() in ("true", "false"):
        mask = (s == (value.lower() == "true")).to_numpy()
    if not mask.any():
        vals = pd.unique(s.astype(str))
        shown = ", ".join(repr(v) for v in vals[:10]) + (", ..." if len(vals) > 10 else "")
        raise CLIError(f"no rows with {col}={value!r}; values in column {col!r}: {shown}")
    return mask


def _read_table(path: str) -> pd.DataFrame:
    p = Path(path)
    if not p.exists():
        raise CLIError(f"table not found: {path}")
    if p.is_dir():
        raise CLIError(f"table is a directory, not a CSV file: {path}")
    try:
        df = pd.read_csv(p)
    except pd.errors.EmptyDataError:
        raise CLIError(f"table is empty: {path}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CLIError(f"cannot parse {path} as CSV: {first}") from None
    if df.empty:
        raise CLIError(f"table has a header but no rows: {path}")
    with p.open(newline="", encoding="utf-8", errors="replace") as f:
        header = [c.strip() for c in next(csv.reader(f))]
    dup = [c for i, c in enumerate(header) if c in header[:i]]
    if dup:  # pandas would silently rename the second one `<name>.1`
        raise CLIError(f"column {dup[0]!r} appears more than once in the header of {path}")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _check_column(df: pd.DataFrame, col: str, what: str) -> None:
    if col not in df.columns:
        raise CLIError(f"{what} column {col!r} not found; available columns: {_columns_msg(df)}")


def _check_acc_column(df: pd.DataFrame, col: str, models: list[str], upper: float, hint: str) -> np.ndarray:
    values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    for i, (raw, v) in enumerate(zip(df[col].tolist(), values)):
        where = f"row {i + 2} (model {models[i]!r}), column {col!r}"  # +2: header line, 1-based
        if not np.isfinite(v):
            what = "missing" if pd.isna(raw) else f"not a finite number ({raw!r})"
            raise CLIError(f"{where}: accuracy is {what}")
        if v < 0 or v > upper:
            raise CLIError(f"{where}: accuracy {v:g} is outside [0, {upper:g}]{hint}")
    return values


def _fmt_table(df: pd.DataFrame, digits: int) -> str:
    fmt = {c: (lambda v, d=digits: f"{v:.{d}f}") for c in df.columns if c != "model"}
    if "model" in df.columns:
        w = max([len("model"), *(len(str(m)) for m in df["model"])])
        df = df.rename(columns={"model": "model".ljust(w)})
        fmt["model".ljust(w)] = lambda m, w=w: str(m).ljust(w)
    return df.to_string(index=False, formatters=fmt)


@register("er", help="effective robustness of every non-baseline model against the baseline fit",
          configure=_configure_er)
def run_er(args: argparse.Namespace) -> int:
    out_path = None
    if args.out is not None:
        out_path = Path(args.out)
        if out_path.suffix.lower() not in (".csv", ".json"):
            raise CLIError(f"--out {args.out!r}: unknown extension {out_path.suffix!r}; use .csv or .json")
    base_col, base_value = _parse_baseline(args.baseline)
    shifts = list(dict.fromkeys(args.shift))  # drop repeats, keep order
    df = _read_table(args.table)

    if args.model_col is not None:
        _check_column(df, args.model_col, "--model-col")
        model_col = args.model_col
    else:
        model_col = "model" if "model" in df.columns else None
    _check_column(df, args.ref, "--ref")
    for s in shifts:
        _check_column(df, s, "--shift")
    _check_column(df, base_col, "--baseline")

    if model_col is None:
        models = [str(i) for i in df.index]
    else:
        if df[model_col].isna().any():
            i = int(np.flatnonzero(df[model_col].isna().to_numpy())[0])
            raise CLIError(f"row {i + 2}: model name in column {model_col!r} is missing")
        models = [str(m) for m in df[model_col]]
        dup = pd.Series(models)[pd.Series(models).duplicated()]
        if len(dup):
            raise CLIError(f"model {dup.iloc[0]!r} appears in more than one row of column {model_col!r}; "
                           "the table needs one row per model (average repeated copies first)")

    upper = 100.0 if args.percent else 1.0
    unit = 100.0 if args.percent else 1.0
    hint = "" if args.percent else " (percentages? pass --percent)"
    mask = _baseline_mask(df, base_col, base_value)
    if mask.sum() < 3:
        raise CLIError(f"only {int(mask.sum())} baseline row(s) with {base_col}={base_value!r}; "
                       "need at least 3 to fit the line and its interval")

    acc = pd.DataFrame({"model": models})
    for col in dict.fromkeys([args.ref, *shifts]):
        acc[col] = _check_acc_column(df, col, models, upper, hint) / unit
    if args.percent and (acc.drop(columns="model").to_numpy() <= 0.01).all():
        raise CLIError(f"--percent, but every accuracy in {', '.join(dict.fromkeys([args.ref, *shifts]))} is at "
                       "most 1: they look like fractions in [0, 1]; drop --percent")

    rows = []
    blocks = []
    units = "percent" if args.percent else "accuracy in [0, 1]"
    for s in shifts:
        try:
            res = er_from_frame(acc, args.ref, s, mask, model_col="model", scale=args.scale)
        except (AccuracyError, FitError, ValueError) as e:
            raise CLIError(f"shift {s!r}: {e}") from None
        f = res.fit
        others = res.subset(~res.is_baseline)
        table = pd.DataFrame({
            "model": list(others.models),
            "shift": s,
            "scale": args.scale,
            "ref_acc": others.ref_acc * unit,
            "shift_acc": others.shift_acc * unit,
            "predicted": others.predicted * unit,
            "er": others.er * unit,
            "er_low": others.er_low * unit,
            "er_high": others.er_high * unit,
        })
        rows.append(table)
        lines = [
            f"== shift {s!r} vs ref {args.ref!r}, scale {args.scale}, baseline {base_col}={base_value} "
            f"({units}; ER interval: {int(round(f.confidence * 100))}% mean-prediction band)",
            f"fit: slope={f.slope:.6f} intercept={f.intercept:.6f} r={f.r:.6f} r^2={f.r2:.6f} n={f.n}",
        ]
        if len(others):
            shown = table.drop(columns=["shift", "scale"])
            lines.append(_fmt_table(shown, 4 if args.percent else 6))
            s_ = others.summary()
            d = 4 if args.percent else 6
            lines.append(
                f"{s}: {s_['n']} non-baseline models, mean ER = {s_['mean_er'] * unit:.{d}f}, "
                f"max ER = {s_['max_er'] * unit:.{d}f} ({s_['argmax_model']})"
            )
        else:
            lines.append(f"{s}: no non-baseline models (every row has {base_col}={base_value})")
        blocks.append("\n".join(lines))
    print("\n\n".join(blocks))

    if out_path is not None:
        out = pd.concat(rows, ignore_index=True)[OUT_COLUMNS]
        if out_path.suffix.lower() == ".csv":
            text = out.to_csv(index=False)
        else:
            text = json.dumps(out.to_dict(orient="records"), indent=1, allow_nan=False) + "\n"
        try:
            write_text(out_path, text)
        except OSError as e:
            raise CLIError(f"cannot write --out {args.out!r}: {e.strerror or e}") from None
    return 0
