"""askshift.methods.theory.theory_report: the Sec. 4 report -- the theorem holds, its negative controls fail."""
import pytest

from askshift.methods.theory import theory_report


@pytest.fixture(scope="module")
def report():
    return theory_report(d=20, k=5, n=300, noise=0.5, inits=3, steps=1500, seed=0, curve_points=6)


def test_theorem_holds_and_pretrained_init_wins(report):
    m, per_init, _, _ = report
    assert m["theorem_error"] < 1e-4 and m["max_perp_drift"] < 1e-8
    assert m["in_support_max_logit_diff"] < 1e-6 and m["in_support_accuracy_identical"]
    assert m["pretrained_wins"] and m["oos_accuracy_pretrained"] > m["oos_accuracy_random_mean"]
    assert list(per_init["init"]) == ["zero", "pretrained", "oracle", "random_0", "random_1", "random_2"]
    assert per_init["in_support_accuracy"].nunique() == 1
    assert per_init["out_of_support_accuracy"].nunique() > 1


def test_negative_controls_break_the_identity(report):
    m, _, _, _ = report
    assert m["control_big_step"]["theorem_error"] > 1.0          # step far above 4 / ||X||^2
    assert m["control_big_step"]["max_perp_drift"] < 1e-6        # ... yet W-perp is never touched
    assert m["control_off_subspace"]["theorem_error"] > 1.0      # data leaves the subspace
    assert m["control_off_subspace"]["max_perp_drift"] > 1.0


def test_convergence_curve(report):
    _, _, curve, _ = report
    assert curve["steps"].is_monotonic_increasing and curve["steps"].iloc[-1] == 1500
    assert curve["theorem_error"].iloc[0] > 1e-2 > 1e-4 > curve["theorem_error"].iloc[-1]


def test_relatedness_curve(report):
    m, _, _, related = report
    assert list(related["relatedness"]) == [0.0, 0.25, 0.5, 0.75, 0.9, 1.0]
    assert related["oos_accuracy_pretrained"].is_monotonic_increasing
    assert related.set_index("relatedness").loc[0.9, "oos_accuracy_pretrained"] == m["oos_accuracy_pretrained"]
