"""Experience buffers: one episode's (s, a, r) with discounted returns; a replay ring buffer."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np


class EpisodeBuffer:
    """States, actions and rewards of one episode in order (``rewards[t]`` follows ``actions[t]``)."""

    def __init__(self) -> None:
        self.states: list[int] = []
        self.actions: list[int] = []
        self.rewards: list[float] = []

    def add(self, state: int, action: int, reward: float) -> None:
        self.states.append(state)
        self.actions.append(action)
        self.rewards.append(reward)

    def clear(self) -> None:
        self.states.clear()
        self.actions.clear()
        self.rewards.clear()

    def __len__(self) -> int:
        return len(self.rewards)

    def returns(self, gamma: float, bootstrap: float = 0.0) -> list[float]:
        """``G_t = r_t + γ G_{t+1}`` for every t, with ``G_T = bootstrap`` after the last step."""
        out = [0.0] * len(self.rewards)
        g = bootstrap
        for t in range(len(self.rewards) - 1, -1, -1):
            g = self.rewards[t] + gamma * g
            out[t] = g
        return out

    def first_visits(self) -> list[bool]:
        """``True`` where (s_t, a_t) occurs for the first time in the episode."""
        seen: set[tuple[int, int]] = set()
        out = []
        for pair in zip(self.states, self.actions, strict=True):
            out.append(pair not in seen)
            seen.add(pair)
        return out


@dataclass
class TransitionBatch:
    """A sampled minibatch; ``discounts`` = γ^k for a k-step return, 0 where the episode terminated."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    discounts: np.ndarray


class ReplayBuffer:
    """Preallocated numpy ring buffer of (k-step) transitions with uniform sampling.

    ``add`` takes one step of ``n_envs`` envs. ``next_obs`` must be the true next observation —
    on truncation the final observation of the episode, not the first of the next — so that a
    truncated transition bootstraps (``discount = γ^k``) while a terminated one does not
    (``discount = 0``). With ``n_step > 1`` each stored transition carries the return
    ``Σ_{i<k} γ^i r_{t+i}`` to ``s_{t+k}``, k = n_step or fewer at an episode's end.
    Memory is allocated once: it stays flat at ``capacity``.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        action_shape: tuple[int, ...] = (),
        *,
        obs_dtype: Any = np.float32,
        action_dtype: Any = np.int64,
        n_envs: int = 1,
        n_step: int = 1,
        gamma: float = 0.99,
    ) -> None:
        if capacity < 1 or n_step < 1 or n_envs < 1:
            raise ValueError(f"capacity={capacity}, n_step={n_step}, n_envs={n_envs} must all be positive")
        self.capacity, self.n_envs, self.n_step, self.gamma = int(capacity), int(n_envs), int(n_step), float(gamma)
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros((capacity, *action_shape), dtype=action_dtype)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.discounts = np.zeros(capacity, dtype=np.float32)
        self.pos = 0
        self.size = 0
        self._pending: list[deque] = [deque() for _ in range(self.n_envs)]

    def __len__(self) -> int:
        return self.size

    def _store(self, obs, action, reward: float, next_obs, discount: float) -> None:
        i = self.pos
        self.obs[i] = obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_obs[i] = next_obs
        self.discounts[i] = discount
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def _emit_oldest(self, pending: deque, next_obs, terminated: bool) -> None:
        ret, k = 0.0, len(pending)
        for j, (_, _, r) in enumerate(pending):
            ret += self.gamma**j * r
        obs, action, _ = pending.popleft()
        self._store(obs, action, ret, next_obs, 0.0 if terminated else self.gamma**k)

    def add(self, obs, actions, rewards, next_obs, terminated, truncated) -> None:
        """Add one step of every env (arrays with a leading ``n_envs`` axis)."""
        if self.n_step == 1:
            for e in range(self.n_envs):
                self._store(obs[e], actions[e], rewards[e], next_obs[e], 0.0 if terminated[e] else self.gamma)
            return
        for e in range(self.n_envs):
            pending = self._pending[e]
            pending.append((np.array(obs[e]), np.array(actions[e]), float(rewards[e])))
            if len(pending) == self.n_step:
                self._emit_oldest(pending, next_obs[e], bool(terminated[e]))
            if terminated[e] or truncated[e]:
                while pending:
                    self._emit_oldest(pending, next_obs[e], bool(terminated[e]))

    def sample(self, batch_size: int, rng: np.random.Generator) -> TransitionBatch:
        """A uniform minibatch of stored transitions (with replacement)."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=batch_size)
        return TransitionBatch(self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx],
                               self.discounts[idx])  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        n = self.size
        return {"obs": self.obs[:n], "next_obs": self.next_obs[:n],
                "actions": self.actions[:n], "rewards": self.rewards[:n], "discounts": self.discounts[:n],
                "pos": self.pos, "size": n}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = int(state["size"])
        for key in ("obs", "next_obs", "actions", "rewards", "discounts"):
            getattr(self, key)[:n] = state[key][:n]
        self.pos, self.size = int(state["pos"]) % self.capacity, n
