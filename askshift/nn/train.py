"""The one training loop of the project, and inference.

Read top to bottom: devices and determinism, the schedule and optimiser builders, the one
optimiser step (:func:`optimizer_step`, also used by the linear probe of
:mod:`askshift.nn.strategies`), then :func:`fit` (in-memory batches, AMP on CUDA, atomic
checkpoint + exact resume, DVCLive, tqdm) and :func:`predict` / :func:`extract_features`.
Hyper-parameters: :class:`askshift.nn.config.TrainConfig`.

Data: ``(images, labels)`` with images uint8 ``(N, H, W, C)`` and labels int ``(N,)``, numpy or
torch. Whole datasets stay in memory; an epoch is a seeded permutation of indices split into
``ceil(N / batch_size)`` batches of near-equal size (never a tiny last batch), and each batch is
converted to normalised float NCHW on the fly (:func:`askshift.nn.models.to_input`). Data too big
for memory come as an example source instead (:mod:`askshift.nn.examples`): the same batches,
read by a DataLoader with ``workers`` processes.
Augmentation (``random_crop``, ``random_flip``) is drawn per example from ``(seed, epoch, index)``
(:mod:`askshift.nn.augment`), so it does not depend on how the examples are batched.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
import random
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from askshift.nn import distributed as D
from askshift.nn import examples as EX
from askshift.nn import models as M
from askshift.nn.augment import augment, example_uniforms
from askshift.nn.config import AMPS, DEVICES, RESUME_FREE, TrainConfig

CKPT_FORMAT = "askshift.train/1"
CKPT_NAME = "last.pt"


class StopTraining(Exception):
    """Raise from ``on_epoch_end`` to end :func:`fit` cleanly after the current epoch (the
    checkpoint of that epoch is already written; calling fit again resumes)."""


# --------------------------------------------------------------------------------------------
# Devices, determinism
# --------------------------------------------------------------------------------------------
def select_device(spec: str = "auto") -> torch.device:
    """``auto`` -> cuda when available, else cpu. ``cuda`` without a GPU is an error. In a
    process group each process takes the GPU of its local rank (``LOCAL_RANK``, as torchrun sets)."""
    if spec not in DEVICES:
        raise ValueError(f"device={spec!r} is not valid; choose one of {DEVICES}")
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device='cuda' but no CUDA GPU is available; use device=auto|cpu")
        # deterministic cuBLAS (only effective before the first cuBLAS call of the process)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        rank, world = D.rank_and_size()
        if world > 1:
            local = int(os.environ.get("LOCAL_RANK", rank % torch.cuda.device_count()))
            torch.cuda.set_device(local)
            return torch.device("cuda", local)
    return torch.device(spec)


def amp_dtype(spec: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: only on CUDA (``auto``: bf16 where supported, else fp16); None = off."""
    if spec not in AMPS:
        raise ValueError(f"amp={spec!r} is not valid; choose one of {AMPS}")
    if device.type != "cuda" or spec == "off":
        return None
    if spec == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if spec == "bf16" else torch.float16


def channels_last_for(device: torch.device, setting: bool | None = None) -> bool:
    """channels_last memory format: ``setting`` when given, else auto = on (CUDA and CPU: timm
    conv nets train faster in it on CPU too, see benchmarks/bench_train.py)."""
    return True if setting is None else bool(setting)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def _run_settings(cfg: TrainConfig, device: torch.device):
    """Deterministic algorithms and thread count for the duration of a fit, then restored."""
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    prev_threads = torch.get_num_threads()
    prev_cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        else:
            torch.backends.cudnn.benchmark = device.type == "cuda"
        yield
    finally:
        torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
        torch.set_num_threads(prev_threads)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = prev_cudnn


# --------------------------------------------------------------------------------------------
# Schedules and optimiser
# --------------------------------------------------------------------------------------------
def steps_per_epoch(n: int, batch_size: int) -> int:
    if n < 1:
        raise ValueError("the training set is empty")
    return math.ceil(n / batch_size)


def warmup_steps(cfg: TrainConfig, spe: int) -> int:
    return cfg.warmup_steps if cfg.warmup_steps > 0 else round(cfg.warmup_epochs * spe)


def lr_factor(step: int, cfg: TrainConfig, spe: int) -> float:
    """Multiplier of ``cfg.lr`` used by optimiser step ``step`` (0-based), ``spe`` steps/epoch.

    - cosine: linear warmup ``(s+1)/W`` for ``s < W``, then half a cosine from 1 at ``s = W`` to
      ``min_lr_ratio`` at ``s = total``.
    - triangular (official FFCV code): piecewise linear through ``(0, 1e-4)``,
      ``(peak_epoch, 1)``, ``(epochs, 0)`` in fractional epochs.
    - constant: 1 after the optional linear warmup.
    """
    total = cfg.epochs * spe
    if cfg.schedule == "triangular":
        return float(np.interp(step, [0, cfg.peak_epoch * spe, total], [1e-4, 1.0, 0.0]))
    w = min(warmup_steps(cfg, spe), total)
    if step < w:
        return (step + 1) / w
    if cfg.schedule == "constant":
        return 1.0
    progress = min((step - w) / max(total - w, 1), 1.0)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, spe: int):
    """LambdaLR stepped once per optimiser step with :func:`lr_factor` (a plain function, so the
    scheduler state holds no config; it is rebuilt from ``cfg`` on resume)."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, cfg, spe))


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD or AdamW over trainable parameters; no weight decay on biases / norm parameters."""
    from timm.optim import param_groups_weight_decay

    groups = param_groups_weight_decay(model, cfg.weight_decay)
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise ValueError("the model has no trainable parameters")
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999))


def optimizer_step(loss: torch.Tensor, module: nn.Module, opt: torch.optim.Optimizer, sched,
                   grad_clip: float = 0.0, scaler=None) -> float:
    """One step of the loop: backward (scaled under fp16 autocast), optional clipping of the
    global gradient norm, the optimiser step, then one step of the schedule. Returns the
    learning rate the step used."""
    opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        if grad_clip > 0:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
        opt.step()
    lr_used = opt.param_groups[0]["lr"]
    sched.step()
    return lr_used


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
def _tensor(a) -> torch.Tensor:
    """A tensor viewing ``a`` where possible. Read-only arrays (memory-mapped datasets) are viewed
    too, without torch's warning: the loop and inference only ever read their inputs."""
    if torch.is_tensor(a):
        return a
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(np.ascontiguousarray(a))


def _labels(labels: torch.Tensor, n: int, name: str) -> torch.Tensor:
    """``labels`` as int64 after checking that there is one per example."""
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(f"{name} labels must have shape ({n},), got {tuple(labels.shape)}")
    return labels.to(torch.int64)


def _source_labels(source, name: str) -> torch.Tensor:
    return _labels(_tensor(np.asarray(source.labels)), len(source), name)


def as_tensors(data, name: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, labels)`` -> (uint8 (N,H,W,C) tensor, int64 (N,) tensor), without copies
    where possible."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"{name} must be a pair (images, labels)")
    images, labels = data
    images, labels = _tensor(images), _tensor(labels)
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(f"{name} images must be uint8 (N, H, W, C), got {images.dtype} "
                         f"{tuple(images.shape)}")
    return images, _labels(labels, len(images), name)


def fingerprint(images, labels) -> str:
    """Cheap identity of a dataset (shape, all labels, a strided sample of images); tensors or
    numpy arrays give the same digest."""
    images = images.cpu().numpy() if torch.is_tensor(images) else np.asarray(images)
    labels = labels.cpu().numpy() if torch.is_tensor(labels) else np.asarray(labels)
    h = hashlib.sha1(repr(tuple(images.shape)).encode())
    h.update(labels.astype(np.int64).tobytes())
    step = max(1, len(images) // 256)
    h.update(np.ascontiguousarray(images[::step]).tobytes())
    return h.hexdigest()


def _check_sample_weight(sample_weight, n: int) -> torch.Tensor:
    """Per-example loss weights as a float32 (N,) tensor; errors name what is wrong."""
    w = torch.as_tensor(np.asarray(sample_weight, dtype=np.float64) if not torch.is_tensor(
        sample_weight) else sample_weight.detach().cpu().double())
    if w.ndim != 1 or len(w) != n:
        raise ValueError(f"sample_weight must have shape ({n},) (one weight per training "
                         f"example), got {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()) or not float(w.sum()) > 0:
        raise ValueError("sample_weight must be finite, >= 0 and not all zero")
    return w.to(torch.float32)


def _prepare(xb: torch.Tensor, mean, std, device: torch.device, channels_last: bool,
             size: tuple[int | None, str] = (None, "bilinear")):
    """uint8 NHWC batch -> the model's input: normalised, resized to its side (``size``:
    :func:`askshift.nn.models.input_size`) on the device, in the memory format of the run."""
    x = M.resize_input(M.to_input(xb.to(device, non_blocking=True), mean, std), *size)
    return x.contiguous(memory_format=torch.channels_last if channels_last
                        else torch.contiguous_format)


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------
def checkpoint_path(ckpt_dir: str | os.PathLike) -> Path:
    return Path(ckpt_dir) / CKPT_NAME


def snapshot_path(ckpt_dir: str | os.PathLike, epoch: int) -> Path:
    """Where ``fit(save_epochs=...)`` keeps the model after ``epoch`` (0 = before training);
    a model file loadable with :func:`askshift.models.load_model` / ``pipeline:<path>``."""
    return Path(ckpt_dir) / "snapshots" / f"epoch_{epoch:04d}.pt"


def has_checkpoint(ckpt_dir) -> bool:
    return ckpt_dir is not None and checkpoint_path(ckpt_dir).exists()


def _rng_state(gen: torch.Generator) -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)),
                  *[x for x in np_state[2:]]),
        "python": random.getstate(),
        "generator": gen.get_state(),
    }


def _set_rng_state(state: dict[str, Any], gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    gen.set_state(state["generator"])


def _payload(model: nn.Module) -> dict[str, Any]:
    if getattr(model, "askshift_cfg", None) is not None:
        return M.model_payload(model)
    return {"format": None, "config": None,
            "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------
def fit(model: nn.Module, train, val=None, cfg: TrainConfig | None = None,
        ckpt_dir: str | os.PathLike | None = None, live=None,
        on_epoch_end: Callable[[int, dict], Any] | None = None,
        save_epochs: Iterable[int] = (), sample_weight=None) -> list[dict[str, Any]]:
    """Train ``model`` in place on ``train = (images, labels)``; returns the history, one dict
    per epoch: ``epoch, train_loss, train_acc, lr, time`` (+ ``val_loss, val_acc`` on evaluated
    epochs, + ``snapshot`` where one was saved).

    - ``ckpt_dir``: a checkpoint ``last.pt`` (model, optimiser, scheduler, scaler, all RNG states,
      history, epoch) is written atomically every ``checkpoint_every`` epochs and at the end; if
      one exists, training resumes from it and ends with exactly the weights of an uninterrupted
      run. Resuming with a config that changes the trajectory (anything but device, amp,
      eval_every, checkpoint_every, progress, num_threads) or with other data is an error. A
      finished checkpoint makes fit return its history at once.
    - ``save_epochs``: epochs after which the model is also kept as ``snapshot_path(ckpt_dir, e)``
      (0 = the initial model); needs ``ckpt_dir``.
    - ``live``: a ``dvclive.Live``; metrics ``train/loss``, ``train/acc``, ``val/loss``,
      ``val/acc``, ``lr`` are logged every ``eval_every`` epochs and at the last one (each
      followed by ``live.next_step()``; a 200-image set trained 50 epochs logs 4 points, not 50).
      Epochs restored from a checkpoint are replayed from ``live.step`` on, so curves are complete.
    - ``sample_weight``: optional per-example loss weights ``(N,)`` (finite, >= 0, not all 0),
      e.g. :func:`askshift.interventions.group_balanced_weights` for group-balanced
      re-weighting. Each batch's loss is then ``mean_i(w_i * loss_i)`` (an unbiased estimate of
      the weighted risk ``sum_i w_i loss_i / N``; weights with mean 1 keep the loss scale).
      ``None`` (default) is the plain mean. The weights are part of the data identity: a
      checkpoint made with other weights is not resumed.
    - ``on_epoch_end(epoch, record)``: called after the checkpoint of the epoch is written;
      raise :class:`StopTraining` to stop early (resumable).
    - In a torch.distributed process group (DDP; :mod:`askshift.nn.distributed`) every process
      holds the data and runs fit: each global batch of the serial run is cut into one shard per
      process, the loss is scaled so that the averaged gradient is the serial batch's, augmentation
      is per example (the same crops as serially), batch norm is synchronised on CUDA
      (SyncBatchNorm; per process on CPU, where torch has no synchronised one), and only rank 0
      writes checkpoints, snapshots and curves. A checkpoint resumes only with its world size.
    """
    cfg = cfg or TrainConfig()
    save_epochs = sorted({int(e) for e in save_epochs})
    if any(e < 0 or e > cfg.epochs for e in save_epochs):
        raise ValueError(f"save_epochs={save_epochs} must lie in [0, epochs={cfg.epochs}]")
    if save_epochs and ckpt_dir is None:
        raise ValueError("save_epochs needs a ckpt_dir to write the snapshots into")
    rank, world = D.rank_and_size()
    if cfg.ddp > 1 and world == 1 and not _finished(ckpt_dir, cfg):   # start the processes
        if on_epoch_end is not None:
            raise ValueError(f"ddp={cfg.ddp}: on_epoch_end cannot run in this process while the "
                             "run trains in others; use ddp=1")
        if ckpt_dir is None:      # the weights come back through a checkpoint
            with tempfile.TemporaryDirectory(prefix="askshift-ddp-run-") as tmp:
                return fit(model, train, val, cfg, tmp, live, None, save_epochs, sample_weight)
        D.spawn(fit, cfg.ddp, select_device(cfg.device).type == "cuda", model, train, val, cfg,
                ckpt_dir=ckpt_dir, save_epochs=save_epochs, sample_weight=sample_weight)
        # then on here: the finished checkpoint gives the weights, the history and the curves
    if world > 1 and world != cfg.ddp:
        raise ValueError(f"ddp={cfg.ddp} but this process group has {world} processes: set the "
                         "config's ddp to the group's size (it is part of the run's identity)")
    device = select_device(cfg.device)
    dtype = amp_dtype(cfg.amp, device)
    channels_last = channels_last_for(device, cfg.channels_last)
    streamed = EX.is_source(train)             # read by a DataLoader, not held in memory
    x_tr, y_tr = (None, _source_labels(train, "train")) if streamed else as_tensors(train, "train")
    val_t = None if val is None else (val, _source_labels(val, "val")) if EX.is_source(val) \
        else as_tensors(val, "val")
    n = len(y_tr)
    spe = steps_per_epoch(n, cfg.batch_size)
    if world > 1 and n // spe < 2 * world:    # batch norm needs two examples in every shard
        raise ValueError(f"batches of {n // spe} examples cannot be cut into {world} shards of at "
                         f"least 2 (batch_size={cfg.batch_size}, {n} training examples)")
    writer = rank == 0                        # the one process that writes files and curves
    live = live if writer else None
    mean, std = M.normalization(model)
    size = M.input_size(model)
    fp = EX.fingerprint(train) if streamed else fingerprint(x_tr, y_tr)
    w_tr = None
    if sample_weight is not None:
        w_tr = _check_sample_weight(sample_weight, n)
        fp = hashlib.sha1((fp + "|w:").encode() + w_tr.numpy().tobytes()).hexdigest()

    with _run_settings(cfg, device):
        seed_everything(cfg.seed + 1_000_003 * rank)   # dropout differs per process, not per run
        gen = torch.Generator().manual_seed(cfg.seed)       # the epochs' permutations (all ranks)
        model.to(device)
        model.to(memory_format=torch.channels_last if channels_last
                 else torch.contiguous_format)
        net = D.wrap(model, device) if world > 1 else model   # what the loop calls forward on
        if not streamed and device.type == "cuda" and x_tr.numel() < 2**31:   # data on the GPU
            x_tr, y_tr = x_tr.to(device), y_tr.to(device)
        reader = EX.Reader(train, cfg.workers, device.type == "cuda") if streamed else None
        if w_tr is not None:
            w_tr = w_tr.to(y_tr.device)
        opt = make_optimizer(model, cfg)
        sched = make_scheduler(opt, cfg, spe)
        scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
        history: list[dict[str, Any]] = []
        start = 0

        if has_checkpoint(ckpt_dir):
            ck = torch.load(checkpoint_path(ckpt_dir), map_location="cpu", weights_only=True)
            if ck.get("format") != CKPT_FORMAT:
                raise ValueError(f"{checkpoint_path(ckpt_dir)} is not a fit() checkpoint")
            diff = {k: (v, getattr(cfg, k)) for k, v in ck["config"].items()
                    if k not in RESUME_FREE and getattr(cfg, k, None) != v}
            if diff:
                raise ValueError(f"cannot resume {checkpoint_path(ckpt_dir)}: the config "
                                 f"differs in {diff} (checkpoint, now); use another ckpt_dir")
            if ck["data"] != fp:
                raise ValueError(f"cannot resume {checkpoint_path(ckpt_dir)}: it was trained "
                                 "on other data")
            if ck.get("world_size", 1) != world and int(ck["epoch"]) < cfg.epochs:
                raise ValueError(f"cannot resume {checkpoint_path(ckpt_dir)}: it was trained by "
                                 f"{ck.get('world_size', 1)} processes, this run has {world}")
            model.load_state_dict(ck["model"]["state_dict"])
            opt.load_state_dict(ck["optimizer"])
            sched.load_state_dict(ck["scheduler"])
            if scaler is not None and ck.get("scaler"):
                scaler.load_state_dict(ck["scaler"])
            _set_rng_state(ck["rng"], gen)
            history, start = list(ck["history"]), int(ck["epoch"])
        elif 0 in save_epochs and writer:
            M.atomic_torch_save(_payload(model), snapshot_path(ckpt_dir, 0))

        def recorded(epoch: int) -> bool:     # validated and logged (the weights ignore it)
            return epoch % cfg.eval_every == 0 or epoch == cfg.epochs

        if live is not None:
            for rec in [r for r in history if recorded(r["epoch"])][int(getattr(live, "step", 0) or 0):]:
                _log_live(live, rec)

        disable = None if cfg.progress is None else not cfg.progress
        for epoch in range(start + 1, cfg.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            perm = torch.randperm(n, generator=gen)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.int64)
            lr_used = opt.param_groups[0]["lr"]
            batches = torch.tensor_split(perm, spe)
            sizes = [len(b) for b in batches]
            if world > 1:                 # this process's shard of each of the serial batches
                batches = [torch.tensor_split(b, world)[rank] for b in batches]
            read = reader.read(batches) if streamed else None
            bar = tqdm(batches, desc=f"epoch {epoch}/{cfg.epochs}", disable=disable, leave=False,
                       dynamic_ncols=True)
            for i, idx in enumerate(bar):
                n_batch, cpu_idx = sizes[i], idx
                if streamed:
                    xb, yb = next(read), y_tr[idx]
                else:
                    if x_tr.device != idx.device:
                        idx = idx.to(x_tr.device, non_blocking=True)
                    xb, yb = x_tr[idx], y_tr[idx]
                if cfg.random_crop or cfg.random_flip:   # per example: (seed, epoch, index)
                    xb = augment(xb, cfg.random_crop, cfg.random_flip,
                                 example_uniforms(cfg.seed, epoch, cpu_idx))
                x = _prepare(xb, mean, std, device, channels_last, size)
                yb = yb.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=dtype or torch.float32,
                                    enabled=dtype is not None):
                    logits = net(x)
                if w_tr is None and world == 1:
                    loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
                else:
                    per = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing,
                                          reduction="none")
                    if w_tr is not None:
                        per = per * w_tr[idx].to(device)
                    # DDP averages the processes' gradients: the shard's sum / serial batch * world
                    loss = per.sum() * (world / n_batch) if world > 1 else per.mean()
                lr_used = optimizer_step(loss, net, opt, sched, cfg.grad_clip, scaler)
                loss_sum += loss.detach() * (n_batch / world)   # this shard's summed loss
                correct += (logits.detach().argmax(1) == yb).sum()
                if not bar.disable and (i % 20 == 0 or i == spe - 1):
                    bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr_used:.3g}")
            bar.close()
            if world > 1:                               # the epoch's totals over all processes
                loss_sum, correct = D.all_reduce_sum(loss_sum), D.all_reduce_sum(correct)
            rec: dict[str, Any] = {"epoch": epoch, "train_loss": float(loss_sum) / n,
                                   "train_acc": int(correct) / n, "lr": float(lr_used)}
            if val_t is not None and recorded(epoch):
                logits_v = torch.from_numpy(_map_batches(model, val_t[0], lambda m, x: m(x), 512,
                                                         device, cfg.amp, channels_last, cfg.workers))
                yv = val_t[1]
                rec["val_loss"] = float(F.cross_entropy(logits_v, yv))
                rec["val_acc"] = float((logits_v.argmax(1) == yv).float().mean())
            rec["time"] = time.perf_counter() - t0
            if epoch in save_epochs:
                path = snapshot_path(ckpt_dir, epoch)
                rec["snapshot"] = str(M.atomic_torch_save(_payload(model), path) if writer else path)
            history.append(rec)
            if writer and ckpt_dir is not None and (epoch % cfg.checkpoint_every == 0
                                                    or epoch == cfg.epochs):
                M.atomic_torch_save({
                    "format": CKPT_FORMAT, "epoch": epoch, "config": cfg.to_dict(), "data": fp,
                    "world_size": world,
                    "model": _payload(model), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "rng": _rng_state(gen), "history": history,
                }, checkpoint_path(ckpt_dir))
            if world > 1:
                D.barrier()                             # nobody runs ahead of rank 0's files
            if live is not None and recorded(epoch):
                _log_live(live, rec)
            if on_epoch_end is not None:
                try:
                    on_epoch_end(epoch, rec)
                except StopTraining:
                    break
    return history


def _finished(ckpt_dir, cfg: TrainConfig) -> bool:
    """A checkpoint of all ``cfg.epochs`` exists in ``ckpt_dir``."""
    if not has_checkpoint(ckpt_dir):
        return False
    ck = torch.load(checkpoint_path(ckpt_dir), map_location="cpu", weights_only=True)
    return int(ck.get("epoch", 0)) >= cfg.epochs


def _log_live(live, rec: dict[str, Any]) -> None:
    live.log_metric("train/loss", rec["train_loss"])
    live.log_metric("train/acc", rec["train_acc"])
    if "val_acc" in rec:
        live.log_metric("val/loss", rec["val_loss"])
        live.log_metric("val/acc", rec["val_acc"])
    live.log_metric("lr", rec["lr"])
    live.next_step()


# --------------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------------
@torch.inference_mode()
def _map_batches(model: nn.Module, images, fn, batch_size: int, device, amp: str,
                 channels_last: bool | None = None, workers: int = 0) -> np.ndarray:
    dev = device if isinstance(device, torch.device) else select_device(device)
    dtype = amp_dtype(amp, dev)
    starts = range(0, len(images), batch_size)
    if EX.is_source(images):      # read in order by a DataLoader
        chunks = EX.Reader(images, workers, dev.type == "cuda").read(
            [range(s, min(s + batch_size, len(images))) for s in starts])
    else:
        x_all = _tensor(images)
        if x_all.dtype != torch.uint8 or x_all.ndim != 4:
            raise ValueError(f"images must be uint8 (N, H, W, C), got {x_all.dtype} "
                             f"{tuple(x_all.shape)}")
        chunks = (x_all[s:s + batch_size] for s in starts)
    mean, std = M.normalization(model)
    size = M.input_size(model)
    cl = channels_last_for(dev, channels_last)
    was_training = model.training
    model.to(dev).eval()
    outs = []
    try:
        for chunk in chunks:
            x = _prepare(chunk, mean, std, dev, cl, size)
            with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                outs.append(fn(model, x).float().cpu())
    finally:
        model.train(was_training)
    if not outs:
        return np.zeros((0, 0), np.float32)
    return torch.cat(outs).numpy().astype(np.float32, copy=False)


def predict(model: nn.Module, images, batch_size: int = 512, device="auto",
            amp: str = "auto", workers: int = 0) -> np.ndarray:
    """Logits ``(N, num_classes)`` float32 in eval mode without gradients (model moved to
    ``device``; its train/eval mode is restored). ``images``: uint8 (N, H, W, C), or an example
    source (:mod:`askshift.nn.examples`) read by ``workers`` processes."""
    return _map_batches(model, images, lambda m, x: m(x), batch_size, device, amp, workers=workers)


def extract_features(model: nn.Module, images, batch_size: int = 512, device="auto",
                     amp: str = "auto", workers: int = 0) -> np.ndarray:
    """Pre-logits features ``(N, model.num_features)`` float32 (:func:`askshift.models.features`)."""
    return _map_batches(model, images, M.features, batch_size, device, amp, workers=workers)
