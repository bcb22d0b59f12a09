"""Reliability: resume after SIGKILL, corrupted checkpoints, numerical guards, config fuzzing, reproducibility."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from hydra.errors import HydraException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlzoo import ConfigError, make_agent
from rlzoo.envs import make
from rlzoo.train import resolve, train

from .helpers import REPO, composed, run_cli, scalars

DQN_STEPS, DQN_CHECKPOINT_EVERY = 8000, 1000
DQN_RUN = ["algo=dqn", f"total_steps={DQN_STEPS}", "algo.learning_starts=500", "algo.log_every=500",
           f"checkpoint.every={DQN_CHECKPOINT_EVERY}", "checkpoint.keep=5", "algo.hidden=[32]"]  # fmt: skip


PPO_RUN = ["algo=ppo", "total_steps=40960", "algo.log_every=2048", "checkpoint.every=8192", "checkpoint.keep=5"]


def start_and_kill_after(run_dir, n_checkpoints: int, run=tuple(DQN_RUN)) -> None:
    """Start a run (DQN unless ``run`` says otherwise) and SIGKILL it once ``n_checkpoints`` checkpoints exist."""
    proc = subprocess.Popen([sys.executable, "-m", "rlzoo.train", *run, f"hydra.run.dir={run_dir}"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while len(list((run_dir / "checkpoints").glob("step_*.pt"))) < n_checkpoints:
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "summary.json").exists()


def epsilon_steps(run_dir):
    return [s for s, _ in scalars(run_dir)["charts/epsilon"]]


@pytest.mark.slow  # the fast tier's SIGKILL resume: the corrupted-checkpoint fallback below
def test_resume_after_sigkill_reaches_total_steps_without_gaps_or_duplicates(tmp_path):
    run_dir = tmp_path / "run"
    start_and_kill_after(run_dir, 1)
    proc = run_cli(*DQN_RUN, "resume=true", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    resumed = summary["resumed_from_step"]
    assert summary["steps"] == DQN_STEPS and resumed % DQN_CHECKPOINT_EVERY == 0 and resumed > 0
    assert epsilon_steps(run_dir) == list(range(500, DQN_STEPS + 1, 500))  # one point per log_every, none twice
    assert (run_dir / "checkpoints" / "final.pt").is_file()


@pytest.mark.slow  # 16 s; on-policy resumes are exact in the fast tier (test_exact_resume), SIGKILL is the one below
def test_on_policy_run_resumes_after_sigkill_without_gaps_or_duplicates(tmp_path):
    run_dir = tmp_path / "run"
    start_and_kill_after(run_dir, 1, tuple(PPO_RUN))
    proc = run_cli(*PPO_RUN, "resume=true", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 40960 and summary["resumed_from_step"] >= 8192
    assert [s for s, _ in scalars(run_dir)["losses/approx_kl"]] == list(range(2048, 40961, 2048))


def test_corrupted_checkpoint_falls_back_to_the_previous_one(tmp_path):
    run_dir = tmp_path / "run"
    start_and_kill_after(run_dir, 2)
    checkpoints = sorted((run_dir / "checkpoints").glob("step_*.pt"))
    newest, previous = checkpoints[-1], checkpoints[-2]
    newest.write_bytes(newest.read_bytes()[: len(newest.read_bytes()) // 2])  # truncated mid-write
    proc = run_cli(*DQN_RUN, "resume=true", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr
    assert f"skipping corrupted checkpoint {newest}" in proc.stdout + proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed_from_step"] == int(previous.stem.split("_")[1])
    assert epsilon_steps(run_dir) == list(range(500, DQN_STEPS + 1, 500))


def test_resume_without_checkpoints_is_refused_for_finished_runs(tmp_path):
    run_dir = tmp_path / "run"
    assert run_cli(f"hydra.run.dir={run_dir}").returncode == 0
    proc = run_cli("resume=true", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2 and "already holds a finished run" in proc.stderr


def test_numerical_blow_up_stops_with_the_quantity_and_step_and_keeps_checkpoints(tmp_path):
    run_dir = tmp_path / "run"
    # v_k = 6e307 · Σ 0.9^i overflows float64 in the third sweep
    proc = run_cli("algo=value_iteration", "env.r_other=6e307", "checkpoint.every=1", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 3
    assert "training stopped: tables/q is inf at step 3" in proc.stderr and "Traceback" not in proc.stderr
    kept = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert kept == ["step_0000000001.pt", "step_0000000002.pt"] and not (run_dir / "summary.json").exists()


def test_nan_in_a_config_is_named():
    with pytest.raises(ConfigError, match=r"^env.r_other=nan is not allowed: give a finite number$"):
        resolve(composed("env.r_other=nan"))


KEYS = ["seed", "total_steps", "algo.gamma", "algo.alpha", "algo.epsilon", "algo.n", "algo.tol", "env.slip",
        "env.obs", "env.start", "env.layout", "env.max_episode_steps", "eval.episodes", "checkpoint.every",
        "algo.behavior", "algo.alpha_schedule", "algo.features", "log.progress"]  # fmt: skip
VALUES = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["abc", "[1,2,3]", "[]", "null", "true", "[T..,..x]", "[..T,.T.]", "{a: 1}", "''", "-0.5", "2.0"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(algo=st.sampled_from(["sarsa", "nstep_sarsa", "value_iteration", "td_linear", "dqn"]),
       key=st.sampled_from(KEYS), value=VALUES)  # fmt: skip
def test_random_overrides_never_escape_as_tracebacks(algo, key, value):
    """Any override either builds a valid run or fails with a ConfigError / Hydra override error."""
    env_override = ["env=gridworld", "env.obs=onehot"] if algo == "dqn" else []
    try:
        spec = resolve(composed(f"algo={algo}", *env_override, f"{key}={value}"))
        env = make(spec.env)
        make_agent(spec.algo_name, env, config=spec.algo, seed=spec.run.seed)
    except (ConfigError, HydraException):
        pass


def test_bad_override_through_the_cli_has_no_traceback(tmp_path):
    proc = run_cli("algo=sarsa", "algo.features=tile", "env.slip=abc", f"hydra.run.dir={tmp_path / 'r'}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "env.slip='abc'" in proc.stderr


def _dqn_run(tmp_path, name):
    train(resolve(composed("algo=dqn", "total_steps=2000", "algo.learning_starts=300", "algo.log_every=250",
                           "algo.hidden=[16]", "seed=3")), tmp_path / name)  # fmt: skip
    summary = json.loads((tmp_path / name / "summary.json").read_text())
    timing = {"wall_seconds", "sps", "eval_seconds"}
    return {k: v for k, v in summary.items() if k not in timing}, {
        k: v for k, v in scalars(tmp_path / name).items() if k != "charts/SPS"
    }


def test_dqn_runs_are_reproducible_down_to_tensorboard(tmp_path):
    assert _dqn_run(tmp_path, "a") == _dqn_run(tmp_path, "b")
