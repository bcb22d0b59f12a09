"""The replay-based off-policy loop shared by DQN, DDPG, TD3 and SAC.

Each env step: the behaviour policy picks an action (``behaviour_actions``), the env steps, the
transition goes into the replay buffer with the true next observation (so a truncated episode
bootstraps and a terminated one does not); after ``learning_starts`` steps, every ``train_freq``
steps run ``gradient_steps`` calls of ``train_step``. A subclass supplies the networks,
``behaviour_actions`` and ``train_step``, which records its scalars in ``stats`` (what the trainer logs).

The agent acts in a one-copy vector env (``rlzoo.envs.acting_env``): a single run in its env itself; a seed batch's
lane in the numpy batch form of CartPole and Pendulum (the same episodes), which the batch joins into one env of K
copies (``NumpyVectorEnv.joined``), so that it steps, stores, counts and logs every seed's step at once.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from rlzoo.agents.base import Agent
from rlzoo.buffers import ReplayBuffer
from rlzoo.envs import acting_env, common_batch_kind
from rlzoo.logging import RunLogger
from rlzoo.rollouts import track_episodes
from rlzoo.trainer import is_guarded


class OffPolicyAgent(Agent):
    """An agent that learns from a replay buffer while acting in one env (see the module docstring).

    Its config has ``learning_starts``, ``train_freq``, ``gradient_steps`` and ``log_every``.
    """

    buffer: ReplayBuffer
    live_parts = ("vec_env", "_obs", "_returns", "_lengths")

    def setup(self) -> None:
        self.vec_env: gym.vector.VectorEnv | None = None  # one copy of env, made at the first ``begin``
        self._obs: np.ndarray | None = None  # its current observation
        self._returns, self._lengths = np.zeros(1), np.zeros(1, dtype=np.int64)  # the running episode's
        self.stats: dict[str, float] = {}  # the scalars of the latest training step (empty before the first)
        self.n_updates = 0

    # ---- what a subclass supplies -------------------------------------------------------
    def behaviour_actions(self, obs: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(actions to store in the buffer, actions to send to the envs), each (K, …), at env step ``step`` for every
        lane's observation (``obs``: (K, obs_dim); K = 1 but for a seed batch's stacked agent)."""
        raise NotImplementedError

    def train_step(self) -> float:
        """One gradient step on a replay minibatch, its scalars into ``stats`` (a loss that is not finite ends the
        ``advance``, so the trainer's guard names that step); returns its main loss."""
        raise NotImplementedError

    def after_env_step(self, step: int) -> None:
        """Called after every env step (e.g. DQN's periodic target update)."""

    def on_episode_end(self) -> None:
        """Called when an episode ends (e.g. to reset correlated exploration noise)."""

    def step_lanes(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        """Step every lane's env with its action (``actions``: (K, …)): (next observations, rewards, terminated,
        truncated, true next observations), each (K, …); an ended episode's env has already started the next one,
        its true last observation is in the last array. One env step for a single run and for a seed batch whose
        lanes' envs are joined (``begin_stacked``), else each lane's env in turn."""
        env = self.vec_env if self.n_seeds == 1 else self.joined_env
        if env is not None:
            next_obs, rewards, terminated, truncated, infos = env.step(actions)
            ended = np.flatnonzero(infos["_final_obs"]) if "final_obs" in infos else ()
            finals = infos.get("final_obs")
        else:
            outcomes = [lane.vec_env.step(a[None]) for lane, a in zip(self.lanes, actions, strict=True)]
            next_obs, rewards, terminated, truncated = (np.concatenate([o[i] for o in outcomes]) for i in range(4))
            ended = [k for k, o in enumerate(outcomes) if "final_obs" in o[4]]
            finals = {k: outcomes[k][4]["final_obs"][0] for k in ended}
        next_obs = true_next = np.asarray(next_obs, dtype=np.float32)
        if len(ended):
            true_next = next_obs.copy()
            for k in ended:
                true_next[k] = finals[k]
        return next_obs, rewards, terminated, truncated, true_next

    # ---- the loop -----------------------------------------------------------------------
    def begin(self, total_steps: int, logger: RunLogger) -> None:
        super().begin(total_steps, logger)
        if self._obs is None:  # a fresh start, or a resume that could not restore the env (env_seed: not episode 1)
            if self.vec_env is None:
                self.vec_env = acting_env(self.env, batch_lane=self.in_seed_batch)
            self._obs = np.asarray(self.vec_env.reset(seed=self.env_seed())[0][0], dtype=np.float32)
            self._returns[:], self._lengths[:] = 0.0, 0

    def advance(self, n_steps: int, logger: RunLogger) -> dict[str, float]:
        """``n_steps`` env steps, each stored and followed by training when due; returns early after a training
        phase whose loss is not finite (so the trainer's guard names that step). A seed batch's stacked agent steps
        every lane's env, buffer and episode (``logger``: the lanes' loggers) and trains all lanes at once."""
        cfg, lanes = self.config, self.lanes
        loggers = logger if self.n_seeds > 1 else [logger]
        obs, t = np.stack([lane._obs for lane in lanes]), self.num_timesteps
        returns = np.concatenate([lane._returns for lane in lanes])  # the running episodes'
        lengths = np.concatenate([lane._lengths for lane in lanes])
        end = t + n_steps
        while t < end:
            stored, actions = self.behaviour_actions(obs, t)
            t += 1
            obs_next, rewards, terminated, truncated, true_next = self.step_lanes(actions)
            self.buffer.add(obs, stored, rewards, true_next, terminated, truncated)
            for (k,), episode_return, length in track_episodes(returns, lengths, rewards, terminated | truncated):
                loggers[k].episode(episode_return, length, t)
                lanes[k].on_episode_end()
            obs = obs_next
            if t > cfg.learning_starts and t % cfg.train_freq == 0:
                for _ in range(cfg.gradient_steps):
                    self.train_step()
                if any(is_guarded(key) and not np.isfinite(value).all() for key, value in self.stats.items()):
                    break
            self.after_env_step(t)
        for k, lane in enumerate(lanes):
            lane._obs = obs[k].copy()
            lane._returns, lane._lengths = returns[k : k + 1].copy(), lengths[k : k + 1].copy()
        self.num_timesteps = t
        return dict(self.stats)

    # ---- seed batches (rlzoo.seed_batch) -----------------------------------------------------
    def begin_stacked(self, total_steps: int) -> None:
        """Join the lanes' envs into one (``NumpyVectorEnv.joined``: their states become views of its own) where they
        are numpy batch envs of one kind; else ``step_lanes`` steps each lane's env in turn."""
        super().begin_stacked(total_steps)
        envs = [lane.vec_env for lane in self.lanes]
        kind = common_batch_kind(envs)
        self.joined_env = kind.joined(envs) if kind is not None else None

    def sync_lane(self, lane: Agent, k: int) -> None:
        super().sync_lane(lane, k)
        lane.n_updates = self.n_updates

    # ---- persistence --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "n_updates": self.n_updates, "buffer": self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.n_updates = int(state["n_updates"])
        self.state_inexact = self.buffer.load_state_dict(state["buffer"])
