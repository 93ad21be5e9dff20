"""The cifar10 world on a fixture tarball in the official format (tests/formats.py): reader,
builder, params rules and the download stage's world filter and local copies."""
import copy
import io
import os
import pickle
import tarfile

import numpy as np
import pytest
from ruamel.yaml import YAML

from askshift.data import cifar10, readers
from askshift.data.worlds import CIFAR10
from askshift.study import download
from askshift.study.params import ParamsError
from tests.test_bad_inputs import check_all
from askshift.study.stage import InputError, StageFailed
from tests.formats import CIFAR10_CLASSES, class_images, write_cifar10_python
from tests.test_params import base, edit


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    path = tmp_path_factory.mktemp("c10") / "cifar-10-python.tar.gz"
    return path, write_cifar10_python(path, per_class_train=20, per_class_test=10)


def _members(path) -> dict:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _retar(path, members: dict) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


# ------------------------------------------------------------------ reader
def test_reader_returns_the_pickled_images_in_hwc_order(tarball):
    path, _ = tarball
    d = readers.read_cifar10_python(path)
    assert d["class_names"] == list(CIFAR10_CLASSES)
    assert d["train"][0].shape == (200, 32, 32, 3) and d["test"][0].shape == (100, 32, 32, 3)
    assert d["train"][0].dtype == np.uint8 and np.bincount(d["train"][1]).tolist() == [20] * 10
    batch = pickle.loads(_members(path)["cifar-10-batches-py/data_batch_1"], encoding="latin1")
    row = np.asarray(batch["data"][0])           # R plane, then G, then B
    img = d["train"][0][0]
    assert np.array_equal(img[..., 0].ravel(), row[:1024]) and np.array_equal(img[..., 2].ravel(), row[2048:])
    assert d["train"][1][0] == batch["labels"][0]


def test_reader_takes_python2_byte_string_keys(tmp_path):
    labels = np.arange(10)
    data = class_images(labels, np.random.default_rng(0)).transpose(0, 3, 1, 2).reshape(10, -1)
    batch = pickle.dumps({b"labels": labels.tolist(), b"data": data, b"batch_label": b"x"}, protocol=2)
    members = {f"cifar-10-batches-py/data_batch_{i}": batch for i in range(1, 6)}
    members["cifar-10-batches-py/test_batch"] = batch
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps({b"label_names": [c.encode() for c in CIFAR10_CLASSES]})
    _retar(tmp_path / "c.tar.gz", members)
    d = readers.read_cifar10_python(tmp_path / "c.tar.gz")
    assert d["class_names"] == list(CIFAR10_CLASSES) and len(d["train"][1]) == 50


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/askshift-cifar-pwned",))


def test_reader_refuses_code_and_names_a_missing_batch(tarball, tmp_path):
    members = _members(tarball[0])
    members["cifar-10-batches-py/test_batch"] = pickle.dumps({"data": Evil()}, protocol=2)
    _retar(tmp_path / "evil.tar.gz", members)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load posix.system"):
        readers.read_cifar10_python(tmp_path / "evil.tar.gz")
    assert not os.path.exists("/tmp/askshift-cifar-pwned")
    del members["cifar-10-batches-py/test_batch"]
    _retar(tmp_path / "short.tar.gz", members)
    with pytest.raises(ValueError, match=r"short.tar.gz: no member 'cifar-10-batches-py/test_batch'"):
        readers.read_cifar10_python(tmp_path / "short.tar.gz")


# ------------------------------------------------------------------ builder
CFG = {**base()["curate"], "reference": {"n_train": 100, "n_val": 50, "n_test": 60},
       "mixture": {"n": 40, "out_fraction": 0.5, "out_of_support_shift": "pad"},
       "debiased": {"n_images": 40, "retints": 2}}


def test_world_splits_official_train_and_test_apart(tarball):
    source = readers.read_cifar10_python(tarball[0])
    world = cifar10.build_world(source, CFG, seed=0)
    expected = ({("reference", v) for v in CIFAR10.variants} | {("shifted", s) for s in CIFAR10.shifts}
                | {("debiased", v) for v in ("spurious_tint", "label_shift", "plain")})
    assert set(world) == expected
    plain = world["reference", "plain"]
    meta = plain.meta
    assert meta.groupby("split").size().to_dict() == {"train": 100, "val": 50, "test": 60}
    assert set(meta[meta["split"] != "test"]["source"]) == {"cifar10-train"}
    assert set(meta[meta["split"] == "test"]["source"]) == {"cifar10-test"}
    assert meta[meta["split"] != "test"]["source_index"].is_unique
    for split in ("train", "test"):  # stratified: every class equally often
        assert plain.split(split).meta["label"].value_counts().nunique() == 1
    test = plain.split("test")  # each test image is the test batch's image at its source_index
    assert np.array_equal(test.images, source["test"][0][test.meta["source_index"].to_numpy()])
    assert list(meta["class_name"].unique()) != [] and set(meta["class_name"]) == set(CIFAR10.class_names)
    # out-of-support shifts change the test images only; the mixture's membership is known
    assert len(world["shifted", "pad"]) == 60 and not np.array_equal(world["shifted", "pad"].images, test.images)
    assert world["shifted", "mixture"].meta["in_support"].mean() == 0.5
    again = cifar10.build_world(source, CFG, seed=0)
    assert all(np.array_equal(world[k].images, again[k].images) for k in world)


def test_world_refuses_other_class_names(tarball):
    source = readers.read_cifar10_python(tarball[0])
    source["class_names"] = ["a"] * 10
    with pytest.raises(ValueError, match="class names"):
        cifar10.build_world(source, CFG, seed=0)


# ------------------------------------------------------------------ params
def cifar_params() -> dict:
    p = base()
    p["world"] = "cifar10"
    p["pretrain"]["weights"] = "timm:resnet10t.c3_in1k"
    p["curate"]["mixture"]["out_of_support_shift"] = "pad"
    p["split"]["shifts"] = ["mixture"]
    return p


@pytest.mark.parametrize("key,value,message", [
    ("split.shifts", ["mixture", "fonts"], "split.shifts = ['mixture', 'fonts']: 'fonts' is not a shift of the "
                                           "cifar10 world (world = 'cifar10'); valid: spurious_tint, label_shift, "
                                           "unseen_tint, flip, pad, mixture"),
    ("curate.mixture.out_of_support_shift", "photo_background",
     "curate.mixture.out_of_support_shift = 'photo_background': 'photo_background' is not an out-of-support shift "
     "of the cifar10 world"),
    ("ask.example", "uci_digits", "ask.example = 'uci_digits': 'uci_digits' is not a shift of the cifar10 world"),
    ("pretrain.weights", "pipeline", "pretrain.weights = 'pipeline': the cifar10 world has no pre-training corpus"),
    ("curate.reference.n_train", 49_500, "curate.reference: n_train + n_val = 50500 but the cifar10 world's "
                                         "training images are 50000"),
    ("download.local", {"cifar10": "/no/such/cifar.tar.gz"},
     "download.local.cifar10 = '/no/such/cifar.tar.gz': no such file or folder"),
])
def test_params_name_the_world(key, value, message):
    with pytest.raises(ParamsError) as e:
        check_all(edit(copy.deepcopy(cifar_params()), key, value))
    assert message in str(e.value)


def test_cifar10_params_pass_with_paper_sizes():
    p = cifar_params()
    edit(p, "curate.reference", {"n_train": 45_000, "n_val": 5_000, "n_test": 10_000})
    check_all(p)


# ------------------------------------------------------------------ download
def _table(tmp_path, sha: str):
    doc = YAML(typ="safe").load(open("data/sources.yaml"))
    for entry in doc["sources"]:
        if entry["name"] == "cifar10":
            entry["files"][0]["sha256"] = sha
    path = tmp_path / "sources.yaml"
    YAML().dump(doc, path)
    return path


def test_download_fetches_the_worlds_sources_from_a_local_copy(tarball, tmp_path):
    path, sha = tarball
    line = download.run(_table(tmp_path, sha), tmp_path / "raw", world="cifar10", local={"cifar10": str(path)})
    assert "1 sources" in line
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["MANIFEST.json", "cifar10"]
    assert (tmp_path / "raw/cifar10/cifar-10-python.tar.gz").read_bytes() == path.read_bytes()


def test_download_local_copy_must_match_the_pinned_hash(tarball, tmp_path):
    path, _ = tarball
    with pytest.raises(StageFailed, match="cifar10"):
        download.run(_table(tmp_path, "0" * 64), tmp_path / "raw", world="cifar10", local={"cifar10": str(path)})
    assert not (tmp_path / "raw" / "cifar10").exists()


def test_download_local_names_a_source_of_the_world(tarball, tmp_path):
    with pytest.raises(InputError, match=r"download.local.mnist: no source of the cifar10 world is called 'mnist'; "
                                         r"valid: cifar10"):
        download.run(_table(tmp_path, tarball[1]), tmp_path / "raw", world="cifar10", local={"mnist": str(tarball[0])})


@pytest.mark.parametrize("doc", ["README.md", "docs/worlds.md"])
def test_documented_cifar10_command_gives_valid_params(doc, tmp_path):
    """The `dvc exp run -S ...` of the docs, applied as DVC applies it, passes every params check
    (the machine's too: the timm weights tag exists and matches the architecture)."""
    import re
    import shlex
    from pathlib import Path

    from dvc.utils.hydra import apply_overrides

    from askshift.study.params import load_params

    text = Path(doc).read_text()
    cmd = re.search(r"dvc exp run -n cifar10 (.+?)(?:#|\n\n|```)", text.replace("\\\n", " "), re.S).group(1)
    args = shlex.split(cmd)
    overrides = [args[i + 1] for i, a in enumerate(args) if a == "-S"]
    assert "world=cifar10" in overrides
    path = tmp_path / "params.yaml"
    path.write_text(Path("params.yaml").read_text())
    apply_overrides(str(path), overrides)
    p = load_params(path)
    assert p["world"] == "cifar10" and p["model"]["kwargs"] == {}
