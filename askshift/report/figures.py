"""Figures and small display helpers for the report notebooks.

Plotting functions take data frames and a matplotlib Axes and return nothing; they never read
files, so tests can call them on tiny in-memory tables. Display helpers (`show_*`, `absent`,
`note`, `table`) emit IPython rich outputs that nbconvert embeds in the HTML (PNG as base64).
"""
from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from askshift.io import flatten  # noqa: F401 - the notebooks use F.flatten
from askshift.methods import robustness as R


transform, inverse_transform = R.transform, R.inverse_transform


KIND_COLORS = {"in-support": "#2b6cb0", "out-of-support": "#c0392b", "natural": "#7d3c98",
               "mixture": "#117a65"}
STRATEGY_STYLE = {"ft": ("o", "#d35400", "FT"), "lp": ("s", "#16a085", "LP"),
                  "lpft": ("D", "#8e44ad", "LP-FT"), "zs": ("^", "#2c3e50", "zero-shot-head FT")}
ACC_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)


# --------------------------------------------------------------------------- formatting
def pct(x, digits: int = 1, sign: bool = False) -> str:
    """0.0123 -> '1.2%' (or '+1.2%'); NaN/None -> '–'."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{100 * float(x):{'+' if sign else ''}.{digits}f}%"


def er_text(er, low, high, digits: int = 1) -> str:
    """'+1.2% [−0.3%, +2.7%]': an ER with its interval, in percentage points of accuracy."""
    nb = "\u00a0"  # keep one number and its interval on one line
    return f"{pct(er, digits, True)}{nb}[{pct(low, digits, True)},{nb}{pct(high, digits, True)}]"


# --------------------------------------------------------------------------- axes
def scaled_axes(ax, scale: str, lo: float, hi: float, axis: str = "both") -> None:
    """Label transformed (probit/logit) axes with accuracies: the ticks sit at
    transform(acc) and read as percentages."""
    ticks = [t for t in ACC_TICKS if lo <= t <= hi]
    if len(ticks) < 3:  # a narrow range: fall back to evenly spaced accuracies
        ticks = list(np.round(np.linspace(lo, hi, 4), 3))
    pos = transform(np.array(ticks), scale)
    labels = [f"{100 * t:g}%" for t in ticks]
    if axis in ("x", "both"):
        ax.set_xticks(pos, labels)
    if axis in ("y", "both"):
        ax.set_yticks(pos, labels)


def _square_axes(ax, lo: float, hi: float, scale: str, diagonal_label: str | None = None) -> None:
    """Both axes over [lo, hi] in transformed space, the y = x diagonal, accuracy tick labels."""
    ax.plot([lo, hi], [lo, hi], ls=":", color="#bbbbbb", lw=1, label=diagonal_label)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    a_lo, a_hi = inverse_transform(np.array([lo, hi]), scale)
    scaled_axes(ax, scale, float(a_lo), float(a_hi))


def _range(*arrays, pad: float = 0.15, scale: str = "probit") -> tuple[float, float]:
    z = np.concatenate([transform(np.clip(np.asarray(a, float), 1e-4, 1 - 1e-4), scale) for a in arrays])
    lo, hi = float(np.nanmin(z)), float(np.nanmax(z))
    span = max(hi - lo, 0.2)
    return lo - pad * span, hi + pad * span


def accuracy_on_the_line(ax, points: pd.DataFrame, line: pd.DataFrame, er: pd.DataFrame | None,
                         scale: str = "probit", title: str = "", metric: str = "accuracy") -> None:
    """Shifted vs reference accuracy on probit (or logit) axes.

    points: rows with role (baseline|pretrained), strategy, ref_acc, shift_acc (one per model
    copy); line: x, predicted, lower, upper of the baseline fit; er: the copies-averaged rows
    (role == pretrained) drawn as large markers.
    """
    t = lambda a: transform(np.clip(np.asarray(a, float), 1e-4, 1 - 1e-4), scale)  # noqa: E731
    base = points[points["role"] == "baseline"]
    pre = points[points["role"] == "pretrained"]
    if len(line):
        ax.fill_between(t(line["x"]), t(line["lower"]), t(line["upper"]), color="#999999", alpha=0.3,
                        lw=0, label="baseline fit, 95% band")
        ax.plot(t(line["x"]), t(line["predicted"]), color="#555555", lw=1.5)
    ax.scatter(t(base["ref_acc"]), t(base["shift_acc"]), s=42, color="#4d5656", edgecolor="white",
               lw=0.8, zorder=3, label="from scratch (baseline)")
    for s, g in pre.groupby("strategy"):
        marker, color, name = STRATEGY_STYLE.get(s, ("P", "#34495e", s))
        ax.scatter(t(g["ref_acc"]), t(g["shift_acc"]), s=22, marker=marker, color=color, alpha=0.45,
                   lw=0, zorder=4)
    if er is not None:
        for r in er[er["role"] == "pretrained"].itertuples():
            marker, color, name = STRATEGY_STYLE.get(r.strategy, ("P", "#34495e", r.strategy))
            ax.scatter(t([r.ref_acc]), t([r.shift_acc]), s=90, marker=marker, color=color,
                       edgecolor="black", lw=1.0, zorder=5, label=f"pre-trained, {name}")
    lo, hi = _range(points["ref_acc"], points["shift_acc"], scale=scale)
    _square_axes(ax, lo, hi, scale, diagonal_label="y = x")
    ax.set_xlabel(f"reference {metric.replace('_', ' ')} ({scale} scale)")
    ax.set_ylabel(f"shifted {metric.replace('_', ' ')} ({scale} scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.25)


def er_intervals(ax, rows: pd.DataFrame, tolerance: float | None = None, label_col: str = "label",
                 kind_col: str = "kind") -> None:
    """Horizontal ER intervals, one row each (top to bottom in the frame's order): point,
    mean-prediction-band interval (thick) and bootstrap interval (thin) when present."""
    y = np.arange(len(rows))[::-1]
    for yi, r in zip(y, rows.itertuples()):
        color = KIND_COLORS.get(getattr(r, kind_col, ""), "#333333")
        if "boot_low" in rows and np.isfinite(getattr(r, "boot_low", np.nan)):
            ax.plot([100 * r.boot_low, 100 * r.boot_high], [yi - 0.18] * 2, color=color, lw=1, alpha=0.6)
        ax.plot([100 * r.er_low, 100 * r.er_high], [yi, yi], color=color, lw=3, solid_capstyle="butt")
        ax.plot([100 * r.er], [yi], "o", color=color, mec="black", ms=6)
    if tolerance:
        ax.axvspan(-100 * tolerance, 100 * tolerance, color="#2ecc71", alpha=0.12,
                   label=f"|ER| < {100 * tolerance:g} pp")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, rows[label_col])
    ax.set_xlabel("effective robustness (percentage points of accuracy)")
    ax.grid(axis="x", alpha=0.3)
    handles = [ax.plot([], [], color=c, lw=3, label=k)[0] for k, c in KIND_COLORS.items()
               if k in set(rows.get(kind_col, []))]
    ax.legend(handles=handles + ([ax.patches[0]] if tolerance and ax.patches else []),
              loc="lower right", fontsize=8)


def training_curves(ax, curves: dict[str, pd.DataFrame], y: str = "acc", title: str = "") -> None:
    """One line per run: {label: frame with `step` and `y`}."""
    for label, df in curves.items():
        ax.plot(df["step"] + 1, df[y], marker="o" if len(df) < 12 else None, ms=3, lw=1.2, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(y)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if 0 < len(curves) <= 12:
        ax.legend(fontsize=7)


def read_dvclive_curves(folder: str | Path, metric: str = "val/acc") -> dict[str, pd.DataFrame]:
    """Curves of every DVCLive run under `folder` ({run folder: frame}); a folder that is one
    run itself gives one entry."""
    folder = Path(folder)
    out = {}
    for tsv in sorted(folder.rglob(f"plots/metrics/{metric}.tsv")):
        run = tsv.parents[len(Path(metric).parts) + 1]
        name = run.relative_to(folder).as_posix() if run != folder else folder.name
        out[name] = pd.read_csv(tsv, sep="\t")
    return out


# --------------------------------------------------------------------------- display
def _display(obj) -> None:
    from IPython.display import display

    display(obj)


def absent(what: str, reasons: dict[str, str] | None = None) -> None:
    """A visible box: this analysis was not produced by this pipeline run, and why."""
    from IPython.display import HTML

    items = "".join(f"<li><code>{html.escape(p)}</code>: {html.escape(r)}</li>"
                    for p, r in (reasons or {}).items())
    _display(HTML(f'<div class="askshift-absent"><b>Not produced by this pipeline run:</b> '
                  f"{html.escape(what)}.{'<ul>' + items + '</ul>' if items else ''}</div>"))


def note(text_html: str) -> None:
    from IPython.display import HTML

    _display(HTML(f'<div class="askshift-note">{text_html}</div>'))


def table(df: pd.DataFrame, formats: dict | None = None, index: bool = False, escape: bool = True) -> None:
    """A plain HTML table; `formats` maps column -> callable or format string."""
    from IPython.display import HTML

    df = df.copy()
    for col, f in (formats or {}).items():
        if col in df:
            fn = f if callable(f) else (lambda v, f=f: "–" if pd.isna(v) else format(v, f))
            df[col] = df[col].map(fn)
    body = df.to_html(index=index, classes="askshift", border=0, escape=escape, na_rep="–")
    _display(HTML(f'<div style="overflow-x: auto; max-width: 100%;">{body}</div>'))


def show_png(path: str | Path, width: int | None = None) -> None:
    """Embed a PNG file (base64 in the HTML)."""
    from IPython.display import Image

    _display(Image(filename=str(path), width=width))


def image_panel(paths: list[tuple[str, Path]], cols: int = 4, size: float = 3.0, suptitle: str = ""):
    """Several PNG files side by side with titles, as one figure."""
    import matplotlib.pyplot as plt
    from PIL import Image

    rows = max(1, int(np.ceil(len(paths) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, p) in zip(axes.flat, paths):
        ax.imshow(np.asarray(Image.open(p).convert("RGB")), interpolation="nearest")
        ax.set_title(title, fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def draw_if_present(ctx, folder: str, what: str, draw) -> None:
    """``draw()`` when ``folder`` is an input of this run, else a box that says it was not
    produced and why. An exception in ``draw`` propagates: the notebook, and so the report
    stage, fails with the part and cell named (never a warning box a reader could miss)."""
    if not ctx.has(folder):
        absent(what, ctx.missing(folder))
        return
    draw()


def intervals(ax, rows: pd.DataFrame, value: str, low: str, high: str, label: str,
              colors: list | None = None, percent: bool = True, zero: bool = True,
              low2: str | None = None, high2: str | None = None) -> None:
    """One horizontal interval per row (top to bottom): thick bar low..high, point at value;
    optional thin second interval (low2..high2) just below, e.g. over trials."""
    k = 100 if percent else 1
    y = np.arange(len(rows))[::-1]
    for i, (yi, (_, r)) in enumerate(zip(y, rows.iterrows())):
        color = (colors or ["#34495e"] * len(rows))[i]
        if low2 and high2 and np.isfinite(r.get(low2, np.nan)) and np.isfinite(r.get(high2, np.nan)):
            ax.plot([k * r[low2], k * r[high2]], [yi - 0.2] * 2, color=color, lw=1, alpha=0.7)
        if np.isfinite(r[low]) and np.isfinite(r[high]):
            ax.plot([k * r[low], k * r[high]], [yi, yi], color=color, lw=3, solid_capstyle="butt")
        ax.plot([k * r[value]], [yi], "o", color=color, mec="black", ms=6)
    if zero:
        ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, rows[label])
    ax.grid(axis="x", alpha=0.3)


ARM_COLORS = {"scratch": "#7f8c8d", "scratch_dfr": "#2980b9", "scratch_rw": "#85c1e9",
              "pretrained": "#d35400", "pretrained_dfr": "#8e44ad", "pretrained_rw": "#f0b27a",
              "pretrained_debiased": "#27ae60", "scratch_debiased": "#95a5a6",
              "pretrained_balanced": "#f1c40f", "pretrained_one_tint": "#16a085", "pretrained_reference": "#d35400"}
ARM_ORDER = ("scratch", "scratch_rw", "scratch_dfr", "pretrained", "pretrained_rw", "pretrained_dfr",
             "pretrained_reference", "pretrained_balanced", "pretrained_one_tint", "pretrained_debiased",
             "scratch_debiased")


def arm_sort(arms) -> list:
    arms = list(dict.fromkeys(arms))
    return sorted(arms, key=lambda a: (ARM_ORDER.index(a) if a in ARM_ORDER else len(ARM_ORDER), a))


def arms_on_the_line(ax, base: pd.DataFrame, arms: pd.DataFrame, scale: str = "probit", title: str = "",
                     confidence: float = 0.95) -> None:
    """Shifted vs reference accuracy on probit axes: baselines, their fit and band, and the
    trial-averaged arms (`arm`, `ref_acc`, `shift_acc`; single trials drawn faint)."""
    fit = R.fit_line(base["ref_acc"].to_numpy(), base["shift_acc"].to_numpy(), scale, confidence=confidence)
    line = R.line_plot_data(fit, extra_points=pd.concat([base["ref_acc"], arms["ref_acc"]]))
    t = lambda a: transform(np.clip(np.asarray(a, float), 1e-4, 1 - 1e-4), scale)  # noqa: E731
    ax.fill_between(t(line["x"]), t(line["lower"]), t(line["upper"]), color="#999999", alpha=0.3, lw=0,
                    label="baseline fit, 95% band")
    ax.plot(t(line["x"]), t(line["predicted"]), color="#555555", lw=1.5)
    ax.scatter(t(base["ref_acc"]), t(base["shift_acc"]), s=42, color="#4d5656", edgecolor="white", lw=0.8,
               zorder=3, label="from scratch (baseline)")
    for arm in arm_sort(arms["arm"]):
        g = arms[arms["arm"] == arm]
        c = ARM_COLORS.get(arm, "#34495e")
        ax.scatter(t(g["ref_acc"]), t(g["shift_acc"]), s=20, color=c, alpha=0.4, lw=0, zorder=4)
        ax.scatter(t([g["ref_acc"].mean()]), t([g["shift_acc"].mean()]), s=90, color=c, edgecolor="black",
                   zorder=5, label=arm)
    allx = pd.concat([base["ref_acc"], arms["ref_acc"], base["shift_acc"], arms["shift_acc"]])
    lo, hi = _range(allx, scale=scale)
    _square_axes(ax, lo, hi, scale)
    ax.set_xlabel(f"reference accuracy ({scale} scale)")
    ax.set_ylabel(f"shifted accuracy ({scale} scale)")
    ax.set_title(f"{title}\nfit r² = {fit.r2:.2f}, n = {fit.n}", fontsize=10)
    ax.grid(alpha=0.25)
    ax.legend(fontsize=7, loc="upper left")
