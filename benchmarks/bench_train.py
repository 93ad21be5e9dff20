"""Training throughput of askshift.nn.train.fit versus the compute-bound rate of the same model.

    python benchmarks/bench_train.py                    # default arch: fit() vs pure loop, ratio
    python benchmarks/bench_train.py --archs            # table of candidate timm archs
    python benchmarks/bench_train.py --archs --proxy data.npz   # + accuracy potential

(a) fit(): img/s of the second epoch of a 2-epoch run on in-memory synthetic uint8 32x32 images
    (the first epoch includes one-off warm-up), no validation, no checkpoint.
(b) compute-bound: the same model, batch and optimiser in a bare fwd+bwd+step loop on one
    pre-made normalised float batch (best of ``--reps`` timed repeats).
(c) ratio (a)/(b): the data path and bookkeeping overhead of fit(); target >= 0.9.

``--proxy`` takes an .npz with ``pre_x, pre_y, pre_tx, pre_ty`` (pre-training corpus, uint8
(N,32,32,3)) and ``ft_x, ft_y, ft_tx, ft_ty`` (small fine-tuning task): each arch is pre-trained
for ``--pre-epochs`` epochs, then linear-probed and fine-tuned on the small task, and compared
with training from scratch on it. Nothing is downloaded.
"""
from __future__ import annotations

import argparse
import ast
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from askshift.nn import models as M  # noqa: E402
from askshift.nn import train as T  # noqa: E402
from askshift.nn.strategies import finetune  # noqa: E402

CANDIDATES = [
    ("resnet10t", {"channels": [16, 32, 64, 128], "stem_width": 16}),
    ("resnet10t", {"channels": [24, 48, 96, 192], "stem_width": 24}),
    ("resnet10t", {}),
    ("resnet18", {}),
    ("resnet18", {"channels": [16, 32, 64, 128]}),
    ("test_resnet", {}),
    ("test_byobnet", {}),
    ("test_convnext", {}),
    ("test_convnext2", {}),
    ("test_efficientnet", {}),
    ("lcnet_035", {}),
    ("lcnet_050", {}),
    ("mobilenetv3_small_050", {}),
    ("test_vit", {}),
    ("test_vit", {"patch_size": 8}),
    ("test_vit", {"patch_size": 4}),
    ("vit_tiny_patch16_224", {"patch_size": 4, "depth": 4, "embed_dim": 96, "num_heads": 3}),
]


def synthetic(n: int, num_classes: int, seed: int = 0):
    g = np.random.default_rng(seed)
    return (g.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
            g.integers(0, num_classes, n).astype(np.int64))


CLOCK = time.perf_counter   # --clock cpu: time.process_time (contention-robust, 1 thread)


def compute_bound(model, batch_size: int, cfg: T.TrainConfig, reps: int = 3, steps: int = 10,
                  channels_last: bool = True) -> float:
    """img/s of a bare fwd+bwd+step loop on one pre-made normalised batch (best of reps)."""
    x_u8, y = synthetic(batch_size, model.num_classes, seed=1)
    mean, std = M.normalization(model)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = M.to_input(torch.from_numpy(x_u8), mean, std).contiguous(memory_format=fmt)
    y = torch.from_numpy(y)
    model.to(memory_format=fmt).train()
    opt = T.make_optimizer(model, cfg)

    def step():
        loss = F.cross_entropy(model(x), y, label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    best = 0.0
    for _ in range(reps):
        t = CLOCK()
        for _ in range(steps):
            step()
        best = max(best, steps * batch_size / (CLOCK() - t))
    return best


@torch.inference_mode()
def inference_rate(model, batch_size: int = 512, reps: int = 3) -> float:
    x_u8, _ = synthetic(batch_size, 2, seed=2)
    mean, std = M.normalization(model)
    x = M.to_input(torch.from_numpy(x_u8), mean, std).contiguous(memory_format=torch.channels_last)
    model.eval()
    model(x)
    best = 0.0
    for _ in range(reps):
        t = time.perf_counter()
        model(x)
        best = max(best, batch_size / (time.perf_counter() - t))
    model.train()
    return best


def bench_default(args):
    """(a), (b), (c) measured in interleaved pairs (this kind of shared CPU drifts by tens of
    percent over seconds): each repeat runs fit() for 2 epochs, then the bare loop for as many
    steps as one epoch on the same model; medians over repeats are reported."""
    arch, kwargs = args.arch, args.kwargs
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, arch {arch} {kwargs}, "
          f"batch {args.batch_size}, 32x32, {args.n} images/epoch, {args.reps} repeats, clock "
          f"{args.clock}, matmul probe {matmul_gflops():.0f} GFLOP/s")
    data = synthetic(args.n, 68)
    steps = T.steps_per_epoch(args.n, args.batch_size)
    rows = []
    for cl in (True, False) if args.both_formats else (None,):
        clv = T.channels_last_for(torch.device("cpu"), cl)
        a_s, b_s = [], []
        for r in range(args.reps):
            model = M.create_model(arch, 68, seed=r, **kwargs)
            cfg = T.TrainConfig(epochs=2, batch_size=args.batch_size, lr=0.05, progress=False,
                                device="cpu", channels_last=clv, seed=r)
            marks = []
            T.fit(model, data, None, cfg, on_epoch_end=lambda e, rec: marks.append(CLOCK()))
            a_s.append(args.n / (marks[1] - marks[0]))
            b_s.append(compute_bound(model, args.batch_size, cfg, reps=1, steps=steps,
                                     channels_last=clv))
        a, b = statistics.median(a_s), statistics.median(b_s)
        ratio = statistics.median([x / y for x, y in zip(a_s, b_s)])
        rows.append((clv, a, b, ratio))
        print(f"channels_last={clv!s:5}  (a) fit() {a:7.0f} img/s   (b) compute-bound {b:7.0f} "
              f"img/s   (c) ratio {ratio:.3f}   [per repeat a: "
              f"{', '.join(f'{v:.0f}' for v in a_s)}; b: {', '.join(f'{v:.0f}' for v in b_s)}]",
              flush=True)
    return rows


def pretrain_finetune_proxy(arch, kwargs, data, pre_epochs, seed=0):
    """Accuracy potential: pre-train on the corpus, then LP / FT / scratch on the small task."""
    d = data
    ncls = int(d["pre_y"].max()) + 1
    nft = int(d["ft_y"].max()) + 1
    res = {}
    model = M.create_model(arch, ncls, seed=seed, **kwargs)
    cfg = T.TrainConfig(epochs=pre_epochs, batch_size=128, optimizer="sgd", lr=0.2,
                        momentum=0.9, nesterov=True, weight_decay=5e-5, schedule="triangular",
                        peak_epoch=pre_epochs / 4, label_smoothing=0.1, progress=False, seed=seed)
    t = time.perf_counter()
    h = T.fit(model, (d["pre_x"], d["pre_y"]), (d["pre_tx"], d["pre_ty"]), cfg)
    res["pre_time_s"] = time.perf_counter() - t
    res["pre_acc"] = h[-1]["val_acc"]
    path = Path("/tmp/askshift_bench_pre.pt")
    M.save_model(model, path)
    ft_train, ft_test = (d["ft_x"], d["ft_y"]), (d["ft_tx"], d["ft_ty"])
    lp_cfg = T.TrainConfig(epochs=100, batch_size=512, optimizer="adamw", lr=3e-3,
                           weight_decay=1e-4, progress=False, seed=seed)
    ft_cfg = T.TrainConfig(epochs=4, batch_size=128, optimizer="sgd", lr=0.05, nesterov=True,
                           weight_decay=5e-5, schedule="cosine", warmup_epochs=0.5,
                           label_smoothing=0.1, progress=False, seed=seed)
    for strategy in ("lp", "ft", "lpft"):
        m = M.create_model(arch, nft, weights=f"pipeline:{path}", seed=seed)
        t = time.perf_counter()
        finetune(m, ft_train, None, strategy, ft_cfg, lp_cfg)
        res[f"{strategy}_time_s"] = time.perf_counter() - t
        res[f"{strategy}_acc"] = float((T.predict(m, ft_test[0]).argmax(1) == ft_test[1]).mean())
    m = M.create_model(arch, nft, seed=seed, **kwargs)
    h = T.fit(m, ft_train, ft_test, ft_cfg)
    res["scratch_acc"] = h[-1]["val_acc"]
    return res


class _Stepper:
    """A model with its optimiser and one pre-made batch: ``rate(seconds)`` times fwd+bwd+step."""

    def __init__(self, model, batch_size: int):
        x_u8, y = synthetic(batch_size, model.num_classes, seed=1)
        mean, std = M.normalization(model)
        self.x = M.to_input(torch.from_numpy(x_u8), mean, std).contiguous(
            memory_format=torch.channels_last)
        self.y, self.bs = torch.from_numpy(y), batch_size
        self.model = model.to(memory_format=torch.channels_last).train()
        self.opt = T.make_optimizer(model, T.TrainConfig(lr=0.05))
        self.step()

    def step(self):
        loss = F.cross_entropy(self.model(self.x), self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def rate(self, seconds: float) -> float:
        t0 = CLOCK()
        k = 0
        while k < 2 or CLOCK() - t0 < seconds:
            self.step()
            k += 1
        return k * self.bs / (CLOCK() - t0)


def matmul_gflops(seconds: float = 0.3) -> float:
    """Machine-speed probe (fp32 512x512 matmuls): shows CPU contention next to each round."""
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    t0, k = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        a @ b
        k += 1
    return k * 2 * 512**3 / (time.perf_counter() - t0) / 1e9


def bench_archs(args):
    """Throughput table measured round-robin: each round times every arch for ~``--seconds``
    (and the machine with a matmul probe), so that CPU contention from other processes hits all
    archs alike; reported: median img/s over rounds and the median per-round speed relative to
    the first candidate (the default arch). Then, optionally, the accuracy proxy."""
    data = dict(np.load(args.proxy)) if args.proxy else None
    selected = [c for c in CANDIDATES if not args.only or c[0] in args.only]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, batch "
          f"{args.batch_size}, 32x32, 68 classes; train = compute-bound fwd+bwd+SGD step, "
          f"channels_last, {args.rounds} interleaved rounds of ~{args.seconds}s per arch")
    rows, steppers = [], []
    for arch, kwargs in selected:
        try:
            model = M.create_model(arch, 68, seed=0, **kwargs)
        except Exception as e:  # noqa: BLE001 - a table row, not a crash
            print(f"{arch} {kwargs}: error: {e}")
            continue
        rows.append({"arch": arch, "kwargs": kwargs,
                     "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
                     "num_features": model.num_features,
                     "infer_img_s": round(inference_rate(model))})
        steppers.append(_Stepper(model, args.batch_size))
    rates = [[] for _ in rows]
    probe = []
    for r in range(args.rounds):
        probe.append(matmul_gflops())
        for i, st in enumerate(steppers):
            rates[i].append(st.rate(args.seconds))
        print(f"round {r + 1}/{args.rounds}: matmul {probe[-1]:.0f} GFLOP/s, "
              + ", ".join(f"{row['arch']}={rt[-1]:.0f}" for row, rt in zip(rows, rates)),
              flush=True)
    for row, rt in zip(rows, rates):
        row["train_img_s"] = round(statistics.median(rt))
        row["train_img_s_max"] = round(max(rt))
        row["rel_to_default"] = round(statistics.median(
            [a / b for a, b in zip(rt, rates[0])]), 3)
    del steppers
    cols = ["arch", "kwargs", "params_M", "num_features", "train_img_s", "train_img_s_max",
            "rel_to_default", "infer_img_s"]
    if data is not None:
        cols += ["pre_acc", "pre_time_s", "lp_acc", "ft_acc", "lpft_acc", "scratch_acc"]
        for row in rows:
            if row["train_img_s_max"] >= args.proxy_min_rate:
                row.update({k: round(v, 4) for k, v in pretrain_finetune_proxy(
                    row["arch"], row["kwargs"], data, args.pre_epochs).items()})
                print(f"proxy {row['arch']} {row['kwargs']}: "
                      f"{ {k: row[k] for k in cols[8:]} }", flush=True)
    print(f"matmul probe over rounds: median {statistics.median(probe):.0f}, min "
          f"{min(probe):.0f}, max {max(probe):.0f} GFLOP/s")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(str(row.get(c, "")) for c in cols) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--arch", default=M.DEFAULT_ARCH)
    p.add_argument("--kwargs", type=ast.literal_eval, default=dict(M.DEFAULT_ARCH_KWARGS),
                   help="timm kwargs of --arch as a Python dict literal")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--n", type=int, default=128 * 40, help="images per epoch for (a)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--both-formats", action="store_true",
                   help="(a)-(c) with channels_last on and off")
    p.add_argument("--archs", action="store_true", help="benchmark the candidate archs instead")
    p.add_argument("--only", nargs="*", help="with --archs: only these arch names")
    p.add_argument("--proxy", help="with --archs: .npz for the accuracy-potential proxy")
    p.add_argument("--proxy-min-rate", type=float, default=1500,
                   help="skip the proxy for archs slower than this (img/s)")
    p.add_argument("--pre-epochs", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5, help="with --archs: interleaved rounds")
    p.add_argument("--seconds", type=float, default=1.5,
                   help="with --archs: seconds per arch per round")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: time by process CPU time on 1 thread, robust to other processes "
                        "competing for the cores (img/s per CPU-second, not wall img/s)")
    p.add_argument("--json", help="also write the rows as JSON here")
    args = p.parse_args(argv)
    global CLOCK
    if args.clock == "cpu":
        CLOCK = time.process_time
        args.threads = 1
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.archs:
        bench_archs(args)
    else:
        bench_default(args)


if __name__ == "__main__":
    main()
