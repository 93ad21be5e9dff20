"""Appendix C.1 sweeps as DVC experiments, and the collector that makes them one table.

The sweeps (:data:`SWEEPS`) are one-parameter-at-a-time variations of the default study:

- ``bias``: bias strength of the in-support shifts, ``curate.spurious_tint.p`` 0.5..0.9 and
  ``curate.label_shift.p_minority`` 0.1..0.3 (the defaults 0.9 / 0.2 are the baseline row);
- ``finetune``: fine-tuning hyper-parameters (epochs, lr, weight decay, batch size).

Each point is queued with ``dvc exp run --queue -S key=value`` and the queue is run with
``dvc queue start -j N`` (see the README for N). ``python -m askshift sweeps`` then reads
``dvc exp show --csv`` and writes one row per experiment: what was changed against the baseline
row, the swept parameters, and the headline metrics of every stage (ER per shift, the arms of
the interventions and curated stages, ER per part of the split stage, ...).

``python -m askshift sweeps --queue bias`` queues a named sweep (``--dry-run`` prints the
commands instead); ``--list`` shows the sweeps.
"""
from __future__ import annotations

import argparse
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd

from askshift.cli import CLIError, register
from askshift.io import flatten, write_text

#: name -> list of points; a point is {param key: value} (one key each: one-at-a-time sweeps).
SWEEPS: dict[str, list[dict]] = {
    "bias": [{"curate.spurious_tint.p": v} for v in (0.5, 0.6, 0.7, 0.8)]
    + [{"curate.label_shift.p_minority": v} for v in (0.1, 0.3)],
    "finetune": [{"finetune.train.epochs": v} for v in (1, 6)]
    + [{"finetune.train.lr": v} for v in (0.005, 0.05)]
    + [{"finetune.train.weight_decay": v} for v in (0.0, 0.005)]
    + [{"finetune.train.batch_size": v} for v in (64, 256)],
}

#: Metric columns of the collected table (regular expressions over `dvc exp show` column names,
#: without a "file:" prefix). Order = column order.
DEFAULT_METRICS: tuple[str, ...] = (
    r"^shifts\.[^.]+\.er_(ft|lpft)$",            # ER per shift of the paper's strategies
    r"^shifts\.[^.]+\.r2$",
    r"^[a-z_]+/(baseline|pretrained)_ref_acc$",
    r"^arms\.[^.]+\.[^.]+\.[a-z_]+\.(er|shift_wga)$",
    r"^curated_arms\.[a-z_]+\.(er|shift_wga|ref_acc)$",
    r"^size_sweep\.\d+\.(er|shift_wga)$",
    r"^parts\.[^.]+\.(in|out|in_matched)\.er_(ft|lpft)$",
    r"^parts\.[^.]+\.(out_of_support_fraction|membership\.(auroc|precision|recall))$",
    r"^theorem\.(theorem_error|oos_accuracy_pretrained|oos_accuracy_random_mean)$",
)
ID_COLUMNS = ("Experiment", "rev", "typ", "Created", "parent", "State", "Executor")


# --------------------------------------------------------------------------------------------
# queueing
# --------------------------------------------------------------------------------------------
def _fmt(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def queue_commands(name: str) -> list[list[str]]:
    """The ``dvc exp run --queue`` command of every point of sweep ``name``."""
    if name not in SWEEPS:
        raise CLIError(f"unknown sweep {name!r}; valid: {', '.join(SWEEPS)}")
    cmds = []
    for point in SWEEPS[name]:
        tag = "-".join(f"{k.rsplit('.', 1)[-1]}{_fmt(v)}" for k, v in point.items())
        cmd = ["dvc", "exp", "run", "--queue", "-n", f"{name}-{tag}".replace("_", "-")]
        for k, v in point.items():
            cmd += ["-S", f"{k}={_fmt(v)}"]
        cmds.append(cmd)
    return cmds


# --------------------------------------------------------------------------------------------
# collecting
# --------------------------------------------------------------------------------------------
def _bare(col: str) -> str:
    """`dvc exp show` prefixes a column with "file:" only when the key is ambiguous."""
    return col.split(":", 1)[1] if ":" in col and not col.startswith("http") else col


def collect(table: pd.DataFrame, param_keys: list[str], metrics: tuple[str, ...] = DEFAULT_METRICS,
            all_params: bool = False) -> pd.DataFrame:
    """One row per experiment of a ``dvc exp show --csv`` table.

    Columns: ``experiment`` (name, or the rev of the baseline row), ``rev``, ``changed``
    (``key=value`` of every parameter that differs from the baseline row), the parameters that
    vary across rows (all of ``param_keys`` with ``all_params``), then the metric columns that
    match ``metrics``. Queued or failed experiments (no metrics) are kept with empty metrics.
    """
    if table.empty:
        raise CLIError("`dvc exp show --csv` returned no rows (no experiments, or not a DVC repo)")
    t = table.copy()
    t.columns = [str(c) for c in t.columns]
    typ = t["typ"].astype(str) if "typ" in t else pd.Series("", index=t.index)
    if "rev" not in t:
        t["rev"] = [str(i) for i in range(len(t))]
    # the workspace row duplicates the baseline (HEAD) row when nothing is uncommitted: drop it
    base_mask = typ == "baseline"
    rev = t["rev"].astype(str) if "rev" in t else pd.Series("", index=t.index)
    ws, head = t[(rev == "workspace") & base_mask], t[(rev != "workspace") & base_mask]
    if len(ws) and len(head):
        same = [c for c in t.columns if c not in ("rev", "Created", "Experiment")]
        if ws[same].iloc[0].astype(str).equals(head[same].iloc[0].astype(str)):
            t = t.drop(index=ws.index)
            base_mask = base_mask[t.index]
    base = t[base_mask & (t["rev"].astype(str) != "workspace")].iloc[0] if (
        base_mask & (t["rev"].astype(str) != "workspace")).any() else t.iloc[0]

    pcols = [c for c in t.columns if _bare(c) in set(param_keys)]
    changed = []
    for _, row in t.iterrows():
        diffs = [f"{_bare(c)}={row[c]}" for c in pcols if str(row[c]) != str(base[c])]
        changed.append(", ".join(diffs) if diffs else ("(baseline)" if row.name == base.name else ""))
    varying = pcols if all_params else [c for c in pcols if t[c].astype(str).nunique() > 1]
    mcols = []
    for pattern in metrics:
        rx = re.compile(pattern)
        mcols += [c for c in t.columns if c not in mcols and c not in pcols and rx.search(_bare(c))]
    name = t["Experiment"].astype(str).where(t["Experiment"].notna() & (t["Experiment"].astype(str) != "nan"),
                                             t["rev"].astype(str)) if "Experiment" in t else t["rev"].astype(str)
    out = pd.DataFrame({"experiment": name.to_numpy(), "rev": t["rev"].astype(str).to_numpy() if "rev" in t else "",
                        "changed": changed})
    if "State" in t:
        out["state"] = t["State"].astype(str).to_numpy()
    for c in varying + mcols:
        out[_bare(c) if _bare(c) not in out else c] = _numeric(t[c]).to_numpy()
    return out.reset_index(drop=True)


def _numeric(s: pd.Series) -> pd.Series:
    try:
        return pd.to_numeric(s)
    except (ValueError, TypeError):
        return s


def exp_show_csv(repo: str | Path = ".", extra: list[str] | None = None) -> str:
    """The text of ``dvc exp show --csv`` in ``repo``."""
    cmd = ["dvc", "exp", "show", "--csv", *(extra or [])]
    try:
        r = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise CLIError("dvc is not on the PATH: run through ./bin/venv") from None
    if r.returncode != 0:
        raise CLIError(f"`{' '.join(cmd)}` failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
    return r.stdout


def param_keys(path: str | Path = "params.yaml") -> list[str]:
    from ruamel.yaml import YAML

    p = Path(path)
    if not p.exists():
        raise CLIError(f"{p} not found: run in the repository root or pass --params")
    return list(flatten(YAML(typ="safe", pure=True).load(p.read_text()) or {}))


# --------------------------------------------------------------------------------------------
# the subcommand
# --------------------------------------------------------------------------------------------
def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="FILE", help="write the table as .csv, .json or .md")
    p.add_argument("--from-csv", metavar="FILE", help="read a saved `dvc exp show --csv` instead of running it")
    p.add_argument("--params", default="params.yaml", metavar="FILE", help="params file naming the parameter columns")
    p.add_argument("--metric", action="append", metavar="REGEX",
                   help="metric columns to keep (repeatable; default: the headline metrics of every stage)")
    p.add_argument("--all-params", action="store_true", help="keep every parameter column, not only the varying ones")
    p.add_argument("--exp-show-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for `dvc exp show` (repeatable), e.g. --exp-show-arg=--all-commits")
    p.add_argument("--queue", metavar="SWEEP", help=f"queue a sweep instead of collecting: {', '.join(SWEEPS)}")
    p.add_argument("--dry-run", action="store_true", help="with --queue: print the commands, run nothing")
    p.add_argument("--list", action="store_true", help="list the sweeps and their points")


@register("sweeps", help="queue the appendix sweeps, or collect DVC experiments into one table",
          configure=_configure)
def run_sweeps(args: argparse.Namespace) -> int:
    if args.list:
        for name, points in SWEEPS.items():
            print(f"{name}: " + "; ".join(", ".join(f"{k}={_fmt(v)}" for k, v in pt.items()) for pt in points))
        return 0
    if args.queue:
        for cmd in queue_commands(args.queue):
            print(shlex.join(cmd))
            if not args.dry_run:
                r = subprocess.run(cmd, check=False)
                if r.returncode != 0:
                    raise CLIError(f"queueing failed ({r.returncode}): {' '.join(cmd)}")
        if not args.dry_run:
            print("queued; run them with `dvc queue start -j N` (README: how many workers fit)")
        return 0
    if args.from_csv:
        p = Path(args.from_csv)
        if not p.exists():
            raise CLIError(f"--from-csv {args.from_csv!r}: file not found")
        text = p.read_text()
    else:
        text = exp_show_csv(extra=args.exp_show_arg)
    try:
        raw = pd.read_csv(io.StringIO(text))
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as e:
        raise CLIError(f"cannot parse the `dvc exp show --csv` output: {e}") from None
    table = collect(raw, param_keys(args.params), tuple(args.metric) if args.metric else DEFAULT_METRICS,
                    all_params=args.all_params)
    with pd.option_context("display.max_columns", 12, "display.width", 160):
        print(table.to_string(index=False, max_colwidth=40))
    if args.out:
        out = Path(args.out)
        ext = out.suffix.lower()
        if ext == ".csv":
            text = table.to_csv(index=False)
        elif ext == ".json":
            text = table.to_json(orient="records", indent=1) + "\n"
        elif ext == ".md":
            text = table.to_markdown(index=False) + "\n" if _has_tabulate() else table.to_string(index=False) + "\n"
        else:
            raise CLIError(f"--out {args.out!r}: unknown extension {out.suffix!r}; use .csv, .json or .md")
        try:
            write_text(out, text)
        except OSError as e:
            raise CLIError(f"cannot write --out {args.out!r}: {e.strerror or e}") from None
        print(f"wrote {out} ({len(table)} experiments, {table.shape[1]} columns)", file=sys.stderr)
    return 0


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True
