"""K seeds of one network as one batched network: parameters stacked along a leading seed axis.

PureJaxRL's observation (Lu et al., 2022): small RL networks are dominated by per-operation overhead, so training K
independent seeds as one batched computation costs little more than training one. Here with torch's own tools:

- ``stack_modules(modules)``: K networks of one architecture (each built under its own seed) become one module that
  maps inputs (K, B, …) to outputs (K, B, …). Every ``nn.Linear`` becomes a ``SeedLinear`` — weight (K, in, out), one
  ``torch.baddbmm`` for all seeds — and every other parameter p becomes (K, 1, *p.shape), broadcast over the batch.
  The K source networks' parameters are then re-pointed at their slices of the stacked ones (views of the same
  storage), so an optimizer step on the stacked module is a step of every source network: each seed's own agent
  evaluates, checkpoints and reports as if it had trained alone.
- Losses are per seed, shape (K,); their sum's gradient is each seed's own gradient, and an element-wise optimizer
  (Adam, RMSprop, SGD) on the stacked parameters is K independent optimizers. ``clip_grad_norm_per_seed`` clips each
  seed's global gradient norm separately.
- ``SeedGenerators``: each seed's own numpy generator, drawn together (a (K, …) draw stacks each generator's draw
  of the trailing shape), so seed k samples exactly the numbers a single run of seed k samples.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn


class SeedLinear(nn.Module):
    """y_k = x_k W_kᵀ + b_k for every seed k at once, one ``torch.baddbmm``: ``weight`` holds W_kᵀ, (K, in, out) (the
    layout the product reads without a copy; seed k's ``nn.Linear`` weight is its transposed view), bias (K, 1, out),
    input (K, …, in)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)
        self.bias = None if bias is None else nn.Parameter(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, n_in = x.shape[0], x.shape[-1]
        flat = x.reshape(k, -1, n_in)
        out = torch.bmm(flat, self.weight) if self.bias is None else torch.baddbmm(self.bias, flat, self.weight)
        return out.reshape(*x.shape[:-1], out.shape[-1])


def linear_columns(layer: nn.Module, x: torch.Tensor, columns: slice, bias: bool) -> torch.Tensor:
    """An ``nn.Linear`` or ``SeedLinear`` on the input columns ``columns`` alone: x W[:, columns]ᵀ (+ b when ``bias``),
    with ``x`` holding only those columns. An affine layer on a concatenated input [u, v] is the sum of its two
    column blocks' products and the bias, so a block shared by many rows can be computed once."""
    if isinstance(layer, SeedLinear):
        weight, k = layer.weight[:, columns, :], x.shape[0]
        flat = x.reshape(k, -1, x.shape[-1])
        out = torch.baddbmm(layer.bias, flat, weight) if bias and layer.bias is not None else torch.bmm(flat, weight)
        return out.reshape(*x.shape[:-1], out.shape[-1])
    return nn.functional.linear(x, layer.weight[:, columns], layer.bias if bias else None)


def stack_lanes(parts: Sequence[torch.Tensor], transposed: bool) -> torch.Tensor:
    """K seeds' tensors of one parameter as its stacked tensor: a linear weight's (out, in) as (K, in, out)
    (``transposed``), any other's as (K, 1, *shape), broadcast over the batch axis."""
    if transposed:
        return torch.stack([p.detach().T for p in parts]).contiguous()
    return torch.stack([p.detach() for p in parts]).unsqueeze(1)


def lane_part(stacked: torch.Tensor, k: int, transposed: bool) -> torch.Tensor:
    """Seed ``k``'s tensor of a stacked one, as a view: the inverse of ``stack_lanes``."""
    part = stacked[k]
    return part.T if transposed else part.squeeze(0)


def is_transposed(param: torch.Tensor) -> bool:
    """Whether a stacked parameter is a ``SeedLinear`` weight (K, in, out) whose seeds' tensors are (out, in)."""
    return getattr(param, "seed_transposed", False)


def stack_modules(modules: Sequence[nn.Module]) -> nn.Module:
    """One module holding the K ``modules``' parameters stacked (see the module docstring); the sources' parameters
    become views of it. ``ValueError`` when the modules differ in architecture."""
    if not modules:
        raise ValueError("stack_modules needs at least one module")
    names = [name for name, _ in modules[0].named_parameters()]
    for module in modules[1:]:
        shapes = [(n, tuple(p.shape)) for n, p in module.named_parameters()]
        if shapes != [(n, tuple(p.shape)) for n, p in modules[0].named_parameters()]:
            raise ValueError("stack_modules needs modules of one architecture (same parameter names and shapes)")
    stacked = copy.deepcopy(modules[0])
    sources = [dict(m.named_modules()) for m in modules]
    for path, module in list(stacked.named_modules()):
        if isinstance(module, nn.Linear):
            parts = [s[path] for s in sources]
            bias = None if module.bias is None else stack_lanes([p.bias for p in parts], False)
            replacement = SeedLinear(stack_lanes([p.weight for p in parts], True), bias)
            replacement.weight.seed_transposed = True
            parent, _, attr = path.rpartition(".")
            setattr(stacked.get_submodule(parent) if parent else stacked, attr, replacement)
            continue
        for attr, _ in list(module.named_parameters(recurse=False)):
            setattr(module, attr, nn.Parameter(stack_lanes([getattr(s[path], attr) for s in sources], False)))
    stacked_params = dict(stacked.named_parameters())
    if list(stacked_params) != names:
        raise ValueError(f"stack_modules changed the parameter order: {names} → {list(stacked_params)}")
    for k, module in enumerate(modules):
        for name, param in module.named_parameters():
            source = stacked_params[name]
            param.data = lane_part(source.data, k, is_transposed(source))
    return stacked


def copy_optimizer_state(stacked: torch.optim.Optimizer, lane: torch.optim.Optimizer, k: int) -> None:
    """Seed ``k``'s slice of ``stacked``'s per-parameter state (Adam's moments, RMSprop's square average) and its
    groups' learning rates into ``lane``, seed k's own agent's optimizer (its parameters in the same order)."""
    lane_params = [p for group in lane.param_groups for p in group["params"]]
    stacked_params = [p for group in stacked.param_groups for p in group["params"]]
    for lane_param, param in zip(lane_params, stacked_params, strict=True):
        state = stacked.state.get(param)
        if not state:
            continue
        lane.state[lane_param] = {
            key: lane_part(value, k, is_transposed(param)).contiguous().clone() if _per_element(key, value, param)
            else _copy(value)
            for key, value in state.items()
        }  # fmt: skip
    for lane_group, group in zip(lane.param_groups, stacked.param_groups, strict=True):
        lane_group["lr"] = group["lr"]


def load_optimizer_state(stacked: torch.optim.Optimizer, lanes: Sequence[torch.optim.Optimizer]) -> None:
    """The lanes' optimizer states (restored from their checkpoints) stacked into ``stacked``: the inverse of
    ``copy_optimizer_state``. Lanes without state (a fresh run) leave ``stacked`` without state."""
    stacked_params = [p for group in stacked.param_groups for p in group["params"]]
    per_lane = [[p for group in lane.param_groups for p in group["params"]] for lane in lanes]
    for i, param in enumerate(stacked_params):
        states = [lane.state.get(params[i]) for lane, params in zip(lanes, per_lane, strict=True)]
        if not all(states):
            continue
        stacked.state[param] = {
            key: (stack_lanes([s[key] for s in states], is_transposed(param)).reshape(param.shape)
                  if _per_element(key, value, per_lane[0][i]) else _copy(value))
            for key, value in states[0].items()
        }  # fmt: skip


def _per_element(key: str, value: object, param: torch.Tensor) -> bool:
    """Whether an optimizer state entry holds a number per element of ``param`` (a moment), not one per tensor (the
    step count, also when ``param`` is a scalar like SAC's log α)."""
    return key != "step" and isinstance(value, torch.Tensor) and value.shape == param.shape


def _copy(value: object) -> object:
    return value.clone() if isinstance(value, torch.Tensor) else copy.deepcopy(value)


def clip_grad_norm_per_seed(params: Sequence[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Clip each seed's global gradient norm ‖(g_1[k], …, g_n[k])‖₂ to ``max_norm`` (seed axis first, as
    ``torch.nn.utils.clip_grad_norm_`` does for one seed); returns the K norms before clipping."""
    grads = [p.grad for p in params if p.grad is not None]
    k = grads[0].shape[0]
    norms = torch.stack([torch.linalg.vector_norm(g.reshape(k, -1), dim=1) for g in grads], dim=1)
    total = torch.linalg.vector_norm(norms, dim=1)
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.view(k, *([1] * (g.dim() - 1))))
    return total


def clip_gradients(params: Sequence[torch.Tensor], max_norm: float, n_seeds: int) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_`` for one seed, ``clip_grad_norm_per_seed`` for a seed batch's stacked
    parameters (``n_seeds`` > 1); the norms before clipping."""
    params = list(params)
    if n_seeds > 1:
        return clip_grad_norm_per_seed(params, max_norm)
    return torch.nn.utils.clip_grad_norm_(params, max_norm)


def per_seed(value: torch.Tensor) -> float | list[float]:
    """A logged statistic as a number, or one number per seed for a seed batch's (K,) tensor."""
    return value.item() if value.dim() == 0 else value.tolist()


def flat_per_seed(tensors: Sequence[torch.Tensor], n_seeds: int) -> torch.Tensor:
    """``tensors`` (parameters or their gradients) as one vector: (P,) for one seed, as ``parameters_to_vector``;
    (K, P) for a seed batch's stacked ones, row k seed k's (in the stacked layout's element order)."""
    if n_seeds == 1:
        return torch.cat([t.reshape(-1) for t in tensors])
    return torch.cat([t.reshape(n_seeds, -1) for t in tensors], dim=1)


def assign_flat(vector: torch.Tensor, params: Sequence[torch.Tensor], n_seeds: int) -> None:
    """Copy ``vector`` (``flat_per_seed``'s layout) into ``params`` in place (a stacked parameter's lanes stay views
    of it)."""
    start = 0
    with torch.no_grad():
        for param in params:
            size = param[0].numel() if n_seeds > 1 else param.numel()
            param.copy_(vector[..., start : start + size].reshape(param.shape))
            start += size


def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a · b over the last axis: a number for vectors, one per seed for (K, P) rows."""
    return a @ b if a.dim() == 1 else (a * b).sum(dim=-1)


class SeedGenerators:
    """The K seeds' own numpy generators drawn as one: a draw of shape (K, …) stacks generator k's draw of the
    trailing shape, so each seed gets the numbers a single run of it would (``rlzoo.distributions`` samples through
    this interface)."""

    def __init__(self, generators: Sequence[np.random.Generator]) -> None:
        self.generators = list(generators)

    def _check(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        shape = tuple(shape)
        if not shape or shape[0] != len(self.generators):
            raise ValueError(f"a draw of shape {shape} from {len(self.generators)} seeds' generators must lead with "
                             f"the seed axis ({len(self.generators)}, …)")  # fmt: skip
        return shape[1:]

    def random(self, shape: tuple[int, ...]) -> np.ndarray:
        """Uniforms on [0, 1)."""
        rest = self._check(shape)
        return np.stack([g.random(rest) for g in self.generators])

    def standard_normal(self, shape: tuple[int, ...]) -> np.ndarray:
        """Draws of N(0, 1)."""
        rest = self._check(shape)
        return np.stack([g.standard_normal(rest) for g in self.generators])

    def permutation(self, n: int) -> np.ndarray:
        """One permutation of range(n) per seed: (K, n)."""
        return np.stack([g.permutation(n) for g in self.generators])


def generators_of(rng: np.random.Generator | SeedGenerators) -> list[np.random.Generator]:
    """The generator of each seed: an agent's own, or a stacked agent's lanes'."""
    return rng.generators if isinstance(rng, SeedGenerators) else [rng]


def take_rows(data: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` of ``data``: ``data[index]`` for one seed (index (B,)), each seed's own rows for a seed batch
    (data (K, N, …), index (K, B) → (K, B, …))."""
    if index.dim() == 1:
        return data[index]
    seeds = torch.arange(index.shape[0], device=index.device).unsqueeze(1)
    return data[seeds, index]
