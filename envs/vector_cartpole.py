"""N CartPoles stepped in one numpy call, each exactly gymnasium's ``CartPole-v1`` in a ``SyncVectorEnv``.

gymnasium's own ``CartPoleVectorEnv`` draws every copy's resets from one generator and resets in the step after the
end (next-step autoreset), so its episodes differ from a ``SyncVectorEnv``'s. This one keeps what rlzoo's rollouts
assume and what a single run's numbers depend on: copy i is seeded ``seed + i`` and draws its resets from its own
generator, episodes reset in the step that ends them (``infos["final_obs"]`` holds the last observation), and the
dynamics are ``CartPoleEnv.step``'s float64 arithmetic, operation for operation — so a run gets the same episodes
from either, and the per-copy Python overhead of ``SyncVectorEnv`` (≈ 25 µs a step, wrappers included) is gone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

GRAVITY, MASSCART, MASSPOLE, LENGTH, FORCE_MAG, TAU = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
TOTAL_MASS = MASSPOLE + MASSCART
POLEMASS_LENGTH = MASSPOLE * LENGTH
THETA_THRESHOLD = 12 * 2 * math.pi / 360
X_THRESHOLD = 2.4
RESET_BOUND = 0.05


def refuse_bad_actions(envs: Sequence[CartPoleVectorEnv], actions: Sequence[np.ndarray]) -> None:
    """Raise for the first env whose actions are not ``num_envs`` values in {0, 1}."""
    for env, a in zip(envs, actions, strict=True):
        a = np.asarray(a)
        if a.shape != (env.num_envs,) or a.min() < 0 or a.max() > 1:
            raise ValueError(f"actions must be {env.num_envs} values in {{0, 1}}; got {a!r}")


class CartPoleVectorEnv(VectorEnv):
    """``num_envs`` copies of ``CartPole-v1`` (Barto, Sutton & Anderson, 1983; gymnasium's equations and constants),
    same-step autoreset, truncated at ``max_episode_steps``; copy i's resets come from its own generator."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int, max_episode_steps: int = 500) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs} must be a positive integer")
        self.num_envs, self.max_episode_steps = int(num_envs), int(max_episode_steps)
        high = np.array([X_THRESHOLD * 2, np.inf, THETA_THRESHOLD * 2, np.inf], dtype=np.float32)
        self.single_observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.single_action_space = spaces.Discrete(2)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = None
        self._generators = [seeding.np_random(None)[0] for _ in range(self.num_envs)]
        self._state = np.zeros((self.num_envs, 4))
        self._t = np.zeros(self.num_envs, dtype=np.int64)

    def _reset_copies(self, copies: np.ndarray) -> None:
        for i in copies:
            self._state[i] = self._generators[i].uniform(low=-RESET_BOUND, high=RESET_BOUND, size=(4,))
        self._t[copies] = 0

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else list(seed)
            self._generators = [seeding.np_random(s)[0] for s in seeds]
        self._reset_copies(np.arange(self.num_envs))
        return self._state.astype(np.float32), {}

    def step(self, actions):
        return self.step_together([self], [actions])[0]

    @staticmethod
    def step_together(envs: Sequence[CartPoleVectorEnv], actions: Sequence[np.ndarray]) -> list[tuple]:
        """Step several batch CartPoles with their ``actions`` as one array computation (a seed batch's envs):
        each env's ``step`` result, exactly what stepping it alone returns."""
        if any(np.shape(a) != (env.num_envs,) for env, a in zip(envs, actions, strict=True)):
            refuse_bad_actions(envs, actions)
        joined = np.concatenate(actions)  # every env's actions checked at once
        if joined.min() < 0 or joined.max() > 1:
            refuse_bad_actions(envs, actions)
        state = envs[0]._state if len(envs) == 1 else np.concatenate([env._state for env in envs])
        x, x_dot, theta, theta_dot = state.T
        force = np.where(joined == 1, FORCE_MAG, -FORCE_MAG)
        costheta, sintheta = np.cos(theta), np.sin(theta)
        temp = (force + POLEMASS_LENGTH * np.square(theta_dot) * sintheta) / TOTAL_MASS
        thetaacc = (GRAVITY * sintheta - costheta * temp) / (
            LENGTH * (4.0 / 3.0 - MASSPOLE * np.square(costheta) / TOTAL_MASS)
        )
        xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
        x, x_dot = x + TAU * x_dot, x_dot + TAU * xacc
        theta, theta_dot = theta + TAU * theta_dot, theta_dot + TAU * thetaacc
        state = np.stack((x, x_dot, theta, theta_dot), axis=1)
        terminated = (x < -X_THRESHOLD) | (x > X_THRESHOLD) | (theta < -THETA_THRESHOLD) | (theta > THETA_THRESHOLD)
        t = (envs[0]._t if len(envs) == 1 else np.concatenate([env._t for env in envs])) + 1
        limits = np.concatenate([np.full(env.num_envs, env.max_episode_steps) for env in envs])
        truncated = t >= limits
        obs, rewards, done = state.astype(np.float32), np.ones(len(t)), terminated | truncated
        starts = np.cumsum([0] + [env.num_envs for env in envs[:-1]])
        ended = np.logical_or.reduceat(done, starts) if done.any() else np.zeros(len(envs), dtype=bool)
        out = []
        for env, start, any_ended in zip(envs, starts, ended, strict=True):
            end = start + env.num_envs
            env._state, env._t = state[start:end], t[start:end]  # views: each env owns its slice
            infos = env._reset_ended(obs[start:end], done[start:end]) if any_ended else {}
            out.append((obs[start:end], rewards[start:end], terminated[start:end], truncated[start:end], infos))
        return out

    def _reset_ended(self, obs: np.ndarray, done: np.ndarray) -> dict[str, Any]:
        """Reset the copies whose episode ended (``done``: at least one), putting their first observations in ``obs``
        (in place); the step's infos: the ended copies' true last observations in ``final_obs``."""
        ended = np.flatnonzero(done)
        final = np.empty(self.num_envs, dtype=object)
        final[ended] = list(obs[ended])
        self._reset_copies(ended)
        obs[ended] = self._state[ended].astype(np.float32)
        return {"final_obs": final, "_final_obs": done}
