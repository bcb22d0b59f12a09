"""The GridWorld environment of S. Zhao, *Mathematical Foundations of RL* (its rules: ARCHITECTURE.md,
"The GridWorld")."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .dynamics import N_ACTIONS, GridDynamics, Rewards, cached_dynamics
from .layout import DEFAULT_LAYOUT, Layout, LayoutError, read_layout_file
from .model import TabularModel
from .render import render_ansi, render_rgb

OBS_MODES = ("index", "onehot", "coords")


def observation_table(layout: Layout, obs: str) -> tuple[spaces.Space, np.ndarray | None]:
    """The observation space for ``obs`` mode and the (S, d) table of observations (None for index)."""
    S = layout.n_states
    if obs == "index":
        return spaces.Discrete(S), None
    if obs == "onehot":
        return spaces.Box(0.0, 1.0, (S,), np.float32), np.eye(S, dtype=np.float32)
    if obs == "coords":
        high = np.array([layout.n_rows - 1, layout.n_cols - 1], dtype=np.float32)
        table = np.stack(np.divmod(np.arange(S), layout.n_cols), axis=1).astype(np.float32)
        return spaces.Box(np.zeros(2, np.float32), high, (2,), np.float32), table
    raise ValueError(f"obs={obs!r} is not an observation mode: choose one of {', '.join(OBS_MODES)}")


def build_world(
    layout: Sequence[str],
    rewards: Rewards,
    slip: float,
    episodic: bool,
    start: Sequence[int] | None,
    max_episode_steps: int | None,
    obs: str,
    layout_file: str | os.PathLike | None = None,
) -> tuple[GridDynamics, spaces.Space, np.ndarray | None]:
    """Validate the arguments shared by ``GridWorld`` and its vector form; returns the dynamics (shared by the
    envs of one world: ``cached_dynamics``), the (single-copy) observation space and the observation table."""
    if max_episode_steps is not None and max_episode_steps < 1:
        raise ValueError(f"max_episode_steps={max_episode_steps} must be a positive integer or None")
    dynamics = cached_dynamics(world_layout(layout, start, layout_file), rewards, slip, episodic)
    space, table = observation_table(dynamics.layout, obs)
    return dynamics, space, table


def world_layout(
    layout: Sequence[str], start: Sequence[int] | None, layout_file: str | os.PathLike | None = None
) -> Layout:
    """The validated layout of ``layout``'s rows or, when ``layout_file`` is given (``layout`` then at its
    default), of the file's rows (one a line). A ``LayoutError`` about the file starts ``layout_file=<path>``."""
    if layout_file is None:
        return Layout.parse(layout, start)
    named = f"layout_file={str(layout_file)!r}"
    if isinstance(layout, str) or list(layout) != list(DEFAULT_LAYOUT):
        raise LayoutError(f"{named} and a layout other than the default are both given: give one of them")
    rows = read_layout_file(layout_file)
    try:
        return Layout.parse(rows, start)
    except LayoutError as err:
        if str(err).startswith("start"):
            raise
        raise LayoutError(f"{named}: {err}") from None


class GridWorld(gym.Env):
    """Grid world with forbidden cells and a target; exposes its exact model ``P, R``.

    ``layout`` is a list of ASCII rows; ``layout_file`` (instead of it) a text file with one row a line.
    Continuing by default (the target is not terminal). ``episodic=True`` terminates on
    reaching the target. ``max_episode_steps`` truncates episodes. ``reset(options={"state": s})``
    starts from a chosen state; otherwise from ``start`` or a uniformly random (non-terminal) cell.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
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
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} is not supported: choose ansi or rgb_array")
        rewards = Rewards(r_boundary, r_forbidden, r_target, r_other)
        self.dynamics, self.observation_space, self._obs_table = build_world(
            layout, rewards, slip, episodic, start, max_episode_steps, obs, layout_file
        )
        self.layout = self.dynamics.layout
        self.episodic = bool(episodic)
        self.max_episode_steps = max_episode_steps
        self.obs_mode = obs
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(N_ACTIONS)
        nxt, rew = self.dynamics.tables
        self._next = nxt.ravel().tolist()  # python lists: fastest scalar lookups in step()
        self._reward = rew.ravel().tolist()
        self._slip = float(slip)
        self._target = self.layout.target
        states = np.arange(self.layout.n_states, dtype=np.int64)
        self._starts = np.delete(states, self._target) if episodic else states  # a terminal target is no start
        self._state = 0
        self._t = 0

    # ---- model -------------------------------------------------------------------------
    def tabular_model(self) -> TabularModel:
        """The exact model in compact successor form (see ``TabularModel``)."""
        return self.dynamics.model

    def model(self) -> tuple[np.ndarray, np.ndarray]:
        """Dense ``(P, R)``: P[s, a, s'] (S, A, S) and expected reward R[s, a] (S, A); built once."""
        if not hasattr(self, "_dense"):
            self._dense = self.dynamics.model.dense()
        return self._dense

    @property
    def state(self) -> int:
        """The current state index ``row * n_cols + col``."""
        return self._state

    def observation_of(self, s: int | np.ndarray) -> Any:
        """The observation emitted in state(s) ``s`` under this env's ``obs`` mode."""
        return s if self._obs_table is None else self._obs_table[s].copy()

    # ---- gymnasium API -----------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if options and "state" in options:
            s = int(options["state"])
            if not 0 <= s < self.layout.n_states:
                raise ValueError(f"options['state']={s} is not a state: allowed 0..{self.layout.n_states - 1}")
        elif self.layout.start is not None:
            s = self.layout.start
        else:
            s = int(self._starts[self.np_random.integers(len(self._starts))])
        self._state, self._t = s, 0
        return self.observation_of(s), {}

    def step(self, action):
        a = int(action)
        if not 0 <= a < N_ACTIONS:
            raise ValueError(f"action {action!r} is not valid: allowed 0 up, 1 right, 2 down, 3 left, 4 stay")
        if self._slip and self.np_random.random() < self._slip:
            a = (a + 1 + int(self.np_random.integers(N_ACTIONS - 1))) % N_ACTIONS
        i = self._state * N_ACTIONS + a
        s = self._next[i]
        self._state = s
        self._t += 1
        terminated = self.episodic and s == self._target
        truncated = self.max_episode_steps is not None and self._t >= self.max_episode_steps
        obs = s if self._obs_table is None else self._obs_table[s].copy()
        return obs, self._reward[i], terminated, truncated, {}

    def render(self):
        if self.render_mode == "ansi":
            return render_ansi(self.layout, self._state)
        if self.render_mode == "rgb_array":
            return render_rgb(self.layout, self._state)
        return None
