"""How long a study takes: images per stage (askshift.study.budget) times measured rates.

    python benchmarks/estimate_compute.py                         # params.yaml (its world's sizes)
    python benchmarks/estimate_compute.py --set world=cifar10 --set curate.reference.n_train=45000 ...
    python benchmarks/estimate_compute.py --gpu-rates gpu-check/figures.json   # measured GPU img/s

For each model of the study (the pre-trained architecture at its input side, the from-scratch
one at 32x32 and each narrower width) it measures on this machine: forward FLOPs per image
(torch's FlopCounterMode, random weights: nothing is downloaded) and the img/s of a bare
training step (forward, backward, SGD step) and of inference. Then per stage: runs, images
trained on and inferred, and the hours

- on this CPU, from the measured rates (a training image counts at the training rate, an
  inferred one at the inference rate; process start-up and data loading are not counted);
- on one GPU, at ``--gpu-tflops`` sustained (an assumption, printed as such: default 200, a
  fifth of an H100's dense bf16 peak), or at the img/s that ``benchmarks/gpu_check.py`` measured
  (``--gpu-rates``: ViT-B/32 at 224 for a ViT-B/32 pre-trained model, the CIFAR-10 ResNet-9
  recipe for askshift_resnet9 baselines; an inferred image counts as a third of a trained one).
  Small models on a GPU are bound by kernel launches, not
  FLOPs: for them the FLOP-based figure is a lower bound.

Dataset sizes come from ``--summary`` (the curate stage's data/curated/summary.json, when it is of
the same world and params) or, for the cifar10 world, from the world's own builder run on a
zero-filled source of the official file's shape. Prints a table; ``--json`` writes it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from ruamel.yaml import YAML

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from askshift.data.worlds import CIFAR10, WORLDS  # noqa: E402
from askshift.nn import models as M  # noqa: E402
from askshift.nn.weights import parse_weights  # noqa: E402
from askshift.study import budget, layout  # noqa: E402
from askshift.study.baseline import scaled  # noqa: E402
from askshift.study.config import scratch_model  # noqa: E402
from askshift.study.params import check_params  # noqa: E402


def load(path: str, sets: list[str]) -> dict:
    raw = YAML(typ="safe", pure=True).load(Path(path).read_text())
    for item in sets:
        key, _, value = item.partition("=")
        d = raw
        *parents, last = key.split(".")
        for k in parents:
            d = d[k]
        d[last] = YAML(typ="safe", pure=True).load(value)
    return check_params(raw, machine=False)


def dataset_sizes(p: dict, summary: Path) -> dict[str, dict[str, int]]:
    if summary.is_file():
        stats = json.loads(summary.read_text())
        sizes = {k: v["per_split"] for k, v in stats.items() if isinstance(v, dict) and "per_split" in v}
        want = {layout.reference(v) for v in WORLDS[p["world"]].variants}
        if want <= set(sizes) and sizes[layout.reference("plain")]["train"] == p["curate"]["reference"]["n_train"]:
            return sizes
    if p["world"] != "cifar10":
        raise SystemExit(f"no {summary} of these params: run `dvc repro curate` first (world {p['world']})")
    from askshift.data import cifar10

    def pool(counts):
        labels = np.repeat(np.arange(len(counts)), counts)
        return np.zeros((len(labels), 32, 32, 3), np.uint8), labels

    source = {"train": pool(CIFAR10.source_class_counts), "test": pool(CIFAR10.test_class_counts),
              "class_names": list(CIFAR10.class_names), "cifar10_1": pool((200,) * 10)}   # CIFAR-10.1 v6
    roles = cifar10.build_world(source, p["curate"], p["seed"])
    return {layout.dataset_name(role, name): {k: int(v) for k, v in ds.meta["split"].value_counts().items()}
            for (role, name), ds in roles.items()}


def build(p: dict, key: str):
    """The model behind a budget key, random weights, at the side it sees images."""
    if key == budget.PRETRAINED:
        w = p["pretrain"]["weights"]
        side = M._pretrained_input(parse_weights(w)[1])[0] if w.startswith("timm:") else M.DEFAULT_IMG_SIZE
        return M.create_model(p["model"]["arch"], 10, img_size=side, seed=0, **(p["model"]["kwargs"] or {})), side
    arch, kwargs = scratch_model(p)
    return M.create_model(arch, 10, seed=0, **scaled(kwargs, budget.width(key))), M.DEFAULT_IMG_SIZE


def measure(model, side: int, batch: int, seconds: float) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(torch.randn(1, 3, side, side))
    x, y = torch.randn(batch, 3, side, side), torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def rate(fn) -> float:
        fn()                                   # warm-up
        n, t0 = 0, time.perf_counter()
        while n == 0 or time.perf_counter() - t0 < seconds:
            fn()
            n += 1
        return n * batch / (time.perf_counter() - t0)

    model.train()
    train_rate = rate(step)
    model.eval()
    with torch.no_grad():
        infer_rate = rate(lambda: model(x))
    return {"side": side, "gflop_fwd": fc.get_total_flops() / 1e9, "cpu_train_img_s": train_rate,
            "cpu_infer_img_s": infer_rate}


def gpu_rate(p: dict, key: str, figures: dict) -> float | None:
    """A measured GPU training img/s of gpu_check.py for this model, where it measured one."""
    if key == budget.PRETRAINED and p["model"]["arch"].startswith("vit_base_patch32"):
        return figures.get("vit_b32_train_img_s")
    if key == budget.SCRATCH and scratch_model(p)[0] == "askshift_resnet9":
        return figures.get("cifar_resnet9_fit_img_s")
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a param (repeatable)")
    ap.add_argument("--summary", default="data/curated/summary.json")
    ap.add_argument("--gpu-tflops", type=float, default=200.0, help="assumed sustained GPU TFLOP/s")
    ap.add_argument("--gpu-rates", help="figures.json of benchmarks/gpu_check.py (measured img/s)")
    ap.add_argument("--seconds", type=float, default=3.0, help="timing per rate")
    ap.add_argument("--json")
    args = ap.parse_args()
    p = load(args.params, args.set)
    torch.set_num_threads(max(1, p["compute"]["threads"] or torch.get_num_threads()))
    work = budget.plan(p, dataset_sizes(p, Path(args.summary)), layout.shift_index(WORLDS[p["world"]]))
    figures = json.loads(Path(args.gpu_rates).read_text()) if args.gpu_rates else {}
    rates = {}
    for key in sorted({w.model for w in work}):
        model, side = build(p, key)
        big = side > 64
        rates[key] = measure(model, side, 8 if big else 64, args.seconds)
        rates[key]["gpu_train_img_s"] = gpu_rate(p, key, figures)
    print(f"world {p['world']}, {torch.get_num_threads()} CPU threads; models: {budget.describe(p)}")
    for key, r in rates.items():
        print(f"  {key:14s} {r['side']}x{r['side']}  {r['gflop_fwd']:.3f} GFLOP/img forward, this CPU: "
              f"{r['cpu_train_img_s']:.1f} img/s training, {r['cpu_infer_img_s']:.1f} img/s inference")
    rows = []
    for w in work:
        r = rates[w.model]
        flop = (3 * w.train_images + w.infer_images) * r["gflop_fwd"] * 1e9
        cpu_h = (w.train_images / r["cpu_train_img_s"] + w.infer_images / r["cpu_infer_img_s"]) / 3600
        measured = r["gpu_train_img_s"]
        gpu_h = (w.train_images + w.infer_images / 3) / measured / 3600 if measured else flop / (args.gpu_tflops * 1e12) / 3600
        rows.append({"stage": w.stage, "model": w.model, "runs": w.runs, "train_images": w.train_images,
                     "infer_images": w.infer_images, "pflop": flop / 1e15, "cpu_hours": cpu_h, "gpu_hours": gpu_h,
                     "gpu_basis": "measured img/s" if measured else f"assumed {args.gpu_tflops:g} TFLOP/s"})
    print(f"{'stage':14s} {'model':14s} {'runs':>5s} {'train img':>12s} {'infer img':>12s} {'PFLOP':>9s} "
          f"{'CPU h':>9s} {'GPU h':>8s}  GPU basis")
    for r in rows:
        print(f"{r['stage']:14s} {r['model']:14s} {r['runs']:5d} {r['train_images']:12,d} {r['infer_images']:12,d} "
              f"{r['pflop']:9.3g} {r['cpu_hours']:9.3g} {r['gpu_hours']:8.3g}  {r['gpu_basis']}")
    total = {k: sum(r[k] for r in rows) for k in ("pflop", "cpu_hours", "gpu_hours")}
    print(f"{'total':34s} {'':>12s} {'':>12s} {total['pflop']:9.3g} {total['cpu_hours']:9.3g} {total['gpu_hours']:8.3g}")
    if args.json:
        Path(args.json).write_text(json.dumps({"params": args.set, "rates": rates, "rows": rows, "total": total}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
