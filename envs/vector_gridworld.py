"""A batch of N GridWorlds stepped in one numpy call (gymnasium ``VectorEnv`` API)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from .dynamics import N_ACTIONS, Rewards
from .gridworld import build_world
from .layout import DEFAULT_LAYOUT


class GridWorldVectorEnv(VectorEnv):
    """``num_envs`` copies of ``GridWorld`` with the same arguments, autoreset in the same step.

    When a copy terminates or truncates it is reset at once; the returned observation is the
    new episode's first one and ``infos["final_obs"]`` / ``infos["_final_obs"]`` hold the last one.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(
        self,
        num_envs: int,
        layout: Sequence[str] = DEFAULT_LAYOUT,
        r_boundary: float = -1.0,
        r_forbidden: float = -1.0,
        r_target: float = 1.0,
        r_other: float = 0.0,
        slip: float = 0.0,
        episodic: bool = False,
        start: Sequence[int] | None = None,
        max_episode_steps: int | None = None,
        obs: str = "index",
        render_mode: str | None = None,
        layout_file: str | os.PathLike | None = None,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs} must be a positive integer")
        self.num_envs = int(num_envs)
        rewards = Rewards(r_boundary, r_forbidden, r_target, r_other)
        self.dynamics, self.single_observation_space, self._obs_table = build_world(
            layout, rewards, slip, episodic, start, max_episode_steps, obs, layout_file
        )
        self.layout = self.dynamics.layout
        self.episodic = bool(episodic)
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self.single_action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        nxt, rew = self.dynamics.tables
        self._next = nxt.ravel()
        self._reward = rew.ravel()
        self._slip = float(slip)
        self._is_target = np.zeros(self.layout.n_states, dtype=bool)
        if episodic:
            self._is_target[self.layout.target] = True
        self._starts = np.flatnonzero(~self._is_target)
        self._state = np.zeros(self.num_envs, dtype=np.int64)
        self._t = np.zeros(self.num_envs, dtype=np.int64)
        self._no_flags = np.zeros(self.num_envs, dtype=bool)

    def tabular_model(self):
        """The exact model of one copy (see ``GridWorld.tabular_model``)."""
        return self.dynamics.model

    def _obs(self, states: np.ndarray) -> np.ndarray:
        return states.copy() if self._obs_table is None else self._obs_table[states]

    def _start_states(self, n: int) -> np.ndarray:
        if self.layout.start is not None:
            return np.full(n, self.layout.start, dtype=np.int64)
        return self._starts[self.np_random.integers(len(self._starts), size=n)]

    def reset(self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None):
        if seed is not None and not isinstance(seed, int):
            seed = int(seed[0])
        super().reset(seed=seed)
        if options and "state" in options:
            self._state = np.broadcast_to(np.asarray(options["state"], dtype=np.int64), (self.num_envs,)).copy()
        else:
            self._state = self._start_states(self.num_envs)
        self._t[:] = 0
        return self._obs(self._state), {}

    def step(self, actions):
        actions = np.asarray(actions, dtype=np.int64)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},), got {actions.shape}")
        if actions.min() < 0 or actions.max() >= N_ACTIONS:
            raise ValueError(f"actions must be in 0..{N_ACTIONS - 1} (up, right, down, left, stay); got {actions}")
        if self._slip:
            slipped = self.np_random.random(self.num_envs) < self._slip
            shift = 1 + self.np_random.integers(N_ACTIONS - 1, size=self.num_envs)
            actions = np.where(slipped, (actions + shift) % N_ACTIONS, actions)
        idx = self._state * N_ACTIONS + actions
        states = self._next[idx]
        rewards = self._reward[idx]
        terminated = self._is_target[states] if self.episodic else self._no_flags.copy()
        if self.max_episode_steps is not None:
            self._t += 1
            truncated = self._t >= self.max_episode_steps
        else:
            truncated = self._no_flags.copy()
        infos: dict[str, Any] = {}
        done = terminated | truncated
        if done.any():
            infos["final_obs"] = self._obs(states)
            infos["_final_obs"] = done
            states[done] = self._start_states(int(done.sum()))
            self._t[done] = 0
        self._state = states
        return self._obs(states), rewards, terminated, truncated, infos
