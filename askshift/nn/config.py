"""The hyper-parameters of one training run (:func:`askshift.nn.train.fit`), without torch.

The params schema (:mod:`askshift.study.params`) takes its choices from here, so an optimiser
or schedule is declared once.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "triangular", "constant")
DEVICES = ("auto", "cpu", "cuda")
AMPS = ("auto", "bf16", "fp16", "off")
# fine-tuning strategies (askshift.nn.strategies): name -> (linear probe first, then fine-tune all)
STRATEGY_STEPS = {"ft": (False, True), "lp": (True, False), "lpft": (True, True)}

# Fields that never change the trained weights.
RESULT_FREE = frozenset({"eval_every", "checkpoint_every", "progress", "workers"})
# Fields that may differ when fit() resumes a checkpoint. Device, AMP, thread count and memory
# format do change the floating-point results (1 vs 2 CPU threads give other weights), so the
# study keys its checkpoint folders by them (askshift.study.training.checkpoint_dir) and never
# resumes across them; fit() itself allows it for interactive use.
RESUME_FREE = frozenset({"device", "amp", "eval_every", "checkpoint_every", "progress",
                          "num_threads", "channels_last", "workers"})


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`askshift.nn.train.fit`. Invalid values raise ``ValueError`` naming the key."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"               # sgd | adamw
    lr: float = 0.1                      # peak learning rate
    momentum: float = 0.9                # sgd momentum (adamw: beta1)
    nesterov: bool = False
    weight_decay: float = 5e-4           # not applied to biases and norm parameters
    schedule: str = "cosine"             # cosine | triangular | constant
    warmup_epochs: float = 0.0           # linear warmup (cosine, constant)
    warmup_steps: int = 0                # overrides warmup_epochs when > 0
    peak_epoch: float = 2.0              # triangular: lr rises linearly to its peak here ...
    min_lr_ratio: float = 0.0            # cosine: final lr = lr * min_lr_ratio
    label_smoothing: float = 0.0
    grad_clip: float = 0.0               # max global grad norm, 0 = off
    seed: int = 0
    device: str = "auto"                 # auto | cpu | cuda
    amp: str = "auto"                    # auto | bf16 | fp16 | off (autocast only on CUDA)
    eval_every: int = 1                  # epochs between validations (the last one always)
    checkpoint_every: int = 1            # epochs between checkpoints (the last one always)
    random_crop: int = 0                 # augmentation: pad by this many pixels + random crop
    random_flip: bool = False            # augmentation: random horizontal flip
    num_threads: int = 0                 # torch CPU threads during fit (per process), 0 = leave as is
    ddp: int = 1                         # processes of one run with torch DDP (one per GPU); 1 = one
    workers: int = 0                     # DataLoader processes reading an example source (askshift.nn.examples)
    channels_last: bool | None = None    # memory format; None = auto (see channels_last_for)
    deterministic: bool = True           # torch.use_deterministic_algorithms during fit
    progress: bool | None = None         # tqdm bars: None = only on a terminal

    def __post_init__(self):
        def bad(key, why):
            raise ValueError(f"train config: {key}={getattr(self, key)!r} {why}")

        for key, choices in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                             ("device", DEVICES), ("amp", AMPS)):
            if getattr(self, key) not in choices:
                bad(key, f"is not valid; choose one of {choices}")
        for key in ("epochs", "batch_size", "eval_every", "checkpoint_every", "ddp"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(key, "must be an integer >= 1")
        for key in ("warmup_steps", "random_crop", "num_threads", "seed", "workers"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                bad(key, "must be an integer >= 0")
        for key in ("lr", "momentum", "weight_decay", "warmup_epochs", "grad_clip",
                    "min_lr_ratio", "label_smoothing", "peak_epoch"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or v < 0:
                bad(key, "must be a finite number >= 0")
        if not self.label_smoothing < 1:
            bad("label_smoothing", "must be < 1")
        if not self.min_lr_ratio <= 1:
            bad("min_lr_ratio", "must be <= 1")
        if self.schedule == "triangular" and not 0 < self.peak_epoch < self.epochs:
            bad("peak_epoch", f"must lie strictly between 0 and epochs={self.epochs} "
                              "for the triangular schedule")
        if self.warmup_epochs > self.epochs:
            bad("warmup_epochs", f"must be <= epochs={self.epochs}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """The fields that determine the trained weights (for checkpoint keys)."""
        return {k: v for k, v in self.to_dict().items() if k not in RESULT_FREE}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"train config: unknown key(s) {unknown}; valid keys: "
                             f"{sorted(names)}")
        return cls(**d)
