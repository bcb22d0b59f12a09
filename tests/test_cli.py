"""End-to-end: ``python -m rlzoo.train`` in a subprocess and the run directory it leaves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rlzoo.agents import AGENTS, Agent
from rlzoo.checkpoint import load_checkpoint

from .helpers import run_cli, scalars

SUMMARY_KEYS = {
    "algo",
    "env",
    "seed",
    "total_steps",
    "wall_seconds",
    "sps",
    "eval_return_mean",
    "eval_return_std",
    "eval_return_initial",
    "value_error",
}


def test_default_command_writes_the_whole_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli("algo=value_iteration", "env=gridworld", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert (summary["algo"], summary["env"], summary["seed"]) == ("value_iteration", "gridworld", 0)
    assert summary["value_error"] < 1e-6 and summary["optimal_action_fraction"] == 1.0
    assert summary["eval_return_mean"] > summary["eval_return_initial"]
    with np.load(run_dir / "tables.npz") as t:
        assert t["v"].shape == (25,) and t["q"].shape == (25, 5) and t["policy"].shape == (25, 5)
    assert (run_dir / "values_policy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    tags = scalars(run_dir)
    assert {"truth/value_error", "truth/optimal_action_fraction", "eval/return_mean", "losses/value_change"} <= set(
        tags
    )
    errors = [v for _, v in tags["truth/value_error"]]
    assert errors[-1] < 1e-6 < errors[0]
    assert [s for s, _ in tags["truth/value_error"]] == list(range(summary["steps"] + 1))  # 0: untrained
    agent = Agent.load(run_dir / "checkpoints" / "final.pt")
    assert [agent.act(s) for s in range(25)] == list(np.argmax(np.load(run_dir / "tables.npz")["policy"], axis=1))
    assert "it/s" not in proc.stderr and "step/s" not in proc.stderr  # no progress bar without a TTY
    assert str(run_dir) in proc.stdout + proc.stderr  # tells where the TensorBoard logs are


@pytest.mark.parametrize("algo", ["policy_iteration", "truncated_policy_iteration", "policy_evaluation"])
def test_each_planner_through_the_cli_with_overrides(tmp_path, algo):
    run_dir = tmp_path / algo
    proc = run_cli(
        f"algo={algo}",
        "seed=3",
        "total_steps=40",
        "algo.gamma=0.8",
        "algo.tol=1e-30",
        "env.slip=0.1",
        "checkpoint.every=5",
        "checkpoint.keep=2",
        f"hydra.run.dir={run_dir}",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["seed"] == 3 and summary["algo_config"]["gamma"] == 0.8
    assert summary["value_error_target"] == ("v_pi" if algo == "policy_evaluation" else "v*")
    periodic = sorted(p.name for p in (run_dir / "checkpoints").glob("step_*.pt"))
    last = summary["steps"] // 5 * 5  # every 5 iterations, the newest two kept
    if last >= 10:
        assert periodic == [f"step_{last - 5:010d}.pt", f"step_{last:010d}.pt"]
        assert load_checkpoint(run_dir / "checkpoints" / periodic[-1])["state"]["num_timesteps"] == last


def test_progress_bar_on_request(tmp_path):
    proc = run_cli("log.progress=true", "total_steps=20", "algo.tol=1e-30", f"hydra.run.dir={tmp_path / 'r'}")
    assert proc.returncode == 0 and "20/20" in proc.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["algo.gamma=2"], "algo.gamma=2.0 is out of range"),
        (["env.layout=[T..,..x]"], "unknown character 'x'"),
        (["algo=nope"], "nope"),
        (["algo.nope=1"], "nope"),
        (["env.obs=coords"], "needs Discrete observations"),
        (["env=cartpole"], "algo=value_iteration plans on the env's exact model, but CartPole-v1 exposes none"),
        (["algo=dqn", "env=gridworld", "env.obs=index"], "algo=dqn needs flat Box observations"),
        (["algo=ddpg", "env=cartpole"], "algo=ddpg needs a continuous (1-D Box) action space"),
        (["algo=td3", "algo.noise=pink"], "algo.noise='pink' is not allowed: choose one of gaussian, ou"),
    ],
)
def test_bad_config_is_one_clear_error_without_traceback(tmp_path, args, needle):
    proc = run_cli(*args, f"hydra.run.dir={tmp_path / 'r'}")
    assert proc.returncode != 0
    assert needle in proc.stderr and "Traceback" not in proc.stderr + proc.stdout
    assert not (tmp_path / "r" / "summary.json").exists()


@pytest.mark.parametrize("args", [["algo.gamma=2"], ["--info", "searchpath"]])
def test_a_forked_command_line_run_is_what_a_new_interpreter_gives(tmp_path, args):
    """``run_cli``'s fork server (tests/cli_server.py) against ``python -m rlzoo.train`` in a new interpreter, both in
    the same working directory: the same exit code, output and error stream (runpy's warning about an already
    imported module, for one, would differ)."""
    forked = run_cli(*args, f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path)
    fresh = subprocess.run([sys.executable, "-m", "rlzoo.train", *args, f"hydra.run.dir={tmp_path / 'r'}"],
                           capture_output=True, text=True, cwd=tmp_path, stdin=subprocess.DEVNULL,
                           env={k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"})  # fmt: skip
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)


def test_existing_run_is_never_overwritten(tmp_path):
    run_dir = tmp_path / "r"
    assert run_cli(f"hydra.run.dir={run_dir}").returncode == 0
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    proc = run_cli("seed=5", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2 and "already holds a finished run" in proc.stderr
    after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert after == before  # not one byte of the finished run changed, .hydra/ and train.log included


def test_multirun_sweep_writes_one_run_per_job(tmp_path):
    proc = run_cli("--multirun", "algo=value_iteration,policy_iteration", "seed=0,1", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    summaries = sorted(tmp_path.glob("*/summary.json"))
    assert len(summaries) == 4
    got = {(json.loads(p.read_text())["algo"], json.loads(p.read_text())["seed"]) for p in summaries}
    assert got == {(a, s) for a in ("value_iteration", "policy_iteration") for s in (0, 1)}


def test_evaluate_cli_on_a_run_directory(tmp_path):
    run_dir = tmp_path / "r"
    assert run_cli(f"hydra.run.dir={run_dir}").returncode == 0
    proc = run_cli(str(run_dir), "--episodes", "3", module="rlzoo.evaluate")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("value_iteration: return ")
    assert "Warning" not in proc.stderr
    bad = run_cli(str(tmp_path / "missing.pt"), module="rlzoo.evaluate")
    assert bad.returncode == 2 and "no such checkpoint" in bad.stderr


def test_tabular_learner_on_the_book_episodic_preset(tmp_path):
    run_dir = tmp_path / "sarsa"
    proc = run_cli("algo=sarsa", "experiment=book_episodic", "total_steps=20000", "algo.log_every=500",
                   f"hydra.run.dir={run_dir}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    tags = scalars(run_dir)
    for tag in ("charts/episodic_return", "charts/episodic_length", "truth/value_error",
                "truth/optimal_action_fraction", "eval/return_mean"):  # fmt: skip
        assert tag in tags, tag
    assert [s for s, _ in tags["truth/value_error"]] == list(range(0, 20001, 500))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["eval_return_mean"] > summary["eval_return_initial"]
    assert (run_dir / "tables.npz").is_file() and (run_dir / "values_policy.png").is_file()


def test_tabular_learner_on_a_gymnasium_toy_text_env(tmp_path):
    run_dir = tmp_path / "lake"
    proc = run_cli("algo=qlearning", "env=frozenlake", "total_steps=5000", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env_id"] == "FrozenLake-v1" and "value_error" in summary
    with np.load(run_dir / "tables.npz") as t:
        assert t["q"].shape == (16, 4)
    assert not (run_dir / "values_policy.png").exists()  # pictures are drawn for GridWorld layouts only


def test_help_lists_every_algorithm_env_experiment_and_sweep_that_exists():
    proc = run_cli("--help")
    assert proc.returncode == 0 and proc.stdout.startswith("rlzoo: train, compare and sweep RL agents")
    assert "Usage: python -m rlzoo.train algo=<algorithm>" in proc.stdout
    listed = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if line.split(": ")[0] in GROUPS)
    conf = Path(__file__).resolve().parents[1] / "conf"
    for group in GROUPS:
        assert listed[group].split(", ") == sorted(p.stem for p in (conf / group).glob("*.yaml")), group
    assert set(listed["algo"].split(", ")) == set(AGENTS)


GROUPS = ("algo", "env", "experiment", "sweep", "bench", "tune")
