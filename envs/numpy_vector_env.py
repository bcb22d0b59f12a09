"""The base of rlzoo's numpy batch envs: N copies of a classic-control env stepped in one array computation.

gymnasium's own batch versions (``CartPoleVectorEnv``, …) draw every copy's resets from one generator and reset in
the step after the end (next-step autoreset), so their episodes differ from a ``SyncVectorEnv``'s. Ours keep what
rlzoo's rollouts assume and what a single run's numbers depend on: copy i is seeded ``seed + i`` and draws its resets
from its own generator, episodes reset in the step that ends them (``infos["final_obs"]`` holds the last observation),
and the dynamics are the gymnasium env's own arithmetic, operation for operation, in float64 — so a run gets the same
episodes from either, without ``SyncVectorEnv``'s per-copy Python (≈ 25 µs a step, wrappers included).

A subclass gives the spaces, ``initial_state`` (a reset from a copy's generator), ``dynamics`` (a step of stacked
states) and ``observe`` (states → observations), and checks actions in ``refuse_bad_actions``. ``step_together``
steps several batch envs of one class as one computation (a seed batch's envs: ``rlzoo.envs.step_vector_envs``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space


class NumpyVectorEnv(VectorEnv):
    """``num_envs`` copies of one env with same-step autoreset, truncated at ``max_episode_steps``; copy i's resets come
    from its own generator (module docstring)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP}
    state_size: ClassVar[int]  # numbers in one copy's state

    def __init__(self, num_envs: int, max_episode_steps: int, observation_space: spaces.Box,
                 action_space: spaces.Space) -> None:  # fmt: skip
        if num_envs < 1:
            raise ValueError(f"num_envs={num_envs} must be a positive integer")
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps={max_episode_steps} must be a positive integer")
        self.num_envs, self.max_episode_steps = int(num_envs), int(max_episode_steps)
        self.single_observation_space, self.single_action_space = observation_space, action_space
        self.observation_space = batch_space(observation_space, self.num_envs)
        self.action_space = batch_space(action_space, self.num_envs)
        self.render_mode = None
        self._generators = [seeding.np_random(None)[0] for _ in range(self.num_envs)]
        self._state = np.zeros((self.num_envs, self.state_size))
        self._t = np.zeros(self.num_envs, dtype=np.int64)

    # ---- what a subclass supplies -------------------------------------------------------
    def initial_state(self, generator: np.random.Generator) -> np.ndarray:
        """A copy's state after a reset, drawn from its ``generator`` as the gymnasium env's ``reset`` draws it."""
        raise NotImplementedError

    def dynamics(self, state: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One step of stacked states (N, state_size) under ``actions``: (next states, rewards, terminated). Envs
        stepped together use the first's (``step_together`` checks they share its parameters)."""
        raise NotImplementedError

    def observe(self, state: np.ndarray) -> np.ndarray:
        """The observations (N, …) of stacked states."""
        raise NotImplementedError

    @classmethod
    def refuse_bad_actions(cls, envs: Sequence[NumpyVectorEnv], actions: Sequence[np.ndarray]) -> np.ndarray:
        """Every env's actions joined into one array; ``ValueError`` naming the first env's whose are not allowed."""
        raise NotImplementedError

    def parameters(self) -> dict[str, float]:
        """The env's physical parameters (envs stepped together must share them; default: none)."""
        return {}

    @classmethod
    def refuse_mixed_parameters(cls, envs: Sequence[NumpyVectorEnv]) -> None:
        """``ValueError`` unless ``envs`` share their ``parameters`` (one ``dynamics`` steps them all)."""
        kinds = {tuple(env.parameters().items()) for env in envs}
        if len(kinds) > 1:
            raise ValueError(f"{cls.__name__}s stepped together must share their parameters, not {sorted(kinds)}")

    # ---- the vector env -----------------------------------------------------------------
    def _reset_copies(self, copies: np.ndarray) -> None:
        for i in copies:
            self._state[i] = self.initial_state(self._generators[i])
        self._t[copies] = 0

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else list(seed)
            self._generators = [seeding.np_random(s)[0] for s in seeds]
        self._reset_copies(np.arange(self.num_envs))
        return self.observe(self._state), {}

    def step(self, actions):
        return self.step_together([self], [actions])[0]

    @classmethod
    def step_together(cls, envs: Sequence[NumpyVectorEnv], actions: Sequence[np.ndarray]) -> list[tuple]:
        """Step several batch envs of this class with their ``actions`` as one array computation: each env's ``step``
        result, exactly what stepping it alone returns."""
        joined = cls.refuse_bad_actions(envs, actions)
        if len(envs) > 1:
            cls.refuse_mixed_parameters(envs)
        state = envs[0]._state if len(envs) == 1 else np.concatenate([env._state for env in envs])
        state, rewards, terminated = envs[0].dynamics(state, joined)
        t = (envs[0]._t if len(envs) == 1 else np.concatenate([env._t for env in envs])) + 1
        limits = np.concatenate([np.full(env.num_envs, env.max_episode_steps) for env in envs])
        truncated = t >= limits
        obs, done = envs[0].observe(state), terminated | truncated
        starts = np.cumsum([0] + [env.num_envs for env in envs[:-1]])
        ended = np.logical_or.reduceat(done, starts) if done.any() else np.zeros(len(envs), dtype=bool)
        out = []
        for env, start, any_ended in zip(envs, starts, ended, strict=True):
            end = start + env.num_envs
            env._state[...], env._t[...] = state[start:end], t[start:end]  # in place: a joined env's views stay
            infos = env._reset_ended(obs[start:end], done[start:end]) if any_ended else {}
            out.append((obs[start:end], rewards[start:end], terminated[start:end], truncated[start:end], infos))
        return out

    @classmethod
    def joined(cls, envs: Sequence[NumpyVectorEnv]) -> NumpyVectorEnv:
        """One env of every copy of ``envs`` (this class, one set of parameters; each already reset) that shares
        their state: their state arrays become views of its own and their generators are its, so stepping it steps
        each of them exactly as ``step_together`` would, with no per-env work (a seed batch's lanes' envs)."""
        first = envs[0]
        if any(type(env) is not cls or env.max_episode_steps != first.max_episode_steps for env in envs):
            raise ValueError(f"only {cls.__name__}s with one time limit can be joined")
        cls.refuse_mixed_parameters(envs)
        joined = copy.copy(first)
        joined.num_envs = sum(env.num_envs for env in envs)
        joined.observation_space = batch_space(first.single_observation_space, joined.num_envs)
        joined.action_space = batch_space(first.single_action_space, joined.num_envs)
        joined._state = np.concatenate([env._state for env in envs])
        joined._t = np.concatenate([env._t for env in envs])
        joined._generators = [g for env in envs for g in env._generators]
        start = 0
        for env in envs:
            env._state, env._t = joined._state[start : start + env.num_envs], joined._t[start : start + env.num_envs]
            start += env.num_envs
        return joined

    def _reset_ended(self, obs: np.ndarray, done: np.ndarray) -> dict[str, Any]:
        """Reset the copies whose episode ended (``done``: at least one), putting their first observations in ``obs``
        (in place); the step's infos: the ended copies' true last observations in ``final_obs``."""
        ended = np.flatnonzero(done)
        final = np.empty(self.num_envs, dtype=object)
        final[ended] = list(obs[ended])
        self._reset_copies(ended)
        obs[ended] = self.observe(self._state[ended])
        return {"final_obs": final, "_final_obs": done}


def common_batch_kind(envs: Sequence[Any]) -> type[NumpyVectorEnv] | None:
    """The class of ``envs`` when they are all numpy batch envs of one class (so they can step together or be joined),
    else None."""
    kind = type(envs[0]) if envs else None
    if kind is not None and issubclass(kind, NumpyVectorEnv) and all(type(env) is kind for env in envs):
        return kind
    return None
