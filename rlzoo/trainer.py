"""The one training loop every agent runs on.

``Trainer(agent, total_steps, logger, callbacks).run()`` owns what is the same for every algorithm: the budget,
the log cadence, the NaN/inf guard, ground-truth logging, the progress bar and the callbacks (``rlzoo.callbacks``)
that evaluate, checkpoint, watch each log point and evaluation, and may stop training early. An agent family
supplies only how it gathers experience and updates (``begin``, ``advance``, ``log_point``, ``truth_tables``,
``watched``: see ``rlzoo.agents.base.Agent``). Log points are the first env steps at or past each multiple of
``agent.log_every``, and the last step.

The loop drives one agent, or a seed batch (``rlzoo.seed_batch``: K seeds of one config trained as one batched
computation) through ``Trainer.batched``: then each seed is a lane with its own logger and callbacks, and everything
the loop does per agent (guard, logs, truth, callbacks) it does per lane, on that seed's own agent.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
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


class Driver(ABC):
    """What the loop advances: one agent (``Solo``) or a seed batch (``rlzoo.seed_batch.SeedBatch``); its step count,
    whether it is finished and its log cadence are those of the agent it ``drives``."""

    drives: Agent

    @property
    def num_timesteps(self) -> int:
        """Env steps of each lane (a batch's lanes step together)."""
        return self.drives.num_timesteps

    @property
    def finished(self) -> bool:
        return self.drives.finished

    @property
    def log_every(self) -> int:
        return self.drives.log_every

    @abstractmethod
    def begin(self, total_steps: int, loggers: Sequence[RunLogger]) -> None:
        """Prepare every lane to train toward ``total_steps``."""

    @abstractmethod
    def advance(self, n_steps: int, loggers: Sequence[RunLogger]) -> list[dict[str, Any]]:
        """One ``advance`` of every lane; each lane's statistics."""

    def sync(self) -> None:  # noqa: B027 (a driver with nothing to bring up to date keeps this one)
        """Bring the lanes' agents up to date before the loop reads them (a seed batch's counters, optimizer state)."""


class Solo(Driver):
    """One agent as a ``Driver``: one lane."""

    def __init__(self, agent: Agent) -> None:
        self.drives = agent

    def begin(self, total_steps: int, loggers: Sequence[RunLogger]) -> None:
        self.drives.begin(total_steps, loggers[0])

    def advance(self, n_steps: int, loggers: Sequence[RunLogger]) -> list[dict[str, Any]]:
        return [self.drives.advance(n_steps, loggers[0])]


@dataclass
class Lane:
    """One seed's agent, logger and callbacks."""

    agent: Agent
    logger: RunLogger
    callbacks: list[Callback] = field(default_factory=list)


class Trainer:
    """Runs ``agent`` until ``num_timesteps`` reaches ``total_steps``, the agent is ``finished`` or a callback asks
    to stop (``rlzoo.callbacks``: its ``on_log`` or ``on_evaluation`` returned True; ``stopped_at`` is that step; in
    a seed batch, one seed's request stops every seed)."""

    def __init__(self, agent: Agent, total_steps: int, logger: RunLogger | None = None,
                 callbacks: Sequence[Callback] = ()) -> None:  # fmt: skip
        self.driver: Driver = Solo(agent)
        self.lanes = [Lane(agent, logger if logger is not None else RunLogger(), list(callbacks))]
        self.total_steps = int(total_steps)
        self.stopped_at: int | None = None

    @classmethod
    def batched(cls, batch: Driver, total_steps: int, lanes: Sequence[Lane]) -> Trainer:
        """The loop over a seed batch whose seeds are ``lanes`` (in the batch's order)."""
        trainer = cls.__new__(cls)
        trainer.driver, trainer.lanes = batch, list(lanes)
        trainer.total_steps, trainer.stopped_at = int(total_steps), None
        return trainer

    @property
    def agent(self) -> Agent:
        """The (first) lane's agent."""
        return self.lanes[0].agent

    @property
    def logger(self) -> RunLogger:
        return self.lanes[0].logger

    def run(self) -> Agent:
        driver, total = self.driver, self.total_steps
        driver.begin(total, [lane.logger for lane in self.lanes])
        if driver.num_timesteps == 0:
            for lane in self.lanes:
                self.log_truth(lane, 0)
        step = driver.num_timesteps
        next_log = next_multiple(step, driver.log_every)
        while step < total and not driver.finished and self.stopped_at is None:
            due = [n for lane in self.lanes for c in lane.callbacks
                   if (n := getattr(c, "next_step", None)) is not None and n > step]  # fmt: skip
            stats = driver.advance(min(next_log, total, *due) - step, [lane.logger for lane in self.lanes])
            step = driver.num_timesteps
            at_log = step >= next_log or step >= total or driver.finished
            if at_log or any(step >= n for n in due):  # the lanes' agents are read: bring them up to date
                driver.sync()
            for lane, lane_stats in zip(self.lanes, stats, strict=True):
                self.after_advance(lane, lane_stats, step, at_log)
            if at_log:
                next_log = next_multiple(step, driver.log_every)
        return self.agent

    def after_advance(self, lane: Lane, stats: dict[str, Any], step: int, at_log: bool) -> None:
        """The NaN/inf guard, the log point's scalars and truth (``at_log``) and the callbacks, for one lane."""
        agent, logger = lane.agent, lane.logger
        check_finite({tag(k): v for k, v in stats.items() if is_guarded(k)} | agent.watched(), step)
        if at_log:
            scalars = {tag(key): value for key, value in (stats | agent.log_point(step)).items()}
            logger.scalars(scalars, step)
            self.log_truth(lane, step)
            self.dispatch(lane, "on_log", step, scalars)
        logger.step(step)
        if any(n is not None and step >= n for n in (getattr(c, "next_step", None) for c in lane.callbacks)):
            logger.flush()  # a checkpoint at ``step`` must never exist while events logged before it could be lost
        for callback in lane.callbacks:
            result = callback(agent, step)
            if isinstance(result, Evaluation):
                logger.scalar("eval/return_mean", result.mean_return, result.step)
                self.dispatch(lane, "on_evaluation", result.step, result.mean_return)

    def dispatch(self, lane: Lane, hook: str, step: int, value: Any) -> None:
        """Call ``hook`` of every callback of ``lane`` that has it; one returning True stops training at ``step``."""
        for callback in lane.callbacks:
            method = getattr(callback, hook, None)
            if method is not None and method(lane.agent, step, value) and self.stopped_at is None:
                self.stopped_at = step

    def log_truth(self, lane: Lane, step: int) -> None:
        lane.logger.scalars({f"truth/{key}": value for key, value in truth_scalars(lane.agent).items()}, step)
