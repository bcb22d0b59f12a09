"""N CartPoles stepped in one numpy call, each exactly gymnasium's ``CartPole-v1`` in a ``SyncVectorEnv``
(``envs.numpy_vector_env``: same seeds, same-step autoreset, ``CartPoleEnv.step``'s float64 arithmetic operation for
operation)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from gymnasium import spaces

from .numpy_vector_env import NumpyVectorEnv

GRAVITY, MASSCART, MASSPOLE, LENGTH, FORCE_MAG, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
TOTAL_MASS = MASSPOLE + MASSCART
POLEMASS_LENGTH = MASSPOLE * LENGTH
THETA_THRESHOLD = 12 * 2 * math.pi / 360
X_THRESHOLD = 2.4
RESET_BOUND = 0.05


class CartPoleVectorEnv(NumpyVectorEnv):
    """``num_envs`` copies of ``CartPole-v1`` (Barto, Sutton & Anderson, 1983; gymnasium's equations and constants),
    same-step autoreset, truncated at ``max_episode_steps``; copy i's resets come from its own generator."""

    state_size = 4

    def __init__(self, num_envs: int, max_episode_steps: int = 500) -> None:
        high = np.array([X_THRESHOLD * 2, np.inf, THETA_THRESHOLD * 2, np.inf], dtype=np.float32)
        super().__init__(num_envs, max_episode_steps, spaces.Box(-high, high, dtype=np.float32), spaces.Discrete(2))

    def initial_state(self, generator: np.random.Generator) -> np.ndarray:
        return generator.uniform(low=-RESET_BOUND, high=RESET_BOUND, size=(4,))

    def dynamics(self, state: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x, x_dot, theta, theta_dot = state.T
        force = np.where(actions == 1, FORCE_MAG, -FORCE_MAG)
        costheta, sintheta = np.cos(theta), np.sin(theta)
        temp = (force + POLEMASS_LENGTH * np.square(theta_dot) * sintheta) / TOTAL_MASS
        thetaacc = (GRAVITY * sintheta - costheta * temp) / (
            LENGTH * (4.0 / 3.0 - MASSPOLE * np.square(costheta) / TOTAL_MASS)
        )
        xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
        x, x_dot = x + TAU * x_dot, x_dot + TAU * xacc
        theta, theta_dot = theta + TAU * theta_dot, theta_dot + TAU * thetaacc
        terminated = (x < -X_THRESHOLD) | (x > X_THRESHOLD) | (theta < -THETA_THRESHOLD) | (theta > THETA_THRESHOLD)
        return np.stack((x, x_dot, theta, theta_dot), axis=1), np.ones(len(x)), terminated

    def observe(self, state: np.ndarray) -> np.ndarray:
        return state.astype(np.float32)

    @classmethod
    def refuse_bad_actions(cls, envs: Sequence[CartPoleVectorEnv], actions: Sequence[np.ndarray]) -> np.ndarray:
        """Every env's actions joined (checked at once); ``ValueError`` for the first env whose actions are not
        ``num_envs`` values in {0, 1}."""
        if all(np.shape(a) == (env.num_envs,) for env, a in zip(envs, actions, strict=True)):
            joined = np.concatenate(actions)
            if joined.min() >= 0 and joined.max() <= 1:
                return joined
        for env, a in zip(envs, actions, strict=True):
            a = np.asarray(a)
            if a.shape != (env.num_envs,) or a.min() < 0 or a.max() > 1:
                raise ValueError(f"actions must be {env.num_envs} values in {{0, 1}}; got {a!r}")
        raise AssertionError("unreachable: some env's actions were refused above")
