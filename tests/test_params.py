"""params.yaml validation: every bad input stops with a message naming key, value and choices."""
import copy
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from askshift.study.params import ParamsError, load_params, validate

ROOT = Path(__file__).resolve().parents[1]


def base() -> dict:
    return YAML(typ="safe", pure=True).load((ROOT / "params.yaml").read_text())


def edit(params: dict, dotted: str, value):
    d = params
    *parents, last = dotted.split(".")
    for k in parents:
        d = d[k]
    if value is DELETE:
        del d[last]
    else:
        d[last] = value
    return params


DELETE = object()


def test_repo_params_are_valid():
    p = load_params(ROOT / "params.yaml")
    assert p["world"] == "digits" and p["curate"]["spurious_tint"]["p"] == 0.9


BAD = [
    ("curate.spurious_tint.p", 1.5, "curate.spurious_tint.p = 1.5: expected a number in [0.1, 1.0]"),
    ("curate.spurious_tint.p", "high", "curate.spurious_tint.p = 'high': expected a number"),
    ("curate.spurious_tint.p", True, "curate.spurious_tint.p = True: expected a number"),
    ("curate.reference.n_train", 60.5, "curate.reference.n_train = 60.5: expected an integer in [100, 50000]"),
    ("curate.reference.n_train", 10, "curate.reference.n_train = 10: expected an integer in [100, 50000]"),
    ("curate.reference.n_train", 9000, "n_train + n_val + n_test = 13000 but the digits world's source holds 10000 images"),
    ("world", "digts", "world = 'digts': must be one of: digits, cifar10 (did you mean 'digits'?)"),
    ("world", "imagenet", "world = 'imagenet': must be one of: digits"),
    ("curate.mixture.out_of_support_shift", "flipp",
     "must be one of: unseen_tint, flip, pad, photo_background (did you mean 'flip'?)"),
    ("seed", -1, "seed = -1: expected an integer in [0, 4294967295]"),
    ("seed", "0", "seed = '0': expected an integer"),
    ("curate.label_shift.p_minority", 0, "curate.label_shift.p_minority = 0: expected a number in [0.01, 1.0]"),
    ("curate.pad.value", 256, "curate.pad.value = 256: expected an integer in [0, 255]"),
    ("curate.corpus.scale_min", 0.9, "scale_min = 0.9 is above curate.corpus.scale_max = 0.6"),
    ("curate.spurious_tint", 0.5, "curate.spurious_tint: expected a mapping of keys, got 0.5"),
    ("curate.spurious_tint.p", DELETE, "missing key 'curate.spurious_tint.p' (expected under curate.spurious_tint)"),
    ("curate.spurious_tint.pp", 0.7,
     "unknown key 'curate.spurious_tint.pp': no stage reads it (did you mean 'p'?). Valid keys under curate.spurious_tint: p"),
    ("curate.tint_strenght", 0.3, "unknown key 'curate.tint_strenght': no stage reads it (did you mean 'tint_strength'?)"),
    ("finetune_dataset", "debiased", "unknown key 'finetune_dataset': no stage reads it"),
    ("curate.image_size", 64, "curate.image_size = 64: must be one of: 32"),
    ("curate.debiased.n_images", 205, "curate.debiased.n_images = 205: must be a multiple of the 10 classes"),
    ("curate.debiased.retints", 11, "curate.debiased.retints = 11: expected an integer in [1, 10]"),
    ("compute.ddp", 0, "compute.ddp = 0: expected an integer in [1, 64]"),
    ("baseline.train.random_flip", "yes", "baseline.train.random_flip = 'yes': expected true or false"),
    ("baseline.train.random_crop", -2, "baseline.train.random_crop = -2: expected an integer in [0, 64]"),
    # the linear probe trains on features computed once: it has no augmentation to set
    ("finetune.lp.random_flip", True, "unknown key 'finetune.lp.random_flip': no stage reads it"),
]


@pytest.mark.parametrize("key,value,message", BAD, ids=[f"{k}={v!r}" for k, v, _ in BAD])
def test_bad_input_is_named(tmp_path, key, value, message):
    params = base()
    if key == "curate.corpus.scale_min":
        edit(params, "curate.corpus.scale_max", 0.6)
    edit(params, key, value)
    path = tmp_path / "params.yaml"
    buf = path.open("w")
    YAML().dump(params, buf)
    buf.close()
    with pytest.raises(ParamsError) as e:
        load_params(path)
    assert message in str(e.value)
    assert str(path) in str(e.value)  # the file is named too


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("seed: [1, 2\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)
    with pytest.raises(ParamsError, match="cannot read params file"):
        load_params(tmp_path / "nope.yaml")


def test_validate_normalises_ints_to_floats():
    p = edit(base(), "curate.spurious_tint.p", 1)
    out = validate(copy.deepcopy(p))
    assert isinstance(out["curate"]["spurious_tint"]["p"], float)


def test_stage_exits_2_before_work(tmp_path):
    """The params stage given bad params prints one line and exits 2, writing nothing."""
    import subprocess
    import sys

    params = edit(base(), "curate.spurious_tint.p", 7)
    with (tmp_path / "params.yaml").open("w") as f:
        YAML().dump(params, f)
    r = subprocess.run([sys.executable, "-m", "stages.params"], cwd=tmp_path, capture_output=True, text=True,
                       env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2
    assert "curate.spurious_tint.p = 7" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "results").exists()


def test_no_param_key_is_named_size_or_nfiles():
    """DVC's run cache computes its key with every mapping key named `size` or `nfiles` left out,
    at any depth, params included (dvc/stage/cache.py: dict_sha256(..., exclude=[size, nfiles])):
    changing such a param would restore the old results from the run cache. Such a key once made
    `dvc exp run -S curate.debiased.size=100` keep the 200-image sets."""
    def keys(d, prefix=""):
        for k, v in d.items():
            yield prefix + k
            if isinstance(v, dict):
                yield from keys(v, f"{prefix}{k}.")

    from askshift.study.params import SCHEMA

    for where, tree in (("params.yaml", base()), ("the schema", SCHEMA)):
        bad = [k for k in keys(tree) if k.rsplit(".", 1)[-1] in ("size", "nfiles")]
        assert bad == [], f"{where}: rename {bad}"


def test_dvc_exp_run_set_param_changes_one_line(tmp_path):
    """`dvc exp run -S key=value` rewrites params.yaml through DVC's own writer: the file is kept
    in that writer's style (block lists), so an experiment's diff is the one line it changed."""
    import shutil

    from dvc.utils.hydra import apply_overrides

    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", path)
    before = path.read_text().splitlines()
    apply_overrides(str(path), ["finetune.dataset=debiased"])
    after = path.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after) and changed == [("  dataset: reference    # reference | debiased",
                                                      "  dataset: debiased     # reference | debiased")]
