"""A catalogue of bad inputs and the exact one-line message each one gets, before any work.

params.yaml values are checked by the `params` stage (askshift/study/params.py) before any other
stage runs; the commands check their arguments before they load a model or fit anything."""
from __future__ import annotations

import copy

import pandas as pd
import pytest
from ruamel.yaml import YAML

from askshift.cli import main as cli
from askshift.study.params import CROSS_CHECKS, ParamsError, validate
from tests.test_params import ROOT, base, edit

KWARGS = {"channels": [16, 32, 64, 128], "stem_width": 16}
PARAMS = [
    ("curate.corpus.p_tint", float("nan"), "curate.corpus.p_tint = nan: expected a finite number in [0.0, 1.0]"),
    ("curate.spurious_tint.p", float("inf"), "curate.spurious_tint.p = inf: expected a finite number in [0.1, 1.0]"),
    ("finetune.train.lr", float("-inf"), "finetune.train.lr = -inf: expected a finite number in [0.0, 10.0]"),
    ("pretrain.train.epochs", 1_000_000_000, "pretrain.train.epochs = 1000000000: expected an integer in [1, 10000]"),
    ("seed", 4294967296, "seed = 4294967296: expected an integer in [0, 4294967295]"),
    ("curate.reference.n_train", 6000.0, "curate.reference.n_train = 6000.0: expected an integer in [100, 50000]"),
    ("finetune.dataset", "debaised",
     "finetune.dataset = 'debaised': must be one of: reference, debiased (did you mean 'debiased'?)"),
    ("pretrain.train.warmup_epochs", 3, "pretrain.train.warmup_epochs = 3.0 is above pretrain.train.epochs = 2"),
    ("pretrain.train.schedule", "triangular", "pretrain.train.schedule = 'triangular' peaks at epoch 2, so "
     "pretrain.train.epochs = 2 must be above it (or use cosine / constant)"),
    ("finetune.train.batch_size", 1, "finetune.train.batch_size = 1: expected an integer in [2, 65536]"),
    ("baseline.variants", ["plain", "label_shift"], "interventions.variants needs the baselines of "
     "['spurious_tint'], but baseline.variants = ['plain', 'label_shift']: add 'spurious_tint' there"),
    ("debiased.sizes", [20, 20000], "debiased.sizes[1] = 20000: expected an integer in [10, 10000]"),
    ("curate.debiased.n_images", 6000, "curate.debiased.n_images = 6000 needs 600 images per class but the "
     "rarest class has about 515 in curate.reference.n_train = 6000 images"),
    ("model.arch", "resnet10", "model.arch = 'resnet10' is not a timm architecture (did you mean 'resnet10t'?)"),
    ("model.kwargs", {**KWARGS, "foo": 1}, "resnet10t does not take them (ResNet.__init__() got an unexpected "
     "keyword argument 'foo')"),
    ("pretrain.weights", "timm:doesnotexist",
     "pretrain.weights = 'timm:doesnotexist': timm has no pretrained weights named 'doesnotexist'"),
    ("pretrain.weights", "timm:resnet18.a1_in1kk", "timm has no pretrained weights named 'resnet18.a1_in1kk' "
     "(did you mean 'resnet18.a1_in1k'?)"),
    ("pretrain.weights", "timm:resnet18.a1_in1k",
     "pretrain.weights = 'timm:resnet18.a1_in1k' are weights of 'resnet18' but model.arch = 'resnet10t'"),
    ("pretrain.weights", "timm:resnet18.a1_in1k@", "pretrain.weights = 'timm:resnet18.a1_in1k@': must be 'pipeline' "
     "(train on the corpus), 'timm:<name.tag>[@<local file>]' or 'file:<path>'"),
    ("pretrain.weights_sha256", "c0ffee", "pretrain.weights_sha256 = 'c0ffee': expected '' or a sha256 of 64 hex "
     "digits (as `sha256sum FILE` prints it)"),
    ("pretrain.weights", "file:/nonexistent/w.pt", "pretrain.weights = 'file:/nonexistent/w.pt': no such file or "
     "folder /nonexistent/w.pt (relative paths start at the repository root)"),
    ("pretrain.weights_sha256", "0" * 64, f"pretrain.weights_sha256 = '{'0' * 64}' but pretrain.weights = "
     "'pipeline' reads no local file: leave it empty ('')"),
    ("baseline.model.kwargs", {"channels": [8]}, "baseline.model.kwargs = {'channels': [8]}: with "
     "baseline.model.arch = same the baselines take model.kwargs; set baseline.model.arch to give them their own"),
    ("baseline.model", {"arch": "resnet18", "kwargs": {}}, "baseline.widths = [1.0, 0.5]: widths other than 1.0 "
     "scale baseline.model.kwargs.channels (a timm ResNet's), which baseline.model.kwargs = {} does not set"),
    ("split.shifts", ["fonts", "font"], "split.shifts[1] = 'font': must be one of: spurious_tint, label_shift, "
     "unseen_tint, flip, pad, photo_background, fonts, corpus_fonts, uci_digits, mixture, cifar10_1 (did you mean 'fonts'?)"),
    ("robustness.confidence", 0.9999, "robustness.confidence = 0.9999: expected a number in [0.5, 0.999]"),
    ("ask.reference", "/nonexistent/ref", "ask.reference = '/nonexistent/ref': no such file or folder (relative "
     "paths start at the repository root; expected an image folder or a CSV / parquet table of image paths)"),
    ("ask.shifted", "params.yaml", "ask.shifted = 'params.yaml': expected an image folder or a .csv / .parquet "
     "table of image paths"),
    ("ask.model", "models/pretrain/model.pt", "ask.model = 'models/pretrain/model.pt': must be 'pretrained' (the "
     "pipeline's pre-trained model) or 'timm:<name.tag>[@<local file>]'"),
    ("ask.features", "pixel", "ask.features = 'pixel': must be one of: pretrained, pixels, both (did you mean "
     "'pixels'?)"),
    ("ask.example", "mixtures", "ask.example = 'mixtures': must be one of: spurious_tint, label_shift, "
     "unseen_tint, flip, pad, photo_background, fonts, corpus_fonts, uci_digits, mixture, cifar10_1 (did you mean 'mixture'?)"),
]


def check_all(p: dict) -> None:
    q = validate(p)
    for rule in CROSS_CHECKS:
        rule(q)


@pytest.mark.parametrize("key,value,message", PARAMS, ids=[f"{k}={v!r}"[:60] for k, v, _ in PARAMS])
def test_bad_params(key, value, message):
    with pytest.raises(ParamsError) as e:
        check_all(edit(copy.deepcopy(base()), key, value))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_baselines_of_their_own_architecture():
    """baseline.model gives the from-scratch models (baselines, scratch arms) their own timm
    architecture, checked like model.arch; `same` takes model.arch and model.kwargs."""
    from askshift.study.config import scratch_model

    p = edit(edit(copy.deepcopy(base()), "baseline.widths", [1.0]), "baseline.model", {"arch": "resnet18t", "kwargs": {}})
    with pytest.raises(ParamsError, match=r"baseline.model.arch = 'resnet18t' is not a timm architecture \(did you "
                                          r"mean 'resnet18'\?\)"):
        check_all(p)
    own = edit(p, "baseline.model", {"arch": "resnet18", "kwargs": {"stem_width": 16}})
    check_all(own)
    assert scratch_model(validate(own)) == ("resnet18", {"stem_width": 16})
    assert scratch_model(validate(base())) == ("resnet10t", KWARGS)


def test_the_projects_own_architecture_passes_the_machine_check_in_a_fresh_interpreter(tmp_path):
    """askshift_resnet9 is registered with timm when askshift.nn.fast_resnet is imported; the
    machine stage's interpreter imports nothing else of the library, so check it in a fresh one."""
    import subprocess
    import sys

    p = edit(copy.deepcopy(base()), "baseline.model", {"arch": "askshift_resnet9", "kwargs": {"channels": [8, 16, 32, 64]}})
    YAML().dump(p, tmp_path / "params.yaml")
    code = ("import sys; from askshift.study.params import load_params; "
            f"load_params({str(tmp_path / 'params.yaml')!r}); "
            "assert 'askshift.nn.models' not in sys.modules; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
    with pytest.raises(ParamsError, match=r"baseline.model.kwargs = \{'stem_width': 8\}: askshift_resnet9 does not take them"):
        check_all(edit(edit(p, "baseline.widths", [1.0]), "baseline.model",
                       {"arch": "askshift_resnet9", "kwargs": {"stem_width": 8}}))


def test_cuda_without_a_gpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ParamsError, match="compute.device = 'cuda' but this machine has no CUDA GPU: use auto"):
        check_all(edit(base(), "compute.device", "cuda"))


def test_not_utf8_and_empty_params(tmp_path):
    from askshift.study.params import load_params

    bad = tmp_path / "params.yaml"
    bad.write_bytes(b"seed: 0\nworld: d\xe9gits\n")
    with pytest.raises(ParamsError, match=r"params.yaml: not UTF-8 text \(byte 16: invalid continuation byte\); "
                                          "save it as UTF-8"):
        load_params(bad)
    bad.write_text("")
    with pytest.raises(ParamsError, match="params.yaml: the top level: expected a mapping of keys, got None"):
        load_params(bad)


def test_er_percent_on_fractions_and_duplicate_columns(tmp_path, capsys):
    t = tmp_path / "acc.csv"
    pd.DataFrame({"model": list("abcd"), "group": ["b", "b", "b", "p"], "ref": [0.5, 0.6, 0.7, 0.8],
                  "shift": [0.4, 0.5, 0.6, 0.9]}).to_csv(t, index=False)
    assert cli(["er", str(t), "--ref", "ref", "--shift", "shift", "--baseline", "group=b", "--percent"]) == 2
    assert ("--percent, but every accuracy in ref, shift is at most 1: they look like fractions in [0, 1]; "
            "drop --percent") in capsys.readouterr().err
    t.write_text("model,group,ref,ref,shift\na,b,0.5,0.5,0.4\nb,b,0.6,0.6,0.5\nc,b,0.7,0.7,0.6\n")
    assert cli(["er", str(t), "--ref", "ref", "--shift", "shift", "--baseline", "group=b"]) == 2
    assert "column 'ref' appears more than once in the header of" in capsys.readouterr().err


def test_probe_on_a_file_that_is_not_a_model(tmp_path, capsys):
    import numpy as np

    from askshift.data.store import Dataset, save

    meta = pd.DataFrame({"index": range(4), "label": [0, 1, 0, 1], "class_name": list("abab"), "group": 0,
                         "split": "test", "source": "x", "tint": [0, 1, 1, 0]})
    save(Dataset(np.zeros((4, 32, 32, 3), np.uint8), meta), tmp_path / "ds")
    (tmp_path / "notes.pt").write_text("not a model")
    assert cli(["probe", "--dataset", str(tmp_path / "ds"), "--attribute", "tint", str(tmp_path / "notes.pt")]) == 2
    err = capsys.readouterr().err
    assert "notes.pt is not an askshift model file" in err and "weights_only" not in err and "Traceback" not in err


def test_repo_params_pass_every_rule():
    check_all(YAML(typ="safe", pure=True).load((ROOT / "params.yaml").read_text()))


def test_machine_checks_run_in_their_own_stage(tmp_path):
    """The `params` stage validates without torch or timm (so an experiment that changes no
    machine-dependent key does not pay for importing them); the `machine` stage checks the rest,
    with the same messages, and every stage that runs torch code waits for it."""
    import subprocess
    import sys

    from askshift.study.config import select
    from askshift.study.declared import STAGE_PARAMS
    from askshift.study.dvcfile import expanded_stages, read_dvc_yaml
    from askshift.study.params import check_machine

    p = validate(edit(copy.deepcopy(base()), "model.arch", "resnet10"))
    for rule in CROSS_CHECKS:   # what the params stage runs: all but the machine checks pass
        if rule.__name__ != "_model_checks":
            rule(p)
    with pytest.raises(ParamsError, match=r"^params.yaml: model.arch = 'resnet10' is not a timm architecture"):
        check_machine(select(p, set(STAGE_PARAMS["machine"])))
    code = ("import sys; from askshift.study.params import load_params; load_params('params.yaml', machine=False); "
            "print(sorted(m for m in ('torch', 'timm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    for name, stage in expanded_stages(read_dvc_yaml(ROOT / "dvc.yaml")).items():
        deps = stage.get("deps", [])
        if any(d in deps for d in ("askshift/nn/models.py", "askshift/nn/train.py")):
            assert "results/machine.json" in deps, f"stage {name} runs torch code before the machine checks"
