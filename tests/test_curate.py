"""Readers and the digits-world builders on small in-memory inputs."""
import copy
import gzip
import hashlib
import io
import os
import pickle
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from ruamel.yaml import YAML

from askshift.data import corpus, digits, readers, store, summary
from askshift.study import layout
from askshift.study.params import validate

ROOT = Path(__file__).resolve().parents[1]
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"


# ------------------------------------------------------------------ restricted unpickler
def test_restricted_unpickler_loads_numpy_array():
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    data = gzip.compress(pickle.dumps(arr, protocol=4))
    np.testing.assert_array_equal(readers.load_numpy_pickle(data), arr)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/askshift-pwned",))


def test_restricted_unpickler_refuses_code():
    data = pickle.dumps(Evil())
    with pytest.raises(pickle.UnpicklingError, match="refusing to load posix.system"):
        readers.load_numpy_pickle(data)
    assert not Path("/tmp/askshift-pwned").exists()
    with pytest.raises(pickle.UnpicklingError, match="expected a numpy array"):
        readers.load_numpy_pickle(pickle.dumps([1, 2, 3]))


def test_read_idx_roundtrip_and_corruption(tmp_path):
    arr = np.random.default_rng(0).integers(0, 256, (5, 3, 2), dtype=np.uint8)
    header = bytes([0, 0, 8, 3]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    (tmp_path / "ok.gz").write_bytes(gzip.compress(header + arr.tobytes()))
    np.testing.assert_array_equal(readers.read_idx(tmp_path / "ok.gz"), arr)
    (tmp_path / "short").write_bytes(header + arr.tobytes()[:-1])
    with pytest.raises(ValueError, match="header says"):
        readers.read_idx(tmp_path / "short")


def test_render_glyph_like_mnist():
    g = readers.render_glyph(FONT_DIR / "DejaVuSans.ttf", "7", box=20)
    assert g.shape == (28, 28) and g.dtype == np.uint8
    ys, xs = np.nonzero(g > 30)
    assert ys.max() - ys.min() <= 21 and g[:3].max() == 0  # fits a 20 px box, margins black


# ------------------------------------------------------------------ world builders
def small_cfg() -> dict:
    raw = YAML(typ="safe", pure=True).load((ROOT / "params.yaml").read_text())
    cfg = validate(raw)["curate"]
    cfg["reference"] = {"n_train": 300, "n_val": 100, "n_test": 200}
    cfg["mixture"]["n"] = 100
    cfg["corpus"]["letters_per_class"] = 3
    return cfg


def fake_digits(n=600, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), n // 10)
    images = np.zeros((n, 28, 28), np.uint8)
    for i, y in enumerate(labels):  # a bright bar whose position encodes the label
        images[i, 4:24, 2 + 2 * y: 4 + 2 * y] = 200 + rng.integers(0, 55)
    return images, labels


def named(world_by_role: dict) -> dict:
    """Datasets by their study names (ref_plain, shift_flip, ...), as the curate stage saves them."""
    return {layout.dataset_name(role, name): ds for (role, name), ds in world_by_role.items()}


def fake_inputs() -> digits.DigitsInputs:
    return digits.DigitsInputs(
        mnist=fake_digits(), uci=(np.random.default_rng(1).integers(0, 256, (50, 8, 8), dtype=np.uint8),
                                  np.arange(50) % 10),
        heldout_fonts=[FONT_DIR / "DejaVuSerif.ttf"],
        corpus_fonts=[FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSerif-Bold.ttf"],
        shift_photos=[np.random.default_rng(2).integers(0, 256, (80, 90, 3), dtype=np.uint8)])


@pytest.fixture(scope="module")
def world():
    return named(digits.build_world(fake_inputs(), small_cfg(), seed=0))


def test_reference_split_stratified_and_disjoint(world):
    ref = world["ref_plain"]
    sizes = ref.meta["split"].value_counts().to_dict()
    assert sizes == {"train": 300, "val": 100, "test": 200}
    assert ref.meta["source_index"].is_unique
    assert ref.images.shape[1:] == (32, 32, 3)
    for split in ("train", "val", "test"):  # stratified: classes balanced like the source
        counts = np.bincount(ref.split(split).labels, minlength=10)
        assert counts.max() - counts.min() <= 1


def test_spurious_tint_pair(world):
    ref, shifted = world["ref_spurious_tint"], world["shift_spurious_tint"]
    match_ref = ref.meta["tint_matches_label"].mean()
    match_shift = shifted.meta["tint_matches_label"].mean()
    assert match_ref > 0.4 and match_shift < 0.25  # p + (1-p)/10 = 0.55 vs 0.1
    assert np.array_equal(ref.meta["group"], 10 * ref.labels + ref.meta["tint"])  # (class, tint colour)
    # same images as the plain reference, only tinted
    assert np.array_equal(ref.meta["source_index"], world["ref_plain"].meta["source_index"])


def test_label_shift_pair(world):
    ref, shifted = world["ref_label_shift"].split("train"), world["shift_label_shift"]
    minority = sorted(set(ref.labels[ref.meta["minority"].to_numpy()]))
    counts = np.bincount(ref.labels, minlength=10)
    majority = [c for c in range(10) if c not in minority]
    assert len(minority) == 5
    assert np.allclose(counts[minority] / counts[majority].mean(), 0.2, atol=0.02)
    sc = np.bincount(shifted.labels, minlength=10)
    assert sc[minority].min() > sc[majority].max()  # roles reversed


def test_out_of_support_shifts_change_only_test_images(world):
    test = world["ref_plain"].split("test")
    np.testing.assert_array_equal(world["shift_flip"].images, test.images[:, ::-1])
    assert np.array_equal(world["shift_unseen_tint"].labels, test.labels)
    assert world["shift_pad"].images[:, 0].mean() > 200
    assert not np.array_equal(world["shift_photo_background"].images, test.images)


def test_mixture_membership(world):
    mix = world["shift_mixture"]
    assert len(mix) == 100 and mix.meta["in_support"].mean() == 0.5
    test = world["ref_plain"].split("test")
    ins = mix.select(mix.meta["in_support"].to_numpy())
    # the in-support half are untouched reference test images
    lookup = {int(i): k for k, i in enumerate(test.meta["source_index"])}
    for img, idx in zip(ins.images, ins.meta["source_index"]):
        np.testing.assert_array_equal(img, test.images[lookup[int(idx)]])


def test_debiased_tint_set_is_debiased(world):
    d = world["debiased_spurious_tint"]
    assert len(d) == 200
    assert np.bincount(d.labels).tolist() == [20] * 10
    stats = summary.attribute_predictivity(d.labels, d.meta["tint"].to_numpy())
    assert stats["accuracy"] == pytest.approx(0.1) and stats["nmi"] < 1e-9
    # retints = 2: 100 originals, each in two different colours (half originals, half edits)
    per_original = d.meta.groupby("source_index")["tint"].agg(["size", "nunique"])
    assert len(per_original) == 100 and (per_original["size"] == 2).all() and (per_original["nunique"] == 2).all()
    assert set(d.meta["split"]) == {"train"} and d.meta["index"].tolist() == list(range(200))
    biased = world["ref_spurious_tint"].split("train")
    assert summary.attribute_predictivity(biased.labels, biased.meta["tint"].to_numpy())["accuracy"] > 0.4


def test_debiased_balanced_sets(world):
    # plain: 200 images; label shift: capped by its rarest (minority) class in the 300-image train split
    rarest = np.bincount(world["ref_label_shift"].split("train").labels, minlength=10).min()
    for name, n in (("debiased_plain", 200), ("debiased_label_shift", 10 * min(20, rarest))):
        counts = np.bincount(world[name].labels, minlength=10)
        assert counts.min() == counts.max() > 0 and counts.sum() == n


def test_fonts_and_uci_shifts(world):
    f = world["shift_fonts"]
    assert len(f) == 10 * len(digits.FONT_BOXES) and set(f.labels) == set(range(10))
    assert world["shift_uci_digits"].images.shape == (50, 32, 32, 3)
    # the corpus's font families: every digit in both files, named by the file it came from
    c = world["shift_corpus_fonts"]
    assert len(c) == 2 * 10 and set(c.labels) == set(range(10))  # one glyph size
    assert set(c.meta["source"]) == {"font:DejaVuSans", "font:DejaVuSerif-Bold"}


def _digest(ds: store.Dataset) -> str:
    buf = io.BytesIO()
    ds.meta.to_parquet(buf, index=False)
    return hashlib.sha256(ds.images.tobytes()).hexdigest() + hashlib.sha256(buf.getvalue()).hexdigest()


def test_curate_is_deterministic(world, tmp_path):
    cfg = small_cfg()
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    for name in ("DejaVuSans.ttf", "DejaVuSerif-Bold.ttf"):
        (fonts / name).symlink_to(FONT_DIR / name)
    inputs = corpus.CorpusInputs(fashion=fake_digits(200, 1), animals=fake_digits(100, 2),
                                 font_dirs=[fonts], photos=[np.full((64, 64, 3), 90, np.uint8)])
    a = corpus.build_corpus(inputs, cfg["corpus"], cfg["tint_strength"], seed=3)
    b = corpus.build_corpus(inputs, copy.deepcopy(cfg["corpus"]), cfg["tint_strength"], seed=3)
    c = corpus.build_corpus(inputs, cfg["corpus"], cfg["tint_strength"], seed=4)
    assert _digest(a) == _digest(b) != _digest(c)
    assert a.meta["label"].nunique() == 10 + 10 + len(corpus.LETTERS)
    assert set(a.meta["split"]) == {"train", "val"}
    # saved payloads hash the same as well
    store.save(a, tmp_path / "a")
    store.save(b, tmp_path / "b")
    for f in ("images.npy", "meta.parquet"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    np.testing.assert_array_equal(store.load(tmp_path / "a").images, a.images)
    again = named(digits.build_world(fake_inputs(), small_cfg(), seed=0))
    assert all(_digest(again[k]) == _digest(world[k]) for k in world)


def test_atomic_dir_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with store.atomic_dir(target) as tmp:
            (tmp / "half.txt").write_text("half")
            raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (target / "keep.txt").read_text() == "old"
