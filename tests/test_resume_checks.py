"""Resume checks what it resumes (algorithm, seed, every algo/env key; only cadence keys may change, and are
recorded), and a failed final checkpoint loses neither the summary nor the tables."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import pytest

from rlzoo import make_agent
from rlzoo.agents import Agent
from rlzoo.checkpoint import Checkpointer, load_checkpoint, save_checkpoint
from rlzoo.config import ConfigError
from rlzoo.train import FinalArtefactError, resolve, train

from .helpers import composed, run_cli, scalars

BASE = ("algo=sarsa", "total_steps=2000", "checkpoint.every=500", "log.progress=false", "eval.episodes=1")


def interrupted_run(run_dir: Path) -> None:
    """A sarsa run with checkpoints whose process 'died' before writing its summary."""
    train(resolve(composed(*BASE)), run_dir)
    (run_dir / "summary.json").unlink()


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("algo=qlearning", r"algo: 'sarsa' → 'qlearning'"),
        ("algo.alpha=0.5", r"algo\.alpha: 0\.1 → 0\.5"),
        ("env.slip=0.1", r"env\.slip: 0\.0 → 0\.1"),
        ("seed=3", r"seed: 0 → 3"),
    ],
)
def test_resume_refuses_settings_the_run_did_not_train_with(tmp_path, override, named):
    interrupted_run(tmp_path / "run")
    spec = resolve(composed(*BASE, "resume=true", override))
    with pytest.raises(ConfigError, match=f"resume=true with settings the run did not train with \\({named}\\)"):
        train(spec, tmp_path / "run")
    assert not (tmp_path / "run" / "summary.json").exists()


def test_resume_applies_and_records_cadence_changes(tmp_path):
    interrupted_run(tmp_path / "run")
    spec = resolve(composed(*BASE, "resume=true", "total_steps=3000", "algo.log_every=250"))
    summary = train(spec, tmp_path / "run")
    assert summary["steps"] == 3000 and summary["resumed_from_step"] == 2000
    assert summary["resumed_with_changes"] == {"algo.log_every": [1000, 250]}
    assert summary["algo_config"]["log_every"] == 250


def test_a_fresh_start_records_what_it_trains(tmp_path):
    train(resolve(composed(*BASE, "algo.alpha=0.2")), tmp_path / "run")
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["algo"] == "sarsa" and record["algo_config"]["alpha"] == 0.2 and record["env"]["slip"] == 0.0


def test_a_failed_final_checkpoint_keeps_the_summary_and_tables(tmp_path, monkeypatch):
    def fail(self, agent):
        raise OSError("No space left on device")

    monkeypatch.setattr(Checkpointer, "save_final", fail)
    with pytest.raises(FinalArtefactError, match=r"checkpoints/final\.pt could not be written \(OSError: No space"):
        train(resolve(composed(*BASE)), tmp_path / "run")
    assert (tmp_path / "run" / "summary.json").exists() and (tmp_path / "run" / "tables.npz").exists()


def test_a_run_killed_before_its_first_checkpoint_starts_clean(tmp_path):
    run_dir = tmp_path / "run"
    train(resolve(composed(*BASE, "checkpoint.every=0")), run_dir)
    for leftover in ("summary.json", "checkpoints/final.pt"):  # as if killed before any checkpoint
        (run_dir / leftover).unlink()
    train(resolve(composed(*BASE, "checkpoint.every=0", "resume=true")), run_dir)
    curves = scalars(run_dir)
    assert [step for step, _ in curves["eval/return_mean"]] == [0, 2000]
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1


SMALL = {
    "dqn": ("CartPole-v1", {"learning_starts": 50}, 120),
    "ddpg": ("Pendulum-v1", {"learning_starts": 50, "batch_size": 16}, 120),
    "nstep_sarsa": ("rlzoo/GridWorld-v0", {}, 120),
    "reinforce": ("CartPole-v1", {"baseline": False, "n_envs": 2, "n_steps": 16}, 32),
}


@pytest.mark.parametrize("algo", sorted(SMALL))
def test_checkpoints_written_before_the_spaces_were_saved_still_load(tmp_path, algo):
    """Old payloads: no "spaces"; REINFORCE without a baseline saved no "critic"; buffers and n-step queues are
    not the size of a fresh agent's (they must not be taken for another env's spaces)."""
    env_id, hyperparams, steps = SMALL[algo]
    agent = make_agent(algo, gym.make(env_id), seed=0, **hyperparams).learn(steps)
    payload = load_checkpoint(agent.save(tmp_path / "new.pt"))
    payload.pop("spaces")
    if algo == "reinforce":
        payload["state"].pop("critic")
    save_checkpoint(tmp_path / "old.pt", payload)
    loaded = Agent.load(tmp_path / "old.pt")
    assert loaded.num_timesteps == agent.num_timesteps


def test_resuming_a_checkpoint_of_another_env_is_one_config_error(tmp_path):
    interrupted_run(tmp_path / "run")
    (tmp_path / "run" / "run.json").unlink()  # a run directory from before run.json
    spec = resolve(composed(*BASE, "resume=true", "env.layout=[..T,...]"))
    with pytest.raises(ConfigError, match=r"resume=true cannot continue from .*step_\d+\.pt: .*observation_space"):
        train(spec, tmp_path / "run")


def test_the_old_algo_total_steps_override_is_one_line():
    proc = run_cli("algo=sarsa", "algo.total_steps=5")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "rlzoo: config error: algo.total_steps is not a known key: the budget is the top-level total_steps=<n>"
    ]


def test_a_layout_file_edited_since_the_run_started_is_refused_on_resume(tmp_path):
    layout = tmp_path / "maze.txt"
    layout.write_text("S...\n.#..\n...T\n")
    interrupted_run_of = ("algo=sarsa", "total_steps=2000", "checkpoint.every=500", f"env.layout_file={layout}")
    train(resolve(composed(*interrupted_run_of)), tmp_path / "run")
    (tmp_path / "run" / "summary.json").unlink()
    layout.write_text("S...\n..#.\n...T\n")  # same name, same size, another maze
    with pytest.raises(ConfigError, match=r"env\.layout_file_sha256: '[0-9a-f]{64}' → '[0-9a-f]{64}'"):
        train(resolve(composed(*interrupted_run_of, "resume=true")), tmp_path / "run")


@pytest.mark.slow  # three CLI processes: 10 s; refused resumes in-process stay fast
def test_a_refused_resume_through_the_cli_leaves_the_run_record_untouched(tmp_path):
    run_dir = tmp_path / "run"
    assert run_cli(*BASE, f"hydra.run.dir={run_dir}").returncode == 0
    (run_dir / "summary.json").unlink()  # as if killed before the end
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    proc = run_cli(*BASE, "resume=true", "algo.alpha=0.5", f"++hydra.run.dir={run_dir}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "algo.alpha: 0.1 → 0.5" in proc.stderr.strip().splitlines()[-1]
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before  # .hydra/ and the lock too
    proc = run_cli(*BASE, "resume=true", "total_steps=2500", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    assert (run_dir / ".hydra" / "start1" / "config.yaml").read_bytes() == before[run_dir / ".hydra" / "config.yaml"]
    assert "total_steps: 2500" in (run_dir / ".hydra" / "config.yaml").read_text()  # what the resumed run trains


def test_a_multirun_into_a_sweep_directory_with_files_is_refused_up_front(tmp_path):
    (tmp_path / "0-earlier").mkdir()
    proc = run_cli("--multirun", "algo=value_iteration", "seed=0,1", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"hydra.sweep.dir={tmp_path} already holds files" in proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["0-earlier"]
