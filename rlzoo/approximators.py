"""Value-function approximators behind one interface, for V(s) and Q(s, ·).

- ``row(s)`` / ``value(s)``: the current estimate; ``update(...)``: a (semi-)gradient step toward
  a target with step size α; ``array()``: estimates for every state; ``state()``/``load_state()``.
- Tabular: one entry per state (V) or state-action pair (Q), kept in Python lists because per-step
  TD and MC updates touch single entries and list indexing is several times faster than numpy's.
- Linear in features: v̂ = φ(s)ᵀw, q̂(s, ·) = φ(s)ᵀW (``rlzoo.features`` builds φ).
- MLP (torch) for the deep agents: Q-networks, critics for discrete and continuous actions, target-network updates.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
from gymnasium import spaces

from rlzoo.seed_stack import linear_columns


class _ListTable:
    """Tabular storage in (nested) Python lists, ``data``; numpy in and out."""

    data: list

    def array(self) -> np.ndarray:
        """Estimates for every state: (S,) or (S, A)."""
        return np.array(self.data, dtype=float)

    def state(self) -> np.ndarray:
        return self.array()

    def load_state(self, values: np.ndarray) -> None:
        self.data = np.asarray(values, dtype=float).tolist()


class TabularQ(_ListTable):
    """Q(s, a) table: ``data[s][a]``."""

    def __init__(self, n_states: int, n_actions: int, init: float = 0.0) -> None:
        self.data = [[float(init)] * n_actions for _ in range(n_states)]

    def row(self, s: int) -> list[float]:
        """q(s, ·) (the stored list itself)."""
        return self.data[s]

    def update(self, s: int, a: int, target: float, alpha: float) -> None:
        """q(s, a) ← q(s, a) + α (target − q(s, a))."""
        row = self.data[s]
        row[a] += alpha * (target - row[a])


class TabularV(_ListTable):
    """V(s) table: ``data[s]``."""

    def __init__(self, n_states: int, init: float = 0.0) -> None:
        self.data = [float(init)] * n_states

    def value(self, s: int) -> float:
        return self.data[s]

    def update(self, s: int, target: float, alpha: float) -> None:
        """v(s) ← v(s) + α (target − v(s))."""
        self.data[s] += alpha * (target - self.data[s])


class _Linear:
    """Linear estimates ``φ(s)ᵀ w`` with the features of every state precomputed (``phi``: (S, k))."""

    def __init__(self, features: np.ndarray, width: tuple[int, ...]) -> None:
        self.phi = np.asarray(features, dtype=float)
        self.w = np.zeros((self.phi.shape[1], *width))

    def array(self) -> np.ndarray:
        return self.phi @ self.w

    def state(self) -> np.ndarray:
        return self.w.copy()

    def load_state(self, w: np.ndarray) -> None:
        self.w = np.asarray(w, dtype=float).copy()


class LinearQ(_Linear):
    """q(s, a) = φ(s)ᵀ W[:, a]; semi-gradient step W[:, a] += α (target − q(s, a)) φ(s)."""

    def __init__(self, features: np.ndarray, n_actions: int) -> None:
        super().__init__(features, (n_actions,))

    def row(self, s: int) -> list[float]:
        return (self.phi[s] @ self.w).tolist()

    def update(self, s: int, a: int, target: float, alpha: float) -> None:
        phi = self.phi[s]
        self.w[:, a] += alpha * (target - phi @ self.w[:, a]) * phi


class LinearV(_Linear):
    """v(s) = φ(s)ᵀ w; semi-gradient step w += α (target − v(s)) φ(s)."""

    def __init__(self, features: np.ndarray) -> None:
        super().__init__(features, ())

    def value(self, s: int) -> float:
        return float(self.phi[s] @ self.w)

    def update(self, s: int, target: float, alpha: float) -> None:
        phi = self.phi[s]
        self.w += alpha * (target - phi @ self.w) * phi


ACTIVATIONS = ("relu", "tanh", "elu")
_ACTIVATION_MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU}


def mlp(sizes: list[int], activation: str = "relu", activate_last: bool = False) -> nn.Sequential:
    """A torch MLP ``sizes[0] → … → sizes[-1]``, ``activation`` between layers (and after the last if asked)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r} is not supported: choose one of {', '.join(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2 or activate_last:
            layers.append(_ACTIVATION_MODULES[activation]())
    return nn.Sequential(*layers)


class DuelingQ(nn.Module):
    """Q(s, ·) = V(s) + A(s, ·) − mean_a A(s, a) on a shared MLP body (Wang et al., 2016)."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: list[int], activation: str) -> None:
        super().__init__()
        self.body = mlp([obs_dim, *hidden], activation, activate_last=True)
        self.value = nn.Linear(hidden[-1], 1)
        self.advantage = nn.Linear(hidden[-1], n_actions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        adv = self.advantage(h)
        return self.value(h) + adv - adv.mean(dim=-1, keepdim=True)


def q_network(obs_dim: int, n_actions: int, hidden: list[int], activation: str = "relu", dueling: bool = False):
    """Q(s, ·) on an MLP, plain or dueling."""
    if dueling:
        return DuelingQ(obs_dim, n_actions, hidden, activation)
    return mlp([obs_dim, *hidden, n_actions], activation)


def orthogonal_init(module: nn.Module, gain: float = math.sqrt(2.0), last_gain: float | None = None) -> nn.Module:
    """Orthogonal weights (gain ``gain``; the last Linear ``last_gain``) and zero biases (Saxe et al., 2014)."""
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    for i, layer in enumerate(linears):
        g = last_gain if (last_gain is not None and i == len(linears) - 1) else gain
        nn.init.orthogonal_(layer.weight, g)
        nn.init.zeros_(layer.bias)
    return module


class ObservationEncoder(nn.Module):
    """A batch of observations → (B, ``size``) floats: one-hot for a Discrete space (a linear layer on it is a
    table), the flattened vector for a Box. Leading batch axes are kept: (K, B, *shape) → (K, B, ``size``) for a
    seed batch (``rlzoo.seed_stack``)."""

    def __init__(self, space: spaces.Space) -> None:
        super().__init__()
        if not isinstance(space, (spaces.Discrete, spaces.Box)):
            raise ValueError(f"observation space {space} is not supported: use a Discrete or Box space")
        self.one_hot = isinstance(space, spaces.Discrete)
        self.size = int(space.n) if self.one_hot else int(np.prod(space.shape))
        self.obs_dims = len(space.shape)  # trailing axes of one observation

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.one_hot:
            return nn.functional.one_hot(obs.long(), self.size).float()
        return obs.float().reshape(*obs.shape[: obs.dim() - self.obs_dims], self.size)


class Critic(nn.Module):
    """V(s) (``n_outputs=1``: output (B,)) or Q(s, ·) (``n_outputs=|A|``: output (B, |A|)) on an MLP."""

    def __init__(self, obs_space: spaces.Space, hidden: list[int], activation: str, n_outputs: int,
                 ortho: bool = True) -> None:  # fmt: skip
        super().__init__()
        self.encoder = ObservationEncoder(obs_space)
        self.body = mlp([self.encoder.size, *hidden, n_outputs], activation)
        if ortho:
            orthogonal_init(self.body, last_gain=1.0)
        self.scalar = n_outputs == 1

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.body(self.encoder(obs))
        return out.squeeze(-1) if self.scalar else out


CANDIDATE_CHUNK_ELEMENTS = 1 << 18  # hidden activations per chunk of ``first_candidates``: 1 MiB, cache-sized


class ActionValueCritic(nn.Module):
    """``n`` independent critics Q_i(s, a) = MLP_i([enc(s), a]) for a continuous action; output (n, B).

    One critic for DDPG (Silver et al., 2014; Lillicrap et al., 2016), two for TD3's clipped double-Q
    target min_i Q_i (Fujimoto et al., 2018). ``first`` evaluates only Q_1 (the actor's objective).
    """

    def __init__(self, obs_space: spaces.Space, action_dim: int, hidden: list[int], activation: str,
                 n_critics: int) -> None:  # fmt: skip
        super().__init__()
        if n_critics < 1:
            raise ValueError(f"n_critics={n_critics} must be at least 1")
        self.encoder = ObservationEncoder(obs_space)
        sizes = [self.encoder.size + int(action_dim), *hidden, 1]
        self.qs = nn.ModuleList(mlp(sizes, activation) for _ in range(n_critics))

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.encoder(obs), actions], dim=-1)
        return torch.stack([q(x).squeeze(-1) for q in self.qs]) if len(self.qs) > 1 else self.qs[0](x).squeeze(-1)[None]

    def first(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q_1(s, a), shape (B,) (a seed batch's: (K, B))."""
        return self.qs[0](torch.cat([self.encoder(obs), actions], dim=-1)).squeeze(-1)

    def first_candidates(self, obs: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Q_1(s, a_j) for M candidate actions per state: ``candidates`` (..., M, B, d) for the B states ``obs``
        (..., B, *obs_shape) → (..., M, B). ``first`` on each candidate up to float rounding, but the first layer's
        state block W_s enc(s) + b is computed once per state and only the action block W_a a_j once per candidate,
        a few candidates at a time (``CANDIDATE_CHUNK_ELEMENTS``)."""
        net, n = self.qs[0], self.encoder.size
        state = linear_columns(net[0], self.encoder(obs), slice(0, n), bias=True).unsqueeze(-3)  # (..., 1, B, h)
        per_chunk = max(1, CANDIDATE_CHUNK_ELEMENTS // state.numel())  # candidates whose activations stay in cache
        return torch.cat([net[1:](state + linear_columns(net[0], part, slice(n, None), bias=False)).squeeze(-1)
                          for part in candidates.split(per_chunk, dim=-3)], dim=-2)  # fmt: skip


class DiscreteActionValueCritic(nn.Module):
    """``n`` independent critics Q_i(s, ·) on MLPs for a Discrete action space: ``all_actions`` gives (n, B, |A|),
    ``forward(obs, actions)`` the values (n, B) of the actions taken — ``ActionValueCritic``'s ``forward``, so the
    replay actor-critics' critic step (SAC for discrete actions, Christodoulou 2019) uses either."""

    def __init__(self, obs_space: spaces.Space, n_actions: int, hidden: list[int], activation: str,
                 n_critics: int) -> None:  # fmt: skip
        super().__init__()
        if n_critics < 1:
            raise ValueError(f"n_critics={n_critics} must be at least 1")
        self.encoder = ObservationEncoder(obs_space)
        self.qs = nn.ModuleList(mlp([self.encoder.size, *hidden, int(n_actions)], activation) for _ in range(n_critics))

    def all_actions(self, obs: torch.Tensor) -> torch.Tensor:
        """Q_i(s, a) for every critic, state and action: (n, B, |A|)."""
        x = self.encoder(obs)
        return torch.stack([q(x) for q in self.qs])

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        index = actions.long()[None, ..., None].expand(len(self.qs), *actions.shape, 1)
        return self.all_actions(obs).gather(-1, index).squeeze(-1)

    def first(self, obs: torch.Tensor) -> torch.Tensor:
        """Q_1(s, ·), shape (B, |A|)."""
        return self.qs[0](self.encoder(obs))


@torch.no_grad()
def polyak_update(target: list[torch.Tensor], source: list[torch.Tensor], tau: float) -> None:
    """θ⁻ ← (1 − τ) θ⁻ + τ θ for every pair of tensors, in place (τ = 1: a copy).

    Polyak averaging of target networks (Lillicrap et al., 2016); one fused ``_foreach`` call per
    operation instead of a Python loop over parameters.
    """
    if len(target) != len(source):
        raise ValueError(f"target has {len(target)} tensors but source has {len(source)}")
    if tau == 1.0:
        torch._foreach_copy_(target, source)
        return
    torch._foreach_mul_(target, 1.0 - tau)
    torch._foreach_add_(target, source, alpha=tau)
