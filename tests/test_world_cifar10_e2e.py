"""The cifar10 world end to end on CPU at smoke scale: `dvc repro` with `world: cifar10` on a
fixture tarball in the official format (tests/formats.py), read through `download.local`, and a
state dict as `pretrain.weights` (random weights: this checks the pipeline, not the science).
About three minutes on 2 cores."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

from askshift.data.worlds import CIFAR10
from tests.smoke import make_cifar10_workspace
from tests.test_pipeline_e2e import (ALL_STAGES, check_declared_reads, dvc, lock_outs, read_json,
                                     repro_and_commit, restore_head, stages_ran)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return repro_and_commit(make_cifar10_workspace(tmp_path_factory.mktemp("c10")))


def test_repro_runs_the_cifar10_world(workspace):
    ws, out = workspace
    assert stages_ran(out) == ALL_STAGES
    assert "pretrain: {'weights': 'file:fixtures/pretrained.pt'" in out
    manifest = read_json(ws, "data/raw/MANIFEST.json")
    # the digits sources are not fetched; CIFAR-10.1 is, its data file checked by its git blob id
    assert [s["name"] for s in manifest["sources"]] == ["cifar10", "cifar10_1", "cifar10_1_labels"]
    summary = read_json(ws, "data/curated/summary.json")
    assert summary["ref_plain"]["per_split"] == {"test": 300, "train": 600, "val": 200}
    assert set(summary["ref_plain"]["per_class"]) == set(CIFAR10.class_names)
    assert summary["pretrain"] == {"n": 0}                            # no corpus in this world
    tint = summary["debiased_spurious_tint"]["tint_predicts_label"]["train"]
    assert tint["accuracy"] == pytest.approx(tint["chance"]) and tint["nmi"] < 1e-9
    acc = pd.read_csv(ws / "results/evaluate/baseline/accuracies.csv")
    own = acc[acc["dataset"] == "ref_" + acc["variant"]].set_index("model")["accuracy"]
    assert own["plain/baseline/full-e4"] > 0.5                        # the fixture's classes are learnable
    from askshift.nn import models as M                                # the fast ResNet-9 of tests/smoke.py
    built = M.model_config(M.load_model(ws / "models/baseline/plain__baseline__full-w0.5-s0-e4.pt"))
    assert (built["arch"], built["kwargs"]) == ("askshift_resnet9", {"channels": [4, 8, 16, 32]})
    er = read_json(ws, "results/robustness/details.json")["shifts"]
    assert set(er) == set(CIFAR10.shifts)
    for name, s in er.items():
        assert s["er_ft_low"] <= s["er_ft"] <= s["er_ft_high"], name
    claims = pd.read_csv(ws / "reports/claims.csv")
    assert {"er/spurious_tint/ft", "er/pad/ft"} <= set(claims["key"])


def test_cifar10_stages_read_only_their_declared_deps(workspace):
    # a `download.local` copy is no DVC dep: its pinned sha256 (data/sources.yaml, a dep) fixes its
    # content; a local weights file neither: pretrain.weights_sha256 (a param) fixes it, checked by
    # the params stage and again by pretrain before it loads the file
    check_declared_reads(workspace[0], also={"download": ["fixtures/cifar-10-python.tar.gz",
                                                          "fixtures/cifar10.1_v6_data.npy",
                                                          "fixtures/cifar10.1_v6_labels.npy"],
                                             "params": ["fixtures/pretrained.pt"],
                                             "pretrain": ["fixtures/pretrained.pt"]})


def test_cifar10_report_renders_in_chromium(workspace):
    from tests.test_report import check_report_dir

    check_report_dir(workspace[0] / "reports")


def test_pipeline_weights_are_refused_before_any_work(workspace):
    ws, _ = workspace
    r = dvc(ws, "exp", "run", "-S", "pretrain.weights=pipeline", check=False)
    restore_head(ws)   # a failed `dvc exp run` leaves its params, and the params stage removed its outputs
    assert r.returncode != 0
    assert ("pretrain.weights = 'pipeline': the cifar10 world has no pre-training corpus" in r.stdout + r.stderr)
    assert stages_ran(r.stdout) == {"params"}


FANNED = {   # stage: (its independent runs at smoke scale, the outputs that must not change)
    "baseline": (12, ["models/baseline"]),
    "finetune": (12, ["models/finetune"]),
    # 2 trials x (scratch, pretrained) x (plain, re-weighted); DFR fitted inside each job
    "interventions": (8, ["models/interventions", "results/interventions/predictions.parquet",
                          "results/interventions/points.csv", "results/interventions/er.csv"]),
    # 2 trials x 4 arms + 2 sizes x 2 resamples
    "debiased": (12, ["results/debiased/points.csv", "results/debiased/arms.csv", "results/debiased/sweep.csv"]),
}


@pytest.mark.parametrize("stage", list(FANNED))
def test_fanned_out_runs_are_bitwise_the_serial_ones(workspace, stage):
    """A stage's independent runs (baselines, the fine-tunes of the lr grid, the interventions'
    arms, the de-biased trials and sweep) spread over 2 worker processes (each pinned to one
    core) give the serial run's outputs byte for byte, trained afresh (resumable checkpoints
    removed first). The submitit path runs the same job functions in its own processes and is
    tested on its own (tests/test_fanout.py): here fresh interpreters per job would cost minutes
    of CI."""
    ws, _ = workspace
    n, outs = FANNED[stage]
    serial = {o: lock_outs(ws)[o] for o in outs}
    shutil.rmtree(ws / "models" / "ckpt" / stage, ignore_errors=True)
    r = dvc(ws, "repro", "-f", "-s", stage, env={"ASKSHIFT_FANOUT": "processes", "ASKSHIFT_WORKERS": "2"})
    assert f"fan-out: {n} runs, processes, 2 at once" in r.stdout + r.stderr
    assert {o: lock_outs(ws)[o] for o in outs} == serial
