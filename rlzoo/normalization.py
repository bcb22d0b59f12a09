"""Running normalisation of observations and rewards for the on-policy agents.

- ``RunningMeanStd``: mean and variance of a stream of batches, merged with the parallel update of
  Chan, Golub & LeVeque (1979).
- ``ObservationNormalizer``: o ← clip((o − μ) / √(σ² + ε), ±clip), statistics updated on training data only.
- ``RewardScaler``: r ← clip(r / √(Var[R] + ε), ±clip), where R is the running discounted return
  R ← γ R + r (reset at episode ends) — the reward scaling of PPO implementations (Engstrom et al., 2020).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class RunningMeanStd:
    """Mean and variance over all samples seen so far (``update`` takes a batch along axis 0)."""

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = 1e-4

    def update(self, batch: np.ndarray) -> None:
        batch = np.asarray(batch, dtype=np.float64)
        if batch.shape[0] == 1:  # one env's step: its mean is itself, its variance 0 (the same numbers, without
            b_mean, b_var, b_count = batch[0], 0.0, 1  # numpy's reductions, which cost more than the merge)
        else:
            b_mean, b_var, b_count = batch.mean(axis=0), batch.var(axis=0), batch.shape[0]
        delta = b_mean - self.mean
        total = self.count + b_count
        self.mean = self.mean + delta * b_count / total
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        self.var = m2 / total
        self.count = total

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": float(self.count)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.var = np.asarray(state["mean"], np.float64), np.asarray(state["var"], np.float64)
        self.count = float(state["count"])


class ObservationNormalizer:
    """Standardises observations with running statistics; ``update=False`` for evaluation."""

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, eps: float = 1e-8) -> None:
        self.stats = RunningMeanStd(shape)
        self.clip, self.eps = float(clip), float(eps)

    def __call__(self, obs: np.ndarray, update: bool = False) -> np.ndarray:
        if update:
            self.stats.update(obs)
        out = (obs - self.stats.mean) / np.sqrt(self.stats.var + self.eps)
        return np.clip(out, -self.clip, self.clip).astype(np.float32)


class RewardScaler:
    """Divides rewards by the running standard deviation of the discounted return of each env."""

    def __init__(self, n_envs: int, gamma: float, clip: float = 10.0, eps: float = 1e-8) -> None:
        self.stats = RunningMeanStd(())
        self.returns = np.zeros(n_envs)
        self.gamma, self.clip, self.eps = float(gamma), float(clip), float(eps)

    def __call__(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        self.returns = self.returns * self.gamma + rewards
        self.stats.update(self.returns)
        self.returns[dones] = 0.0
        return np.clip(rewards / np.sqrt(self.stats.var + self.eps), -self.clip, self.clip)
