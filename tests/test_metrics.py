import numpy as np
import pytest

from askshift.methods import metrics as M


def test_accuracy():
    assert M.accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == pytest.approx(0.75)
    assert M.accuracy(np.array(["a", "b"]), np.array(["a", "a"])) == pytest.approx(0.5)


def test_balanced_accuracy_counts_only_present_classes():
    # class 0: 3/4 right, class 1: 0/1 right; class 2 is only predicted -> ignored
    y = [0, 0, 0, 0, 1]
    p = [0, 0, 0, 2, 0]
    assert M.balanced_accuracy(y, p) == pytest.approx((0.75 + 0.0) / 2)
    rec = M.per_class_recall(y, p)
    assert list(rec.index) == [0, 1] and list(rec) == [0.75, 0.0]
    assert M.accuracy(y, p) == pytest.approx(0.6)


def test_group_and_worst_group():
    y = [0, 0, 1, 1, 1, 0]
    p = [0, 1, 1, 1, 0, 0]
    g = ["a", "a", "b", "b", "b", "c"]
    ga = M.group_accuracy(y, p, g)
    assert dict(ga) == pytest.approx({"a": 0.5, "b": 2 / 3, "c": 1.0})
    assert M.worst_group_accuracy(y, p, g) == pytest.approx(0.5)
    # group ids need not be contiguous; absent groups are not counted
    assert M.worst_group_accuracy(y, p, [7, 7, 3, 3, 3, 9]) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "fn, args, match",
    [
        (M.accuracy, ([0, 1], [0]), "2 entries but y_pred has 1"),
        (M.accuracy, ([], []), "empty"),
        (M.balanced_accuracy, ([], []), "empty"),
        (M.accuracy, ([0, 1], [[0.2, 0.8], [0.9, 0.1]]), "argmax"),
        (M.worst_group_accuracy, ([0, 1], [0, 1], [0]), "groups has 1 entries"),
        (M.group_accuracy, ([0, 1], [0, 1], [0, None]), "missing"),
    ],
)
def test_errors(fn, args, match):
    with pytest.raises(ValueError, match=match):
        fn(*args)
