"""The one training loop every agent runs on.

``Trainer(agent, total_steps, logger, callbacks).run()`` owns what is the same for every algorithm: the budget,
the log cadence, the NaN/inf guard, ground-truth logging, the progress bar and the callbacks that evaluate and
checkpoint. An agent family supplies only how it gathers experience and updates (``begin``, ``advance``,
``log_point``, ``truth_tables``, ``watched``: see ``rlzoo.agents.base.Agent``). Log points are the first env
steps at or past each multiple of ``agent.log_every``, and the last step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rlzoo.logging import RunLogger

if TYPE_CHECKING:
    from rlzoo.agents.base import Agent


class NumericalError(RuntimeError):
    """A loss or parameter became NaN/inf: training stops, naming the quantity and the step."""


class Callback(Protocol):
    """Something the trainer runs after each advance once ``next_step`` is reached (evaluation, checkpoints)."""

    @property
    def next_step(self) -> int | None:
        """The env step at which it next wants to run (None: never); the trainer stops there to call it."""

    def __call__(self, agent: Agent, step: int) -> None:
        """Run at env step ``step`` if due."""


def next_multiple(step: int, every: int) -> int:
    """The first multiple of ``every`` after ``step``."""
    return (step // every + 1) * every


def tag(key: str) -> str:
    """A stats key as a TensorBoard tag: ``losses/<key>`` unless it names its own section (``charts/…``)."""
    return key if "/" in key else f"losses/{key}"


def is_guarded(key: str) -> bool:
    """Stats the NaN/inf guard stops on: losses and gradient norms (an explained variance may be NaN)."""
    name = key.rsplit("/", 1)[-1]
    return "loss" in name or name == "grad_norm"


def check_finite(quantities: dict[str, Any], step: int) -> None:
    """``NumericalError('<name> is <value> at step <step>')`` for the first non-finite value or array entry."""
    for name, value in quantities.items():
        array = np.asarray(value, dtype=float)
        bad = array[~np.isfinite(array)]
        if bad.size:
            raise NumericalError(f"{name} is {bad.flat[0]} at step {step}")


def truth_scalars(agent: Agent) -> dict[str, float]:
    """``truth/*`` figures of the agent's current tables (empty on envs without a model)."""
    truth = getattr(agent, "truth", None)
    tables = agent.truth_tables() if truth is not None else None
    return {} if tables is None else truth.scalars(*tables, solve_policy=agent.solves_policy_truth)


class Trainer:
    """Runs ``agent`` until ``num_timesteps`` reaches ``total_steps`` (or the agent is ``finished``)."""

    def __init__(self, agent: Agent, total_steps: int, logger: RunLogger | None = None,
                 callbacks: Sequence[Callback] = ()) -> None:  # fmt: skip
        self.agent, self.total_steps = agent, int(total_steps)
        self.logger = logger if logger is not None else RunLogger()
        self.callbacks = list(callbacks)

    def run(self) -> Agent:
        agent, logger, total = self.agent, self.logger, self.total_steps
        agent.begin(total, logger)
        if agent.num_timesteps == 0:
            self.log_truth(0)
        step = agent.num_timesteps
        next_log = next_multiple(step, agent.log_every)
        while step < total and not agent.finished:
            due = [c.next_step for c in self.callbacks if c.next_step is not None and c.next_step > step]
            stats = agent.advance(min(next_log, total, *due) - step, logger)
            step = agent.num_timesteps
            check_finite({tag(k): v for k, v in stats.items() if is_guarded(k)} | agent.watched(), step)
            if step >= next_log or step >= total or agent.finished:
                next_log = next_multiple(step, agent.log_every)
                for key, value in (stats | agent.log_point(step)).items():
                    logger.scalar(tag(key), value, step)
                self.log_truth(step)
            logger.step(step)
            for callback in self.callbacks:
                callback(agent, step)
        return agent

    def log_truth(self, step: int) -> None:
        for key, value in truth_scalars(self.agent).items():
            self.logger.scalar(f"truth/{key}", value, step)


class PeriodicEvaluation:
    """Callback: ``eval/return_mean`` every ``every`` env steps (0: never) before the last step, timed apart from
    training (``seconds``); the final evaluation is the caller's."""

    def __init__(self, evaluate_fn: Callable[[], float], logger: RunLogger, every: int, start_step: int,
                 total_steps: int) -> None:  # fmt: skip
        self.evaluate_fn, self.logger, self.every, self.total_steps = evaluate_fn, logger, every, total_steps
        self.next_step = next_multiple(start_step, every) if every else None
        self.seconds = 0.0

    def __call__(self, agent: Agent, step: int) -> None:
        if self.next_step is None or step < self.next_step or step >= self.total_steps:
            return
        start = time.perf_counter()
        self.logger.scalar("eval/return_mean", self.evaluate_fn(), step)
        self.seconds += time.perf_counter() - start
        self.next_step = next_multiple(step, self.every)
