"""MuJoCo: the five env configs, the rl-baselines3-zoo presets for every continuous-control algorithm on them, a
missing extra as one line, and each algorithm's whole pipeline on a MuJoCo env."""

from __future__ import annotations

import json
import sys
import warnings

import pytest
import yaml

from rlzoo.config import ConfigError
from rlzoo.train import _make_env, resolve, train

from .helpers import REPO, composed

ENVS = {"halfcheetah": ("HalfCheetah-v5", 17, 6), "hopper": ("Hopper-v5", 11, 3), "walker2d": ("Walker2d-v5", 17, 6),
        "ant": ("Ant-v5", 105, 8), "humanoid": ("Humanoid-v5", 348, 17)}  # fmt: skip
ALGOS = ("sac", "td3", "ddpg", "ppo", "trpo")


@pytest.mark.parametrize("name", sorted(ENVS))
def test_each_env_config_makes_gymnasiums_v5_env(name, tmp_path, monkeypatch):
    env_id, obs_dim, action_dim = ENVS[name]
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True):  # MuJoCo's warnings are Python warnings, not a log file
        warnings.simplefilter("always")
        env = _make_env(dict(composed(f"env={name}").env))
    assert list(tmp_path.iterdir()) == []
    assert env.spec.id == env_id and env.spec.max_episode_steps == 1000
    assert env.observation_space.shape == (obs_dim,) and env.action_space.shape == (action_dim,)


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("env", sorted(ENVS))
def test_every_preset_names_its_source_and_reaches_the_run(algo, env):
    path = REPO / "conf" / "experiment" / f"{algo}_{env}.yaml"
    assert "rl-baselines3-zoo hyperparams/" in path.read_text()
    preset = yaml.safe_load(path.read_text())
    spec = resolve(composed(f"algo={algo}", f"env={env}"))
    # rl-baselines3-zoo's budgets: 1M steps, Humanoid 2M (PPO's tuned Humanoid entry: 10M)
    assert spec.run.total_steps == preset["total_steps"] == {"humanoid": 10_000_000 if algo == "ppo" else 2_000_000
                                                             }.get(env, 1_000_000)  # fmt: skip
    for key, value in preset["algo"].items():
        assert getattr(spec.algo, key) == value, f"{path.name}: algo.{key}"


def test_missing_mujoco_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mujoco", None)  # import mujoco fails, as without the extra
    for module in [m for m in sys.modules if m.startswith("gymnasium.envs.mujoco")]:
        monkeypatch.delitem(sys.modules, module)
    with pytest.raises(ConfigError) as err:
        _make_env(dict(composed("env=hopper").env))
    assert str(err.value) == "env.id='Hopper-v5' needs MuJoCo: pip install -e '.[mujoco]'"


TINY = {"sac": ["algo.learning_starts=100", "algo.hidden=[16]", "algo.batch_size=32"],
        "td3": ["algo.learning_starts=100", "algo.hidden=[16]", "algo.batch_size=32"],
        "ddpg": ["algo.learning_starts=100", "algo.hidden=[16]", "algo.batch_size=32"],
        "ppo": ["algo.n_steps=64", "algo.batch_size=32", "algo.hidden=[16]"],
        "trpo": ["algo.n_steps=64", "algo.vf_batch_size=32", "algo.hidden=[16]"]}  # fmt: skip


@pytest.mark.parametrize("algo", ALGOS)
def test_each_algorithm_runs_the_whole_pipeline_on_hopper(tmp_path, algo):
    spec = resolve(composed(f"algo={algo}", "env=hopper", "total_steps=300", "eval.episodes=1",
                            "checkpoint.every=0", *TINY[algo]))  # fmt: skip
    train(spec, tmp_path / algo)
    summary = json.loads((tmp_path / algo / "summary.json").read_text())
    assert summary["steps"] >= 300 and (tmp_path / algo / "checkpoints" / "final.pt").is_file()
