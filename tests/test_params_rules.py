"""params of the analysis stages: validated on load, cross-checks name the keys."""
import pytest

from askshift.data import digits
from askshift.data.worlds import DIGITS
from askshift.study.params import ParamsError, _analyses_checks, validate
from tests.test_params import base, edit


def test_world_table_follows_the_builder():
    assert DIGITS.num_classes == digits.NUM_CLASSES
    assert DIGITS.class_names == digits.CLASS_NAMES


@pytest.mark.parametrize("key,value,message", [
    ("debiased.variant", "label_shift", "debiased.variant = 'label_shift': must be one of: spurious_tint"),
    ("interventions.compose", "rotate", "interventions.compose = 'rotate': must be one of: none, pad, flip"),
    ("interventions.trials", 0, "interventions.trials = 0: expected an integer in [1, 64]"),
    ("split.features", "pixel", "did you mean 'pixels'?"),
    ("split.shifts", ["fonts", "font"], "split.shifts[1] = 'font': must be one of: spurious_tint, "),
    ("theory.noise", 0, "theory.noise = 0: expected a number in"),
])
def test_bad_values(key, value, message):
    with pytest.raises(ParamsError) as e:
        validate(edit(base(), key, value))
    assert message in str(e.value)


@pytest.mark.parametrize("key,value,message", [
    ("debiased.sizes", [20, 25], r"debiased.sizes = \[20, 25\]: \[25\] not a multiple of the 10 classes"),
    ("interventions.variants", ["label_shift"], "debiased.variant = 'spurious_tint': .* interventions.variants"),
    ("theory.k", 20, "theory.k = 20 must be smaller than theory.d = 20"),
])
def test_cross_checks(key, value, message):
    p = validate(edit(base(), key, value))
    with pytest.raises(ParamsError, match=message):
        _analyses_checks(p)


def test_repo_params_pass():
    _analyses_checks(validate(base()))


# ------------------------------------------------------------------ a local weights file is pinned
def weights_params(spec: str, pinned: str) -> dict:
    p = edit(edit(base(), "pretrain.weights", spec), "pretrain.weights_sha256", pinned)
    return validate(p)


def test_a_local_weights_file_must_be_pinned_by_its_sha256(tmp_path):
    """DVC does not track a weights file outside the repository, so params pin its content
    (as data/sources.yaml pins downloads): missing pin, wrong pin, stale pin and missing file are
    each refused naming the key; the right pin (any case) passes."""
    import hashlib

    from askshift.study.params import check_weights_file

    f = tmp_path / "w.pt"
    f.write_bytes(b"weights v1")
    sha = hashlib.sha256(b"weights v1").hexdigest()
    spec = f"file:{f}"
    with pytest.raises(ParamsError, match=f"pretrain.weights_sha256 is empty but pretrain.weights = '{spec}' "
                                          f"reads the local file {f}, .*its sha256 now is {sha}"):
        check_weights_file(spec, weights_params(spec, "")["pretrain"]["weights_sha256"])
    assert check_weights_file(spec, weights_params(spec, sha.upper())["pretrain"]["weights_sha256"]) == f
    assert check_weights_file(f"timm:resnet18.a1_in1k@{f}", sha) == f
    f.write_bytes(b"weights v2")           # replaced in place: refused, not silently used
    with pytest.raises(ParamsError, match=f"pretrain.weights_sha256 = '{sha}' but {f} .*has sha256 "
                                          f"{hashlib.sha256(b'weights v2').hexdigest()}: the file changed"):
        check_weights_file(spec, sha)
    with pytest.raises(ParamsError, match=f"pretrain.weights = 'file:{tmp_path}/nope.pt': no such file"):
        check_weights_file(f"file:{tmp_path}/nope.pt", sha)
    with pytest.raises(ParamsError, match="pretrain.weights_sha256 = '.*' but pretrain.weights = 'pipeline' "
                                          r"reads no local file: leave it empty \(''\)"):
        check_weights_file("pipeline", sha)
    assert check_weights_file("timm:resnet18.a1_in1k", "") is None and check_weights_file("pipeline", "") is None
    with pytest.raises(ParamsError, match="pretrain.weights_sha256 = 'abc': expected '' or a sha256 of 64 hex digits"):
        weights_params(spec, "abc")


def test_a_weights_folder_is_pinned_by_the_sha256_of_its_sha256sum_listing(tmp_path):
    """A timm checkpoint folder: the pin is what `find . -type f | LC_ALL=C sort | xargs sha256sum
    | sha256sum` prints there, so a user can compute it without this project."""
    import os
    import subprocess

    from askshift.nn.weights import content_sha256

    (tmp_path / "ckpt" / "a").mkdir(parents=True)
    for name, data in {"config.json": b"{}", "a/b.bin": b"x" * 100, "a-b.bin": b"y", "model.safetensors": b"z"}.items():
        (tmp_path / "ckpt" / name).write_bytes(data)
    shell = subprocess.run("find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum", shell=True,
                           cwd=tmp_path / "ckpt", capture_output=True, text=True, check=True,
                           env={**os.environ, "LC_ALL": "C"})
    assert content_sha256(tmp_path / "ckpt") == shell.stdout.split()[0]
    (tmp_path / "ckpt" / "a" / "b.bin").write_bytes(b"x" * 101)
    assert content_sha256(tmp_path / "ckpt") != shell.stdout.split()[0]


def test_the_pretrain_stage_checks_the_pin_again_before_it_loads(tmp_path):
    """The params stage re-runs only when params.yaml changes: a pretrain re-run for another
    reason (code, `dvc repro -f`) must not load a file that no longer has the pinned content."""
    from askshift.study import pretrain
    from askshift.study.config import Section

    f = tmp_path / "w.pt"
    f.write_bytes(b"other weights")
    cfg = Section({"world": "digits", "model": {"arch": "resnet10t", "kwargs": {}},
                   "pretrain": {"weights": f"file:{f}", "weights_sha256": "0" * 64}}, stage="pretrain")
    with pytest.raises(ParamsError, match="the file changed since it was pinned"):
        pretrain.run(cfg)
