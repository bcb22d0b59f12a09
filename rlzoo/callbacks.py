"""Callbacks of the training loop (``agent.learn(total_steps, callbacks=[...])``, ``rlzoo.trainer.Trainer``).

A callback has up to three hooks; the trainer calls the ones it finds:

- ``__call__(agent, step)`` after each stretch of training once ``next_step`` (an env step, or None) is reached:
  work due on a schedule (periodic evaluation, checkpoints). Returning an :class:`Evaluation` reports an
  evaluation: the trainer logs it as ``eval/return_mean`` and passes it to every callback's ``on_evaluation``.
- ``on_log(agent, step, scalars)`` at each log point, with the scalars just logged.
- ``on_evaluation(agent, step, mean_return)`` after each evaluation.

``on_log`` and ``on_evaluation`` return True to stop training (the run then ends as if its budget were spent:
final evaluation, summary, final checkpoint). The command line's periodic evaluation, checkpoints and best model
are such callbacks. Example, as SB3's ``StopTrainingOnRewardThreshold``::

    agent.learn(200_000, callbacks=[Evaluate(gym.make("CartPole-v1"), every=10_000), StopOnReward(475)])
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym

if TYPE_CHECKING:
    from rlzoo.agents.base import Agent


def next_multiple(step: int, every: int) -> int:
    """The first multiple of ``every`` after ``step``."""
    return (step // every + 1) * every


class Callback:
    """A base with every hook doing nothing: subclass it and override what you need (see the module)."""

    next_step: int | None = None

    def __call__(self, agent: Agent, step: int) -> Evaluation | None:
        """Work due at env step ``step`` (called once ``next_step`` is reached)."""
        return None

    def on_log(self, agent: Agent, step: int, scalars: dict[str, float]) -> bool | None:
        """At each log point; True stops training."""
        return None

    def on_evaluation(self, agent: Agent, step: int, mean_return: float) -> bool | None:
        """After each evaluation; True stops training."""
        return None


@dataclass(frozen=True)
class Evaluation:
    """An evaluation's mean return at an env step, as a callback reports it to the trainer."""

    step: int
    mean_return: float


class PeriodicEvaluation(Callback):
    """Evaluate with ``evaluate_fn(agent)`` (→ mean return) every ``every`` env steps (0: never) before
    ``total_steps``, timed apart from training (``seconds``); the final evaluation is the caller's."""

    def __init__(self, evaluate_fn: Callable[[Agent], float], every: int, start_step: int, total_steps: int) -> None:
        self.evaluate_fn, self.every, self.total_steps = evaluate_fn, every, total_steps
        self.next_step = next_multiple(start_step, every) if every else None
        self.seconds = 0.0

    def __call__(self, agent: Agent, step: int) -> Evaluation | None:
        if self.next_step is None or step < self.next_step or step >= self.total_steps:
            return None
        start = time.perf_counter()
        result = Evaluation(step, float(self.evaluate_fn(agent)))
        self.seconds += time.perf_counter() - start
        self.next_step = next_multiple(step, self.every)
        return result


class Evaluate(PeriodicEvaluation):
    """:class:`PeriodicEvaluation` of the agent on ``env``: the mean return of ``episodes`` episodes
    (``rlzoo.evaluate.evaluate``, seeded with ``seed``, greedy unless ``deterministic`` is False)."""

    def __init__(self, env: gym.Env, every: int, episodes: int = 10, seed: int = 0, deterministic: bool = True,
                 total_steps: int | None = None, **evaluate_kwargs: Any) -> None:  # fmt: skip
        from rlzoo.evaluate import evaluate

        def evaluate_fn(agent: Agent) -> float:
            return evaluate(agent, env, episodes, seed=seed, deterministic=deterministic, **evaluate_kwargs).mean

        super().__init__(evaluate_fn, every, 0, total_steps if total_steps is not None else 2**62)


class StopOnReward(Callback):
    """Stop training at the first evaluation whose mean return reaches ``threshold``."""

    def __init__(self, threshold: float) -> None:
        self.threshold = float(threshold)

    def on_evaluation(self, agent: Agent, step: int, mean_return: float) -> bool:
        return mean_return >= self.threshold
