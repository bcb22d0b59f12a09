"""Data-parallel training across processes with ``torch.distributed`` (launched by ``torchrun``).

Every process (rank) collects its own share of the batch and weights its loss for the global batch, so that the
gradients summed over ranks are the global batch's and every rank takes the step one process on the whole batch
would. Language models train on torch's own engines (:func:`wrap`): ``DistributedDataParallel`` (Li et al., 2020,
"PyTorch Distributed: Experiences on Accelerating Data Parallel Training"), every rank holding the whole model,
or FSDP2's ``fully_shard`` (Zhao et al., 2023, "PyTorch FSDP"), parameters, gradients and optimiser state
sharded over ranks; both average gradients, so the loss is scaled by the world size (:func:`gradient_scale`).
Small networks (PPO) sum their gradients with one all-reduce of a flat buffer (:func:`sum_gradients`). Backend:
gloo on CPU, nccl on GPU. Outside ``torchrun`` (``WORLD_SIZE`` unset or 1) every function is the identity.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.distributed as dist

# imported before any process group exists: its functions' ``group=WORLD`` defaults, bound at import, would otherwise
# hold the group past ``destroy_process_group`` and gloo's threads would abort the process at exit
import torch.distributed.nn  # isort: skip

STRATEGIES = ("ddp", "fsdp")


def init_from_env() -> bool:
    """Join the process group ``torchrun`` describes in the environment; False when run as one process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_initialized():
        if torch.cuda.is_available():  # one GPU per process: ``device=cuda`` is this rank's
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
        # gloo for CPU tensors always (an agent may run on the CPU on a GPU machine), nccl for GPU ones
        dist.init_process_group(backend="cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
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
    """Copy rank ``src``'s parameters and buffers to every rank (identical start); FSDP's sharded parameters,
    each rank owning its own slice, are left alone."""
    if not is_distributed():
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        if not is_sharded(tensor):
            dist.broadcast(tensor.data, src)


# ---- torch's engines for language models -----------------------------------------------------------------------


def is_sharded(tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` is a ``DTensor`` (an FSDP2 parameter: each rank holds a shard)."""
    from torch.distributed.tensor import DTensor

    return isinstance(tensor, DTensor)


def wrap(model: torch.nn.Module, strategy: str, blocks: Iterable[torch.nn.Module]) -> torch.nn.Module:
    """The module a training loss calls under torchrun: ``model`` in ``DistributedDataParallel`` (``ddp``), or
    ``model`` itself sharded in place with FSDP2 — each of its ``blocks`` (transformer layers) a unit, then the
    rest (``fsdp``), on a device mesh of the device ``model``'s parameters are on (FSDP2's default mesh is the GPU's
    whenever there is one, which would move a CPU model there). ``model`` itself when not distributed."""
    if strategy not in STRATEGIES:
        raise ValueError(f"data parallel strategy {strategy!r} is not one of {STRATEGIES}")
    if not is_distributed():
        return model
    device = next(model.parameters()).device
    if strategy == "ddp":
        on_gpu = device.type == "cuda"
        index = device.index if device.index is not None else (torch.cuda.current_device() if on_gpu else None)
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=[index] if on_gpu else None)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(device.type, (world_size(),))
    for block in blocks:
        fully_shard(block, mesh=mesh)
    return fully_shard(model, mesh=mesh)


def gradient_scale() -> float:
    """The factor on a global-batch-weighted loss under :func:`wrap`: DDP and FSDP2 average gradients over ranks,
    the weighting wants their sum."""
    return float(world_size())


def _fsdp_modules(model: torch.nn.Module) -> list[Any]:
    from torch.distributed.fsdp import FSDPModule

    return [m for m in model.modules() if isinstance(m, FSDPModule)]


@contextlib.contextmanager
def gradient_sync(model: torch.nn.Module, sync: bool) -> Iterator[None]:
    """Backward passes inside reduce gradients over ranks only when ``sync`` (the last micro-batch of an
    accumulation): ``no_sync`` for DDP, ``set_requires_gradient_sync`` for FSDP2; nothing otherwise."""
    if isinstance(model, torch.nn.parallel.DistributedDataParallel) and not sync:
        with model.no_sync():
            yield
        return
    fsdp = _fsdp_modules(model)
    if fsdp:
        fsdp[0].set_requires_gradient_sync(sync)  # recursive
    yield


@contextlib.contextmanager
def gathered(model: torch.nn.Module) -> Iterator[None]:
    """Inside, an FSDP2-sharded ``model`` holds its full parameters and its forward passes communicate nothing:
    ranks may call it a different number of times (sampling stops when every completion has ended). Re-entrant;
    nothing for other models."""
    fsdp = _fsdp_modules(model)
    if not fsdp or getattr(model, "_rlzoo_gathered", False):
        yield
        return
    model._rlzoo_gathered = True
    fsdp[0].set_reshard_after_forward(False)  # recursive
    for m in fsdp:
        m.unshard()
    try:
        yield
    finally:
        for m in fsdp:
            m.reshard()
        fsdp[0].set_reshard_after_forward(True)
        model._rlzoo_gathered = False


def full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``model``'s state dict with plain, whole tensors (gathered from the ranks' shards for FSDP2: a collective
    every rank must call)."""
    if not _fsdp_modules(model):
        return model.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True))


def load_full_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a :func:`full_state_dict` into ``model`` (each rank keeps its shard for FSDP2; a collective)."""
    if not _fsdp_modules(model):
        model.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(model, dict(state), options=StateDictOptions(full_state_dict=True))


def full_optimizer_state_dict(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """``optimizer``'s state dict, with whole tensors for an FSDP2 ``model`` (a collective)."""
    if not _fsdp_modules(model):
        return optimizer.state_dict()
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True))


def load_full_optimizer_state_dict(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                                   state: dict[str, Any]) -> None:  # fmt: skip
    """Load a :func:`full_optimizer_state_dict` (a collective for an FSDP2 ``model``); one written under FSDP2
    (keyed by parameter names) also loads into an unsharded ``model``."""
    by_name = any(isinstance(key, str) for key in state.get("state", {}))
    if not _fsdp_modules(model) and not by_name:
        optimizer.load_state_dict(state)
        return
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))


def shutdown() -> None:
    """Leave the process group after every rank got here (a normal end: after an error, ranks may never arrive)."""
    if is_distributed():
        dist.barrier()
        dist.destroy_process_group()
