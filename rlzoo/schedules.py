"""Step-size and exploration schedules shared by the tabular learners.

Robbins–Monro step sizes ``α_n = α / n^p`` with ``p ∈ (0.5, 1]`` satisfy Σ α_n = ∞ and
Σ α_n² < ∞, so stochastic approximation converges (S. Zhao, ch. 6); ``α = 1, p = 1`` gives the
sample mean used by Monte Carlo.
"""

from __future__ import annotations

SCHEDULES = ("constant", "robbins_monro")


class StepSize:
    """α for the n-th update of entry ``i``: constant ``alpha`` or Robbins–Monro ``alpha / n^power``."""

    def __init__(self, alpha: float, schedule: str, power: float, size: int) -> None:
        if schedule not in SCHEDULES:
            raise ValueError(f"alpha_schedule={schedule!r} is not a schedule: choose one of {', '.join(SCHEDULES)}")
        self.alpha = float(alpha)
        self.constant = schedule == "constant"
        self.power = float(power)
        self.counts = [0] * size

    def __call__(self, i: int) -> float:
        if self.constant:
            return self.alpha
        n = self.counts[i] + 1
        self.counts[i] = n
        return self.alpha / n**self.power


class LinearSchedule:
    """``start`` decaying linearly to ``end`` over ``steps`` steps, then constant (``steps=0``: constant)."""

    def __init__(self, start: float, end: float | None, steps: int) -> None:
        self.start = float(start)
        self.end = self.start if end is None else float(end)
        self.steps = int(steps)

    def __call__(self, t: int) -> float:
        if self.steps <= 0 or t >= self.steps:
            return self.end if self.steps > 0 else self.start
        return self.start + (self.end - self.start) * t / self.steps
