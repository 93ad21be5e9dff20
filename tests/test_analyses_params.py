"""params of the analysis stages: validated on load, cross-checks name the keys."""
import pytest

from askshift.data import digits
from askshift.params import DIGITS_CLASSES, DIGITS_SHIFTS, ParamsError, _analyses_checks, validate
from tests.test_params import base, edit


def test_digits_constants_follow_the_world():
    assert DIGITS_CLASSES == digits.NUM_CLASSES
    assert set(DIGITS_SHIFTS) == set(digits.SHIFTS)


@pytest.mark.parametrize("key,value,message", [
    ("curated.variant", "label_shift", "curated.variant = 'label_shift': must be one of: spurious_tint"),
    ("interventions.compose", "rotate", "interventions.compose = 'rotate': must be one of: none, pad, flip"),
    ("interventions.trials", 0, "interventions.trials = 0: expected an integer in [1, 64]"),
    ("split.features", "pixel", "did you mean 'pixels'?"),
    ("theory.noise", 0, "theory.noise = 0: expected a number in"),
])
def test_bad_values(key, value, message):
    with pytest.raises(ParamsError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]").replace("?", r"\?")):
        validate(edit(base(), key, value))


@pytest.mark.parametrize("key,value,message", [
    ("curated.sizes", [20, 25], r"curated.sizes = \[20, 25\]: \[25\] not a multiple of the 10 classes"),
    ("interventions.variants", ["label_shift"], "curated.variant = 'spurious_tint': .* interventions.variants"),
    ("split.shifts", ["fonts", "font"], r"unknown shift\(s\) \['font'\].*did you mean 'fonts'"),
    ("theory.k", 20, "theory.k = 20 must be smaller than theory.d = 20"),
])
def test_cross_checks(key, value, message):
    p = validate(edit(base(), key, value))
    with pytest.raises(ParamsError, match=message):
        _analyses_checks(p)


def test_repo_params_pass():
    _analyses_checks(validate(base()))
