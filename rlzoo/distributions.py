"""Action distributions for stochastic policies: categorical (discrete) and diagonal Gaussian (continuous).

Both take their randomness from a numpy ``Generator`` (the agent's own, saved in checkpoints), so a
seeded run samples the same actions whatever else uses torch's global generator. They are plain
tensors-in, tensors-out classes — no argument validation on the hot path, unlike
``torch.distributions``. Each gives ``log_prob``, ``entropy``, ``mode`` and ``kl`` (KL(self ‖ other),
used by TRPO's trust region).
"""

from __future__ import annotations

import math

import numpy as np
import torch

_LOG_2PI = math.log(2.0 * math.pi)


class Categorical:
    """π(a|s) = softmax(logits)_a over the last axis."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = torch.log_softmax(logits, dim=-1)  # normalised: log-probabilities

    @property
    def probs(self) -> torch.Tensor:
        return self.logits.exp()

    @staticmethod
    def noise(batch_shape: tuple[int, ...], rng: np.random.Generator, like: torch.Tensor) -> torch.Tensor:
        """The uniforms u ~ U[0, 1) of ``sample_with`` for ``batch_shape`` rows, drawn from ``rng`` (as ``like``'s
        dtype and device)."""
        return torch.from_numpy(rng.random(batch_shape)).to(like.device, like.dtype)

    def sample(self, rng: np.random.Generator) -> torch.Tensor:
        """a ~ π(·|s) for every row, with uniforms from ``rng`` (``sample_with``)."""
        return self.sample_with(self.noise(self.logits.shape[:-1], rng, self.logits))

    def sample_with(self, u: torch.Tensor) -> torch.Tensor:
        """Inverse-CDF sampling with given uniforms ``u`` (one per row).

        The draw x = (1 − u) · cdf[-1] lies in (0, cdf[-1]], so the count of cdf entries below it never
        selects an action of probability 0 (also when rounding leaves the cdf's last entry under 1).
        """
        cdf = self.probs.cumsum(dim=-1)
        x = (1.0 - u).unsqueeze(-1) * cdf[..., -1:]
        return (cdf < x).sum(dim=-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.logits.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        """H = −Σ_a π(a) log π(a)."""
        return -(self.probs * self.logits).sum(dim=-1)

    def mode(self) -> torch.Tensor:
        return self.logits.argmax(dim=-1)

    def kl(self, other: Categorical) -> torch.Tensor:
        """KL(self ‖ other) = Σ_a π(a) (log π(a) − log π'(a))."""
        return (self.probs * (self.logits - other.logits)).sum(dim=-1)


class DiagGaussian:
    """π(a|s) = N(mean, diag(exp(log_std)²)); log-probabilities sum over action dimensions."""

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor) -> None:
        self.mean = mean
        self.log_std = log_std.expand_as(mean)

    @staticmethod
    def noise(shape: tuple[int, ...], rng: np.random.Generator, like: torch.Tensor) -> torch.Tensor:
        """z ~ N(0, I) of ``shape`` (the actions') for ``sample_with``, drawn from ``rng`` (as ``like``'s dtype and
        device)."""
        return torch.from_numpy(rng.standard_normal(shape)).to(like.device, like.dtype)

    def sample(self, rng: np.random.Generator) -> torch.Tensor:
        """a = mean + std · z with z ~ N(0, I) drawn from ``rng`` (``sample_with``)."""
        return self.sample_with(self.noise(self.mean.shape, rng, self.mean))

    def sample_with(self, z: torch.Tensor) -> torch.Tensor:
        """a = mean + std · z for given standard normals ``z`` (the actions' shape)."""
        return self.mean + self.log_std.exp() * z

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        z = (actions - self.mean) * torch.exp(-self.log_std)
        return (-0.5 * z.pow(2) - self.log_std - 0.5 * _LOG_2PI).sum(dim=-1)

    def entropy(self) -> torch.Tensor:
        """H = Σ_i (½ log 2πe + log σ_i)."""
        return (0.5 + 0.5 * _LOG_2PI + self.log_std).sum(dim=-1)

    def mode(self) -> torch.Tensor:
        return self.mean

    def kl(self, other: DiagGaussian) -> torch.Tensor:
        """KL(self ‖ other) = Σ_i log σ'_i/σ_i + (σ_i² + (μ_i − μ'_i)²) / (2σ'_i²) − ½."""
        var, other_var = torch.exp(2 * self.log_std), torch.exp(2 * other.log_std)
        return (other.log_std - self.log_std + (var + (self.mean - other.mean).pow(2)) / (2 * other_var) - 0.5).sum(
            dim=-1
        )


class StateDependentGaussian(DiagGaussian):
    """gSDE's policy (Raffin et al., 2022, "Smooth exploration for robotic reinforcement learning"): the action
    a = μ(s) + z(s)ᵀ θ_ε, z(s) the policy's last features (no gradient through them), θ_ε ~ N(0, σ²) a
    (features × actions) matrix per env held for several steps, so the exploration is a smooth function of the
    state. For one θ_ε the action is Gaussian with variance σ_j²(s) = Σ_i z_i(s)² σ_ij² — ``log_std`` holds
    log σ_j(s) — which gives ``log_prob``, ``entropy`` and ``kl``."""

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor, latent: torch.Tensor,
                 exploration: torch.Tensor | None) -> None:  # fmt: skip
        super().__init__(mean, log_std)
        self.latent, self.exploration = latent, exploration

    def sample(self, rng: np.random.Generator) -> torch.Tensor:
        """a = μ(s) + z(s)ᵀ θ_ε with each row's (or one shared) exploration matrix; without matrices for this batch
        (e.g. one observation outside a rollout) a plain draw from N(μ(s), σ(s)²)."""
        theta = self.exploration  # (envs, features, actions); a seed batch's (K, envs, …)
        if theta is None or theta.shape[-3] not in (1, self.mean.shape[-2]):
            return super().sample(rng)
        return self.mean + torch.einsum("...bi,...bij->...bj", self.latent, theta.expand(*self.mean.shape[:-1], -1, -1))


Distribution = Categorical | DiagGaussian
