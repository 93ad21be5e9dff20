"""askshift.analyses.curated: the curated stage's arms and size sweep, and its claims rows."""
import pandas as pd

from askshift.study import debiased as CU


def test_summarise_splits_arms_and_sweep():
    table = pd.DataFrame({"arm": ["pretrained_reference", "pretrained_debiased", "sweep_20", "sweep_100"],
                          "n_trials": 3, "ref_acc": [0.99, 0.95, 0.8, 0.9], "shift_acc": [0.98, 0.95, 0.8, 0.9],
                          "shift_wga": [0.9, 0.93, 0.6, 0.8], "er": [0.0, 0.02, 0.01, 0.015],
                          "er_low": [-0.01, 0.01, -0.02, 0.0], "er_high": [0.01, 0.03, 0.04, 0.03],
                          "wga_er": 0.0, "r2": 0.9, "n_baseline": 9})
    arms, sweep, metrics, claims = CU.summarise(table, n_debiased=200, n_reference=6000)
    assert list(sweep["size"]) == [20, 100] and set(arms["arm"]) == {"pretrained_reference", "pretrained_debiased"}
    assert metrics["curated_arms"]["pretrained_reference"]["size"] == 6000
    assert set(metrics["size_sweep"]) == {"20", "100"} and metrics["n_baseline"] == 9
    assert [(c["rule"], c["er"]) for c in claims] == [("positive", 0.02), ("near_zero", 0.0)]
