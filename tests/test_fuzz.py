"""Fuzzing (hypothesis, bounded examples) of what a user can get wrong and of the faults a run meets: CLI overrides
out of their schema, bad library arguments, kills at random points, corrupted bytes and concurrent starts. The
properties: no traceback, no invalid value silently accepted, no artefact lost or corrupted."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import typing

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlzoo import ConfigError, make_agent
from rlzoo.agents import AGENTS
from rlzoo.checkpoint import CheckpointError, load_checkpoint
from rlzoo.train import resolve, train

from .helpers import REPO, composed, run_cli, scalars
from .test_exact_resume import RUNS, Killed, interrupted_at, outcome, same


def fuzz(max_examples: int) -> settings:
    """Bounded, derandomised examples (the fast tier runs the same ones every time)."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))  # fmt: skip


def _bounded_fields() -> list[tuple[str, str, typing.Any, dict]]:
    """(algo, key, type, metadata) of every algo key with a declared range or choices."""
    out = []
    for name, cls in sorted(AGENTS.items()):
        hints = typing.get_type_hints(cls.Config)
        for f in dataclasses.fields(cls.Config):
            m = f.metadata
            if m and (m.get("choices") or any(m.get(k) is not None for k in ("ge", "gt", "le", "lt"))):
                out.append((name, f.name, hints[f.name], dict(m)))
    return out


BOUNDED = _bounded_fields()


def _invalid_values(kind: typing.Any, m: dict) -> list[str]:
    """Override values that the field's schema must refuse."""
    numeric = {int, float} & set(typing.get_args(kind) or (kind,))
    bad = ["not_a_value"] if numeric or m.get("choices") else []
    if m.get("choices"):
        bad.append("zz_not_a_choice")
    step = 1 if int in numeric and float not in numeric else 0.5
    if m.get("ge") is not None:
        bad.append(repr(m["ge"] - step))
    if m.get("gt") is not None:
        bad += [repr(m["gt"]), repr(m["gt"] - step)]
    if m.get("le") is not None:
        bad.append(repr(m["le"] + step))
    if m.get("lt") is not None:
        bad.append(repr(m["lt"]))
    if numeric == {int}:
        bad.append("0.5")
    return bad


CASES = [(algo, key, value) for algo, key, kind, m in BOUNDED for value in _invalid_values(kind, m)]


@fuzz(50)
@given(case=st.sampled_from(CASES))
def test_an_override_outside_its_schema_is_refused_naming_the_key(case):
    algo, key, value = case
    with pytest.raises(ConfigError) as err:
        resolve(composed(f"algo={algo}", f"algo.{key}={value}"))
    assert f"algo.{key}" in str(err.value) and "\n" not in str(err.value)


@fuzz(3)
@given(case=st.sampled_from(CASES))
def test_a_refused_override_through_the_cli_is_one_line_and_writes_nothing(tmp_path_factory, case):
    algo, key, value = case
    run_dir = tmp_path_factory.mktemp("cli") / "run"
    proc = run_cli(f"algo={algo}", f"algo.{key}={value}", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"rlzoo: config error: algo.{key}")
    assert not run_dir.exists()  # not even Hydra's .hydra/


ANYTHING = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=5),
                     st.lists(st.integers(0, 3), max_size=3), st.just(np.zeros((2, 2))),
                     st.just(gym.spaces.Discrete(3)))  # fmt: skip


@fuzz(60)
@given(env=ANYTHING, budget=ANYTHING, obs=ANYTHING)
def test_library_calls_with_wrong_arguments_raise_errors_that_name_them(env, budget, obs):
    with pytest.raises((TypeError, ValueError)) as err:
        make_agent("sarsa", env)
    assert "env" in str(err.value) and "\n" not in str(err.value)
    agent = make_agent("sarsa", gym.make("rlzoo/GridWorld-v0"), seed=0)
    if not (isinstance(budget, int) and not isinstance(budget, bool) and budget > 0):
        with pytest.raises(ValueError, match=r"^total_steps=.* is not allowed: give a positive int$"):
            agent.learn(budget)
    if not (isinstance(obs, int) and not isinstance(obs, bool) and 0 <= obs < 25):
        with pytest.raises(ValueError, match=r"^obs=.* is not an observation[^\n]*$"):
            agent.act(obs)
    assert agent.num_timesteps == 0


@fuzz(8)
@given(algo=st.sampled_from(["sarsa", "nstep_sarsa", "value_iteration", "dqn", "grpo"]), share=st.floats(0.05, 0.95))
def test_a_run_killed_at_a_random_step_resumes_bit_identical(tmp_path_factory, algo, share):
    overrides, _ = RUNS[algo]
    root = tmp_path_factory.mktemp(algo)
    spec = resolve(composed(*overrides))
    train(spec, root / "whole")
    kill_at = max(1, int(share * spec.run.total_steps))
    with pytest.MonkeyPatch.context() as patch:
        died = interrupted_at(patch, algo, kill_at)
        with contextlib.suppress(Killed):
            train(spec, root / "killed")
    if died:  # (a kill step past the end lets the run finish)
        train(resolve(composed(*overrides, "resume=true")), root / "killed")
    whole, resumed = outcome(root / "whole"), outcome(root / "killed")
    same(whole[0], resumed[0])
    assert whole[2] == resumed[2]


@fuzz(40)
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=64))
def test_any_flipped_bytes_in_a_checkpoint_are_caught(tmp_path_factory, flips):
    path = tmp_path_factory.mktemp("ckpt") / "agent.pt"
    make_agent("dqn", gym.make("CartPole-v1"), seed=0, hidden=[8]).save(path)
    original = path.read_bytes()
    data = bytearray(original)
    for where, xor in flips:
        data[int(where * len(data))] ^= xor
    path.write_bytes(bytes(data))
    if bytes(data) == original:  # flips that cancel out
        assert load_checkpoint(path)["algo"] == "dqn"
        return
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)


def _checkpoints(run_dir):
    return sorted((run_dir / "checkpoints").glob("step_*.pt"))


@pytest.mark.slow  # 20 s; the fast tier resumes past a corrupted checkpoint in test_reliability
@fuzz(2)
@given(newest=st.booleans(), where=st.floats(0, 1, exclude_max=True))
def test_a_sigkilled_run_with_a_corrupted_checkpoint_resumes_bit_identical(tmp_path_factory, newest, where):
    """A real SIGKILL at a random moment after the second checkpoint; one checkpoint then gets a flipped byte. The
    resume skips it (warning) and still ends exactly where the uninterrupted run ended."""
    overrides = [*RUNS["dqn"][0], "total_steps=3000", "checkpoint.every=500", "checkpoint.keep=10"]
    root = tmp_path_factory.mktemp("sigkill")
    train(resolve(composed(*overrides)), root / "whole")
    run_dir = root / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "rlzoo.train", *overrides, f"hydra.run.dir={run_dir}"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while len(_checkpoints(run_dir)) < 2 and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(where * 0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if (run_dir / "summary.json").exists():  # it finished before the kill: nothing to resume
        return
    found = _checkpoints(run_dir)
    victim = found[-1] if newest else found[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    resumed = run_cli(*overrides, "resume=true", f"hydra.run.dir={run_dir}")
    assert resumed.returncode == 0, resumed.stderr
    if newest:
        assert f"skipping corrupted checkpoint {victim}" in resumed.stdout + resumed.stderr
    whole, again = outcome(root / "whole"), outcome(run_dir)
    same(whole[0], again[0])
    assert whole[2] == again[2]


@fuzz(2)
@given(stagger=st.floats(0, 0.3))
def test_concurrent_starts_into_one_run_directory_leave_one_intact_run(tmp_path_factory, stagger):
    run_dir = tmp_path_factory.mktemp("concurrent") / "run"
    args = [sys.executable, "-m", "rlzoo.train", "algo=sarsa", "total_steps=20000", "checkpoint.every=2000",
            f"hydra.run.dir={run_dir}"]  # fmt: skip
    first = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(stagger)
    second = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    results = [(p.wait(timeout=240), p.stderr.read()) for p in (first, second)]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "Traceback" not in refused
    # refused by the lock, or (already checked before it) by what the winner has written by then
    assert any(why in refused for why in ("is in use by another run", "already holds a run's checkpoints",
                                          "already holds a finished run")), refused  # fmt: skip
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 20000 and load_checkpoint(run_dir / "checkpoints" / "final.pt")["algo"] == "sarsa"
    steps = [s for s, _ in scalars(run_dir)["truth/value_error"]]
    assert steps == sorted(set(steps))  # one writer: no step logged twice
