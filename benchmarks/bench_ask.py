"""Time and peak memory of `askshift ask` (support part) for large shifted sets.

    ./bin/venv python benchmarks/bench_ask.py [--sizes 10000 100000] [--reference 10000]
        [--model models/pretrain/model.pt] [--dir DIR]

Writes a reference folder and shifted folders of synthetic 32x32 PNG images (class folders;
the shifted images are tinted so the answer is not trivial), then runs
`python -m askshift ask --no-effect` on each under /usr/bin/time and prints wall seconds, CPU
seconds and peak resident memory. Images are decoded in batches, so memory should grow with the
feature matrix (n x features), not with the images. Without --model, a randomly initialised model
of the study's architecture is saved and used (the timing does not depend on its weights).
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def write_images(dest: Path, n: int, seed: int, tinted: bool) -> Path:
    rng = np.random.default_rng(seed)
    for i in range(n):
        label = int(rng.integers(0, 10))
        img = rng.integers(0, 50, (32, 32, 1)).repeat(3, axis=2).astype(np.uint8)
        x = 4 + 2 * label
        img[6:26, x:x + 5] = 230
        if tinted and rng.random() < 0.5:
            img = (0.75 * img + 0.25 * np.array([255, 80, 0])).astype(np.uint8)
        d = dest / f"c{label}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i:06d}.png")
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--reference", type=int, default=10_000)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--dir", type=Path)
    args = ap.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="askshift-bench-ask-"))
    model = args.model
    if model is None:
        from askshift.nn import models
        from askshift.study.params import load_params

        m = load_params("params.yaml", machine=False)["model"]
        model = root / "model.pt"
        models.save_model(models.create_model(m["arch"], 10, seed=0, **m["kwargs"]), model)
    ref = root / "reference"
    if not ref.exists():
        write_images(ref, args.reference, 0, tinted=False)
    print(f"reference: {args.reference} images; model {model}")
    for n in args.sizes:
        shifted = root / f"shifted-{n}"
        if not shifted.exists():
            write_images(shifted, n, 1, tinted=True)
        cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "askshift", "ask", "--reference", str(ref),
               "--shifted", str(shifted), "--out", str(root / f"out-{n}"), "--model", str(model), "--no-effect"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(r.stderr[-3000:])
        wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", r.stderr).group(1)
        secs = sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall.split(":"))))
        cpu = sum(float(re.search(rf"{k} time \(seconds\): ([\d.]+)", r.stderr).group(1)) for k in ("User", "System"))
        rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) / 1024 ** 2
        share = re.search(r"out of support: ([\d.]+%)", r.stdout).group(1)
        print(f"shifted {n:>7d}: {secs:7.1f} s wall  {cpu:7.1f} s cpu  peak RSS {rss:5.2f} GB  "
              f"(out of support {share})", flush=True)


if __name__ == "__main__":
    main()
