"""askshift.study.budget: the work a study's params ask for follows the stages' own run lists."""
from __future__ import annotations

from askshift.data.worlds import DIGITS
from askshift.study import budget, layout
from askshift.study.params import validate
from tests.test_params import base, edit

# the digits world's curated sizes at default params (data/curated/summary.json of a default run)
SIZES = {
    "ref_plain": {"train": 6000, "val": 1000, "test": 3000},
    "ref_spurious_tint": {"train": 6000, "val": 1000, "test": 3000},
    "ref_label_shift": {"train": 3110, "val": 515, "test": 1555},
    "shift_spurious_tint": {"test": 3000}, "shift_label_shift": {"test": 1555}, "shift_unseen_tint": {"test": 3000},
    "shift_flip": {"test": 3000}, "shift_pad": {"test": 3000}, "shift_photo_background": {"test": 3000},
    "shift_fonts": {"test": 990}, "shift_corpus_fonts": {"test": 1020}, "shift_uci_digits": {"test": 1797},
    "shift_mixture": {"test": 2000}, "debiased_spurious_tint": {"train": 200}, "debiased_label_shift": {"train": 200},
    "debiased_plain": {"train": 200}, "pretrain": {"train": 98800, "val": 5200},
}
INDEX = layout.shift_index(DIGITS)


def stage(work, name):
    return [w for w in work if w.stage == name]


def test_runs_follow_the_stages_run_lists():
    p = validate(base())
    work = budget.plan(p, SIZES, INDEX)
    b, f = p["baseline"], p["finetune"]
    runs = layout.baseline_runs(b["variants"], b["snapshot_epochs"], b["subset_fractions"], b["train"]["epochs"],
                                b["seeds"], b["widths"])
    assert sum(w.runs for w in stage(work, "baseline")) == len({(r.variant, r.run) for r in runs}) == 18
    assert sum(w.runs for w in stage(work, "finetune")) == 54          # 3 variants x 3 strategies x (3 lrs + 3 copies)
    assert [w.runs for w in stage(work, "evaluate")] == [len(runs), 36]  # 63 baseline models, 36 fine-tunes
    assert sum(w.runs for w in stage(work, "interventions")) == 12      # 3 trials x 2 kinds x (plain, re-weighted)
    assert sum(w.runs for w in stage(work, "debiased")) == 27           # 3 trials x 4 arms + 5 sizes x 3 resamples
    assert stage(work, "split") == []                                   # split.features: pixels


def test_images_are_epochs_times_set_sizes():
    p = validate(base())
    work = budget.plan(p, SIZES, INDEX)
    pre = stage(work, "pretrain")[0]
    assert pre.train_images == 2 * 98800 and pre.infer_images == 2 * 5200      # 2 epochs, validated after each
    full = [w for w in stage(work, "baseline") if w.model == "scratch" and w.runs == 2]
    assert [w.train_images for w in full] == [2 * 6 * 6000, 2 * 6 * 6000, 2 * 6 * 3110]   # seeds x epochs x n
    assert {w.model for w in stage(work, "baseline")} == {"scratch", "scratch@w0.5"}
    ft = stage(work, "finetune")
    # FT on the 6000-image sets: 5 epochs (finetune.min_steps = 200 at batch 128), 6 runs each
    assert ft[0].train_images == 6 * 5 * 6000
    assert ft[1].train_images == 0 and ft[1].infer_images == 6 * 7000    # LP: features of train + val
    t = budget.totals(work)
    assert set(t) == {"scratch", "scratch@w0.5", "pretrained"}
    assert t["pretrained"]["train_images"] == sum(w.train_images for w in work if w.model == "pretrained")
    assert budget.widths(work) == {"scratch": 1.0, "scratch@w0.5": 0.5}


def test_params_move_the_counts():
    p = validate(base())
    more = validate(edit(edit(base(), "interventions.trials", 6), "split.features", "pretrained"))
    iv = lambda q: sum(w.train_images for w in stage(budget.plan(q, SIZES, INDEX), "interventions"))  # noqa: E731
    assert iv(more) == 2 * iv(p)
    split = stage(budget.plan(more, SIZES, INDEX), "split")[0]
    assert split.infer_images == 6000 + 990 + 1020 + 1797 + 2000       # plain train split + the 4 shifts
    ours = validate(edit(base(), "pretrain.weights", "timm:resnet10t.c3_in1k"))
    assert stage(budget.plan(ours, SIZES, INDEX), "pretrain") == []     # nothing to pre-train
