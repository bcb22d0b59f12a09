"""Slow tier (opt-in: ``python -m pytest -m slow``): the learning targets of the issues, full budgets."""

from __future__ import annotations

import json

import pytest

from rlzoo.train import resolve, train

from .helpers import composed

# full training budgets: several runs per test, far beyond the fast tier's 300 s per-test timeout
pytestmark = [pytest.mark.slow, pytest.mark.timeout(7200)]


def _summary(tmp_path, name, *overrides):
    train(resolve(composed(*overrides)), tmp_path / name)
    return json.loads((tmp_path / name / "summary.json").read_text())


def _across_seeds(tmp_path, key, *overrides, seeds=5):
    """``summary[key]`` of the run with ``overrides`` for seeds 0 … seeds − 1 (20 evaluation episodes)."""
    name = "-".join(o.split("=")[-1] for o in overrides)
    return [_summary(tmp_path, f"{name}-s{s}", *overrides, f"seed={s}", "eval.episodes=20")[key] for s in range(seeds)]


def test_dqn_cartpole_475_at_50k_for_4_of_5_seeds(tmp_path):
    returns = _across_seeds(tmp_path, "eval_return_mean", "algo=dqn")
    assert sum(r >= 475 for r in returns) >= 4, returns


def test_dqn_gridworld_greedy_policy_optimal_in_90_percent_of_states(tmp_path):
    fractions = _across_seeds(tmp_path, "optimal_action_fraction", "algo=dqn", "env=gridworld", seeds=3)
    assert min(fractions) >= 0.9, fractions


def test_a2c_cartpole_475_within_200k_for_4_of_5_seeds(tmp_path):
    returns = _across_seeds(tmp_path, "eval_return_mean", "algo=a2c")
    assert sum(r >= 475 for r in returns) >= 4, returns


def test_reinforce_cartpole_475_within_300k_for_3_of_5_seeds(tmp_path):
    returns = _across_seeds(tmp_path, "eval_return_mean", "algo=reinforce")
    assert sum(r >= 475 for r in returns) >= 3, returns


def test_qac_gridworld_greedy_policy_optimal_in_90_percent_of_states(tmp_path):
    fractions = _across_seeds(tmp_path, "optimal_action_fraction", "algo=qac", "env=gridworld")
    assert min(fractions) >= 0.9, fractions


def test_qac_cartpole_475_at_100k_for_4_of_5_seeds(tmp_path):
    # its defaults: the expected actor step and plain gradient steps (README: every seed at 500 in the benchmark)
    returns = _across_seeds(tmp_path, "eval_return_mean", "algo=qac")
    assert sum(r >= 475 for r in returns) >= 4, returns


def test_off_policy_ac_cartpole_475_at_100k_for_4_of_5_seeds(tmp_path):
    # its default behaviour mixture, ε 0.5 → 0.2 over 50k steps (README: single runs of seeds 0-4 all at 500; a
    # constant ε 0.5 ended at 3/5, its low seeds letting the cart drift off the track)
    returns = _across_seeds(tmp_path, "eval_return_mean", "algo=off_policy_ac")
    assert sum(r >= 475 for r in returns) >= 4, returns


@pytest.mark.parametrize("algo", ["trpo", "ppo"])
def test_trust_region_cartpole_475_at_100k_for_4_of_5_seeds(tmp_path, algo):
    returns = _across_seeds(tmp_path, "eval_return_mean", f"algo={algo}")
    assert sum(r >= 475 for r in returns) >= 4, returns


@pytest.mark.parametrize("algo", ["trpo", "ppo", "a2c"])
def test_on_policy_pendulum_minus_200_at_the_zoo_budget_for_4_of_5_seeds(tmp_path, algo):
    # rl-baselines3-zoo's presets with gSDE (100k steps; A2C 1M), 50 evaluation episodes as in the benchmark cells
    returns = [_summary(tmp_path, f"{algo}-s{s}", f"algo={algo}", "env=pendulum", f"seed={s}", "eval.episodes=50")[
        "eval_return_mean"] for s in range(5)]  # fmt: skip
    assert sum(r >= -200 for r in returns) >= 4, returns


def _within_1_percent_of_the_optimum(tmp_path, algo):
    """Per seed 0–4: does ``algo``'s GridWorld evaluation come within 1 % of value iteration's on the same start
    cells? Returns the flags, the returns and the optima."""
    learned = _across_seeds(tmp_path, "eval_return_mean", f"algo={algo}", "env=gridworld")
    optimal = _across_seeds(tmp_path, "eval_return_mean", "algo=value_iteration", "env=gridworld")
    return [r >= o - 0.01 * abs(o) for r, o in zip(learned, optimal, strict=True)], learned, optimal


def test_reinforce_gridworld_within_1_percent_of_the_optimum_on_its_own_start_cells(tmp_path):
    within, *returns = _within_1_percent_of_the_optimum(tmp_path, "reinforce")
    assert all(within), returns


@pytest.mark.parametrize("algo", ["sarsa", "expected_sarsa", "nstep_sarsa", "qlearning"])
def test_td_control_gridworld_within_1_percent_of_the_optimum_for_4_of_5_seeds(tmp_path, algo):
    within, *returns = _within_1_percent_of_the_optimum(tmp_path, algo)
    assert sum(within) >= 4, returns


@pytest.mark.parametrize("algo", ["ddpg", "td3"])
def test_deterministic_policy_gradient_pendulum_minus_200_at_20k_for_4_of_5_seeds(tmp_path, algo):
    returns = _across_seeds(tmp_path, "eval_return_mean", f"algo={algo}")
    assert sum(r >= -200 for r in returns) >= 4, returns


def test_grpo_arithmetic_gains_30_points_of_heldout_accuracy_for_3_of_3_seeds(tmp_path):
    summaries = [_summary(tmp_path, f"grpo-s{s}", "algo=grpo", f"seed={s}")["heldout"] for s in range(3)]
    gains = [h["final"]["exact_answer"] - h["after_warm_start"]["exact_answer"] for h in summaries]
    assert min(gains) >= 0.30, gains


def test_grpo_gridworld_text_greedy_return_within_10_percent_of_optimal_for_2_of_2_seeds(tmp_path):
    runs = [_summary(tmp_path, f"grpo-gw-s{s}", "algo=grpo", "env=gridworld_text", f"seed={s}") for s in range(2)]
    fractions = [r["heldout"]["final"]["fraction_of_optimal"] for r in runs]
    assert min(fractions) >= 0.9, fractions


def _heldout_gains(tmp_path, *overrides, seeds=3, key="exact_answer"):
    """Held-out success (the reward ``key``) after the run minus after its warm start, for seeds 0 … seeds − 1."""
    name = "-".join(o.split("=")[-1] for o in overrides)
    runs = [_summary(tmp_path, f"{name}-s{s}", *overrides, f"seed={s}")["heldout"] for s in range(seeds)]
    return [h["final"][key] - h["after_warm_start"][key] for h in runs]


@pytest.mark.parametrize("method", ["gspo", "cispo", "rloo", "reinforce_pp", "dapo", "dr_grpo", "kimi"])
def test_llm_family_arithmetic_median_gain_30_points_over_3_seeds(tmp_path, method):
    gains = _heldout_gains(tmp_path, f"experiment={method}")
    assert sorted(gains)[1] >= 0.30, gains


def test_grpo_countdown_median_gain_20_points_over_3_seeds(tmp_path):
    gains = _heldout_gains(tmp_path, "experiment=grpo_countdown", key="correct_equation")
    assert sorted(gains)[1] >= 0.20, gains


def test_dpo_arithmetic_median_gain_15_points_over_3_seeds(tmp_path):
    gains = _heldout_gains(tmp_path, "experiment=dpo")
    assert sorted(gains)[1] >= 0.15, gains


@pytest.mark.parametrize("overrides", [("experiment=gspo_gridworld_text",), ("algo=kimi", "env=gridworld_text")])
def test_gspo_and_kimi_gridworld_text_within_10_percent_of_optimal_for_2_of_2_seeds(tmp_path, overrides):
    runs = [_summary(tmp_path, f"gw-s{s}", *overrides, f"seed={s}") for s in range(2)]
    fractions = [r["heldout"]["final"]["fraction_of_optimal"] for r in runs]
    assert min(fractions) >= 0.9, fractions
