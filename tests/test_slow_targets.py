"""Slow tier (opt-in: ``python -m pytest -m slow``): the learning targets of the issues, full budgets."""

from __future__ import annotations

import json

import pytest

from rlzoo.train import resolve, train

from .helpers import composed

pytestmark = pytest.mark.slow


def _summary(tmp_path, name, *overrides):
    train(resolve(composed(*overrides)), tmp_path / name)
    return json.loads((tmp_path / name / "summary.json").read_text())


def test_dqn_cartpole_475_at_50k_for_4_of_5_seeds(tmp_path):
    returns = [_summary(tmp_path, f"s{s}", "algo=dqn", f"seed={s}", "eval.episodes=20")["eval_return_mean"]
               for s in range(5)]  # fmt: skip
    assert sum(r >= 475 for r in returns) >= 4, returns


def test_dqn_gridworld_greedy_policy_optimal_in_90_percent_of_states(tmp_path):
    fractions = [_summary(tmp_path, f"s{s}", "algo=dqn", "env=gridworld", f"seed={s}")["optimal_action_fraction"]
                 for s in range(3)]  # fmt: skip
    assert min(fractions) >= 0.9, fractions
