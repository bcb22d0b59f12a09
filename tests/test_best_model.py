"""The best model: with periodic evaluation ``checkpoints/best.pt`` holds the agent at its best evaluation (ties: the
later), ``summary.json`` its step and return, and ``Agent.load`` / ``rlzoo.evaluate`` pick ``best`` or ``last``."""

from __future__ import annotations

import json
import math

import pytest

from rlzoo.agents import Agent
from rlzoo.checkpoint import BestCheckpoint, run_checkpoint
from rlzoo.evaluate import evaluate, evaluation_seed
from rlzoo.evaluate import main as evaluate_main
from rlzoo.train import resolve, train

from .helpers import composed, scalars

RUN = ("algo=qlearning", "total_steps=6000", "eval.every=1000", "algo.epsilon=0.5", "checkpoint.every=0")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("best") / "run"
    train(resolve(composed(*RUN)), path)
    return path


def test_best_pt_is_the_agent_at_the_best_evaluation_and_the_summary_says_which(run_dir):
    curve = scalars(run_dir)["eval/return_mean"]  # initial, every 1 000 steps, final
    best_value = max(v for _, v in curve)
    best_step = max(s for s, v in curve if v == best_value)  # ties: the later evaluation
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["best"]["step"] == best_step
    assert summary["best"]["eval_return"] == pytest.approx(best_value)
    assert json.loads((run_dir / "checkpoints" / "best.json").read_text()) == summary["best"]
    spec = resolve(composed(*RUN))
    best, last = Agent.load(run_dir, which="best"), Agent.load(run_dir)
    assert best.num_timesteps == best_step and last.num_timesteps == 6000
    ev = spec.run.eval
    again = evaluate(best, best.env, ev.episodes, seed=evaluation_seed(spec.run.seed, ev.episodes),
                     deterministic=ev.deterministic, max_episode_steps=ev.max_episode_steps)  # fmt: skip
    assert again.mean == pytest.approx(best_value)  # the same evaluation of the saved agent


def test_the_evaluate_command_picks_best_or_last(run_dir, capsys):
    best_value = json.loads((run_dir / "summary.json").read_text())["best"]["eval_return"]
    spec = resolve(composed(*RUN))
    seed = str(evaluation_seed(spec.run.seed, spec.run.eval.episodes))  # the run's own evaluation episodes
    assert evaluate_main([str(run_dir), "--checkpoint", "best", "--episodes", "10", "--seed", seed]) == 0
    assert capsys.readouterr().out.startswith(f"qlearning: return {best_value:.3f}")
    with pytest.raises(SystemExit) as bad:
        evaluate_main([str(run_dir), "--checkpoint", "worst"])
    assert bad.value.code == 2 and "invalid choice: 'worst'" in capsys.readouterr().err


def test_ties_go_to_the_later_evaluation_and_a_resume_goes_on_from_the_record(tmp_path):
    class Saving:
        def __init__(self):
            self.saved = []

        def save(self, path):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(str(len(self.saved)))
            self.saved.append(path)

    agent, best = Saving(), BestCheckpoint(tmp_path)
    assert best.summary() is None
    results = [best.consider(agent, step, value) for step, value in [(0, 1.0), (10, 3.0), (20, 3.0), (30, 2.0),
                                                                     (40, math.nan)]]  # fmt: skip
    assert results == [True, True, True, False, False]
    assert best.summary() == {"step": 20, "eval_return": 3.0} and (tmp_path / "best.pt").read_text() == "2"
    resumed = BestCheckpoint(tmp_path)
    assert resumed.summary() == {"step": 20, "eval_return": 3.0}
    assert not resumed.consider(agent, 50, 2.5) and resumed.consider(agent, 60, 3.0)


def test_without_periodic_evaluation_there_is_no_best_and_asking_for_it_is_one_line(tmp_path):
    train(resolve(composed("algo=qlearning", "total_steps=500", "checkpoint.every=0")), tmp_path / "run")
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["best"] is None
    with pytest.raises(ValueError, match=r"has no checkpoints/best.pt \(kept only with periodic evaluation"):
        run_checkpoint(tmp_path / "run", "best")
    with pytest.raises(ValueError, match=r"^which='worst' is not allowed: choose one of last, best$"):
        run_checkpoint(tmp_path / "run", "worst")


def test_runs_of_different_seeds_evaluate_on_disjoint_start_states():
    sets = [set(range(evaluation_seed(s, 10), evaluation_seed(s, 10) + 10)) for s in range(20)]
    assert all(a.isdisjoint(b) for i, a in enumerate(sets) for b in sets[i + 1 :])
    assert evaluation_seed(0, 10) == 1_000_000  # seed 0's evaluation episodes are those of earlier versions
