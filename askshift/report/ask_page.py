"""ask.html: one self-contained page answering the paper's question for a user's shift.

The verdict comes first, then the numbers, the figures (base64 PNGs) and example images of each
part. :func:`write` also writes ask.json (every number) and ratios.csv (one row per shifted image),
each atomically, so a failed run leaves any previous answer in the folder untouched.
"""
from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

from askshift.io import atomic_path, write_json, write_text
from askshift.methods.verdict import STRATEGY_NAMES

TEMPLATES = Path(__file__).parent / "templates" / "askshift"
EXAMPLES = 8          # images of each part shown


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def ratio_histogram(table: pd.DataFrame, epsilon: float) -> str:
    """Histogram of log p_ref/p_shift of the shifted images, the out-of-support threshold marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    lr = np.clip(table["log_ratio"].to_numpy(), -30, None)   # ratios below e^-30 drawn at -30
    bins = np.linspace(lr.min(), lr.max(), 50) if np.ptp(lr) > 0 else 10
    oos = table["out_of_support"].to_numpy(bool)
    ax.hist([lr[~oos], lr[oos]], bins=bins, stacked=True, color=["#2b6cb0", "#c0392b"],
            label=["in support", "out of support"])
    ax.axvline(np.log(epsilon), color="black", lw=1, ls="--", label=f"log ε (ε = {epsilon:g})")
    ax.set_xlabel("log density ratio  log p_ref(x) / p_shift(x)")
    ax.set_ylabel("shifted images")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.25)
    return _png(fig)


def examples(table: pd.DataFrame, n: int = EXAMPLES, size: int = 96) -> dict[str, list[dict]]:
    """The shifted images most clearly out of support (lowest ratio) and most clearly in it."""
    from PIL import Image

    from askshift.data.imagesets import load_image

    order = table.sort_values("log_ratio", kind="stable")
    picks = {"out": order[order["out_of_support"]].head(n), "in": order[~order["out_of_support"]].tail(n)[::-1]}
    out = {}
    for part, rows in picks.items():
        out[part] = []
        for r in rows.itertuples():
            buf = io.BytesIO()
            Image.fromarray(load_image(Path(r.path), size)).save(buf, format="PNG")
            out[part].append({"src": base64.b64encode(buf.getvalue()).decode(), "name": Path(r.path).name,
                              "label": "" if pd.isna(r.label) else str(r.label), "log_ratio": float(r.log_ratio)})
    return out


def accuracy_figure(effect: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from askshift.report.figures import accuracy_on_the_line

    points = pd.DataFrame(effect["models"])
    er = points[points["role"] == "pretrained"]
    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    accuracy_on_the_line(ax, points, pd.DataFrame(effect["line"]), er, title="whole shifted set")
    ax.legend(fontsize=7, loc="upper left")
    return _png(fig)


def render(result: dict, table: pd.DataFrame) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]))
    figures = {"ratios": ratio_histogram(table, result["support"]["epsilon"])}
    if "effect" in result:
        figures["accuracy"] = accuracy_figure(result["effect"])
    return env.get_template("ask.html.j2").render(r=result, figures=figures, examples=examples(table),
                                                  names=STRATEGY_NAMES)


def write(out: str | Path, result: dict, table: pd.DataFrame) -> Path:
    """ask.json, ratios.csv and ask.html in ``out``; returns the page's path."""
    out = Path(out)
    page = render(result, table)          # everything computed before anything is replaced
    write_json(out / "ask.json", result)
    with atomic_path(out / "ratios.csv") as tmp:
        table.to_csv(tmp, index=False)
    return write_text(out / "ask.html", page)
