"""Config composition and validation: defaults, per-algo default env, one-line errors."""

from __future__ import annotations

import pytest

from rlzoo.config import ConfigError, GridWorldEnvConfig
from rlzoo.train import resolve

from .helpers import REPO, composed

PLANNERS = ["value_iteration", "policy_iteration", "truncated_policy_iteration", "policy_evaluation"]


@pytest.mark.parametrize("algo", PLANNERS)
def test_every_algo_composes_on_its_default_env(algo):
    spec = resolve(composed(f"algo={algo}"))
    assert spec.algo_name == algo
    assert isinstance(spec.env, GridWorldEnvConfig)
    assert spec.run.total_steps == spec.algo.total_steps  # top-level budget defaults to the algo's


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
        (["+algo.foo=1"], r"^algo.foo is not a known key; allowed keys here: gamma, total_steps, tol$"),
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


def test_each_algo_yaml_states_its_schema_defaults():
    """conf/algo/<name>.yaml and the dataclass schema agree, so the CLI and the library train alike."""
    import dataclasses

    import yaml

    from rlzoo.agents import AGENTS
    from rlzoo.config import to_dict

    for name, cls in AGENTS.items():
        path = REPO / "conf" / "algo" / f"{name}.yaml"
        assert path.is_file(), f"algo={name} has no {path}"
        values = yaml.safe_load(path.read_text())
        values.pop("defaults", None)
        assert values.pop("name") == name
        schema = to_dict(cls.Config())
        keys = values.keys() | schema.keys()
        differ = {k: (values.get(k), schema.get(k)) for k in keys if values.get(k) != schema.get(k)}
        assert not differ, f"{path.name} vs {cls.Config.__name__} (yaml, schema): {differ}"
        assert {f.name for f in dataclasses.fields(cls.Config)} == set(values)
