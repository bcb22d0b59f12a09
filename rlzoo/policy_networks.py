"""Stochastic policy networks π_θ(a|s): observation encoder → MLP body → a policy head.

Heads (``rlzoo.distributions``):
- categorical for a Discrete action space: logits = W h + b;
- diagonal Gaussian for a Box action space: mean = W h + b and a log-std that is either one learned
  vector (state-independent, as in PPO/TRPO) or a second linear head (state-dependent);
- generalized state-dependent exploration (gSDE) for a Box action space: mean = W h + b, noise z(s)ᵀ θ_ε.
With ``hidden=[]`` and a Discrete observation space the policy is a softmax table θ(s, a).
``DeterministicActor`` is the deterministic policy μ_θ(s) of DPG/DDPG/TD3; ``SquashedGaussianActor`` the
tanh-squashed Gaussian policy of SAC.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from rlzoo.approximators import ObservationEncoder, mlp, orthogonal_init
from rlzoo.distributions import Categorical, DiagGaussian, Distribution, StateDependentGaussian

LOG_STD_BOUNDS = (-20.0, 2.0)


class CategoricalHead(nn.Module):
    """Logits of π(·|s) over ``n`` actions."""

    def __init__(self, width: int, n: int) -> None:
        super().__init__()
        self.logits = nn.Linear(width, n)

    def forward(self, h: torch.Tensor) -> Categorical:
        return Categorical(self.logits(h))


class GaussianHead(nn.Module):
    """Mean and log-std of a diagonal Gaussian; log-std state-independent (a parameter) or a linear head."""

    def __init__(self, width: int, dim: int, log_std_init: float, state_dependent: bool) -> None:
        super().__init__()
        self.mean = nn.Linear(width, dim)
        self.state_dependent = state_dependent
        if state_dependent:
            self.log_std = nn.Linear(width, dim)
            nn.init.zeros_(self.log_std.weight)
            nn.init.constant_(self.log_std.bias, log_std_init)
        else:
            self.log_std = nn.Parameter(torch.full((dim,), float(log_std_init)))

    def forward(self, h: torch.Tensor) -> DiagGaussian:
        log_std = self.log_std(h) if self.state_dependent else self.log_std
        return DiagGaussian(self.mean(h), log_std.clamp(*LOG_STD_BOUNDS))


class StateDependentNoiseHead(nn.Module):
    """gSDE's head (``StateDependentGaussian``): mean = W h + b, log σ a learned (features × actions) matrix, and
    the exploration matrices θ_ε ~ N(0, σ²) that ``reset_noise`` draws (one per env) and sampling uses until the
    next draw."""

    VARIANCE_EPS = 1e-6  # added to σ_j(s)² so that a state whose features are all 0 keeps a finite log-density

    def __init__(self, width: int, dim: int, log_std_init: float) -> None:
        super().__init__()
        self.mean = nn.Linear(width, dim)
        self.log_std = nn.Parameter(torch.full((width, dim), float(log_std_init)))
        self.exploration: torch.Tensor | None = None

    def reset_noise(self, n: int, rng: np.random.Generator) -> None:
        """New exploration matrices θ_ε = σ ⊙ ε, ε ~ N(0, I) from ``rng``, one for each of ``n`` envs: (n, features,
        actions); in a seed batch's stacked head (log σ (K, 1, features, actions)) each seed's own, (K, n, …)."""
        shape = self.log_std.shape
        eps = rng.standard_normal((shape[0], n, *shape[2:]) if self.seed_stacked else (n, *shape))
        self.exploration = (
            torch.from_numpy(eps).to(self.log_std.device, self.log_std.dtype) * self.log_std.detach().exp()
        )

    @property
    def seed_stacked(self) -> bool:
        """Whether this head holds a seed batch's parameters (``rlzoo.seed_stack``): log σ (K, 1, features, actions)."""
        return self.log_std.dim() == 4

    def forward(self, h: torch.Tensor) -> StateDependentGaussian:
        latent = h.detach()
        log_std = self.log_std[:, 0] if self.seed_stacked else self.log_std  # (K, features, actions) for each seed
        variance = latent.square() @ (2.0 * log_std).exp()
        return StateDependentGaussian(self.mean(h), 0.5 * torch.log(variance + self.VARIANCE_EPS), latent,
                                      self.exploration)  # fmt: skip


class PolicyNetwork(nn.Module):
    """π_θ(·|s) for a Discrete (categorical) or 1-D Box (Gaussian) action space.

    Orthogonal initialisation (gain √2 in the body, 0.01 on the output) starts the policy near uniform /
    zero-mean, as in the PPO implementations studied by Andrychowicz et al. (2021).
    """

    def __init__(
        self,
        obs_space: gym.Space,
        action_space: gym.Space,
        hidden: list[int],
        activation: str,
        *,
        ortho: bool,
        log_std_init: float,
        state_dependent_std: bool,
        state_dependent_exploration: bool,
    ) -> None:
        super().__init__()
        self.encoder = ObservationEncoder(obs_space)
        self.body = mlp([self.encoder.size, *hidden], activation, activate_last=True)
        width = hidden[-1] if hidden else self.encoder.size
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        self.action_dim = 0 if self.discrete else int(action_space.shape[0])  # a Gaussian's, for ``sampling_noise``
        if self.discrete:
            self.head: nn.Module = CategoricalHead(width, int(action_space.n))
        elif state_dependent_exploration:
            self.head = StateDependentNoiseHead(width, int(action_space.shape[0]), log_std_init)
        else:
            self.head = GaussianHead(width, int(action_space.shape[0]), log_std_init, state_dependent_std)
        if ortho:
            orthogonal_init(self.body)
            out = self.head.logits if self.discrete else self.head.mean
            nn.init.orthogonal_(out.weight, 0.01)
            nn.init.zeros_(out.bias)

    def forward(self, obs: torch.Tensor) -> Distribution:
        return self.head(self.body(self.encoder(obs)))

    def sampling_noise(self, obs: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """The random numbers ``sample`` draws from ``rng`` for the policy at ``obs``, drawn before the forward pass
        (so that acting can run as one compiled function of the observations and these): the categorical head's
        uniforms or the Gaussian head's standard normals (not gSDE's, whose exploration matrices are held)."""
        if isinstance(self.head, StateDependentNoiseHead):
            raise ValueError("gSDE draws its exploration matrices, not per-step noise")
        batch_shape = tuple(obs.shape[: obs.dim() - self.encoder.obs_dims])
        if self.discrete:
            return Categorical.noise(batch_shape, rng, self.head.logits.weight)
        return DiagGaussian.noise((*batch_shape, self.action_dim), rng, self.head.mean.weight)

    def reset_noise(self, n: int, rng: np.random.Generator) -> None:
        """gSDE: new exploration matrices for ``n`` envs (``StateDependentNoiseHead.reset_noise``)."""
        self.head.reset_noise(n, rng)


class DeterministicActor(nn.Module):
    """μ_θ(s) = tanh(MLP(enc(s))) ∈ [−1, 1]^d: a deterministic policy (Silver et al., 2014), squashed so an
    action scaler can map it affinely onto any bounded Box."""

    def __init__(self, obs_space: gym.Space, action_dim: int, hidden: list[int], activation: str) -> None:
        super().__init__()
        self.encoder = ObservationEncoder(obs_space)
        self.body = mlp([self.encoder.size, *hidden, int(action_dim)], activation)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.body(self.encoder(obs)))


class SquashedGaussianActor(nn.Module):
    """π_θ(·|s) of SAC (Haarnoja et al., 2018, appendix C): u = tanh(x), x ~ N(μ_θ(s), σ_θ(s)²) ∈ [−1, 1]^d,
    mean and log-std two linear heads on one MLP body, log σ clamped to ``LOG_STD_BOUNDS``.

    Change of variables: log π(u|s) = log N(x; μ, σ²) − Σ_j log(1 − tanh(x_j)²), the correction written
    2 (log 2 − x − softplus(−2x)) so that it stays finite where tanh saturates.
    """

    def __init__(self, obs_space: gym.Space, action_dim: int, hidden: list[int], activation: str) -> None:
        super().__init__()
        self.encoder = ObservationEncoder(obs_space)
        self.body = mlp([self.encoder.size, *hidden], activation, activate_last=True)
        width = hidden[-1] if hidden else self.encoder.size
        self.mean = nn.Linear(width, int(action_dim))
        self.log_std = nn.Linear(width, int(action_dim))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ(s), log σ(s)) of the Gaussian before the squashing."""
        h = self.body(self.encoder(obs))
        return self.mean(h), self.log_std(h).clamp(*LOG_STD_BOUNDS)

    def sample(self, obs: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The reparameterised draw u = tanh(μ + σ ε) for given ε ~ N(0, I) (B, d), and log π(u|s), shape (B,)."""
        mean, log_std = self(obs)
        x = mean + log_std.exp() * eps
        gaussian = -0.5 * eps.square() - log_std - 0.5 * math.log(2.0 * math.pi)
        squash = 2.0 * (math.log(2.0) - x - F.softplus(-2.0 * x))
        return torch.tanh(x), (gaussian - squash).sum(dim=-1)

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action tanh(μ(s)) (evaluation)."""
        return torch.tanh(self(obs)[0])
