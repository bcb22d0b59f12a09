"""Config composition and validation: defaults, per-algo default env, one-line errors."""

from __future__ import annotations

import pytest
import yaml
from omegaconf import OmegaConf

from rlzoo.agents import AGENTS
from rlzoo.config import ConfigError, GridWorldEnvConfig, to_dict
from rlzoo.train import resolve

from .helpers import REPO, composed, run_cli

PLANNERS = ["value_iteration", "policy_iteration", "truncated_policy_iteration", "policy_evaluation"]


@pytest.mark.parametrize("algo", PLANNERS)
def test_every_algo_composes_on_its_default_env(algo):
    spec = resolve(composed(f"algo={algo}"))
    assert spec.algo_name == algo
    assert isinstance(spec.env, GridWorldEnvConfig)
    assert spec.run.total_steps == 1000  # conf/algo/<planner>.yaml: at most 1000 iterations


def test_one_budget_key_whose_default_is_per_algorithm():
    """``total_steps`` is top-level only: its default comes from conf/algo/<name>.yaml, then the experiment
    preset, then the command line."""
    assert composed("algo=ppo").total_steps != composed("algo=ddpg").total_steps
    assert composed("algo=ppo", "env=pendulum").total_steps == 100000  # conf/experiment/ppo_pendulum.yaml
    assert composed("algo=ppo", "env=pendulum", "total_steps=7").total_steps == 7
    assert composed("+sweep=tabular").total_steps == 100000
    for name, cls in AGENTS.items():
        assert "total_steps" not in cls.Config.__dataclass_fields__, name


def test_overrides_reach_the_schemas():
    spec = resolve(
        composed(
            "algo=truncated_policy_iteration",
            "seed=7",
            "total_steps=33",
            "algo.gamma=0.5",
            "algo.eval_sweeps=3",
            "env.slip=0.2",
            "env.episodic=true",
            "env.start=[0,0]",
            "env.layout=[T..,.F.]",
        )
    )
    assert (spec.run.seed, spec.run.total_steps, spec.algo.gamma, spec.algo.eval_sweeps) == (7, 33, 0.5, 3)
    assert spec.env.slip == 0.2 and spec.env.episodic and spec.env.start == [0, 0]
    assert spec.env.layout == ["T..", ".F."]  # F: forbidden (# is a comment in override syntax)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["algo.gamma=1.0"], r"^algo.gamma=1.0 is out of range: allowed \[0.0, 1.0\)$"),
        (["algo.gamma=abc"], r"^algo.gamma='abc' has the wrong type: expected float"),
        (["+algo.foo=1"], r"^algo.foo is not a known key; allowed keys here: gamma, tol$"),
        (["+algo.total_steps=5"], r"^algo.total_steps is not a known key: the budget is the top-level total_steps="),
        (["+env.foo=1"], r"^env.foo is not a known key; allowed keys here: id, layout, layout_file, .*, obs$"),
        (["algo=ppo", "+env.foo=1"], r"^env.foo is not a known key; allowed keys here: id, max_episode_steps, kwargs$"),
        (["env.slip=abc"], r"^env.slip='abc' has the wrong type: expected float"),
        (["algo=ppo", "algo.hidden=abc"], r"^algo.hidden='abc' has the wrong type: expected list\[int\]"),
        (["+eval.bar=1"], r"^eval.bar is not a known key; allowed keys here: episodes, every, deterministic"),
        (["total_steps=0"], r"^total_steps=0 is out of range: allowed \[1, inf\)$"),
        (["seed=-1"], r"^seed=-1 is out of range"),
        (["env.slip=1.5"], r"^env.slip=1.5 is out of range: allowed \[0.0, 1.0\]$"),
        (["env.obs=pixels"], r"^env.obs='pixels' is not allowed: choose one of index, onehot, coords$"),
        (["env.layout=[...,..]"], r"^env.layout: layout row 1 has 2 cells, expected 3"),
        (["env.layout=[...]"], r"^env.layout: layout has no target cell"),
        (["env.start=[7,0]"], r"^env.start: start \[7, 0\] is outside the 5x5 grid"),
        (["env.start=[1,1]"], r"^env.start: start \[1, 1\] is a forbidden cell"),
        (["eval.episodes=0"], r"^eval.episodes=0 is out of range"),
        (["checkpoint.every=-5"], r"^checkpoint.every=-5 is out of range"),
        (["env.max_episode_steps=0"], r"^env.max_episode_steps=0 is out of range"),
        (["algo=policy_iteration", "algo.eval_method=magic"], r"^algo.eval_method='magic' is not allowed"),
        (["algo.name=nope"], r"^algo.name='nope' is not a known algorithm: choose one of "),
    ],
)
def test_bad_values_give_one_line_naming_key_value_and_allowed(overrides, message):
    with pytest.raises(ConfigError, match=message) as info:
        resolve(composed(*overrides))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (["+algo.foo=1"], "algo.foo is not a known key; allowed keys here: gamma, tol"),
        (["algo.gamma=abc"], "algo.gamma='abc' has the wrong type: expected float (Value 'abc' of type 'str' could "
                             "not be converted to Float)"),
        (["+env.foo=1"], "env.foo is not a known key; allowed keys here: id, layout, layout_file, r_boundary, "
                         "r_forbidden, r_target, r_other, slip, episodic, start, max_episode_steps, obs"),
        (["env.slip=abc"], "env.slip='abc' has the wrong type: expected float (Value 'abc' of type 'str' could not "
                           "be converted to Float)"),
    ],
)  # fmt: skip
def test_wrong_key_or_type_from_the_cli_is_one_line(tmp_path, overrides, line):
    proc = run_cli(*overrides, f"hydra.run.dir={tmp_path / 'r'}")
    assert (proc.returncode, proc.stderr.splitlines()) == (2, [f"rlzoo: config error: {line}"])


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_each_algo_takes_every_default_from_its_schema(name):
    """conf/algo/<name>.yaml extends the agent's Config (Hydra's ConfigStore) and states no default again."""
    path = REPO / "conf" / "algo" / f"{name}.yaml"
    stated = yaml.safe_load(path.read_text())
    entries = [next(iter(d)) if isinstance(d, dict) else d for d in stated["defaults"]]
    assert entries == [f"/schema/algo/{name}@algo", "/env@_global_.env", "_self_"]
    defaults = to_dict(AGENTS[name].Config())
    presets = {k: v for k, v in stated["algo"].items() if k != "name"}
    assert stated["algo"]["name"] == name and isinstance(stated["total_steps"], int)
    assert not {k for k, v in presets.items() if defaults.get(k) == v}, f"{path.name} repeats schema defaults"
    composed_algo = composed(f"algo={name}", "~experiment").algo  # without a tuned preset for the env
    assert OmegaConf.to_container(composed_algo) == {**defaults, **presets, "name": name}
