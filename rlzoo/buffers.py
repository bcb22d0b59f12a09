"""Experience buffers. Episode buffer: one episode's (s, a, r), with discounted returns."""

from __future__ import annotations


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
