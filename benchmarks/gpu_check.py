"""The GPU figures of the paper-scale path, on synthetic data (nothing is downloaded).

    python benchmarks/gpu_check.py [--json out.json]      # on a CUDA machine, ~2 minutes
    python benchmarks/gpu_check.py --dry-run              # tiny sizes on CPU: checks the script runs

1. ViT-B/32 at 224 (timm ``vit_base_patch32_224``, random weights: the paper's architecture),
   bf16 autocast: training img/s of a bare fwd+bwd+step loop on a GPU-resident batch, inference
   img/s, model FLOPs per image (torch's FLOP counter) and the TFLOP/s they imply, peak memory.
2. The CIFAR-10 baseline recipe (``askshift_resnet9`` at 32x32, SGD, batch 512, 4-pixel crops and
   flips): img/s of the pipeline's own training loop (askshift.nn.train.fit, epoch 2 of 2,
   in-memory uint8 images, the pipeline's device and AMP settings) against the bare loop on a
   resident batch: the ratio is the data path's overhead (goal >= 0.9).
3. One run across all visible GPUs (``ddp`` = the GPU count, torch DDP through fit): img/s of the
   same recipe against ``ddp=1``, and the scaling efficiency. Skipped with a single GPU.
4. Streamed data: ViT-B/32 at 224 trained through fit() on JPEG files decoded by DataLoader
   workers (askshift.data.imagesets.ImageFiles, ``workers`` = CPU cores) against the same images
   held in memory: the ratio says whether decoding keeps the GPU busy (goal >= 0.9).
5. Fan-out: one worker process per visible GPU (ASKSHIFT_FANOUT=processes), each reporting the
   GPU it was given.
Prints one line per figure; ``--json`` writes them all.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from askshift.nn import models as M  # noqa: E402
from askshift.nn import train as T  # noqa: E402
from askshift.study import fanout  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_loop(model, x, y, device, steps: int, amp: bool, lr: float = 0.01) -> float:
    """img/s of fwd+bwd+SGD step on one resident batch (best of 3 timings after warm-up)."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    dtype = torch.bfloat16 if amp else torch.float32

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    best = 0.0
    for _ in range(3):
        sync(device)
        t = time.perf_counter()
        for _ in range(steps):
            step()
        sync(device)
        best = max(best, steps * len(x) / (time.perf_counter() - t))
    return best


@torch.inference_mode()
def inference(model, x, device, amp: bool, steps: int) -> float:
    model.eval()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        model(x)
        sync(device)
        t = time.perf_counter()
        for _ in range(steps):
            model(x)
        sync(device)
    model.train()
    return steps * len(x) / (time.perf_counter() - t)


def vit_figures(device, dry: bool) -> dict:
    import timm
    from torch.utils.flop_counter import FlopCounterMode

    size, batch = (64, 4) if dry else (224, 256)
    model = timm.create_model("vit_base_patch32_224", num_classes=10, img_size=size).to(device)
    amp = device.type == "cuda"
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    with FlopCounterMode(display=False) as fc:   # forward + backward of one image
        F.cross_entropy(model(x[:1]), y[:1]).backward()
    flops = fc.get_total_flops()
    model.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train_rate = bare_loop(model, x, y, device, steps=2 if dry else 20, amp=amp)
    infer_rate = inference(model, torch.randn(2 * batch, 3, size, size, device=device), device, amp, 2 if dry else 20)
    out = {"vit_b32_img_size": size, "vit_b32_batch": batch, "vit_b32_train_img_s": round(train_rate, 1),
           "vit_b32_infer_img_s": round(infer_rate, 1), "vit_b32_train_gflop_per_img": round(flops / 1e9, 2),
           "vit_b32_train_tflop_s": round(train_rate * flops / 1e12, 1)}
    if device.type == "cuda":
        out["vit_b32_peak_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return out


def recipe_data(dry: bool):
    n, batch = (256, 64) if dry else (25_600, 512)
    rng = np.random.default_rng(0)
    data = (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64))
    return data, batch


def recipe_fit_rate(data, batch: int, device, ddp: int = 1) -> float:
    """img/s of epoch 2 of 2 of the fast ResNet-9 recipe through fit()."""
    model = M.create_model("askshift_resnet9", 10, seed=0)
    cfg = T.TrainConfig(epochs=2, batch_size=batch, lr=0.1, progress=False, device=device.type, seed=0,
                        random_crop=4, random_flip=True, label_smoothing=0.2, ddp=ddp)
    return len(data[0]) / T.fit(model, data, None, cfg)[1]["time"]


def cifar_recipe_figures(device, dry: bool) -> dict:
    data, batch = recipe_data(dry)
    fit_rate = recipe_fit_rate(data, batch, device)
    model = M.create_model("askshift_resnet9", 10, seed=0)
    mean, std = M.normalization(model)
    x = M.to_input(torch.from_numpy(data[0][:batch]), mean, std).to(device).contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(data[1][:batch]).to(device)
    model = model.to(device).to(memory_format=torch.channels_last)
    bare = bare_loop(model, x, y, device, steps=2 if dry else 50, amp=device.type == "cuda", lr=0.1)
    return {"cifar_resnet9_fit_img_s": round(fit_rate, 1), "cifar_resnet9_bare_img_s": round(bare, 1),
            "cifar_resnet9_fit_over_bare": round(fit_rate / bare, 3)}


def streamed_figures(device, dry: bool, scratch: Path) -> dict:
    from PIL import Image

    from askshift.data.imagesets import ImageFiles

    n, side, batch = (16, 64, 8) if dry else (1024, 224, 256)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, side, side, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.int64)
    scratch.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        paths.append(scratch / f"{i:05d}.jpg")
        Image.fromarray(img).save(paths[-1], quality=90)
    files = ImageFiles(tuple(paths), labels, side)
    decoded = np.stack([files.read(i) for i in range(n)])   # what the workers decode, held in memory
    workers = os.cpu_count() or 1
    rates = {}
    for name, data in (("memory", (decoded, labels)), ("files", files)):
        model = M.create_model("vit_base_patch32_224", 10, img_size=side, seed=0)
        cfg = T.TrainConfig(epochs=2, batch_size=batch, lr=0.01, progress=False, device=device.type, seed=0,
                            random_flip=True, workers=workers)
        rates[name] = n / T.fit(model, data, None, cfg)[1]["time"]
    return {"streamed_workers": workers, "streamed_vit_b32_files_img_s": round(rates["files"], 1),
            "streamed_vit_b32_memory_img_s": round(rates["memory"], 1),
            "streamed_over_memory": round(rates["files"] / rates["memory"], 3)}


def ddp_figures(device, dry: bool) -> dict:
    gpus = torch.cuda.device_count() if device.type == "cuda" else 2   # dry run: 2 gloo processes
    if gpus < 2:
        return {"ddp": "skipped: one GPU"}
    data, batch = recipe_data(dry)
    one, spread = recipe_fit_rate(data, batch, device), recipe_fit_rate(data, batch, device, ddp=gpus)
    return {"ddp_processes": gpus, "ddp_resnet9_img_s": round(spread, 1), "ddp1_resnet9_img_s": round(one, 1),
            "ddp_scaling_efficiency": round(spread / (gpus * one), 3)}


def which_gpu(_job) -> str:
    return os.environ.get("CUDA_VISIBLE_DEVICES", "") + (f" ({torch.cuda.get_device_name(0)})"
                                                         if torch.cuda.is_available() else " (cpu)")


def fanout_figures(scratch: Path) -> dict:
    gpus = fanout.visible_gpus()
    env = {**os.environ, "ASKSHIFT_FANOUT": "processes", "ASKSHIFT_WORKERS": str(max(1, len(gpus)))}
    t = time.perf_counter()
    got = fanout.run_all(which_gpu, list(range(2 * max(1, len(gpus)))), scratch, env=env)
    return {"fanout_visible_gpus": len(gpus), "fanout_workers_saw": sorted(set(got)),
            "fanout_seconds": round(time.perf_counter() - t, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dry-run", action="store_true", help="tiny sizes, CPU allowed: check that the script runs")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()
    if not torch.cuda.is_available() and not args.dry_run:
        print("gpu_check: no CUDA GPU here (use --dry-run to check the script on CPU)", file=sys.stderr)
        return 2
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    figures = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
               "gpus": torch.cuda.device_count()}
    for name, fn in (("vit", lambda: vit_figures(device, args.dry_run)),
                     ("cifar", lambda: cifar_recipe_figures(device, args.dry_run)),
                     ("ddp", lambda: ddp_figures(device, args.dry_run)),
                     ("streamed", lambda: streamed_figures(device, args.dry_run, Path("models/ckpt/gpu_check_jpegs"))),
                     ("fanout", lambda: fanout_figures(Path("models/ckpt/fanout/gpu_check")))):
        t = time.perf_counter()
        got = fn()
        figures.update(got)
        print(f"{name} ({time.perf_counter() - t:.0f} s): " + ", ".join(f"{k} {v}" for k, v in got.items()), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
