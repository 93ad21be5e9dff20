"""The fine-tuning strategies of the paper as a small registry with one contract.

Each strategy adapts a pre-trained model (whose classifier was already reset to the task's
classes) in place and returns its training history::

    history = STRATEGIES["lpft"].adapt(model, train, val, ft_cfg, lp_cfg, ckpt_dir=..., live=...)
    # history == {"lp": [...epochs of the linear probe...], "ft": [...epochs of fine-tuning...]}

- ``ft``: every parameter trained with :func:`askshift.nn.train.fit` and ``ft_cfg``.
- ``lp``: a linear probe: features of the frozen backbone computed once (eval mode), a linear
  head trained on them with ``lp_cfg`` by :func:`fit_linear` (same optimiser, schedule and
  optimiser step as the main loop), written back with :func:`askshift.nn.models.set_head`;
  every other tensor of the model (weights and BN statistics) is left untouched.
- ``lpft``: ``lp`` then ``ft`` from that head (Kumar et al. 2022).

A strategy is a name and its two steps in :data:`askshift.nn.config.STRATEGY_STEPS` (torch-free,
so the params schema reads its choices from there).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from askshift.nn import models as M
from askshift.nn import train as T
from askshift.nn.config import STRATEGY_STEPS, TrainConfig

DEFAULT_LP = TrainConfig(optimizer="adamw", lr=1e-2, weight_decay=1e-4, epochs=50, batch_size=256,
                         schedule="cosine")


def fit_linear(feats: torch.Tensor, labels: torch.Tensor, num_classes: int, cfg: TrainConfig,
               init: tuple[torch.Tensor, torch.Tensor | None] | None = None,
               val: tuple[torch.Tensor, torch.Tensor] | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor, list[dict]]:
    """Train a linear classifier on fixed features with the optimiser, schedule, label smoothing
    and seed semantics of :func:`askshift.nn.train.fit` and its :func:`~askshift.nn.train.optimizer_step`
    (on the CPU, one thread: tiny matmuls are fastest that way and immune to CPU contention).
    Returns ``(weight, bias, history)``. Image augmentation cannot apply to features computed
    once, so a config that asks for it is refused rather than ignored."""
    if cfg.random_crop or cfg.random_flip:
        raise ValueError(f"linear probe: random_crop={cfg.random_crop}, random_flip={cfg.random_flip}; "
                         "the probe trains on features of the frozen backbone computed once, so it "
                         "cannot augment images (set both off)")
    feats = torch.as_tensor(feats, dtype=torch.float32)
    labels = torch.as_tensor(labels, dtype=torch.int64)
    n, f = feats.shape
    gen = torch.Generator().manual_seed(int(cfg.seed))
    lin = nn.Linear(f, num_classes)
    with torch.no_grad():
        if init is not None:
            lin.weight.copy_(init[0])
            if init[1] is not None:
                lin.bias.copy_(init[1])
            else:
                lin.bias.zero_()
        else:
            lin.weight.normal_(0, 0.01, generator=gen)
            lin.bias.zero_()
    steps = T.steps_per_epoch(n, cfg.batch_size)
    opt = T.make_optimizer(lin, cfg)
    sched = T.make_scheduler(opt, cfg, steps)
    history = []
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for epoch in range(1, cfg.epochs + 1):
            perm = torch.randperm(n, generator=gen)
            tot_loss, correct = 0.0, 0
            lr_used = opt.param_groups[0]["lr"]
            for idx in torch.tensor_split(perm, steps):
                logits = lin(feats[idx])
                loss = nn.functional.cross_entropy(logits, labels[idx],
                                                   label_smoothing=cfg.label_smoothing)
                lr_used = T.optimizer_step(loss, lin, opt, sched, cfg.grad_clip)
                tot_loss += loss.item() * len(idx)
                correct += int((logits.argmax(1) == labels[idx]).sum())
            rec = {"epoch": epoch, "train_loss": tot_loss / n, "train_acc": correct / n,
                   "lr": float(lr_used)}
            if val is not None and (epoch % max(cfg.eval_every, 1) == 0 or epoch == cfg.epochs):
                with torch.no_grad():
                    rec["val_acc"] = float((lin(torch.as_tensor(val[0], dtype=torch.float32))
                                            .argmax(1) == torch.as_tensor(val[1])).float().mean())
            history.append(rec)
    finally:
        torch.set_num_threads(prev_threads)
    return lin.weight.detach().clone(), lin.bias.detach().clone(), history


def linear_probe(model: nn.Module, train, val=None, cfg: TrainConfig | None = None,
                 device: str = "auto", batch_size: int = 512) -> list[dict]:
    """LP in place: :func:`fit_linear` on the frozen features, head written back."""
    cfg = cfg or DEFAULT_LP
    images, labels = train
    ftr = torch.from_numpy(T.extract_features(model, images, batch_size=batch_size, device=device))
    fval = None
    if val is not None:
        fval = (torch.from_numpy(T.extract_features(model, val[0], batch_size=batch_size, device=device)),
                torch.as_tensor(np.asarray(val[1]), dtype=torch.int64))
    w, b, hist = fit_linear(ftr, torch.as_tensor(np.asarray(labels), dtype=torch.int64),
                            int(model.num_classes), cfg, val=fval)
    M.set_head(model, w, b)
    return hist


@dataclass(frozen=True)
class Strategy:
    """Linear probe first (``probe``), then fine-tune every parameter (``tune``)."""

    name: str
    probe: bool
    tune: bool

    def adapt(self, model: nn.Module, train, val, ft_cfg: TrainConfig, lp_cfg: TrainConfig | None = None,
              *, ckpt_dir=None, live=None) -> dict[str, list]:
        """Adapt ``model`` in place; ``{"lp": probe history or [], "ft": fit history or []}``."""
        out: dict[str, list] = {"lp": [], "ft": []}
        if self.probe:
            out["lp"] = linear_probe(model, train, val, lp_cfg, device=ft_cfg.device)
        if self.tune:
            out["ft"] = T.fit(model, train, val, ft_cfg, ckpt_dir=ckpt_dir, live=live)
        return out


STRATEGIES: dict[str, Strategy] = {name: Strategy(name, probe, tune)
                                   for name, (probe, tune) in STRATEGY_STEPS.items()}


def finetune(model: nn.Module, train, val, strategy: str, cfg: TrainConfig, lp_cfg: TrainConfig | None = None,
             *, ckpt_dir=None, live=None) -> dict[str, list]:
    """``STRATEGIES[strategy].adapt(...)`` with a clear error for an unknown name."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy={strategy!r} is not valid; choose one of {tuple(STRATEGIES)}")
    return STRATEGIES[strategy].adapt(model, train, val, cfg, lp_cfg, ckpt_dir=ckpt_dir, live=live)
