"""N Pendulums stepped in one numpy call, each exactly gymnasium's ``Pendulum-v1`` in a ``SyncVectorEnv``
(``rlzoo.envs.numpy_vector_env``: same seeds, same-step autoreset, the same float64 arithmetic)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from gymnasium import spaces

from .numpy_vector_env import NumpyVectorEnv

MAX_SPEED, MAX_TORQUE, DT, MASS, LENGTH = 8, 2.0, 0.05, 1.0, 1.0
RESET_HIGH = np.array([np.pi, 1.0])  # gymnasium's DEFAULT_X, DEFAULT_Y: θ ~ U(−π, π), θ̇ ~ U(−1, 1)


def scalar_square(x: np.ndarray) -> np.ndarray:
    """x ** 2 element by element, each as a numpy scalar's ``** 2`` (gymnasium's one-env arithmetic): an array's
    ``x ** 2`` is x · x, and ``np.power`` of an array may take a SIMD ``pow`` (AVX-512 builds of numpy 2.x), each
    different from the scalar's C ``pow`` in the last bit for some values."""
    return np.fromiter((v**2 for v in x), dtype=x.dtype, count=len(x))


def angle_normalize(x: np.ndarray) -> np.ndarray:
    """θ wrapped into [−π, π)."""
    return ((x + np.pi) % (2 * np.pi)) - np.pi


class PendulumVectorEnv(NumpyVectorEnv):
    """``num_envs`` copies of ``Pendulum-v1`` (gymnasium's equations and constants, gravity ``g``): observation
    (cos θ, sin θ, θ̇), torque in [−2, 2] (clipped), reward −(θ² + 0.1 θ̇² + 0.001 u²); never terminates."""

    state_size = 2

    def __init__(self, num_envs: int, max_episode_steps: int = 200, g: float = 10.0) -> None:
        high = np.array([1.0, 1.0, MAX_SPEED], dtype=np.float32)
        action_space = spaces.Box(low=-MAX_TORQUE, high=MAX_TORQUE, shape=(1,), dtype=np.float32)
        super().__init__(num_envs, max_episode_steps, spaces.Box(-high, high, dtype=np.float32), action_space)
        self.g = float(g)

    def initial_state(self, generator: np.random.Generator) -> np.ndarray:
        return generator.uniform(low=-RESET_HIGH, high=RESET_HIGH)

    def parameters(self) -> dict[str, float]:
        return {"g": self.g}

    def dynamics(self, state: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        th, thdot, g = *state.T, self.g
        u = np.clip(actions, -MAX_TORQUE, MAX_TORQUE)[:, 0]
        costs = scalar_square(angle_normalize(th)) + 0.1 * scalar_square(thdot) + 0.001 * scalar_square(u)
        newthdot = thdot + (3 * g / (2 * LENGTH) * np.sin(th) + 3.0 / (MASS * LENGTH**2) * u) * DT
        newthdot = np.clip(newthdot, -MAX_SPEED, MAX_SPEED)
        newth = th + newthdot * DT
        return np.stack((newth, newthdot), axis=1), -costs, np.zeros(len(th), dtype=bool)

    def observe(self, state: np.ndarray) -> np.ndarray:
        th, thdot = state.T
        return np.stack((np.cos(th), np.sin(th), thdot), axis=1).astype(np.float32)

    @classmethod
    def refuse_bad_actions(cls, envs: Sequence[PendulumVectorEnv], actions: Sequence[np.ndarray]) -> np.ndarray:
        for env, a in zip(envs, actions, strict=True):
            if np.shape(a) != (env.num_envs, 1):
                raise ValueError(f"actions must be an array of shape ({env.num_envs}, 1) (one torque per copy); "
                                 f"got shape {np.shape(a)}")  # fmt: skip
        return np.concatenate([np.asarray(a) for a in actions])
