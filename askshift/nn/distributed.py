"""One training run across several processes with torch.distributed (DDP): one per GPU.

Two ways in, one loop (:func:`askshift.nn.train.fit`, which cuts every batch into one shard per
process when it runs inside a process group):

- ``torchrun --nproc_per_node=N your_script.py``: the script calls ``fit`` after
  ``torch.distributed.init_process_group("nccl")``; each process takes the GPU of its
  ``LOCAL_RANK``.
- :func:`fit_spawned` from a single process (a pipeline stage, a notebook): it starts ``nprocs``
  local processes (NCCL on GPUs, gloo on the CPU), each runs ``fit`` on a copy of the model, rank 0
  writes the checkpoint, and the caller's model gets the trained weights from it.
"""
from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from askshift.nn import train as T
from askshift.nn.config import TrainConfig


def _worker(rank: int, nprocs: int, rendezvous: str, backend: str, model_bytes: bytes, train, val,
            cfg: TrainConfig, ckpt_dir: str, save_epochs: tuple[int, ...], sample_weight) -> None:
    model = torch.load(io.BytesIO(model_bytes), weights_only=False)   # this process's own copy
    os.environ["LOCAL_RANK"] = str(rank)
    dist.init_process_group(backend, init_method=rendezvous, rank=rank, world_size=nprocs)
    try:
        T.fit(model, train, val, cfg, ckpt_dir=ckpt_dir, save_epochs=save_epochs,
              sample_weight=sample_weight)
    finally:
        dist.destroy_process_group()


def fit_spawned(nprocs: int, model: nn.Module, train, val=None, cfg: TrainConfig | None = None,
                ckpt_dir: str | os.PathLike | None = None, live=None, save_epochs: Iterable[int] = (),
                sample_weight=None) -> list[dict]:
    """:func:`askshift.nn.train.fit` with DDP over ``nprocs`` local processes, same arguments and
    result: ``model`` ends with the trained weights, the history is returned, snapshots and curves
    are written as by a serial run. ``ckpt_dir`` is required (the weights come back through its
    checkpoint, which also makes the run resumable with the same ``nprocs``). On CUDA it needs
    ``nprocs`` visible GPUs."""
    cfg = cfg or TrainConfig()
    if not isinstance(nprocs, int) or nprocs < 1:
        raise ValueError(f"nprocs={nprocs!r}: expected an integer >= 1 (processes, one per GPU)")
    if ckpt_dir is None:
        raise ValueError("fit_spawned needs a ckpt_dir: the processes hand the trained weights back "
                         "through its checkpoint")
    save_epochs = tuple(sorted({int(e) for e in save_epochs}))
    if nprocs > 1:
        cuda = T.select_device(cfg.device).type == "cuda"
        if cuda and torch.cuda.device_count() < nprocs:
            raise ValueError(f"nprocs={nprocs} but {torch.cuda.device_count()} GPU(s) are visible")
        Path(ckpt_dir).mkdir(parents=True, exist_ok=True)
        # the model goes as bytes: torch.multiprocessing would share its tensors' memory between
        # the processes, and each process's optimiser step would then land on the same weights
        blob = io.BytesIO()
        torch.save(model, blob)
        with tempfile.TemporaryDirectory(prefix="askshift-ddp-") as tmp:
            mp.spawn(_worker, nprocs=nprocs, join=True,
                     args=(nprocs, f"file://{tmp}/rendezvous", "nccl" if cuda else "gloo",
                           blob.getvalue(), train, val, cfg, str(ckpt_dir), save_epochs, sample_weight))
    # the finished checkpoint: weights into ``model``, history (and curves into ``live``) back
    return T.fit(model, train, val, cfg, ckpt_dir=ckpt_dir, live=live, save_epochs=save_epochs,
                 sample_weight=sample_weight)
