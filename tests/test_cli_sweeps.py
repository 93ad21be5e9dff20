"""askshift.cli.sweeps: the queued sweep commands and the collector of `dvc exp show --csv`."""
import json

import pandas as pd
import pytest

from askshift import cli
from askshift.cli import sweeps as SW

EXP_SHOW = """Experiment,rev,typ,Created,parent,State,Executor,shifts.spurious_tint.er_ft,shifts.flip.er_ft,arms.spurious_tint.spurious_tint+pad.pretrained_dfr.er,results/a/metrics.json:wall_seconds,theorem.theorem_error,seed,curate.spurious_tint.p,finetune.train.lr,stages/finetune.py
,workspace,baseline,,,,,0.001,0.10,0.05,12,1e-14,0,0.5,0.02,abc
,master,baseline,2026-01-01T00:00:00,,,,0.001,0.10,0.05,12,1e-14,0,0.5,0.02,abc
bias-p0.9,1a2b3c4,branch_commit,2026-01-01T00:10:00,,Success,,-0.02,0.11,0.08,13,1e-14,0,0.9,0.02,abc
lr-big,5d6e7f8,branch_base,2026-01-01T00:20:00,,Success,,0.003,0.15,0.04,11,1e-14,0,0.5,0.05,abc
queued-one,9a9a9a9,branch_commit,,,Queued,,,,,,,0,0.7,0.02,abc
"""

PARAMS = ["seed", "curate.spurious_tint.p", "finetune.train.lr", "finetune.train.epochs"]


def test_queue_commands():
    cmds = SW.queue_commands("bias")
    assert cmds[0] == ["dvc", "exp", "run", "--queue", "-n", "bias-p0.5", "-S", "curate.spurious_tint.p=0.5"]
    assert len(cmds) == len(SW.SWEEPS["bias"]) == 6
    assert any("curate.label_shift.p_minority=0.1" in c for c in cmds[-2])
    ft = [c[-1] for c in SW.queue_commands("finetune")]
    assert "finetune.train.weight_decay=0" in ft and "finetune.train.batch_size=256" in ft
    with pytest.raises(cli.CLIError, match="unknown sweep"):
        SW.queue_commands("nope")


def test_collect():
    from io import StringIO

    t = SW.collect(pd.read_csv(StringIO(EXP_SHOW)), PARAMS)
    # the workspace row equal to HEAD is dropped; HEAD is the baseline row
    assert list(t["experiment"]) == ["master", "bias-p0.9", "lr-big", "queued-one"]
    assert list(t["changed"]) == ["(baseline)", "curate.spurious_tint.p=0.9", "finetune.train.lr=0.05",
                                  "curate.spurious_tint.p=0.7"]
    # varying params only, then the headline metrics (file prefix dropped); deps hashes not kept
    assert list(t.columns[:6]) == ["experiment", "rev", "changed", "state", "curate.spurious_tint.p",
                                   "finetune.train.lr"]
    assert "seed" not in t and "stages/finetune.py" not in t and "wall_seconds" not in t
    assert {"shifts.spurious_tint.er_ft", "arms.spurious_tint.spurious_tint+pad.pretrained_dfr.er",
            "theorem.theorem_error"} <= set(t.columns)
    assert t.loc[1, "shifts.spurious_tint.er_ft"] == -0.02 and pd.isna(t.loc[3, "shifts.flip.er_ft"])
    every = SW.collect(pd.read_csv(StringIO(EXP_SHOW)), PARAMS, metrics=(r"wall_seconds$",), all_params=True)
    assert "seed" in every and "wall_seconds" in every and "shifts.flip.er_ft" not in every


def test_cli_from_csv_writes_the_table(tmp_path, capsys):
    src = tmp_path / "exp.csv"
    src.write_text(EXP_SHOW)
    params = tmp_path / "params.yaml"
    params.write_text("seed: 0\ncurate:\n  spurious_tint:\n    p: 0.5\nfinetune:\n  train:\n    lr: 0.02\n")
    out = tmp_path / "sweeps.json"
    assert cli.main(["sweeps", "--from-csv", str(src), "--params", str(params), "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["experiment"] for r in rows] == ["master", "bias-p0.9", "lr-big", "queued-one"]
    assert "bias-p0.9" in capsys.readouterr().out
    assert cli.main(["sweeps", "--from-csv", str(src), "--params", str(params), "--out", str(tmp_path / "x.txt")]) == 2
    assert "unknown extension" in capsys.readouterr().err
    assert cli.main(["sweeps", "--queue", "bias", "--dry-run"]) == 0
    assert "dvc exp run --queue -n bias-p0.5 -S curate.spurious_tint.p=0.5" in capsys.readouterr().out
    assert cli.main(["sweeps", "--list"]) == 0
    assert cli.main(["sweeps", "--from-csv", str(tmp_path / "missing.csv")]) == 2
