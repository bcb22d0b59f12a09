"""Sweeps through Hydra's launcher plugins and tuning through the Optuna sweeper, via the real CLI."""

from __future__ import annotations

import json

import optuna
import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep

from rlzoo.agents import agent_class
from rlzoo.config import build

from .helpers import composed, run_cli

TUNED = ["ppo", "dqn", "ddpg"]


def test_submitit_local_launcher_runs_every_job_of_a_sweep(tmp_path):
    r = run_cli("--multirun", "hydra/launcher=submitit_local", "algo=qlearning", "total_steps=300", "seed=0,1",
                f"hydra.sweep.dir={tmp_path}")  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    summaries = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/summary.json"))]
    assert sorted(s["seed"] for s in summaries) == [0, 1] and all(s["steps"] == 300 for s in summaries)
    assert any((tmp_path / ".submitit").iterdir())  # the jobs went through submitit, not the basic launcher


def test_the_benchmark_sweep_moves_to_slurm_by_one_override():
    local = composed("+sweep=classic", hydra=True).hydra
    assert local.launcher._target_.endswith("JoblibLauncher") and local.launcher.n_jobs == -1
    slurm = composed(
        "+sweep=classic", "hydra/launcher=submitit_slurm", "hydra.launcher.partition=cpu", hydra=True
    ).hydra
    assert slurm.launcher._target_.endswith("SlurmLauncher") and slurm.launcher.partition == "cpu"
    assert slurm.sweeper.params == local.sweeper.params  # same jobs, other launcher


@pytest.mark.parametrize("algo", TUNED)
def test_tuning_search_spaces_name_real_keys_and_valid_values(algo):
    cfg = composed(f"+tune={algo}", hydra=True)
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper") and cfg.algo.name == algo
    assert cfg.trial_seeds > 1 and cfg.hydra.sweeper.direction == "maximize"
    schema = agent_class(algo).Config
    parser = OverridesParser.create()
    for key, spec in cfg.hydra.sweeper.params.items():
        assert key.startswith("algo.") and key[5:] in schema.__dataclass_fields__, key
        sweep = parser.parse_override(f"{key}={spec}").value()
        if isinstance(sweep, ChoiceSweep):
            values = list(sweep.list)
        else:
            assert isinstance(sweep, IntervalSweep), (key, spec)
            values = [sweep.start, sweep.end]
        for value in values:  # each extreme of the space is a config the schema accepts
            build(schema, {**{k: v for k, v in cfg.algo.items() if k != "name"}, key[5:]: value}, "algo")


@pytest.mark.slow  # two Optuna sweeps through the CLI: 16 s
def test_an_optuna_study_in_shared_storage_collects_trials_of_two_sweeps(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    args = ["+tune=dqn", "env=gridworld", "total_steps=300", "algo.learning_starts=50", "eval.episodes=2",
            "trial_seeds=2", f"hydra.sweeper.storage={storage}", "hydra.sweeper.study_name=t"]  # fmt: skip
    # two machines (here: two processes) adding trials to one study, each with its own sampler seed
    for part, n, seed in (("a", 3, 0), ("b", 2, 1)):
        r = run_cli(*args, f"hydra.sweeper.n_trials={n}", f"hydra.sweeper.sampler.seed={seed}",
                    f"hydra.sweep.dir={tmp_path / part}")  # fmt: skip
        assert r.returncode == 0, r.stderr[-3000:]
    study = optuna.load_study(study_name="t", storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 5
    trials = [json.loads((tmp_path / p / f"trial{i}" / "trial.json").read_text()) for p, n in (("a", 3), ("b", 2))
              for i in range(n)]  # fmt: skip
    for trial, record in zip(study.trials, trials, strict=True):
        per_seed = [record["per_seed"][s] for s in ("0", "1")]  # the objective: the mean over the trial's seeds
        assert trial.value == pytest.approx(sum(per_seed) / 2) == pytest.approx(record["eval_return_mean"])
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 5
    best = yaml.safe_load((tmp_path / "b" / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(t.value for t in study.trials))
