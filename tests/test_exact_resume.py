"""Exact resume: a run interrupted at any step and resumed ends with the same weights, tables and TensorBoard
scalars, bit for bit, as the run that was never interrupted."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rlzoo.agents import agent_class
from rlzoo.checkpoint import load_checkpoint
from rlzoo.train import resolve, train

from .helpers import composed, scalars


def args(line: str) -> list[str]:
    return line.split()


# (run, the step from which the first process dies at its next update: past a checkpoint, with steps logged after it
# that the resumed run must replace)
RUNS = {
    "sarsa": (args("algo=sarsa env.slip=0.1 total_steps=3000 algo.log_every=250 checkpoint.every=1000"), 2100),
    "nstep_sarsa": (args("algo=nstep_sarsa algo.n=4 env.slip=0.1 total_steps=3000 algo.log_every=250 "
                    "checkpoint.every=1000"), 2345),
    "value_iteration": (args("algo=value_iteration env.slip=0.2 total_steps=40 algo.tol=1e-12 checkpoint.every=10"),
                        23),
    "dqn": (args("algo=dqn env=cartpole total_steps=1500 algo.learning_starts=300 algo.hidden=[16] algo.log_every=100 "
            "checkpoint.every=500 eval.episodes=2"), 1234),
    "ppo": (args("algo=ppo env=cartpole total_steps=2048 algo.n_steps=64 algo.n_envs=4 algo.batch_size=64 "
            "algo.log_every=256 checkpoint.every=512 eval.episodes=2"), 1700),
    "ddpg": (args("algo=ddpg env=pendulum total_steps=900 algo.learning_starts=200 algo.hidden=[16] algo.log_every=100 "
             "checkpoint.every=300 eval.episodes=1"), 700),
    "grpo": (args("algo=grpo env=arithmetic total_steps=6 algo.model.n_layer=1 algo.model.d_model=32 "
             "algo.model.n_head=2 algo.prompts_per_step=4 algo.num_generations=4 algo.sft_steps=5 "
             "algo.eval_prompts=8 algo.log_every=2 checkpoint.every=2 eval.episodes=2"), 5),
}  # fmt: skip
WALL_CLOCK_TAGS = {"charts/SPS", "charts/generation_tokens_per_s", "charts/training_tokens_per_s"}


class Killed(BaseException):
    """The process dies: nothing catches it, the rest of the run is lost."""


def interrupted_at(monkeypatch, algo: str, step: int) -> list[int]:
    """Make the next run of ``algo`` die as soon as an update would start at or past env step ``step``; returns
    the list that receives the step at which it died."""
    cls, died = agent_class(algo), []
    advance = cls.advance

    def dying_advance(agent, n_steps, logger):
        if agent.num_timesteps >= step:
            died.append(agent.num_timesteps)
            raise Killed
        return advance(agent, n_steps, logger)

    monkeypatch.setattr(cls, "advance", dying_advance)
    return died


def same(a, b, where="state") -> None:
    """Bit-identical nested checkpoint contents."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), where
    else:
        assert a == b, where


def outcome(run_dir):
    final = load_checkpoint(run_dir / "checkpoints" / "final.pt")
    tags = {tag: points for tag, points in scalars(run_dir).items() if tag not in WALL_CLOCK_TAGS}
    summary = json.loads((run_dir / "summary.json").read_text())
    return final["state"], final["global_rng"], tags, summary


@pytest.mark.parametrize("algo", list(RUNS))
def test_a_killed_and_resumed_run_ends_bit_identical_to_the_uninterrupted_one(tmp_path, monkeypatch, algo):
    overrides, kill_at = RUNS[algo]
    spec = resolve(composed(*overrides))
    train(spec, tmp_path / "whole")
    with monkeypatch.context() as patch:
        died = interrupted_at(patch, algo, kill_at)
        with pytest.raises(Killed):
            train(spec, tmp_path / "killed")
    assert not (tmp_path / "killed" / "summary.json").exists()
    train(resolve(composed(*overrides, "resume=true")), tmp_path / "killed")
    whole, resumed = outcome(tmp_path / "whole"), outcome(tmp_path / "killed")
    same(whole[0], resumed[0])
    same(whole[1], resumed[1], "global_rng")
    assert whole[2] == resumed[2]  # every TensorBoard scalar at every step, nothing twice, nothing missing
    assert resumed[3]["resumes"] == [{"from_step": resumed[3]["resumed_from_step"], "exact": True,
                                      "why_not_exact": None, "changes": {}}]  # fmt: skip
    assert 0 < resumed[3]["resumed_from_step"] < died[0]  # it lost steps, and logged some that had to go
    for key in ("eval_return_mean", "eval_return_std", "steps"):
        assert whole[3][key] == resumed[3][key]


def test_a_resume_that_cannot_restore_the_envs_says_so(tmp_path, monkeypatch, caplog):
    overrides = [*RUNS["ppo"][0], "algo.vector_mode=async", "algo.n_envs=2"]  # envs in subprocesses: not picklable
    spec = resolve(composed(*overrides))
    with monkeypatch.context() as patch:
        interrupted_at(patch, "ppo", 1200)
        with pytest.raises(Killed):
            train(spec, tmp_path / "run")
    payload = load_checkpoint(sorted((tmp_path / "run" / "checkpoints").glob("step_*.pt"))[-1])
    assert "error" in payload["live"]
    train(resolve(composed(*overrides, "resume=true")), tmp_path / "run")
    warned = [r.getMessage() for r in caplog.records if "not exactly" in r.getMessage()]
    assert len(warned) == 1 and "the env state could not be saved" in warned[0]
    (resume,) = json.loads((tmp_path / "run" / "summary.json").read_text())["resumes"]
    assert resume["exact"] is False and resume["why_not_exact"].startswith("the env state could not be saved")
    assert json.loads((tmp_path / "run" / "run.json").read_text())["resumes"] == [resume]


def test_a_resumed_run_s_event_file_is_read_after_the_interrupted_run_s(tmp_path):
    """TensorBoard reads event files in name order, which starts with the creation second: a resumed run's file
    made in the same second as the interrupted run's could sort first and put its curve before the older one."""
    from rlzoo.logging import RunLogger

    RunLogger(tmp_path, 10).close()
    RunLogger(tmp_path, 10, start_step=5).close()
    names = sorted(p.name for p in tmp_path.glob("events.out.tfevents.*"))
    assert len(names) == 2 and int(names[0].split(".")[3]) < int(names[1].split(".")[3])
