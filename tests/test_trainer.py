"""The one training loop (rlzoo.trainer) on a toy agent: log cadence, callbacks, the NaN/inf guard, truth/*."""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pytest

from rlzoo.agents.base import Agent
from rlzoo.config import AlgoConfig, param
from rlzoo.logging import RunLogger
from rlzoo.trainer import NumericalError, Trainer

from .helpers import RecordingLogger, scalars


@dataclass
class CounterConfig(AlgoConfig):
    chunk: int = param(0, ge=0, help="env steps every advance takes, like a rollout (0: exactly the n asked)")
    log_every: int = param(10, ge=1)
    nan_at: int = param(0, ge=0, help="report a NaN loss once this step is reached (0: never)")


class Counter(Agent):
    """Counts env steps; its 'loss' is the step it reached."""

    name = "counter"
    Config = CounterConfig

    def setup(self) -> None:
        self.calls: list[tuple[int, int]] = []  # (step before, n asked)

    def advance(self, n_steps: int, logger: RunLogger) -> dict[str, float]:
        self.calls.append((self.num_timesteps, n_steps))
        self.num_timesteps += self.config.chunk or n_steps
        nan = self.config.nan_at and self.num_timesteps >= self.config.nan_at
        return {"loss": float("nan") if nan else float(self.num_timesteps), "charts/custom": 1.0}

    def _act(self, obs, deterministic: bool = True):
        return 0


class Every:
    """A callback due every ``every`` steps that records when it ran."""

    def __init__(self, every: int) -> None:
        self.every, self.next_step, self.ran = every, every, []

    def __call__(self, agent: Agent, step: int) -> None:
        if step >= self.next_step:
            self.ran.append(step)
            self.next_step = (step // self.every + 1) * self.every


ENV = gym.make("CartPole-v1")


def test_log_points_are_the_multiples_of_log_every_and_the_last_step():
    agent, logger = Counter(ENV, log_every=10), RecordingLogger()
    Trainer(agent, 35, logger).run()
    assert agent.num_timesteps == 35
    assert logger.steps("losses/loss") == [10, 20, 30, 35]
    assert logger.steps("charts/custom") == [10, 20, 30, 35]  # a key with a "/" is its own tag


def test_a_family_that_overshoots_logs_at_the_first_step_past_each_multiple():
    agent, logger = Counter(ENV, log_every=10, chunk=7), RecordingLogger()
    Trainer(agent, 40, logger).run()
    assert logger.steps("losses/loss") == [14, 21, 35, 42]  # 7-step units: 7, 14, 21, 28, 35, 42


def test_the_trainer_stops_an_advance_at_a_callback_step():
    agent, callback = Counter(ENV, log_every=10), Every(4)
    Trainer(agent, 20, RecordingLogger(), [callback]).run()
    assert callback.ran == [4, 8, 12, 16, 20]
    assert [n for _, n in agent.calls] == [4, 4, 2, 2, 4, 4]  # 0→4→8→10→12→16→20


def test_nan_loss_stops_training_naming_the_tag_and_step():
    with pytest.raises(NumericalError, match=r"^losses/loss is nan at step 30$"):
        Trainer(Counter(ENV, log_every=10, nan_at=25), 100, RecordingLogger()).run()


def test_watched_tables_are_guarded_too():
    class Tables(Counter):
        def watched(self):
            return {"tables/q": np.array([0.0, np.inf if self.num_timesteps >= 20 else 1.0])}

    with pytest.raises(NumericalError, match=r"^tables/q is inf at step 20$"):
        Trainer(Tables(ENV, log_every=10), 100, RecordingLogger()).run()


def test_a_finished_agent_stops_and_logs_its_last_point():
    class Converges(Counter):
        def advance(self, n_steps, logger):
            stats = super().advance(n_steps, logger)
            self.finished = self.num_timesteps >= 3
            return stats

    agent, logger = Converges(ENV, log_every=10, chunk=3), RecordingLogger()
    Trainer(agent, 100, logger).run()
    assert agent.num_timesteps == 3 and logger.steps("losses/loss") == [3]


def test_truth_scalars_come_from_the_agents_tables():
    class Truth:
        target = "v*"

        @staticmethod
        def scalars(policy, v, solve_policy):
            return {"value_error": float(np.abs(v).max())}

    class WithTruth(Counter):
        truth = Truth()

        def truth_tables(self):
            return None, np.array([float(self.num_timesteps)])

    logger = RecordingLogger()
    agent = WithTruth(ENV, log_every=10)
    Trainer(agent, 20, logger).run()
    assert [(s, v) for t, s, v in logger.records if t == "truth/value_error"] == [(0, 0.0), (10, 10.0), (20, 20.0)]
    assert agent.summary() == {"value_error": 20.0, "value_error_target": "v*"}


@pytest.mark.parametrize("budget", ["100", 0, -5, 2.5, True])
def test_learn_rejects_a_budget_that_is_not_a_positive_int(budget):
    with pytest.raises(ValueError, match=r"total_steps=.* is not allowed: give a positive int"):
        Counter(ENV).learn(budget)


def test_events_logged_before_a_callback_step_are_on_disk_when_the_callback_runs(tmp_path):
    """A checkpoint at step S is written by a callback; a resume from it never re-logs steps ≤ S, so everything logged
    up to S must already be in the event file then (a SIGKILL loses only what the process still buffers)."""
    logger = RunLogger(tmp_path)  # its event file flushes on its own only every 10 s

    class ReadsTheEventFile(Every):
        def __call__(self, agent: Agent, step: int) -> None:
            super().__call__(agent, step)
            self.on_disk = [s for s, _ in scalars(tmp_path).get("losses/loss", [])]

    callback = ReadsTheEventFile(40)
    Trainer(Counter(ENV), 50, logger, [callback]).run()
    assert callback.ran == [40] and callback.on_disk == [10, 20, 30, 40]
    logger.close()
