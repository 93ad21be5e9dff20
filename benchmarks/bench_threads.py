"""What a pinned DVC queue worker pays on a 2-core machine, one training step at a time.

    ./bin/venv python benchmarks/bench_threads.py [--steps 40]

Times a training step of the default model (params.yaml `model`, batch 128, 32x32) in child
processes: 1 torch thread on 1 core, 2 threads on 2 cores (a serial run), 2 threads pinned to 1
core (each of two `dvc queue start -j 2` workers), the last also with OMP_WAIT_POLICY=PASSIVE,
and two such pinned workers running at the same time on cores 0 and 1 (what a queue really
does: the cores share caches, memory bandwidth and the host). Prints ms per step, CPU ms per step
and a checksum of the weights after the steps: thread count is part of the result, pinning is
not. The queue's floor on 2 cores is (two workers at once) / (2 x 2 threads on 2 cores).
Linux only (taskset).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

STEP = r"""
import json, os, sys, time, torch
from askshift.nn import models
from askshift.study.params import load_params
torch.set_num_threads(int(sys.argv[1])); torch.manual_seed(0)
m = load_params("params.yaml", machine=False)["model"]
net = models.create_model(m["arch"], 10, seed=0, **m["kwargs"])
x, y = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
def step():
    loss = torch.nn.functional.cross_entropy(net(x), y); opt.zero_grad(); loss.backward(); opt.step()
for _ in range(5):
    step()
t, c, n = time.perf_counter(), time.process_time(), int(sys.argv[2])
for _ in range(n):
    step()
print(json.dumps({"ms": 1000 * (time.perf_counter() - t) / n, "cpu_ms": 1000 * (time.process_time() - c) / n,
                  "checksum": sum(float(p.double().sum()) for p in net.parameters())}))
"""


def start(threads: int, cores: str, steps: int, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(["taskset", "-c", cores, sys.executable, "-c", STEP, str(threads), str(steps)],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def result(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"timing child failed with status {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1])


def run(threads: int, cores: str, steps: int, env: dict | None = None) -> dict:
    return result(start(threads, cores, steps, env))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    cases = [("1 thread, 1 core", 1, "0", None), ("2 threads, 2 cores (serial)", 2, "0,1", None),
             ("2 threads, 1 core (queue worker)", 2, "0", None),
             ("2 threads, 1 core, OMP_WAIT_POLICY=PASSIVE", 2, "0", {"OMP_WAIT_POLICY": "PASSIVE"})]
    res = {}
    for label, threads, cores, env in cases:
        res[label] = r = run(threads, cores, args.steps, env)
        print(f"{label:44s} {r['ms']:7.1f} ms/step  cpu {r['cpu_ms']:7.1f} ms  weights checksum {r['checksum']:.6f}")
    pair = [start(2, core, args.steps) for core in ("0", "1")]   # the two workers of `-j 2`, together
    for core, proc in zip("01", pair):
        res[f"two workers at once, core {core}"] = r = result(proc)
        print(f"{'2 threads, 1 core, both workers at once: ' + core:44s} {r['ms']:7.1f} ms/step  "
              f"cpu {r['cpu_ms']:7.1f} ms  weights checksum {r['checksum']:.6f}")
    serial = res["2 threads, 2 cores (serial)"]["ms"]
    alone = res["2 threads, 1 core (queue worker)"]["ms"]
    together = max(res[f"two workers at once, core {c}"]["ms"] for c in "01")
    print(f"queue floor on 2 cores, one worker alone (vs two serial steps): {alone / (2 * serial):.3f}")
    print(f"queue floor on 2 cores, two workers at once (vs two serial steps): {together / (2 * serial):.3f}")


if __name__ == "__main__":
    main()
