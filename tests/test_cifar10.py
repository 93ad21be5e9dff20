"""The cifar10 world on a fixture tarball in the official format (tests/formats.py): reader,
builder, params rules and the download stage's world filter and local copies."""
import copy
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from ruamel.yaml import YAML

from askshift.data import cifar10, readers
from askshift.data.worlds import CIFAR10
from askshift.study import download
from askshift.study.params import ParamsError
from tests.test_bad_inputs import check_all
from askshift.study.stage import InputError, StageFailed
from tests.formats import CIFAR10_CLASSES, class_images, write_cifar10_1, write_cifar10_python
from tests.test_params import base, edit


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    path = tmp_path_factory.mktemp("c10") / "cifar-10-python.tar.gz"
    return path, write_cifar10_python(path, per_class_train=20, per_class_test=10)


@pytest.fixture(scope="module")
def c101(tmp_path_factory):
    """CIFAR-10.1 v6's two files, 5 images per class: (folder, their hashes)."""
    folder = tmp_path_factory.mktemp("c101")
    return folder, write_cifar10_1(folder, per_class=5)


def world_source(tarball, c101) -> dict:
    folder = c101[0]
    return {**readers.read_cifar10_python(tarball[0]),
            "cifar10_1": readers.read_cifar10_1(folder / "cifar10.1_v6_data.npy", folder / "cifar10.1_v6_labels.npy")}


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


def test_world_splits_official_train_and_test_apart(tarball, c101):
    source = world_source(tarball, c101)
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
    # the natural shift: CIFAR-10.1 as published, every image, in the world's order of shifts
    natural = world["shifted", "cifar10_1"]
    assert np.array_equal(natural.images, source["cifar10_1"][0]) and np.array_equal(natural.labels, source["cifar10_1"][1])
    assert set(natural.meta["split"]) == {"test"} and set(natural.meta["source"]) == {"cifar10.1-v6"}
    assert [n for k, n in world if k == "shifted"] == list(CIFAR10.shifts)
    again = cifar10.build_world(source, CFG, seed=0)
    assert all(np.array_equal(world[k].images, again[k].images) for k in world)


def test_cifar10_1_reader_checks_what_it_loads(c101, tmp_path):
    folder, hashes = c101
    images, labels = readers.read_cifar10_1(folder / "cifar10.1_v6_data.npy", folder / "cifar10.1_v6_labels.npy")
    assert images.shape == (50, 32, 32, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [5] * 10
    assert len(hashes["cifar10.1_v6_data.npy"]["git_sha1"]) == 40
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="objects.npy: not a plain .npy array"):
        readers.read_cifar10_1(tmp_path / "objects.npy", folder / "cifar10.1_v6_labels.npy")
    np.save(tmp_path / "float.npy", images.astype(np.float32))
    with pytest.raises(ValueError, match=r"float.npy: expected uint8 images \(N, 32, 32, 3\)"):
        readers.read_cifar10_1(tmp_path / "float.npy", folder / "cifar10.1_v6_labels.npy")
    np.save(tmp_path / "labels.npy", labels[:3])
    with pytest.raises(ValueError, match="labels.npy: expected 50 integer labels"):
        readers.read_cifar10_1(folder / "cifar10.1_v6_data.npy", tmp_path / "labels.npy")
    np.save(tmp_path / "labels11.npy", labels + 10)
    with pytest.raises(ValueError, match=r"class indices 0..9, got 10..19"):
        readers.read_cifar10_1(folder / "cifar10.1_v6_data.npy", tmp_path / "labels11.npy")


def test_world_refuses_other_class_names(tarball, c101):
    source = world_source(tarball, c101)
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
                                           "unseen_tint, flip, pad, cifar10_1, mixture"),
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
def _table(tmp_path, sha: str, c101=None):
    doc = YAML(typ="safe").load(open("data/sources.yaml"))
    for entry in doc["sources"]:
        if entry["name"] == "cifar10":
            entry["files"][0]["sha256"] = sha
        if c101 is not None and entry["name"] in ("cifar10_1", "cifar10_1_labels"):
            f = entry["files"][0]
            f.update({k: v for k, v in c101[1][f["path"]].items() if k in f})
    path = tmp_path / "sources.yaml"
    YAML().dump(doc, path)
    return path


def test_download_fetches_the_worlds_sources_from_a_local_copy(tarball, c101, tmp_path):
    path, sha = tarball
    local = {"cifar10": str(path), "cifar10_1": str(c101[0] / "cifar10.1_v6_data.npy"),
             "cifar10_1_labels": str(c101[0] / "cifar10.1_v6_labels.npy")}
    line = download.run(_table(tmp_path, sha, c101), tmp_path / "raw", world="cifar10", local=local)
    assert "3 sources" in line
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["MANIFEST.json", "cifar10", "cifar10_1",
                                                                     "cifar10_1_labels"]
    assert (tmp_path / "raw/cifar10/cifar-10-python.tar.gz").read_bytes() == path.read_bytes()
    # the data file is checked by its git blob id, as the real table pins it
    assert (tmp_path / "raw/cifar10_1/cifar10.1_v6_data.npy").read_bytes() == Path(local["cifar10_1"]).read_bytes()


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
