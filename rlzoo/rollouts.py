"""Rollout collection for on-policy agents: ``n_steps`` steps of ``n_envs`` envs into a ``RolloutBuffer``.

The collector owns the vector env, observation normalisation and reward scaling (running statistics), the
returns and lengths of running episodes, and the bootstrap of episodes cut by a time limit from their true
final observation (``infos["final_obs"]``), so that truncation is not mistaken for termination. ``SeedBatchRollouts``
steps the collectors of a seed batch's K seeds together, so one batched network acts for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from rlzoo.buffers import RolloutBuffer, fill_advantages, stacked_storage
from rlzoo.envs import step_vector_envs, vectorize
from rlzoo.logging import RunLogger
from rlzoo.normalization import ObservationNormalizer, RewardScaler

# (observations as the networks see them) -> (actions, their log-probabilities, the critic's values)
SelectActions = Callable[[torch.Tensor], tuple[np.ndarray, np.ndarray, np.ndarray]]
# (observations, last: after the rollout rather than a truncated episode's final one) -> values
BootstrapValues = Callable[[torch.Tensor, bool], np.ndarray]


def track_episodes(returns: np.ndarray, lengths: np.ndarray, rewards: np.ndarray, done: np.ndarray
                   ) -> list[tuple[tuple[int, ...], float, int]]:  # fmt: skip
    """Add one step's ``rewards`` to the running episodes' ``returns`` and ``lengths`` (in place, any shape: (n_envs,)
    or a seed batch's (K, n_envs)); the episodes that ended (``done``) as (index tuple, return, length), in index
    order, and restart them at 0."""
    returns += rewards
    lengths += 1
    if not np.count_nonzero(done):  # (faster than done.any() on the few envs of a step)
        return []
    finished = [(index, float(returns[index]), int(lengths[index])) for index in map(tuple, np.argwhere(done))]
    returns[done] = 0.0
    lengths[done] = 0
    return finished


class RolloutCollector:
    """Fills a rollout buffer from ``n_envs`` copies of ``env`` (made lazily, on the first ``reset``)."""

    # what carries a run across rollouts besides the normalisers' statistics (``state_dict``): the envs mid-episode,
    # their observations and the running episodes' returns and lengths (an agent's ``live_parts``)
    live_parts: ClassVar[tuple[str, ...]] = ("vec_env", "obs", "_returns", "_lengths")

    def __init__(self, env: gym.Env, n_envs: int, n_steps: int, vector_mode: str, *, normalize_obs: bool,
                 normalize_reward: bool, gamma: float, device: torch.device) -> None:  # fmt: skip
        self.env, self.n_envs, self.n_steps, self.vector_mode = env, n_envs, n_steps, vector_mode
        self.device = device  # where the networks that choose the actions live
        obs_space, act_space = env.observation_space, env.action_space
        box_obs = isinstance(obs_space, gym.spaces.Box)
        self.obs_norm = ObservationNormalizer(obs_space.shape) if normalize_obs and box_obs else None
        self.reward_scaler = RewardScaler(n_envs, gamma) if normalize_reward else None
        discrete = isinstance(act_space, gym.spaces.Discrete)
        self.buffer = RolloutBuffer(n_steps, n_envs, obs_space.shape, () if discrete else act_space.shape,
                                    obs_dtype=np.int64 if isinstance(obs_space, gym.spaces.Discrete) else np.float32,
                                    action_dtype=np.int64 if discrete else np.float32)  # fmt: skip
        self.to_env: Callable[[np.ndarray], np.ndarray] = (
            (lambda a: a) if discrete else (lambda a: np.clip(a, act_space.low, act_space.high))
        )  # Gaussian samples are clipped to the Box bounds
        self.vec_env: gym.vector.VectorEnv | None = None
        self.obs: np.ndarray | None = None  # the envs' current observations (None: reset before collecting)
        self._returns = np.zeros(n_envs)
        self._lengths = np.zeros(n_envs, dtype=np.int64)

    def obs_tensor(self, obs: np.ndarray, update_stats: bool = False) -> torch.Tensor:
        """Observations as the networks see them (normalised if configured), on the host."""
        obs = np.asarray(obs)
        if self.obs_norm is not None:
            obs = self.obs_norm(obs, update=update_stats)
        return torch.from_numpy(obs)

    def reset(self, seed: int | None) -> None:
        """Start every env afresh (on a new run, or a resume that could not restore the envs)."""
        if self.vec_env is None:
            self.vec_env = vectorize(self.env, self.n_envs, self.vector_mode)
        self.obs = self.vec_env.reset(seed=seed)[0]
        self._returns[:], self._lengths[:] = 0.0, 0

    def collect(self, select_actions: SelectActions, bootstrap_values: BootstrapValues, logger: RunLogger,
                step: int, n_steps: int) -> tuple[np.ndarray, int]:  # fmt: skip
        """Fill the buffer with ``n_steps`` (at most its length) steps of every env from env step ``step``; returns
        the values after the last step and the env step reached."""
        self.buffer.reset()
        with torch.inference_mode():
            for _ in range(min(n_steps, self.buffer.n_steps)):
                obs_t = self.observe()
                actions, log_probs, values = select_actions(obs_t.to(self.device))
                step, cut, final = self.record(obs_t, actions, log_probs, values, logger, step)
                if len(cut):
                    self.buffer.set_final_values(cut, bootstrap_values(final.to(self.device), False))
            return bootstrap_values(self.obs_tensor(self.obs).to(self.device), True), step

    def observe(self) -> torch.Tensor:
        """The envs' current observations as the networks see them (updating the normaliser's statistics)."""
        return self.obs_tensor(self.obs, update_stats=True)

    def record(self, obs_t: torch.Tensor, actions: np.ndarray, log_probs: np.ndarray, values: np.ndarray,
               logger: RunLogger, step: int) -> tuple[int, np.ndarray, torch.Tensor | None]:  # fmt: skip
        """Step the envs with ``actions`` chosen in ``obs_t`` (``observe``) and store the transition; returns the env
        step reached, the envs a time limit cut (``truncated`` and not ``terminated``) and their true final
        observations as the networks see them (None when none was cut), whose values the caller bootstraps from."""
        obs, rewards, terminated, truncated, infos = self.vec_env.step(self.to_env(actions))
        step += self.vec_env.num_envs
        done = terminated | truncated
        for _, episode_return, length in track_episodes(self._returns, self._lengths, rewards, done):
            logger.episode(episode_return, length, step)
        if self.reward_scaler is not None:
            rewards = self.reward_scaler(rewards, done)
        self.buffer.add(obs_t.numpy(), actions, log_probs, values, rewards, terminated, truncated)
        self.obs = obs
        cut = np.flatnonzero(truncated & ~terminated)
        return step, cut, self.obs_tensor(np.stack(infos["final_obs"][cut])) if len(cut) else None

    def state_dict(self) -> dict[str, Any]:
        """The normalisers' running statistics."""
        state = {}
        if self.obs_norm is not None:
            state["obs_norm"] = self.obs_norm.stats.state_dict()
        if self.reward_scaler is not None:
            state["reward_scaler"] = self.reward_scaler.stats.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.obs_norm is not None:
            self.obs_norm.stats.load_state_dict(state["obs_norm"])
        if self.reward_scaler is not None:
            self.reward_scaler.stats.load_state_dict(state["reward_scaler"])


class SeedBatchBuffer:
    """The rollout buffers of a seed batch's K collectors seen as one. Their arrays become views of one stacked
    storage, (K, n_steps, n_envs, …) per array, so that ``add`` stores a step of every seed at once and ``flat`` is a
    reshape; advantages are computed per seed from its own last values."""

    def __init__(self, buffers: Sequence[RolloutBuffer]) -> None:
        self.buffers = list(buffers)
        self.n_steps = self.buffers[0].n_steps
        self.storage: dict[str, np.ndarray] = stacked_storage(self.buffers, RolloutBuffer.arrays)

    def reset(self) -> None:
        for buffer in self.buffers:
            buffer.reset()

    def add(self, *step: np.ndarray) -> None:
        """``RolloutBuffer.add`` for every seed: each of its arguments stacked (K, n_envs, …)."""
        if self.buffers[0].full:
            raise ValueError(f"the rollout buffers hold {self.n_steps} steps already: call reset() first")
        t = self.buffers[0].t
        for name, value in zip(RolloutBuffer.step_fields, step, strict=True):
            self.storage[name][:, t] = value
        self.storage["final_values"][:, t] = 0.0
        for buffer in self.buffers:
            buffer.t = t + 1

    def flat(self, name: str, steps: int | None = None) -> np.ndarray:
        """``RolloutBuffer.flat`` of every seed, stacked: (K, steps · n_envs, …)."""
        a = self.storage[name][:, : self.buffers[0].t if steps is None else steps]
        return a.reshape(len(self.buffers), -1, *a.shape[3:])

    def compute_advantages(self, last_values: np.ndarray, gamma: float, gae_lambda: float) -> None:
        """``RolloutBuffer.compute_advantages`` of every seed at once, each from its own ``last_values[k]``."""
        n = self.buffers[0].t
        time_first = {name: array[:, :n].swapaxes(0, 1) for name, array in self.storage.items()}  # (n, K, n_envs)
        fill_advantages(time_first, last_values, gamma, gae_lambda)


class SeedBatchRollouts:
    """The K seeds' own collectors (``RolloutCollector``: vector env, normalisers, buffer, episode counters, each
    seed's exactly as a single run of it has) stepped together: their observations stacked (K, n_envs, …) so that
    one batched network chooses every seed's actions, their envs stepped as one where they can be
    (``step_vector_envs``), and each step's episode counters and buffer writes made for every seed at once. Each
    seed's episodes go to its own logger."""

    def __init__(self, collectors: Sequence[RolloutCollector], device: torch.device) -> None:
        self.collectors, self.device = list(collectors), device
        self.buffer = SeedBatchBuffer([c.buffer for c in self.collectors])

    def collect(self, select_actions: SelectActions, bootstrap_values: BootstrapValues,
                loggers: Sequence[RunLogger], step: int, n_steps: int) -> tuple[np.ndarray, int]:  # fmt: skip
        """``RolloutCollector.collect`` for every seed at once (``loggers``: one per seed); values are (K, n_envs)."""
        collectors, buffer = self.collectors, self.buffer
        buffer.reset()
        returns = np.stack([c._returns for c in collectors])  # the running episodes, (K, n_envs)
        lengths = np.stack([c._lengths for c in collectors])
        scales_rewards = collectors[0].reward_scaler is not None
        with torch.inference_mode():
            for _ in range(min(n_steps, buffer.n_steps)):
                obs = torch.stack([c.observe() for c in collectors])
                actions, log_probs, values = select_actions(obs.to(self.device))
                env_actions = [c.to_env(a) for c, a in zip(collectors, actions, strict=True)]
                outcomes = step_vector_envs([c.vec_env for c in collectors], env_actions)
                rewards, terminated, truncated = (np.stack([outcome[i] for outcome in outcomes]) for i in (1, 2, 3))
                step += collectors[0].vec_env.num_envs  # every seed's envs step together
                done = terminated | truncated
                for (k, _), episode_return, length in track_episodes(returns, lengths, rewards, done):
                    loggers[k].episode(episode_return, length, step)
                if scales_rewards:
                    scaled = [c.reward_scaler(r, d) for c, r, d in zip(collectors, rewards, done, strict=True)]
                    rewards = np.stack(scaled)
                buffer.add(obs.numpy(), actions, log_probs, values, rewards, terminated, truncated)
                for c, outcome in zip(collectors, outcomes, strict=True):
                    c.obs = outcome[0]
                cut = truncated & ~terminated
                if cut.any():  # one batched bootstrap for every seed's cut envs
                    final, cut_envs = torch.zeros_like(obs), {}
                    for k in np.flatnonzero(cut.any(axis=1)):
                        cut_envs[k] = envs = np.flatnonzero(cut[k])
                        final[k, envs] = collectors[k].obs_tensor(np.stack(outcomes[k][4]["final_obs"][envs]))
                    final_values = bootstrap_values(final.to(self.device), False)
                    for k, envs in cut_envs.items():
                        collectors[k].buffer.set_final_values(envs, final_values[k][envs])
            for c, r, n in zip(collectors, returns, lengths, strict=True):
                c._returns[:], c._lengths[:] = r, n
            last = torch.stack([c.obs_tensor(c.obs) for c in collectors])
            return bootstrap_values(last.to(self.device), True), step
