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
