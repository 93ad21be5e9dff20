"""The synthetic shifts on tiny in-memory batches."""
import numpy as np
import pytest

from askshift.methods import shifts


@pytest.fixture
def batch():
    return np.random.default_rng(0).integers(0, 256, size=(64, 8, 8, 3), dtype=np.uint8)


def test_tint_formula_exact(batch):
    colours = np.random.default_rng(1).random((len(batch), 3))
    out = shifts.tint(batch, colours, 0.25)
    # x <- 0.75 x + 0.25 c in [0, 1] pixel space, rounded back to uint8
    expected = np.rint((0.75 * batch / 255.0 + 0.25 * colours[:, None, None, :]) * 255.0)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected.astype(np.uint8))
    # black pixels become exactly the colour at strength 0.25; white stays within the convex mix
    black = np.zeros((1, 2, 2, 3), np.uint8)
    np.testing.assert_array_equal(shifts.tint(black, np.array([[1.0, 0.0, 0.4]]))[0, 0, 0],
                                  np.rint(np.array([0.25, 0.0, 0.1]) * 255))


def test_tint_rejects_bad_input(batch):
    with pytest.raises(ValueError, match="strength"):
        shifts.tint(batch, np.zeros(3), 1.5)
    with pytest.raises(ValueError, match="uint8"):
        shifts.tint(batch.astype(np.float32), np.zeros(3))


@pytest.mark.parametrize("p", [0.5, 0.7, 0.9])
def test_spurious_tint_marginals(p):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=40_000)
    colour = shifts.spurious_tint_assignment(labels, 10, p, rng)
    match = (colour == labels).mean()
    assert abs(match - (p + (1 - p) / 10)) < 0.01
    # the colours that do not match are spread evenly over the other classes
    other = colour[colour != labels]
    counts = np.bincount(other, minlength=10) / len(other)
    assert np.abs(counts - 0.1).max() < 0.01


def test_random_tint_is_independent_of_label():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=40_000)
    colour = shifts.random_tint_assignment(len(labels), 10, rng)
    assert abs((colour == labels).mean() - 0.1) < 0.01


def test_label_shift_frequencies():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 100)
    idx = shifts.label_shift_indices(labels, [1, 3, 5, 7, 9], 0.2, rng)
    counts = np.bincount(labels[idx], minlength=10)
    assert counts[[0, 2, 4, 6, 8]].tolist() == [100] * 5
    assert counts[[1, 3, 5, 7, 9]].tolist() == [20] * 5
    assert len(np.unique(idx)) == len(idx) and np.all(np.diff(idx) > 0)
    with pytest.raises(ValueError, match="not among the labels"):
        shifts.label_shift_indices(labels, [11], 0.2, rng)
    with pytest.raises(ValueError, match="p_minority"):
        shifts.label_shift_indices(labels, [1], 0.0, rng)


def test_flip_is_an_involution(batch):
    np.testing.assert_array_equal(shifts.vflip(shifts.vflip(batch)), batch)
    np.testing.assert_array_equal(shifts.hflip(shifts.hflip(batch)), batch)
    assert not np.array_equal(shifts.vflip(batch), batch)
    np.testing.assert_array_equal(shifts.vflip(batch)[:, 0], batch[:, -1])


def test_groups_consistent_with_attributes():
    labels = np.array([0, 0, 1, 1, 2])
    colour = np.array([0, 1, 1, 0, 2])
    groups = shifts.tint_groups(labels, colour, 3)
    assert groups.tolist() == [0, 1, 4, 3, 8]
    assert np.array_equal(groups // 3, labels) and np.array_equal(groups % 3, colour)
    with pytest.raises(ValueError, match=r"colour indices must lie in \[0, 3\)"):
        shifts.tint_groups(labels, colour + 1, 3)


def test_balancing_class_by_tint_groups_removes_the_shortcut():
    """Re-weighted so that every (class, tint) group counts the same, the tint carries no label
    information: the best tint-only rule is at chance. With (class, "tint matches") groups it
    keeps far more than chance (0.5 with 10 colours), so balancing them cannot remove it."""
    rng = np.random.default_rng(0)
    c, n = 10, 20000
    labels = rng.integers(0, c, n)
    tint = shifts.spurious_tint_assignment(labels, c, 0.9, rng)

    def best_tint_rule(groups):
        w = 1.0 / np.bincount(groups)[groups]  # every group weighs the same
        table = np.zeros((c, c))
        np.add.at(table, (tint, labels), w)
        return table.max(axis=1).sum() / table.sum()

    assert best_tint_rule(shifts.tint_groups(labels, tint, c)) == pytest.approx(1 / c, abs=1e-9)
    coarse = 2 * labels + (tint == labels)
    assert best_tint_rule(coarse) > 0.45

def test_pad_frame_and_size():
    img = np.zeros((2, 32, 32, 3), np.uint8)
    out = shifts.pad(img, 6, 255)
    assert out.shape == img.shape
    assert out[:, 0].min() > 200 and out[:, 16, 16].max() == 0  # a white frame, black inside


def test_composite_uses_brightness_as_alpha():
    fg = np.zeros((1, 2, 2, 3), np.uint8)
    fg[0, 0, 0] = 255
    bg = np.full((1, 2, 2, 3), 100, np.uint8)
    out = shifts.composite(fg, bg)
    assert out[0, 0, 0].tolist() == [255] * 3 and out[0, 1, 1].tolist() == [100] * 3


def test_photo_background_and_crops_deterministic():
    photos = [np.random.default_rng(2).integers(0, 256, (100, 140, 3), dtype=np.uint8)]
    x = np.zeros((5, 16, 16, 3), np.uint8)
    a = shifts.photo_background(x, photos, np.random.default_rng(3))
    b = shifts.photo_background(x, photos, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.std() > 10  # the black background was replaced by photo content
    with pytest.raises(ValueError, match="at least one"):
        shifts.zoom_levels([], 16)
    levels = shifts.zoom_levels(photos, 16)
    assert min(min(lv.shape[:2]) for lv in levels) == 16 and len(levels) == 3  # 16, 32, 64 px
    assert shifts.random_crops(levels, 7, 16, np.random.default_rng(0)).shape == (7, 16, 16, 3)


def test_place_scaled_keeps_size_and_shrinks():
    x = np.full((3, 32, 32, 3), 255, np.uint8)
    out = shifts.place_scaled(x, np.array([0.5, 0.5, 1.0]), np.random.default_rng(0))
    assert out.shape == x.shape
    assert (out[0] > 0).all(axis=-1).sum() == 16 * 16 and (out[2] == 255).all()


def test_resize_and_gray():
    g = np.arange(16, dtype=np.uint8).reshape(1, 4, 4)
    rgb = shifts.gray_to_rgb(g)
    assert rgb.shape == (1, 4, 4, 3) and (rgb[..., 0] == rgb[..., 2]).all()
    assert shifts.resize(rgb, 8).shape == (1, 8, 8, 3)
    assert np.array_equal(shifts.resize(rgb, 4), rgb)
