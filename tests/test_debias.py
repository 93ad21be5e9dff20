"""askshift.data.debias: the curated-set sampler keeps classes balanced and makes the
spurious attribute (tint) independent of the label; tinting matches the curate stage."""
import numpy as np
import pandas as pd
import pytest

from askshift.methods import shifts
from askshift.data import debias as CU
from askshift.data.store import Dataset

C = 10


def pool_labels(n=3000, seed=0):
    """An unbalanced pool, like a real training split."""
    rng = np.random.default_rng(seed)
    return rng.choice(C, size=n, p=np.linspace(1, 2, C) / np.linspace(1, 2, C).sum())


@pytest.mark.parametrize("n,retints", [(20, 2), (50, 2), (100, 1), (200, 10), (500, 2), (30, 3), (10, 1)])
def test_classes_balanced_and_tint_independent_of_label(n, retints):
    labels = pool_labels()
    idx, tint = CU.sample_curated(labels, n, C, retints, np.random.default_rng(1), num_classes=C)
    y = labels[idx]
    assert len(idx) == len(tint) == n
    # classes balanced
    np.testing.assert_array_equal(np.bincount(y, minlength=C), np.full(C, n // C))
    # every class sees exactly the same multiset of tints: tint independent of the label
    per_class = [np.sort(tint[y == c]) for c in range(C)]
    for t in per_class[1:]:
        np.testing.assert_array_equal(t, per_class[0])
    stats = CU.curated_stats(y, tint, idx)
    assert stats["tint_predicts_label"]["nmi"] == pytest.approx(0.0, abs=1e-12)
    assert stats["tint_predicts_label"]["accuracy"] == pytest.approx(stats["tint_predicts_label"]["chance"])
    assert stats["per_class_min"] == stats["per_class_max"] == n // C
    # counterfactual re-tints: each original used at most `retints` times, in different colours
    for i in np.unique(idx):
        used = tint[idx == i]
        assert len(used) <= retints and len(np.unique(used)) == len(used)
    assert stats["n_originals"] == C * int(np.ceil(n / C / retints))


def test_all_colours_when_each_original_gets_every_tint():
    labels = pool_labels()
    idx, tint = CU.sample_curated(labels, 200, C, 10, np.random.default_rng(0), num_classes=C)
    for i in np.unique(idx):  # like the curate stage's de-biased set: every colour once
        np.testing.assert_array_equal(np.sort(tint[idx == i]), np.arange(C))


def test_sampler_is_deterministic_and_seed_dependent():
    labels = pool_labels()
    a = CU.sample_curated(labels, 100, C, 2, np.random.default_rng(7), num_classes=C)
    b = CU.sample_curated(labels, 100, C, 2, np.random.default_rng(7), num_classes=C)
    c = CU.sample_curated(labels, 100, C, 2, np.random.default_rng(8), num_classes=C)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_sampler_errors():
    labels = pool_labels()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="multiple of the 10 classes"):
        CU.sample_curated(labels, 25, C, 2, rng, num_classes=C)
    with pytest.raises(ValueError, match="retints"):
        CU.sample_curated(labels, 20, C, 11, rng, num_classes=C)
    with pytest.raises(ValueError, match="needs 5 originals"):
        CU.sample_curated(np.repeat(np.arange(C), 4), 100, C, 2, rng, num_classes=C)


def test_balanced_subset_keeps_the_bias():
    rng = np.random.default_rng(0)
    labels = pool_labels()
    tint = np.where(rng.random(len(labels)) < 0.9, labels, rng.integers(0, C, len(labels)))  # biased
    pick = CU.balanced_subset(labels, 200, np.random.default_rng(1), num_classes=C)
    np.testing.assert_array_equal(np.bincount(labels[pick], minlength=C), np.full(C, 20))
    assert len(np.unique(pick)) == 200
    assert CU.curated_stats(labels[pick], tint[pick])["tint_predicts_label"]["accuracy"] > 0.8


def plain_dataset(n=60, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % C
    meta = pd.DataFrame({"index": np.arange(n), "label": labels, "class_name": labels.astype(str),
                         "group": labels, "split": "train", "source": "test", "source_index": 1000 + np.arange(n)})
    return Dataset(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), meta)


def test_build_tinted_groups_and_colour_check():
    plain = plain_dataset()
    colours = shifts.class_colours(C, 0)
    idx, tint = CU.sample_curated(plain.labels, 40, C, 2, np.random.default_rng(0), num_classes=C)
    ds = CU.build_tinted(plain, idx, tint, colours, 0.25)
    np.testing.assert_array_equal(ds.meta["group"], len(colours) * ds.labels + tint)
    np.testing.assert_array_equal(ds.images[0], shifts.tint(plain.images[idx[:1]], colours[tint[:1]], 0.25)[0])
    assert (ds.meta["split"] == "train").all() and list(ds.meta["index"]) == list(range(40))
    CU.check_colours(ds, plain, colours, 0.25)  # reproduces itself
    with pytest.raises(ValueError, match="does not reproduce"):
        CU.check_colours(ds, plain, shifts.class_colours(C, 1), 0.25)
