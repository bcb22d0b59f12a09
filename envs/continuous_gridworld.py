"""The GridWorld with a continuous action (ARCHITECTURE.md, "The GridWorld"): a point of [−1, 1]² chooses the move.

An action ``(x, y)`` is read as a direction on the page: the component with the larger magnitude
picks the axis and its sign the move (x > 0 right, x < 0 left, y > 0 up, y < 0 down); when both
magnitudes are below ``stay_radius`` the agent stays. The move then follows the discrete
GridWorld's dynamics, so the exact model (and ``v*``) is that of the five discrete moves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from .gridworld import GridWorld

UP, RIGHT, DOWN, LEFT, STAY = range(5)


def move_of(actions: np.ndarray, stay_radius: float = 0.25) -> np.ndarray:
    """The discrete move (0 up, 1 right, 2 down, 3 left, 4 stay) of continuous actions (..., 2)."""
    a = np.asarray(actions, dtype=np.float64)
    if a.shape[-1:] != (2,):
        raise ValueError(f"a continuous GridWorld action is a point (x, y); got shape {a.shape}")
    x, y = a[..., 0], a[..., 1]
    horizontal = np.abs(x) >= np.abs(y)
    move = np.where(horizontal, np.where(x > 0, RIGHT, LEFT), np.where(y > 0, UP, DOWN))
    return np.where(np.maximum(np.abs(x), np.abs(y)) < stay_radius, STAY, move)


class ContinuousGridWorld(GridWorld):
    """``GridWorld`` whose action is a point of ``Box(−1, 1, (2,))`` mapped to a move by ``move_of``.

    Every other argument is the GridWorld's; ``tabular_model()`` is the model of the five moves.
    """

    def __init__(self, *args: Any, stay_radius: float = 0.25, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not 0.0 <= stay_radius < 1.0:
            raise ValueError(f"stay_radius={stay_radius} is not allowed: choose a value in [0, 1)")
        self.stay_radius = float(stay_radius)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def move_of(self, actions: np.ndarray) -> np.ndarray:
        """The discrete moves this env executes for ``actions`` (..., 2)."""
        return move_of(actions, self.stay_radius)

    def step(self, action):
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (2,) or not np.all(np.isfinite(a)):
            raise ValueError(f"action {action!r} is not valid: give a finite point (x, y) of [-1, 1]^2")
        return super().step(int(move_of(np.clip(a, -1.0, 1.0), self.stay_radius)))
