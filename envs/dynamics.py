"""GridWorld dynamics (rules: ARCHITECTURE.md, "The GridWorld") as lookup tables shared by the single and the
vector env.

Actions: 0 up, 1 right, 2 down, 3 left, 4 stay. Moving off the grid keeps the agent in place
and pays ``r_boundary``; entering (or staying in) a forbidden cell pays ``r_forbidden``;
entering or staying at the target pays ``r_target``; anything else pays ``r_other``.
With ``slip > 0`` the executed action is, with probability ``slip``, one of the four other
actions chosen uniformly. In episodic mode the target is terminal (absorbing, reward 0 in the model).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from .layout import Layout
from .model import TabularModel

ACTIONS: tuple[str, ...] = ("up", "right", "down", "left", "stay")
MOVES: tuple[tuple[int, int], ...] = ((-1, 0), (0, 1), (1, 0), (0, -1), (0, 0))
N_ACTIONS = len(ACTIONS)


@dataclass(frozen=True)
class Rewards:
    """The four GridWorld rewards (book defaults)."""

    boundary: float = -1.0
    forbidden: float = -1.0
    target: float = 1.0
    other: float = 0.0


@dataclass(frozen=True)
class GridDynamics:
    """Deterministic per-executed-action tables plus the slip distribution over executed actions."""

    layout: Layout
    rewards: Rewards = Rewards()
    slip: float = 0.0
    episodic: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.slip <= 1.0:
            raise ValueError(f"slip={self.slip} is not a probability: allowed [0, 1]")

    @cached_property
    def tables(self) -> tuple[np.ndarray, np.ndarray]:
        """``next_state[s, a]`` and ``reward[s, a]`` when action ``a`` is executed in ``s``."""
        lay, rewards = self.layout, self.rewards
        S = lay.n_states
        nxt = np.empty((S, N_ACTIONS), dtype=np.int64)
        rew = np.empty((S, N_ACTIONS), dtype=np.float64)
        forbidden = lay.forbidden_mask()
        states = np.arange(S)
        rows, cols = np.divmod(states, lay.n_cols)
        for a, (dr, dc) in enumerate(MOVES):  # one column of both tables per executed action
            nr, nc = rows + dr, cols + dc
            inside = (nr >= 0) & (nr < lay.n_rows) & (nc >= 0) & (nc < lay.n_cols)
            ns = np.where(inside, nr * lay.n_cols + nc, states)  # off the grid: stay
            nxt[:, a] = ns
            rew[:, a] = rewards.other
            rew[forbidden[ns], a] = rewards.forbidden
            rew[ns == lay.target, a] = rewards.target
            rew[~inside, a] = rewards.boundary
        return nxt, rew

    @cached_property
    def action_probs(self) -> np.ndarray:
        """``M[a, a']``: probability that choosing ``a`` executes ``a'``."""
        m = np.full((N_ACTIONS, N_ACTIONS), self.slip / (N_ACTIONS - 1))
        np.fill_diagonal(m, 1.0 - self.slip)
        return m

    @cached_property
    def model(self) -> TabularModel:
        """The exact model; in episodic mode the target is absorbing with zero reward."""
        nxt, rew = self.tables
        S = self.layout.n_states
        if self.slip == 0.0:
            next_states, probs, exp_r = nxt[:, :, None].copy(), np.ones((S, N_ACTIONS, 1)), rew.copy()
        else:
            next_states = np.broadcast_to(nxt[:, None, :], (S, N_ACTIONS, N_ACTIONS)).copy()
            probs = np.broadcast_to(self.action_probs[None], (S, N_ACTIONS, N_ACTIONS)).copy()
            exp_r = rew @ self.action_probs.T
        if self.episodic:
            t = self.layout.target
            next_states[t] = t
            probs[t] = 0.0
            probs[t, :, 0] = 1.0
            exp_r[t] = 0.0
        return TabularModel(next_states, probs, exp_r)


@lru_cache(maxsize=2)  # a run has one world; a 300×300 one holds ≈ 18 MB of tables
def cached_dynamics(layout: Layout, rewards: Rewards, slip: float, episodic: bool) -> GridDynamics:
    """One ``GridDynamics`` per world: the envs of one run (training, evaluation, vector copies) share its tables
    and model instead of building them again. Their arrays are made read-only, since every holder sees them."""
    dynamics = GridDynamics(layout, rewards, slip, episodic)
    model = dynamics.model
    for array in (*dynamics.tables, model.next_states, model.probs, model.rewards):
        array.flags.writeable = False
    return dynamics
