"""Experience buffers: one episode's (s, a, r) with discounted returns; a replay ring buffer; an
on-policy rollout buffer with GAE(λ) advantages."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch


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
    """A sampled minibatch (numpy arrays, or torch tensors from ``sample_tensors``); ``discounts`` = γ^k for a k-step
    return, 0 where the episode terminated."""

    obs: Any
    actions: Any
    rewards: Any
    next_obs: Any
    discounts: Any


TRANSITION_FIELDS = ("obs", "actions", "rewards", "next_obs", "discounts")  # a replay buffer's arrays, batch order


class ReplayBuffer:
    """Preallocated ring buffer of (k-step) transitions with uniform sampling: numpy arrays on the host, or, with a
    ``device``, torch tensors there (each ``add`` copies one step in; a minibatch never leaves the device).

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
        n_envs: int,
        n_step: int,
        gamma: float,
        device: torch.device | None = None,
    ) -> None:
        if capacity < 1 or n_step < 1 or n_envs < 1:
            raise ValueError(f"capacity={capacity}, n_step={n_step}, n_envs={n_envs} must all be positive")
        self.capacity, self.n_envs, self.n_step, self.gamma = int(capacity), int(n_envs), int(n_step), float(gamma)
        self.device = device
        shapes = {"obs": ((capacity, *obs_shape), obs_dtype), "next_obs": ((capacity, *obs_shape), obs_dtype),
                  "actions": ((capacity, *action_shape), action_dtype), "rewards": ((capacity,), np.float32),
                  "discounts": ((capacity,), np.float32)}  # fmt: skip
        for key, (shape, dtype) in shapes.items():
            array = np.zeros(shape, dtype=dtype)
            setattr(self, key, array if device is None else torch.from_numpy(array).to(device))
        self._index_generator: torch.Generator | None = None  # device storage: minibatch indices drawn there
        self.pos = 0
        self.size = 0
        self._pending: list[deque] = [deque() for _ in range(self.n_envs)]

    def __len__(self) -> int:
        return self.size

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

    def _store(self, obs, action, reward: float, next_obs, discount: float) -> None:
        i = self.pos
        if self.device is None:
            self.obs[i], self.actions[i], self.next_obs[i] = obs, action, next_obs
            self.rewards[i], self.discounts[i] = reward, discount
        else:
            for key, value in (("obs", obs), ("actions", action), ("next_obs", next_obs)):
                getattr(self, key)[i] = torch.as_tensor(np.asarray(value))
            self.rewards[i], self.discounts[i] = float(reward), float(discount)
        self.advance()

    def advance(self) -> None:
        """Move the ring's write position past the transition just written there."""
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> TransitionBatch:
        """A uniform minibatch of stored transitions (with replacement), as numpy arrays (host storage)."""
        if self.device is not None:
            return TransitionBatch(*(x.cpu().numpy() for x in vars(self.sample_tensors(batch_size, rng)).values()))
        return self.gather(self.draw_indices(batch_size, rng))

    def sample_tensors(self, batch_size: int, rng: np.random.Generator) -> TransitionBatch:
        """``sample`` as torch tensors where the storage is: host arrays wrapped without a copy (indices from
        ``rng``), device tensors indexed on the device (indices from a device generator seeded once from ``rng``)."""
        batch = self.gather(self.draw_indices(batch_size, rng))
        return batch if self.device is not None else TransitionBatch(*map(torch.from_numpy, vars(batch).values()))

    def draw_indices(self, batch_size: int, rng: np.random.Generator) -> np.ndarray | torch.Tensor:
        """``batch_size`` uniform indices of stored transitions: numpy ones from ``rng`` (host storage), or a tensor
        on the device from the buffer's device generator (seeded from ``rng`` at its first draw)."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        if self.device is None:
            return rng.integers(0, self.size, size=batch_size)
        if self._index_generator is None:
            self._index_generator = torch.Generator(self.device).manual_seed(int(rng.integers(2**62)))
        return torch.randint(self.size, (batch_size,), device=self.device, generator=self._index_generator)

    def gather(self, idx: np.ndarray | torch.Tensor) -> TransitionBatch:
        """The transitions at ``idx``, in the storage's kind (numpy arrays or device tensors)."""
        return TransitionBatch(*(getattr(self, key)[idx] for key in TRANSITION_FIELDS))

    def state_dict(self) -> dict[str, Any]:
        n = self.size
        state = {key: getattr(self, key)[:n] for key in TRANSITION_FIELDS}
        if self.device is not None:  # host arrays in the checkpoint: it loads on any device
            state = {key: value.cpu().numpy() for key, value in state.items()}
            if self._index_generator is not None:
                state["index_generator"] = self._index_generator.get_state()
                state["index_generator_device"] = self.device.type
        return {**state, "pos": self.pos, "size": n, "storage": self.storage_kind}

    @property
    def storage_kind(self) -> str:
        """How minibatch indices are drawn: "host" (numpy arrays, the agent's rng) or the device type of the torch
        storage (its own index generator)."""
        return "host" if self.device is None else self.device.type

    def load_state_dict(self, state: dict[str, Any]) -> str | None:
        """Restore the transitions (from host or device storage) and the index generator; returns why the minibatches
        to come cannot be the ones the saved run would have drawn (its indices came from other storage), or None."""
        n = int(state["size"])
        for key in TRANSITION_FIELDS:
            saved = state[key][:n]
            if self.device is None:
                getattr(self, key)[:n] = saved.cpu().numpy() if isinstance(saved, torch.Tensor) else saved
            else:
                getattr(self, key)[:n] = torch.as_tensor(saved)
        if self.device is not None and state.get("index_generator_device") == self.device.type:
            self._index_generator = torch.Generator(self.device)
            self._index_generator.set_state(state["index_generator"])  # else: seeded anew at the next sample
        self.pos, self.size = int(state["pos"]) % self.capacity, n
        saved = state.get("storage", state.get("index_generator_device", "host"))  # (older checkpoints: no key)
        if saved != self.storage_kind:
            return f"replay storage {saved} then {self.storage_kind}: minibatch indices drawn anew"
        return None


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    last_values: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    final_values: np.ndarray,
    gamma: float,
    lam: float,
) -> np.ndarray:
    """GAE(λ) advantages (Schulman et al., 2016) of a (T, N) rollout of N envs.

    δ_t = r_t + γ V_next − V(s_t), where V_next is 0 if the episode terminated at t, the value of the
    episode's true final observation (``final_values``) if it was truncated at t, ``values[t+1]``
    otherwise (``last_values`` after the last step); Â_t = δ_t + γλ (1 − done_t) Â_{t+1}.
    λ = 1 with zero ``values`` gives discounted Monte-Carlo returns; ``returns = Â + values``.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    n_steps = rewards.shape[0]
    next_values = np.concatenate([values[1:], np.asarray(last_values)[None]], axis=0)
    next_values = np.where(truncated, final_values, next_values)
    next_values = np.where(terminated, 0.0, next_values)
    deltas = rewards + gamma * next_values - values
    carry = gamma * lam * ~(np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool))
    advantages = np.empty_like(deltas)
    last = np.zeros(deltas.shape[1:])
    for t in range(n_steps - 1, -1, -1):
        last = deltas[t] + carry[t] * last
        advantages[t] = last
    return advantages


def stacked_storage(buffers: Sequence[Any], names: Sequence[str]) -> dict[str, Any]:
    """A seed batch's buffers as one storage: per array name, the K buffers' arrays (numpy or torch) stacked (K, …),
    each buffer's attribute re-pointed at its slice (a view), so what a buffer reads and writes is the stacked
    array's and one write to the stacked array stores every seed's."""
    storage = {}
    for name in names:
        parts = [getattr(buffer, name) for buffer in buffers]
        stacked = torch.stack(parts) if isinstance(parts[0], torch.Tensor) else np.stack(parts)
        for buffer, view in zip(buffers, stacked, strict=True):
            setattr(buffer, name, view)
        storage[name] = stacked
    return storage


class SeedBatchReplay:
    """The replay buffers of a seed batch's K seeds seen as one. Their arrays become views of one stacked storage,
    (K, capacity, …) per array, so that ``add`` stores a step of every seed in one write and a minibatch of every seed
    (each drawn from its own buffer with its own generator: what a single run of it samples) is one gather per array,
    stacked (K, batch, …)."""

    def __init__(self, buffers: Sequence[ReplayBuffer]) -> None:
        self.buffers = list(buffers)
        self.storage = stacked_storage(self.buffers, TRANSITION_FIELDS)
        k, capacity, device = len(self.buffers), self.buffers[0].capacity, self.buffers[0].device
        if device is None:
            # (K·capacity, …) views of the host storage: seed k's transition i is row k·capacity + i, so a minibatch of
            # every seed is one ``take`` of rows per array (a third of the time two-array fancy indexing takes)
            self._rows = {name: array.reshape(k * capacity, *array.shape[2:]) for name, array in self.storage.items()}
            self._first_rows = (np.arange(k) * capacity)[:, None]
        else:
            self._seeds = torch.arange(k, device=device)[:, None]  # device storage: indexed (seed, index) there

    def add(self, obs, actions, rewards, next_obs, terminated, truncated) -> None:
        """``ReplayBuffer.add`` of one step of every seed (each argument stacked (K, …), seed k's one env's step):
        one write for all where every seed stores its transition at the same position (1-step returns), each seed's
        own ``add`` otherwise."""
        first = self.buffers[0]
        if first.n_step > 1 or first.n_envs > 1 or any(b.pos != first.pos for b in self.buffers):
            for k, buffer in enumerate(self.buffers):
                buffer.add(obs[k][None], actions[k][None], rewards[k][None], next_obs[k][None], terminated[k][None],
                           truncated[k][None])  # fmt: skip
            return
        step = {"obs": obs, "actions": actions, "rewards": rewards, "next_obs": next_obs,
                "discounts": np.where(terminated, 0.0, first.gamma)}  # fmt: skip
        for name, value in step.items():
            self.storage[name][:, first.pos] = value if first.device is None else torch.as_tensor(np.asarray(value))
        for buffer in self.buffers:
            buffer.advance()

    def sample_tensors(self, batch_size: int, rng: Any) -> TransitionBatch:
        """``ReplayBuffer.sample_tensors`` of every seed (``rng``: the seeds' ``SeedGenerators``), stacked."""
        draws = [b.draw_indices(batch_size, g) for b, g in zip(self.buffers, rng.generators, strict=True)]
        if self.buffers[0].device is not None:
            idx = torch.stack(draws)
            return TransitionBatch(*(self.storage[name][self._seeds, idx] for name in TRANSITION_FIELDS))
        rows = np.stack(draws) + self._first_rows
        return TransitionBatch(*(torch.from_numpy(self._rows[name].take(rows, axis=0)) for name in TRANSITION_FIELDS))


def fill_advantages(rollout: dict[str, np.ndarray], last_values: np.ndarray, gamma: float, lam: float) -> None:
    """Write ``gae`` advantages and ``returns = advantages + values`` into a rollout's arrays (time first: (T, …), as
    ``RolloutBuffer``'s, or a seed batch's (T, K, n_envs) views)."""
    r = rollout
    adv = gae(r["rewards"], r["values"], last_values, r["terminated"], r["truncated"], r["final_values"], gamma, lam)
    r["advantages"][...] = adv
    r["returns"][...] = adv + r["values"]


class RolloutBuffer:
    """``n_steps × n_envs`` on-policy transitions with log-probs and values; GAE advantages and returns.

    ``final_values[t, e]`` holds V of env e's true last observation where it was truncated at step t
    (the vector env has already reset it), so truncated episodes bootstrap and terminated ones do not.
    """

    def __init__(
        self,
        n_steps: int,
        n_envs: int,
        obs_shape: tuple[int, ...],
        action_shape: tuple[int, ...] = (),
        *,
        obs_dtype: Any = np.float32,
        action_dtype: Any = np.int64,
    ) -> None:
        if n_steps < 1 or n_envs < 1:
            raise ValueError(f"n_steps={n_steps} and n_envs={n_envs} must be positive")
        self.n_steps, self.n_envs = int(n_steps), int(n_envs)
        shape = (self.n_steps, self.n_envs)
        self.obs = np.zeros((*shape, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros((*shape, *action_shape), dtype=action_dtype)
        self.log_probs = np.zeros(shape, dtype=np.float32)
        self.values = np.zeros(shape, dtype=np.float32)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=bool)
        self.truncated = np.zeros(shape, dtype=bool)
        self.final_values = np.zeros(shape, dtype=np.float32)
        self.advantages = np.zeros(shape, dtype=np.float32)
        self.returns = np.zeros(shape, dtype=np.float32)
        self.t = 0

    @property
    def full(self) -> bool:
        return self.t == self.n_steps

    # what ``add`` stores of a step, in its arguments' order; ``arrays``: every (n_steps, n_envs, …) array
    step_fields: ClassVar[tuple[str, ...]] = ("obs", "actions", "log_probs", "values", "rewards", "terminated",
                                              "truncated")  # fmt: skip
    arrays: ClassVar[tuple[str, ...]] = (*step_fields, "final_values", "advantages", "returns")

    def add(self, obs, actions, log_probs, values, rewards, terminated, truncated) -> None:
        """Store one step of every env; ``rewards``/flags are those returned by the step from ``obs``."""
        if self.full:
            raise ValueError(f"the rollout buffer holds {self.n_steps} steps already: call reset() first")
        t = self.t
        step = (obs, actions, log_probs, values, rewards, terminated, truncated)
        for name, value in zip(self.step_fields, step, strict=True):
            getattr(self, name)[t] = value
        self.final_values[t] = 0.0
        self.t = t + 1

    def set_final_values(self, envs: np.ndarray, values: np.ndarray) -> None:
        """V of the true last observations of ``envs`` that were truncated at the latest step."""
        self.final_values[self.t - 1, envs] = values

    def compute_advantages(self, last_values: np.ndarray, gamma: float, lam: float, steps: int | None = None) -> None:
        """Fill ``advantages`` (GAE) and ``returns = advantages + values`` for the first ``steps`` steps."""
        n = self.t if steps is None else steps
        fill_advantages({name: getattr(self, name)[:n] for name in self.arrays}, last_values, gamma, lam)

    def reset(self) -> None:
        self.t = 0

    def flat(self, name: str, steps: int | None = None) -> np.ndarray:
        """Array ``name`` over the first ``steps`` steps, envs merged: (steps · n_envs, ...)."""
        a = getattr(self, name)[: self.t if steps is None else steps]
        return a.reshape(-1, *a.shape[2:])
