"""A smoke-sized configuration of the study, and a throwaway copy of the repo to run it in.

Used by the end-to-end tests; also handy by hand: `python -m tests.smoke DIR` makes a workspace.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]

SMOKE = {
    "curate.reference.n_train": 600,
    "curate.reference.n_val": 200,
    "curate.reference.n_test": 400,
    "curate.mixture.n": 200,
    "curate.corpus.letters_per_class": 30,
    "curate.corpus.max_per_source": 1500,
    "curate.grid.per_dataset": 16,
    # small, but every model learns (the end-to-end test asserts it): ~100 steps per run
    "pretrain.train.epochs": 3,
    "pretrain.train.batch_size": 64,
    "pretrain.train.warmup_epochs": 0.2,
    "baseline.snapshot_epochs": [1, 2, 4],
    "baseline.subset_fractions": [0.3],
    "baseline.train.epochs": 4,
    "baseline.train.batch_size": 32,
    "baseline.train.lr": 0.05,
    "finetune.copies": 1,
    "finetune.lr_grid": [0.5, 1.0],
    "finetune.strategies": ["ft", "lp"],
    "finetune.train.epochs": 2,
    "finetune.train.batch_size": 32,
    "finetune.lp.epochs": 10,
    "finetune.min_steps": 40,
    "robustness.n_boot": 50,
    "evaluate.min_group_size": 2,   # 400 test images over 100 (class, tint) groups
    # the paper's analyses: two trials, tiny sweeps
    "interventions.trials": 2,
    "interventions.dfr.Cs": [1.0, 0.1],
    "debiased.trials": 2,
    "debiased.min_steps": 10,
    "debiased.sizes": [20, 40],
    "debiased.resamples": 2,
    "split.k": 3,
    "split.min_part": 5,
    "theory.steps": 300,
}


# the cifar10 world on a fixture tarball (tests/formats.py): 100 training and 30 test images per class
CIFAR10_SMOKE = {
    **{k: v for k, v in SMOKE.items() if not k.startswith("curate.corpus")},
    "world": "cifar10",
    "curate.reference.n_train": 600,
    "curate.reference.n_val": 200,
    "curate.reference.n_test": 300,
    "curate.mixture.out_of_support_shift": "pad",
    "split.shifts": ["cifar10_1", "mixture"],
    "ask.example": "mixture",
    "pretrain.weights": "file:fixtures/pretrained.pt",
    "download.local": {"cifar10": "fixtures/cifar-10-python.tar.gz",
                       "cifar10_1": "fixtures/cifar10.1_v6_data.npy",
                       "cifar10_1_labels": "fixtures/cifar10.1_v6_labels.npy"},
    # baselines: the fast ResNet-9 (narrow) with its recipe's augmentation
    "baseline.model.arch": "askshift_resnet9",
    "baseline.model.kwargs": {"channels": [8, 16, 32, 64]},
    "baseline.train.random_crop": 2,
    "baseline.train.random_flip": True,
}


def set_params(path: Path, overrides: dict) -> None:
    """Edit params.yaml in place (round-trip, comments kept)."""
    yaml = YAML()
    data = yaml.load(path.read_text())
    for dotted, value in overrides.items():
        d = data
        *parents, last = dotted.split(".")
        for k in parents:
            d = d[k]
        d[last] = value
    with path.open("w") as f:
        yaml.dump(data, f)


def git(ws: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True, text=True).stdout


def make_workspace(dest: Path, overrides: dict = SMOKE) -> Path:
    """Copy the repo's tracked and untracked (not ignored) files into a fresh git repo."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file() and not rel.startswith(("data/raw/", "data/curated/datasets/")):
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    set_params(dest / "params.yaml", overrides)
    for name in ("dvc.lock",):  # the smoke run makes its own lock file
        (dest / name).unlink(missing_ok=True)
    git(dest, "init", "-q")
    git(dest, "config", "user.email", "ci@example.invalid")
    git(dest, "config", "user.name", "ci")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "smoke workspace")
    return dest


def make_cifar10_workspace(dest: Path) -> Path:
    """A smoke workspace of the cifar10 world: the fixture tarball as the local copy of the
    `cifar10` source (its hash pinned in the workspace's table) and a state dict of the
    configured model as the "pre-trained" weights (random: this checks the plumbing, not the
    science)."""
    import torch
    import timm

    from askshift.io import file_sha256
    from tests.formats import write_cifar10_1, write_cifar10_python

    sha = write_cifar10_python(dest / "fixtures" / "cifar-10-python.tar.gz")
    c101 = write_cifar10_1(dest / "fixtures")
    table = dest / "data" / "sources.yaml"
    yaml = YAML()
    doc = yaml.load(table.read_text()) if table.exists() else yaml.load((ROOT / "data" / "sources.yaml").read_text())
    for entry in doc["sources"]:
        if entry["name"] == "cifar10":
            entry["files"][0]["sha256"] = sha
        if entry["name"] in ("cifar10_1", "cifar10_1_labels"):   # pinned as the real table pins them
            f = entry["files"][0]
            for kind in ("sha256", "git_sha1"):
                if kind in f:
                    f[kind] = c101[f["path"]][kind]
    dest.mkdir(parents=True, exist_ok=True)
    make_workspace(dest, CIFAR10_SMOKE)
    with table.open("w") as f:
        yaml.dump(doc, f)
    model = YAML(typ="safe").load((dest / "params.yaml").read_text())["model"]
    torch.manual_seed(0)
    net = timm.create_model(model["arch"], num_classes=10, **(model["kwargs"] or {}))
    torch.save(net.state_dict(), dest / "fixtures" / "pretrained.pt")
    set_params(dest / "params.yaml", {"pretrain.weights_sha256": file_sha256(dest / "fixtures" / "pretrained.pt")})
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "cifar10 fixtures")
    return dest


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    print(make_cifar10_workspace(out) if "--cifar10" in sys.argv[2:] else make_workspace(out))
