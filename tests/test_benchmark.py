"""The benchmark report: IQM and bootstrap CI by hand, thresholds, and a small joblib sweep end to end."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from rlzoo.benchmark import bootstrap_ci, first_step_reaching, iqm, main

from .helpers import REPO, run_cli


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm(np.array([0.0, 1.0, 2.0, 3.0, 100.0, -50.0, 4.0, 5.0])) == pytest.approx(2.5)  # mean of 1, 2, 3, 4
    assert iqm(np.array([1.0, 2.0, 3.0, 4.0, 1000.0])) == pytest.approx(3.0)  # 5 seeds: one trimmed at each end
    np.testing.assert_allclose(iqm(np.array([[1.0, 5.0], [2.0, 6.0], [3.0, 7.0], [4.0, 8.0]])), [2.5, 6.5])


def test_bootstrap_ci_brackets_the_iqm_and_narrows_with_more_runs():
    rng = np.random.default_rng(0)
    few, many = rng.normal(10.0, 2.0, 5), rng.normal(10.0, 2.0, 200)
    lo, hi = bootstrap_ci(few)
    assert lo <= iqm(few) <= hi
    lo_many, hi_many = bootstrap_ci(many)
    assert lo_many < 10.0 < hi_many and hi_many - lo_many < (hi - lo) / 2
    np.testing.assert_array_equal(bootstrap_ci(few), bootstrap_ci(few))  # seeded: the same report twice
    assert tuple(bootstrap_ci(np.full(5, 3.0))) == (3.0, 3.0)


def test_first_step_reaching_a_threshold():
    steps, values = np.array([0, 10, 20, 30]), np.array([1.0, 5.0, 4.0, 9.0])
    assert first_step_reaching(steps, values, 5.0) == 10
    assert first_step_reaching(steps, values, 9.5) is None


def test_sweep_through_the_joblib_launcher_then_report(tmp_path):
    """As ``+sweep=classic`` does: one job per cell trains its seeds (PPO's as one seed batch, Q-learning's in turn)."""
    sweep = tmp_path / "sweep"
    proc = run_cli("--multirun", "hydra/launcher=joblib", "algo=qlearning,ppo", "env=gridworld", "n_seeds=3",
                   "total_steps=3000", "eval.every=1000", "eval.episodes=2",
                   f"hydra.sweep.dir={sweep}")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Joblib" in proc.stderr + proc.stdout  # the joblib launcher ran the jobs
    assert len(list(sweep.glob("*/seed*/summary.json"))) == 6 and len(list(sweep.glob("*/.hydra"))) == 2
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert jobs == ["0-qlearning-gridworld-seeds0-2", "1-ppo-gridworld-seeds0-2"], jobs  # the job's seeds, by name
    assert main(["report", str(sweep), "--out", str(tmp_path / "out")]) == 0
    report = (tmp_path / "out" / "report.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| gridworld |")]
    assert len(rows) == 2 and "| qlearning | 3 |" in rows[1] and "| ppo | 3 batched |" in rows[0], rows
    assert re.search(r"6 runs finished, 0 failed; sweep wall-clock \d+\.\d min", report)  # from the jobs' .hydra/
    summaries = [json.loads(p.read_text()) for p in sweep.glob("*qlearning*/seed*/summary.json")]
    expected = iqm(np.array([s["eval_return_mean"] for s in summaries]))
    assert f"| gridworld | qlearning | 3 | 3,000 | {expected:.3g} [" in report
    for png in ("curves_gridworld.png", "gridworld_value_error.png"):
        assert (tmp_path / "out" / png).stat().st_size > 10_000


def test_a_failed_job_does_not_stop_the_sweep_and_is_reported(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli("--multirun", "algo=ddpg,ppo", "env=cartpole", "total_steps=500", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0 and "algo=ddpg needs a continuous" in proc.stderr
    assert main(["report", str(sweep), "--out", str(tmp_path / "out")]) == 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "1 runs finished, 1 failed" in report and "| cartpole | ddpg | 0 (1 failed) |" in report


def test_report_of_a_missing_directory_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def _fake_run(sweep, name, seed, learning_rate, ret, algo="ppo", env=("cartpole", "CartPole-v1"), steps=1000, **extra):
    """A finished run's ``summary.json`` with these figures (and any ``extra`` keys) under ``sweep/name``."""
    run = sweep / name
    run.mkdir(parents=True)
    summary = {"algo": algo, "env": env[0], "env_id": env[1], "seed": seed, "total_steps": steps,
               "eval_return_mean": ret, "wall_seconds": 1.0, "sps": 1000.0,
               "algo_config": {"learning_rate": learning_rate, "n_epochs": 4}, **extra}  # fmt: skip
    (run / "summary.json").write_text(json.dumps(summary))


def test_mujoco_rows_stand_beside_the_published_returns(tmp_path):
    sweep = tmp_path / "sweep"
    for seed, ret in enumerate([9000.0, 9500.0, 10000.0]):
        _fake_run(sweep, f"{seed}-sac", seed, 3e-4, ret, "sac", ("halfcheetah", "HalfCheetah-v5"), 1_000_000)
        _fake_run(sweep, f"{seed}-ddpg", seed, 1e-3, ret / 2, "ddpg", ("ant", "Ant-v5"), 1_000_000)
    _fake_run(sweep, "9-ppo", 0, 1e-3, 500.0)  # CartPole: nothing published to set beside it
    assert main(["report", str(sweep)]) == 0
    beside = (sweep / "report.md").read_text().split("## Beside published results")[1]
    assert "| halfcheetah | sac | 9,500 [9,000, 10,000] (3, 1,000,000) | 9,535 ± 100 (v3, 1,000,000) | " \
           "9,635 ± 1,424 (v4, 1,000,000) |" in beside  # fmt: skip
    assert "| ant |" not in beside and "cartpole" not in beside  # nothing published for DDPG on Ant, or CartPole


def test_gridworld_rows_report_the_critic_s_error_against_its_own_policy_s_exact_value(tmp_path):
    """‖v̂ − v_π‖∞ (``critic_error``) as an IQM over seeds for learners with a critic; "—" for one without."""
    sweep = tmp_path / "sweep"
    gridworld = ("gridworld", "rlzoo/GridWorld-v0")
    for seed, (value_error, critic_error) in enumerate([(3.0, 0.1), (2.0, 0.5), (4.0, 0.3), (1.0, 0.9)]):
        _fake_run(sweep, f"{seed}-a2c", seed, 1e-3, 98.0, "a2c", gridworld, value_error=value_error,
                  critic_error=critic_error)  # fmt: skip
    _fake_run(sweep, "9-dqn", 0, 1e-3, 98.0, "dqn", gridworld, value_error=0.07)  # v = max_a q: no critic of v_π
    assert main(["report", str(sweep)]) == 0
    report = (sweep / "report.md").read_text()
    assert "| ‖v − v*‖∞ IQM | ‖v̂ − v_π‖∞ IQM |" in report
    rows = {line.split(" | ")[1]: line.split(" | ") for line in report.splitlines() if line.startswith("| gridworld |")}
    # IQM of 4 values: the mean of the middle two (2.0, 3.0 → 2.5; 0.3, 0.5 → 0.4)
    assert rows["a2c"][6:8] == ["2.5", "0.4"] and rows["dqn"][6:8] == ["0.07", "—"], rows


def test_the_classic_and_mujoco_sweeps_split_the_benchmark_cells():
    """Every ``conf/bench`` cell is in exactly one of the two sweeps (the classic one lists its cells, longest first,
    so a new cell must be added to it), and the classic sweep's jobs start in that order."""
    names = sorted(p.stem for p in (REPO / "conf" / "bench").glob("*.yaml"))
    cells = {}
    for sweep in ("classic", "mujoco"):
        pattern = yaml.safe_load((REPO / "conf" / "sweep" / f"{sweep}.yaml").read_text())["hydra"]["sweeper"]
        swept = OverridesParser.create().parse_override(f"+bench={pattern['params']['+bench']}").value()
        cells[sweep] = swept.filter(names) if sweep == "mujoco" else swept.list
    classic = set(cells["classic"])
    assert len(classic) == len(cells["classic"]), "a cell is listed twice in conf/sweep/classic.yaml"
    assert classic <= set(names), f"not a conf/bench file: {sorted(classic - set(names))}"
    missing = set(names) - classic - set(cells["mujoco"])
    assert not missing, f"conf/bench cells in no sweep (add them to conf/sweep/classic.yaml): {sorted(missing)}"
    assert not classic & set(cells["mujoco"]) and len(cells["mujoco"]) == 25
    assert cells["classic"][:2] == ["pendulum_sac", "gridworld_continuous_ddpg"]  # the two longest jobs start first


def test_runs_of_different_configs_are_not_pooled_and_a_broken_summary_is_a_failed_run(tmp_path):
    sweep = tmp_path / "sweep"
    for i, (lr, ret) in enumerate([(1e-3, 100.0), (1e-3, 110.0), (1e-2, 400.0), (1e-2, 420.0)]):
        _fake_run(sweep, f"{i}-ppo", i % 2, lr, ret)
    (sweep / "4-broken").mkdir()
    (sweep / "4-broken" / "summary.json").write_text('{"algo": "ppo", ')  # a run killed while writing
    assert main(["report", str(sweep), "--out", str(tmp_path / "out")]) == 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| cartpole | ppo (algo.learning_rate=0.001) | 2 | 1,000 | 105 [" in report
    assert "| cartpole | ppo (algo.learning_rate=0.01) | 2 | 1,000 | 410 [" in report
    assert "4 runs finished, 1 failed" in report and "| ? | ? | 0 (1 failed) |" in report
