"""One training run across several processes with torch.distributed (DDP): one per GPU.

The loop is :func:`askshift.nn.train.fit`; this module holds what it needs of torch.distributed.
Two ways in:

- ``fit`` with ``TrainConfig(ddp=N)`` (the pipeline: ``compute.ddp``) from a single process:
  :func:`spawn` starts N local processes (NCCL on GPUs, gloo on the CPU) that each run ``fit`` on
  their own copy of the model; rank 0 writes the checkpoint, from which the calling process's
  ``fit`` then loads the trained weights and the history.
- ``torchrun --nproc_per_node=N your_script.py``: the script calls
  ``torch.distributed.init_process_group("nccl")`` and then ``fit`` with ``ddp=N``; each process
  takes the GPU of its ``LOCAL_RANK``.

Inside the group ``fit`` cuts each of the serial run's batches into one shard per process and
scales the loss so that DDP's averaged gradient is the serial batch's.
"""
from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn


def rank_and_size() -> tuple[int, int]:
    """``(rank, world size)`` of the process group this process belongs to; ``(0, 1)`` outside one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The model wrapped for DDP: batch norm synchronised over the processes on CUDA (converted in
    place; torch has no synchronised batch norm on the CPU, where each process keeps its own)."""
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    dist.all_reduce(t)
    return t


def barrier() -> None:
    dist.barrier()


def _worker(rank: int, nprocs: int, rendezvous: str, backend: str, fit: Callable, model_bytes: bytes,
            args: tuple, kwargs: dict) -> None:
    model = torch.load(io.BytesIO(model_bytes), weights_only=False)   # this process's own copy
    os.environ["LOCAL_RANK"] = str(rank)
    dist.init_process_group(backend, init_method=rendezvous, rank=rank, world_size=nprocs)
    try:
        fit(model, *args, **kwargs)
    finally:
        dist.destroy_process_group()


def spawn(fit: Callable, nprocs: int, cuda: bool, model: nn.Module, *args, **kwargs) -> None:
    """Run ``fit(model, *args, **kwargs)`` in ``nprocs`` new local processes that form one process
    group, and wait for them (an error in any of them is raised here)."""
    if cuda and torch.cuda.device_count() < nprocs:
        raise ValueError(f"ddp={nprocs} processes, one per GPU, but {torch.cuda.device_count()} "
                         "GPU(s) are visible")
    # the model goes as bytes: torch.multiprocessing would share its tensors' memory between the
    # processes, and each process's optimiser step would then land on the same weights
    blob = io.BytesIO()
    torch.save(model, blob)
    with tempfile.TemporaryDirectory(prefix="askshift-ddp-") as tmp:
        mp.spawn(_worker, nprocs=nprocs, join=True,
                 args=(nprocs, f"file://{tmp}/rendezvous", "nccl" if cuda else "gloo", fit,
                       blob.getvalue(), args, kwargs))
