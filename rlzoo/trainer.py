"""The one training loop every agent runs on.

``Trainer(agent, total_steps, logger, callbacks).run()`` owns what is the same for every algorithm: the budget,
the log cadence, the NaN/inf guard, ground-truth logging, the progress bar and the callbacks (``rlzoo.callbacks``)
that evaluate, checkpoint, watch each log point and evaluation, and may stop training early. An agent family
supplies only how it gathers experience and updates (``begin``, ``advance``, ``log_point``, ``truth_tables``,
``watched``: see ``rlzoo.agents.base.Agent``). Log points are the first env steps at or past each multiple of
``agent.log_every``, and the last step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rlzoo.callbacks import Callback, Evaluation, next_multiple
from rlzoo.logging import RunLogger

if TYPE_CHECKING:
    from rlzoo.agents.base import Agent


class NumericalError(RuntimeError):
    """A loss or parameter became NaN/inf: training stops, naming the quantity and the step."""


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
    """Runs ``agent`` until ``num_timesteps`` reaches ``total_steps``, the agent is ``finished`` or a callback asks
    to stop (``rlzoo.callbacks``: its ``on_log`` or ``on_evaluation`` returned True; ``stopped_at`` is that step)."""

    def __init__(self, agent: Agent, total_steps: int, logger: RunLogger | None = None,
                 callbacks: Sequence[Callback] = ()) -> None:  # fmt: skip
        self.agent, self.total_steps = agent, int(total_steps)
        self.logger = logger if logger is not None else RunLogger()
        self.callbacks = list(callbacks)
        self.stopped_at: int | None = None

    def run(self) -> Agent:
        agent, logger, total = self.agent, self.logger, self.total_steps
        agent.begin(total, logger)
        if agent.num_timesteps == 0:
            self.log_truth(0)
        step = agent.num_timesteps
        next_log = next_multiple(step, agent.log_every)
        while step < total and not agent.finished and self.stopped_at is None:
            due = [n for c in self.callbacks if (n := getattr(c, "next_step", None)) is not None and n > step]
            stats = agent.advance(min(next_log, total, *due) - step, logger)
            step = agent.num_timesteps
            check_finite({tag(k): v for k, v in stats.items() if is_guarded(k)} | agent.watched(), step)
            if step >= next_log or step >= total or agent.finished:
                next_log = next_multiple(step, agent.log_every)
                scalars = {tag(key): value for key, value in (stats | agent.log_point(step)).items()}
                for key, value in scalars.items():
                    logger.scalar(key, value, step)
                self.log_truth(step)
                self.dispatch("on_log", step, scalars)
            logger.step(step)
            for callback in self.callbacks:
                result = callback(agent, step)
                if isinstance(result, Evaluation):
                    logger.scalar("eval/return_mean", result.mean_return, result.step)
                    self.dispatch("on_evaluation", result.step, result.mean_return)
        return agent

    def dispatch(self, hook: str, step: int, value: Any) -> None:
        """Call ``hook`` of every callback that has it; one returning True stops training at ``step``."""
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is not None and method(self.agent, step, value) and self.stopped_at is None:
                self.stopped_at = step

    def log_truth(self, step: int) -> None:
        for key, value in truth_scalars(self.agent).items():
            self.logger.scalar(f"truth/{key}", value, step)
