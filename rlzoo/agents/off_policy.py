"""The replay-based off-policy loop shared by DQN, DDPG and TD3.

Each env step: the behaviour policy picks an action (``behaviour_action``), the env steps, the
transition goes into the replay buffer with the true next observation (so a truncated episode
bootstraps and a terminated one does not); after ``learning_starts`` steps, every ``train_freq``
steps run ``gradient_steps`` calls of ``train_step``. A subclass supplies the networks,
``behaviour_action`` and ``train_step``, which records its scalars in ``stats`` (what the trainer logs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlzoo.agents.base import Agent
from rlzoo.buffers import ReplayBuffer
from rlzoo.logging import RunLogger
from rlzoo.trainer import is_guarded


class OffPolicyAgent(Agent):
    """An agent that learns from a replay buffer while acting in one env (see the module docstring).

    Its config has ``learning_starts``, ``train_freq``, ``gradient_steps`` and ``log_every``.
    """

    buffer: ReplayBuffer
    live_parts = ("env", "_obs", "_episode")

    def setup(self) -> None:
        self._obs: np.ndarray | None = None
        self._episode = (0.0, 0)
        self.stats: dict[str, float] = {}  # the scalars of the latest training step (empty before the first)
        self.n_updates = 0

    # ---- what a subclass supplies -------------------------------------------------------
    def behaviour_action(self, obs: np.ndarray, step: int) -> tuple[Any, Any]:
        """(action to store in the buffer, action to send to the env) at env step ``step``."""
        raise NotImplementedError

    def behaviour_actions(self, obs: np.ndarray, step: int) -> tuple[list[Any], list[Any]]:
        """``behaviour_action`` for every lane's observation (``obs``: (K, obs_dim); K = 1 but for a seed batch's
        stacked agent, which a family that is ``seed_batchable`` supplies)."""
        stored, action = self.behaviour_action(obs[0], step)
        return [stored], [action]

    def train_step(self) -> float:
        """One gradient step on a replay minibatch, its scalars into ``stats`` (a loss that is not finite ends the
        ``advance``, so the trainer's guard names that step); returns its main loss."""
        raise NotImplementedError

    def after_env_step(self, step: int) -> None:
        """Called after every env step (e.g. DQN's periodic target update)."""

    def on_episode_end(self) -> None:
        """Called when an episode ends (e.g. to reset correlated exploration noise)."""

    # ---- the loop -----------------------------------------------------------------------
    def begin(self, total_steps: int, logger: RunLogger) -> None:
        super().begin(total_steps, logger)
        if self._obs is None:  # a fresh start, or a resume that could not restore the env (env_seed: not episode 1)
            seed = self.env_seed()
            self._obs = np.asarray(self.env.reset(seed=seed)[0], dtype=np.float32)
            self.env.action_space.seed(seed)

    def advance(self, n_steps: int, logger: RunLogger) -> dict[str, float]:
        """``n_steps`` env steps, each stored and followed by training when due; returns early after a training
        phase whose loss is not finite (so the trainer's guard names that step). A seed batch's stacked agent steps
        every lane's env, buffer and episode (``logger``: the lanes' loggers) and trains all lanes at once."""
        cfg, lanes = self.config, self.lanes
        loggers = logger if self.n_seeds > 1 else [logger]
        obs, t = np.stack([lane._obs for lane in lanes]), self.num_timesteps
        end = t + n_steps
        while t < end:
            stored, actions = self.behaviour_actions(obs, t)
            t += 1
            for k, lane in enumerate(lanes):
                next_obs, reward, term, trunc, _ = lane.env.step(actions[k])
                next_obs = np.asarray(next_obs, dtype=np.float32)
                lane.buffer.add(obs[k][None], (stored[k],), (reward,), next_obs[None], (term,), (trunc,))
                ep_return, ep_length = lane._episode
                lane._episode = (ep_return + float(reward), ep_length + 1)
                if term or trunc:
                    loggers[k].episode(*lane._episode, t)
                    lane._episode = (0.0, 0)
                    next_obs = np.asarray(lane.env.reset()[0], dtype=np.float32)
                    lane.on_episode_end()
                obs[k] = next_obs
            if t > cfg.learning_starts and t % cfg.train_freq == 0:
                for _ in range(cfg.gradient_steps):
                    self.train_step()
                if any(is_guarded(key) and not np.isfinite(value).all() for key, value in self.stats.items()):
                    break
            self.after_env_step(t)
        for k, lane in enumerate(lanes):
            lane._obs = obs[k].copy()
        self.num_timesteps = t
        return dict(self.stats)

    # ---- seed batches (rlzoo.seed_batch) -----------------------------------------------------
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
