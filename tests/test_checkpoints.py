"""askshift.stagekit: checkpoint folders change with the recipe, the data and the initial weights."""
import numpy as np
import torch

from askshift.study import training as stagekit


def test_checkpoint_dir_keys_recipe_data_and_init(tmp_path):
    x = np.zeros((10, 4, 4, 3), np.uint8)
    y = np.arange(10) % 3
    recipe = {"lr": 0.1}
    base = stagekit.checkpoint_dir("baseline", "plain/full", recipe, data=(x, y))
    assert base.parent == stagekit.CHECKPOINTS / "baseline" and base.name.startswith("plain__full-")
    # same inputs, same folder (tensors and arrays alike): a killed run resumes
    assert stagekit.checkpoint_dir("baseline", "plain/full", {"lr": 0.1}, data=(torch.as_tensor(x), torch.as_tensor(y))) == base
    # another recipe, other labels (e.g. a stronger bias), other pixels: a fresh folder
    assert stagekit.checkpoint_dir("baseline", "plain/full", {"lr": 0.2}, data=(x, y)) != base
    assert stagekit.checkpoint_dir("baseline", "plain/full", recipe, data=(x, (y + 1) % 3)) != base
    x2 = x.copy()
    x2[0, 0, 0, 0] = 1
    assert stagekit.checkpoint_dir("baseline", "plain/full", recipe, data=(x2, y)) != base
    # another pre-trained model to start from: a fresh folder
    w = tmp_path / "model.pt"
    w.write_bytes(b"weights v1")
    a = stagekit.checkpoint_dir("finetune", "ft", recipe, data=(x, y), init=w)
    assert a != stagekit.checkpoint_dir("finetune", "ft", recipe, data=(x, y))
    w.write_bytes(b"weights v2")
    assert stagekit.checkpoint_dir("finetune", "ft", recipe, data=(x, y), init=w) != a


def test_train_config_caps_validations_and_checkpoints_per_run():
    section = {"epochs": 3, "batch_size": 8, "optimizer": "sgd", "lr": 0.1, "weight_decay": 0.0,
               "schedule": "cosine", "warmup_epochs": 0.0, "label_smoothing": 0.0, "grad_clip": 0.0}
    compute = {"device": "cpu", "amp": "off", "threads": 1, "ddp": 1}
    short = stagekit.train_config(section, compute, seed=0)
    assert (short.eval_every, short.checkpoint_every) == (1, 1)      # short runs: every epoch
    long = stagekit.train_config(section, compute, seed=0, epochs=100)   # a 200-image set, 200 steps
    assert (long.eval_every, long.checkpoint_every) == (10, 10)      # 10 of each, not 100
    # neither changes what the run computes: the recipe (and its checkpoint folder) is the same
    assert long.identity() == stagekit.train_config(section, compute, seed=0, epochs=100, eval_every=1,
                                                     checkpoint_every=1).identity()
    # with the set's size known, records are >= MIN_STEPS_BETWEEN (25) optimizer steps apart
    tiny = stagekit.train_config({**section, "batch_size": 128}, compute, 0, 200, epochs=50)  # 2 steps/epoch
    assert (tiny.eval_every, tiny.checkpoint_every) == (13, 13)       # epochs 13, 26, 39 and the last
    big = stagekit.train_config({**section, "batch_size": 128}, compute, 0, 6000, epochs=5)   # 47 steps/epoch
    assert (big.eval_every, big.checkpoint_every) == (1, 1)
    assert stagekit.record_every(3, 10, 10, 128) == 3                 # never beyond the run
    assert tiny.identity() == stagekit.train_config({**section, "batch_size": 128}, compute, 0,
                                                    epochs=50).identity()


def test_finetune_step_floor_follows_the_dataset():
    from askshift.study import finetune
    from askshift.study.config import Section

    values = {"finetune": {"dataset": "reference", "min_steps": 200}, "debiased": {"min_steps": 100}}
    assert finetune.min_steps(Section(values, stage="finetune")) == 200
    values["finetune"]["dataset"] = "debiased"     # the Sec. 7 recipe for small curated sets
    assert finetune.min_steps(Section(values, stage="finetune")) == 100


def test_every_key_of_a_train_section_reaches_the_run():
    # a params train section is passed whole: no key (augmentation included) is dropped on the way
    from askshift.study.params import train_schema
    section = {"epochs": 3, "batch_size": 8, "optimizer": "adamw", "lr": 0.2, "weight_decay": 0.01,
               "schedule": "triangular", "warmup_epochs": 0.5, "label_smoothing": 0.2, "grad_clip": 1.0,
               "random_crop": 4, "random_flip": True}
    assert set(section) == set(train_schema())
    tcfg = stagekit.train_config(section, {"device": "cpu", "amp": "off", "threads": 1, "ddp": 2}, seed=5)
    assert tcfg.ddp == 2                                              # compute.ddp reaches the run
    assert {k: getattr(tcfg, k) for k in section} == section
    assert set(train_schema(images=False)) == set(section) - {"random_crop", "random_flip"}
