"""Greedy evaluation of a language policy on a text task's prompt rows."""

from __future__ import annotations

import numpy as np

from rlzoo.envs.text_tasks import TextTask
from rlzoo.llm.policy import LanguagePolicy
from rlzoo.llm.prompts import Row


def evaluate_greedy(policy: LanguagePolicy, task: TextTask, rows: list[Row]) -> dict[str, float]:
    """Mean total reward and mean of each reward function (named after it) of the policy's greedy completions of
    ``rows``; with an ``optimal`` column also its mean and ``fraction_of_optimal`` = mean first reward / optimum."""
    total, per = task.rewards(rows, policy.complete([r["prompt"] for r in rows]))
    out = {"reward": float(total.mean())}
    for f, values in zip(task.reward_funcs, per, strict=True):
        out[f.__name__] = float(np.nanmean(values))
    if "optimal" in rows[0]:  # the task's first reward function is the return whose optimum is known
        optimal = float(np.mean([r["optimal"] for r in rows]))
        out.update(optimal=optimal, fraction_of_optimal=float(np.nanmean(per[0])) / optimal)
    return out
