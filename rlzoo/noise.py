"""Exploration noise for deterministic policies, added to the action in the actor's [−1, 1] scale.

- Gaussian: ε_t ~ N(0, σ² I), independent across steps (Fujimoto et al., 2018, TD3).
- Ornstein–Uhlenbeck: x_{t+1} = x_t + θ (μ − x_t) dt + σ √dt ξ_t, ξ_t ~ N(0, I), temporally correlated and
  reset to μ at each episode start (Lillicrap et al., 2016, DDPG; Uhlenbeck & Ornstein, 1930).

Both draw from the agent's numpy generator, so they are reproducible and saved with the agent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

NOISE_KINDS = ("gaussian", "ou")


class GaussianNoise:
    """ε ~ N(0, σ²) per action dimension, fresh at every step."""

    def __init__(self, dim: int, sigma: float, rng: np.random.Generator) -> None:
        self.dim, self.sigma, self.rng = int(dim), float(sigma), rng

    def sample(self) -> np.ndarray:
        return self.sigma * self.rng.standard_normal(self.dim)

    def reset(self) -> None:
        """Nothing to forget between episodes."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        return


class OrnsteinUhlenbeckNoise:
    """x ← x + θ (μ − x) dt + σ √dt ξ with ξ ~ N(0, I); ``reset`` puts x back to μ (= 0 here)."""

    def __init__(self, dim: int, sigma: float, rng: np.random.Generator, theta: float,
                 dt: float) -> None:  # fmt: skip
        self.dim, self.sigma, self.theta, self.dt, self.rng = int(dim), float(sigma), float(theta), float(dt), rng
        self.x = np.zeros(self.dim)

    def sample(self) -> np.ndarray:
        shock = self.sigma * np.sqrt(self.dt) * self.rng.standard_normal(self.dim)
        self.x = self.x - self.theta * self.x * self.dt + shock
        return self.x.copy()

    def reset(self) -> None:
        self.x = np.zeros(self.dim)

    def state_dict(self) -> dict[str, Any]:
        return {"x": self.x.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.x = np.asarray(state["x"], dtype=float).copy()


def make_noise(kind: str, dim: int, sigma: float, rng: np.random.Generator, **ou: float):
    """``GaussianNoise`` or ``OrnsteinUhlenbeckNoise`` (``ou`` holds its ``theta`` and ``dt``)."""
    if kind == "gaussian":
        return GaussianNoise(dim, sigma, rng)
    if kind == "ou":
        return OrnsteinUhlenbeckNoise(dim, sigma, rng, **ou)
    raise ValueError(f"noise={kind!r} is not a kind of exploration noise: choose one of {', '.join(NOISE_KINDS)}")
