"""Your own environment through the CLI: ``env=gym env.id=module:Name-v0`` imports the module (gymnasium's syntax);
a wrong id, module or dependency is one line."""

from __future__ import annotations

import json

import pytest

from rlzoo.config import ConfigError, GymEnvConfig
from rlzoo.train import _make_env, resolve

from .helpers import composed, readme_example, run_cli


def test_the_readme_s_own_env_trains_through_the_cli(tmp_path):
    """The README's "Your own environment" block as written (a shorter budget), run from the directory holding the
    package: Q-learning walks the corridor of 10 cells straight to its end (9 steps: return −9)."""
    files, args = readme_example("Your own environment")
    assert list(files) == ["my_envs/__init__.py"] and "env.id=my_envs:Corridor-v0" in args
    (tmp_path / "my_envs").mkdir()
    (tmp_path / "my_envs" / "__init__.py").write_text(files["my_envs/__init__.py"])
    proc = run_cli(*args, "total_steps=3000", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["env_id"] == "my_envs:Corridor-v0" and summary["eval_return_mean"] == -9.0
    assert summary["eval_return_initial"] == -100.0  # the untrained greedy policy never gets there


@pytest.mark.parametrize(("env_id", "message"), [
    ("Nowhere-v0", r"^env.id='Nowhere-v0': Environment `Nowhere` doesn't exist\.$"),
    ("CartPole-v9", r"^env.id='CartPole-v9': Environment version `v9` for environment `CartPole` doesn't exist"),
    ("no_such_module:Corridor-v0", r"^env.id='no_such_module:Corridor-v0': No module named 'no_such_module'\. "),
])  # fmt: skip
def test_a_wrong_id_or_module_is_one_line(env_id, message):
    spec = resolve(composed("algo=qlearning", "env=gym", f"env.id={env_id}"))
    assert isinstance(spec.env, GymEnvConfig)
    with pytest.raises(ConfigError, match=message) as err:
        _make_env(spec.env)
    assert "\n" not in str(err.value)


def test_the_id_is_required():
    with pytest.raises(ConfigError, match=r"^env.id is required but missing$"):
        resolve(composed("algo=qlearning", "env=gym"))
