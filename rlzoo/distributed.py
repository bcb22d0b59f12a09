"""Data-parallel training across processes with ``torch.distributed`` (launched by ``torchrun``).

Every process (rank) holds the same model, collects its own share of the batch, and the gradients of the
share-weighted losses are summed over ranks before each optimizer step (one all-reduce over one flat
buffer, as DDP's buckets do), so every rank takes the same step as one process on the global batch would
(Li et al., 2020, "PyTorch Distributed: Experiences on Accelerating Data Parallel Training"). Backend:
gloo on CPU, nccl on GPU. Outside ``torchrun`` (``WORLD_SIZE`` unset or 1) every function is the identity.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch
import torch.distributed as dist


def init_from_env() -> bool:
    """Join the process group ``torchrun`` describes in the environment; False when run as one process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return True


def launched_rank() -> int:
    """This process's rank as ``torchrun`` set it in the environment (0 when not launched by it), known before
    the process group is joined."""
    return int(os.environ.get("RANK", "0")) if int(os.environ.get("WORLD_SIZE", "1")) > 1 else 0


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    """Sum of ``value`` over ranks (a new tensor; ``value`` itself when not distributed)."""
    if not is_distributed():
        return value
    out = value.detach().clone()
    dist.all_reduce(out)
    return out


def all_reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of ``value`` over ranks (``value`` itself when not distributed)."""
    return all_reduce_sum(value) / world_size() if is_distributed() else value


def mean_std(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased standard deviation of ``x`` over every rank's elements (x.mean(), x.std() alone)."""
    if not is_distributed():
        return x.mean(), x.std()
    moments = all_reduce_sum(torch.stack([x.new_tensor(float(x.numel())), x.sum(), (x * x).sum()]))
    count, total, squares = moments
    mean = total / count
    return mean, ((squares - count * mean * mean).clamp(min=0.0) / (count - 1)).sqrt()


def all_gather_cat(value: torch.Tensor) -> torch.Tensor:
    """Every rank's ``value`` (same shape on all ranks) concatenated along dim 0 in rank order."""
    if not is_distributed():
        return value
    parts = [torch.empty_like(value) for _ in range(world_size())]
    dist.all_gather(parts, value.contiguous())
    return torch.cat(parts)


def sum_gradients(params: Iterable[torch.nn.Parameter], scale: float = 1.0) -> None:
    """Replace each parameter's gradient by ``scale`` × its sum over ranks (one all-reduce of a flat buffer)."""
    if not is_distributed():
        return
    params = [p for p in params if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    if scale != 1.0:
        flat.mul_(scale)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p)
        offset += n


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Replace each gradient by its mean over ranks: with equal per-rank batches, the gradient of the global
    batch's mean loss from each rank's mean loss."""
    sum_gradients(params, 1.0 / world_size())


def broadcast_parameters(module: torch.nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers to every rank (identical start)."""
    if not is_distributed():
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src)
