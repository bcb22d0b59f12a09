"""The replay-based off-policy loop shared by DQN, DDPG and TD3.

Each env step: the behaviour policy picks an action (``behaviour_action``), the env steps, the
transition goes into the replay buffer with the true next observation (so a truncated episode
bootstraps and a terminated one does not); after ``learning_starts`` steps, every ``train_freq``
steps run ``gradient_steps`` calls of ``train_step``. Losses, ground truth and checkpoints follow every
``log_every`` steps. A subclass supplies the networks, ``behaviour_action``, ``train_step`` and ``log``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from rlzoo.agents.base import Agent, NumericalError
from rlzoo.buffers import ReplayBuffer
from rlzoo.logging import RunLogger


class OffPolicyAgent(Agent):
    """An agent that learns from a replay buffer while acting in one env (see the module docstring).

    Its config has ``learning_starts``, ``train_freq``, ``gradient_steps`` and ``log_every``.
    """

    loss_name: ClassVar[str] = "loss"  # the tag of the loss ``train_step`` returns (named when it turns NaN)
    buffer: ReplayBuffer

    def __init__(self, env, config: Any = None, *, seed: int | None = None, **hyperparams: Any) -> None:
        super().__init__(env, config, seed=seed, **hyperparams)
        self._obs: np.ndarray | None = None
        self._episode = (0.0, 0)
        self._last_loss = float("nan")
        self.n_updates = 0

    # ---- what a subclass supplies -------------------------------------------------------
    def behaviour_action(self, obs: np.ndarray, step: int, total_steps: int) -> tuple[Any, Any]:
        """(action to store in the buffer, action to send to the env) at env step ``step``."""
        raise NotImplementedError

    def train_step(self) -> float:
        """One gradient step on a replay minibatch; returns the loss named ``loss_name``."""
        raise NotImplementedError

    def after_env_step(self, step: int) -> None:
        """Called after every env step (e.g. DQN's periodic target update)."""

    def on_episode_end(self) -> None:
        """Called when an episode ends (e.g. to reset correlated exploration noise)."""

    def log(self, logger: RunLogger, step: int) -> None:
        """Losses and ground truth at a log point."""

    # ---- the loop -----------------------------------------------------------------------
    def learn(self, total_steps: int, logger: RunLogger | None = None, checkpointer: Any = None) -> OffPolicyAgent:
        logger = logger or RunLogger()
        cfg, env = self.config, self.env
        if self._obs is None:
            self._obs = np.asarray(env.reset(seed=self.seed)[0], dtype=np.float32)
            env.action_space.seed(self.seed)
        if self.num_timesteps == 0:
            self.log(logger, 0)
        obs, (ep_return, ep_length), t = self._obs, self._episode, self.num_timesteps
        while t < total_steps:
            stored, action = self.behaviour_action(obs, t, total_steps)
            next_obs, reward, term, trunc, _ = env.step(action)
            next_obs = np.asarray(next_obs, dtype=np.float32)
            self.buffer.add(obs[None], (stored,), (reward,), next_obs[None], (term,), (trunc,))
            t += 1
            ep_return += float(reward)
            ep_length += 1
            if term or trunc:
                logger.episode(ep_return, ep_length, t)
                ep_return, ep_length = 0.0, 0
                next_obs = np.asarray(env.reset()[0], dtype=np.float32)
                self.on_episode_end()
            obs = next_obs
            if t > cfg.learning_starts and t % cfg.train_freq == 0:
                for _ in range(cfg.gradient_steps):
                    self._last_loss = self.train_step()
                if not np.isfinite(self._last_loss):
                    raise NumericalError(f"losses/{self.loss_name} is {self._last_loss} at step {t}")
            self.after_env_step(t)
            if t % cfg.log_every == 0 or t == total_steps:
                self.num_timesteps, self._obs, self._episode = t, obs, (ep_return, ep_length)
                self.log(logger, t)
                logger.step(t)
                if checkpointer is not None:
                    checkpointer.maybe_save(self, t)
        self.num_timesteps, self._obs, self._episode = t, obs, (ep_return, ep_length)
        return self

    # ---- persistence --------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "n_updates": self.n_updates, "buffer": self.buffer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.n_updates = int(state["n_updates"])
        self.buffer.load_state_dict(state["buffer"])
