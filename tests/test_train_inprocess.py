"""Training in-process: reproducibility and the logged tags."""

from __future__ import annotations

import json

import pytest

from rlzoo.train import resolve, train

from .helpers import composed, scalars

TIMING_KEYS = {"wall_seconds", "sps", "eval_seconds"}


def _run(tmp_path, name, *overrides):
    spec = resolve(composed(*overrides))
    train(spec, tmp_path / name)
    summary = json.loads((tmp_path / name / "summary.json").read_text())
    tags = {k: v for k, v in scalars(tmp_path / name).items() if k != "charts/SPS"}
    return {k: v for k, v in summary.items() if k not in TIMING_KEYS}, tags


def test_same_seed_same_numbers(tmp_path):
    args = ("algo=truncated_policy_iteration", "env.slip=0.2", "seed=4", "eval.deterministic=false")
    first, second = _run(tmp_path, "a", *args), _run(tmp_path, "b", *args)
    assert first == second
    other = _run(tmp_path, "c", *args[:-2], "seed=5", "eval.deterministic=false")
    assert other[0]["eval_return_mean"] != first[0]["eval_return_mean"]  # the seed matters (stochastic eval)


PLANNERS = ["value_iteration", "policy_iteration", "truncated_policy_iteration", "policy_evaluation"]
LEARNERS = ["td0", "sarsa", "expected_sarsa", "nstep_sarsa", "qlearning"]
MONTE_CARLO = ["mc_basic", "mc_exploring_starts", "mc_epsilon_greedy"]


@pytest.mark.parametrize("algo", PLANNERS + LEARNERS + MONTE_CARLO)
def test_every_algorithm_runs_the_whole_pipeline(tmp_path, algo):
    summary, tags = _run(tmp_path, algo, f"algo={algo}", "total_steps=3000", "checkpoint.every=1000")
    # planners stop at convergence; MC finishes its last episode (MC Basic: its last sweep of S·A episodes)
    limit = {"mc_basic": 3000 + 25 * 5 * 100, "mc_exploring_starts": 3100, "mc_epsilon_greedy": 3100}.get(algo, 3000)
    assert summary["algo"] == algo and summary["steps"] <= limit
    assert "truth/value_error" in tags and "eval/return_mean" in tags
    assert (tmp_path / algo / "tables.npz").is_file() and (tmp_path / algo / "checkpoints" / "final.pt").is_file()


def test_learner_runs_are_reproducible_down_to_tensorboard(tmp_path):
    args = ("algo=sarsa", "env.slip=0.1", "total_steps=5000", "algo.log_every=250", "seed=2")
    first, second = _run(tmp_path, "a", *args), _run(tmp_path, "b", *args)
    assert first == second
    assert len(first[1]["charts/episodic_return"]) == 50


def test_dqn_pipeline_logs_losses_episodes_and_truth(tmp_path):
    summary, tags = _run(tmp_path, "dqn", "algo=dqn", "env=gridworld", "total_steps=1500", "algo.learning_starts=500",
                         "algo.hidden=[16]", "algo.log_every=500", "checkpoint.every=500")  # fmt: skip
    assert (
        summary["env_id"] == "rlzoo/GridWorld-v0" and summary["algo_config"]["double"] is True
    )  # dqn_gridworld preset
    for tag in ("losses/td_loss", "losses/q_values", "charts/epsilon", "charts/episodic_return", "truth/value_error",
                "truth/optimal_action_fraction", "eval/return_mean"):  # fmt: skip
        assert tag in tags, tag
    assert [s for s, _ in tags["truth/value_error"]] == [0, 500, 1000, 1500]
    assert sorted(p.name for p in (tmp_path / "dqn" / "checkpoints").iterdir())[-1] == "step_0000001500.pt"


@pytest.mark.parametrize("algo", ["ddpg", "td3"])
def test_deterministic_policy_gradient_pipeline_on_the_continuous_gridworld(tmp_path, algo):
    summary, tags = _run(tmp_path, algo, f"algo={algo}", "env=gridworld_continuous", "total_steps=600",
                         "algo.learning_starts=200", "algo.hidden=[16]", "algo.batch_size=32", "algo.log_every=200",
                         "checkpoint.every=300")  # fmt: skip
    assert summary["env_id"] == "rlzoo/GridWorldContinuous-v0" and summary["gradient_steps"] == 400
    expected = {
        "losses/critic_loss",
        "losses/actor_loss",
        "losses/q_values",
        "charts/episodic_return",
        "truth/policy_value_gap",
        "truth/optimal_action_fraction",
        "truth/critic_error",
        "eval/return_mean",
    }
    assert expected <= set(tags), expected - set(tags)
    assert [s for s, _ in tags["truth/policy_value_gap"]] == [0, 200, 400, 600]
    assert {"policy_value_gap", "optimal_action_fraction"} <= set(summary)


def test_periodic_evaluation_gives_a_learning_curve_off_the_training_clock(tmp_path):
    summary, tags = _run(tmp_path, "dqn", "algo=dqn", "total_steps=1200", "algo.learning_starts=200",
                         "algo.hidden=[16]", "algo.log_every=100", "eval.every=500", "eval.episodes=2")  # fmt: skip
    assert [s for s, _ in tags["eval/return_mean"]] == [0, 500, 1000, 1200]  # initial, every 500, final
    timing = json.loads((tmp_path / "dqn" / "summary.json").read_text())
    assert timing["eval_seconds"] > 0 and summary["steps"] == 1200
