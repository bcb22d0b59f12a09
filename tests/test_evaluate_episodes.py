"""``rlzoo.evaluate`` refuses to evaluate fewer than one episode (the mean of no returns printed ``nan``)."""

from __future__ import annotations

import gymnasium as gym
import pytest

import rlzoo
from rlzoo.envs import GRIDWORLD_ID
from rlzoo.evaluate import evaluate

from .helpers import run_cli


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A run directory holding a trained value-iteration agent's ``checkpoints/final.pt``."""
    run_dir = tmp_path_factory.mktemp("run")
    agent = rlzoo.make_agent("value_iteration", gym.make(GRIDWORLD_ID), seed=0)
    agent.learn(5)
    agent.save(run_dir / "checkpoints" / "final.pt")
    return run_dir


@pytest.mark.parametrize("episodes", [0, -3])
def test_the_cli_rejects_fewer_than_one_episode_in_one_line(checkpoint, episodes):
    proc = run_cli(str(checkpoint), "--episodes", str(episodes), module="rlzoo.evaluate")
    assert proc.returncode == 2
    assert proc.stdout == "" and "Traceback" not in proc.stderr and "nan" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"rlzoo.evaluate: --episodes {episodes} is not allowed: give 1 or more"]


def test_the_cli_still_evaluates_one_episode(checkpoint):
    proc = run_cli(str(checkpoint), "--episodes", "1", module="rlzoo.evaluate")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("value_iteration: return ") and "over 1 episodes" in proc.stdout
    assert "nan" not in proc.stdout


@pytest.mark.parametrize("episodes", [0, -1])
def test_evaluate_raises_for_fewer_than_one_episode(episodes):
    env = rlzoo.envs.GridWorld()
    agent = rlzoo.make_agent("value_iteration", env, seed=0)
    with pytest.raises(ValueError, match=rf"^episodes={episodes} is not allowed: evaluate at least 1 episode$"):
        evaluate(agent, env, episodes)
    assert len(evaluate(agent, env, 1, max_episode_steps=5).returns) == 1
