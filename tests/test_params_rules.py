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
