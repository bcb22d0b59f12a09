"""Countdown (TinyZero's task): the equation parser, the two reward functions, the drawn problems and the split."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlzoo.envs.countdown import (
    combine,
    correct_equation,
    countdown_problems,
    equation_format,
    parse_steps,
    random_steps,
    solves,
)
from rlzoo.envs.text_tasks import TextTaskEnv, countdown_task


@pytest.mark.parametrize(("text", "steps"), [
    ("3*7=21,21+5=26", [(3, "*", 7, 21), (21, "+", 5, 26)]),
    (" 8/4=2,2-2=0 ", [(8, "/", 4, 2), (2, "-", 2, 0)]),
    ("3*7=22", [(3, "*", 7, 22)]),  # well-formed, wrong arithmetic
    ("3*7=21,", None),
    ("3*7", None),
    ("03+1=4", None),  # no leading zeros
    ("3+-1=2", None),
    ("3 + 1 = 4", None),
    ("", None),
    ("__import__('os')", None),
])  # fmt: skip
def test_parse_steps(text, steps):
    assert parse_steps(text) == steps


def test_combine_writes_only_non_negative_integers():
    assert [combine(7, "+", 2), combine(7, "-", 2), combine(7, "*", 2), combine(8, "/", 2)] == [9, 5, 14, 4]
    assert combine(2, "-", 7) is None and combine(7, "/", 2) is None and combine(7, "/", 0) is None


@pytest.mark.parametrize(("text", "right"), [
    ("3*7=21,21+5=26", True),
    ("5+21=26,3*7=21", False),  # 21 used before it exists
    ("7*3=21,5+21=26", True),
    ("3*7=21,21+5=26,26-0=26", False),  # 0 is not a given number
    ("3*7=21", False),  # 5 left unused
    ("3*7=21,21+5=27", False),  # wrong arithmetic
    ("3*7=21,21+7=28", False),  # 7 twice
    ("3+7=10,10*5=50", False),  # another target
])  # fmt: skip
def test_correct_steps_use_each_number_once_and_reach_the_target(text, right):
    assert correct_equation([""], [text], numbers=[[3, 7, 5]], target=[26]) == [float(right)]
    assert equation_format([""], [text]) == [1.0]


def test_equal_numbers_are_each_used_once():
    assert solves([(4, "*", 4, 16), (16, "+", 5, 21)], [4, 4, 5], 21)
    assert not solves([(4, "*", 4, 16), (16, "+", 4, 20)], [4, 5, 4], 20)


@settings(max_examples=50, deadline=None)
@given(numbers=st.lists(st.integers(1, 99), min_size=2, max_size=6), seed=st.integers(0, 2**32 - 1))
def test_a_random_game_solves_its_own_problem(numbers, seed):
    game = random_steps(numbers, np.random.default_rng(seed))
    if game is not None:  # None: an inexact division
        steps = parse_steps(game[0])
        assert steps is not None and len(steps) == len(numbers) - 1 and solves(steps, numbers, game[1])


def test_problems_are_distinct_solved_by_their_solution_and_within_range():
    rows = countdown_problems(300, 3, 9, 50, np.random.default_rng(0))
    keys = {(tuple(sorted(r["numbers"])), r["target"]) for r in rows}
    assert len(keys) == 300
    assert all(1 <= r["target"] <= 50 and all(1 <= n <= 9 for n in r["numbers"]) for r in rows)
    prompts = [r["prompt"] for r in rows]
    solutions = [r["solution"] for r in rows]
    numbers, targets = [r["numbers"] for r in rows], [r["target"] for r in rows]
    assert correct_equation(prompts, solutions, numbers, targets) == [1.0] * 300
    assert rows[0]["prompt"].endswith(f">{rows[0]['target']}:")
    assert sorted(map(int, rows[0]["prompt"].split(">")[0].split())) == sorted(rows[0]["numbers"])


def test_too_many_problems_for_the_ranges_is_one_line():
    with pytest.raises(ValueError, match=r"^countdown: n_problems=100 distinct problems asked, \d+ found with "
                                         r"n_numbers=2, max_number=3, max_target=99: lower n_problems"):  # fmt: skip
        countdown_problems(100, 2, 3, 99, np.random.default_rng(0))


def test_the_held_out_split_shares_no_problem_with_training():
    task = countdown_task(n_problems=500, n_test=100)
    key = lambda r: (tuple(sorted(r["numbers"])), r["target"])  # noqa: E731
    assert len(task.test) == 100 and len(task.train) == 400
    assert not {key(r) for r in task.train} & {key(r) for r in task.test}
    total, per = task.rewards(task.test[:2], [task.test[0]["solution"], "1+"])
    assert per.tolist() == [[1.0, 0.0], [1.0, 0.0]] and total.tolist() == [1.1, 0.0]
    longest = max(len(r["solution"]) for r in task.train + task.test)
    assert task.max_completion_length == longest + 2


# every countdown kwarg (conf/env/countdown.yaml), moved, changes the task
OTHER = {"n_numbers": 4, "max_number": 12, "max_target": 50, "n_problems": 600, "n_test": 50, "seed": 1,
         "format_weight": 0.5}  # fmt: skip


def test_every_countdown_key_changes_the_task():
    import inspect

    keys = [k for k in inspect.signature(countdown_task).parameters]
    assert sorted(keys) == sorted(OTHER), "a new countdown_task argument needs another value here"

    def fingerprint(task):
        return task.train[:20], task.test[:20], len(task.train), task.rewards(task.test[:1], ["1+2=3"])[0].tolist()

    base = fingerprint(TextTaskEnv("countdown", n_problems=500).task)
    for key, value in OTHER.items():
        kwargs = {"n_problems": 500, key: value}
        assert fingerprint(TextTaskEnv("countdown", **kwargs).task) != base, f"env.kwargs.{key} does not change it"


def test_bad_countdown_settings_are_one_line():
    with pytest.raises(ValueError, match=r"^n_numbers=1 is not allowed: give 2 to 6$"):
        countdown_task(n_numbers=1)
    with pytest.raises(ValueError, match=r"^n_test=500 is not allowed: give fewer than n_problems=500$"):
        countdown_task(n_problems=500, n_test=500)


def test_the_grpo_preset_fits_its_games_into_the_default_tiny_gpt():
    """``experiment=grpo_countdown`` resolves to the default TinyGPT with the context its prompts and longest games
    need: the model's default 32 positions are too few, which the agent says in one line."""
    from rlzoo.agents import make_agent
    from rlzoo.config import ConfigError
    from rlzoo.train import _make_env, resolve

    from .helpers import composed

    spec = resolve(composed("experiment=grpo_countdown"))
    assert (spec.algo.model.n_layer, spec.algo.model.d_model, spec.algo.model.max_len) == (2, 128, 40)
    env = _make_env(spec.env)
    agent = make_agent("grpo", env, config=spec.algo, seed=0)
    longest = max(len(r["prompt"]) + 1 + len(r["solution"]) + 1 for r in agent.task.train + agent.task.test)
    assert 32 < longest <= 40
    with pytest.raises(ConfigError, match=r"exceed the model's 32 positions: raise algo.model.max_len"):
        make_agent(
            "grpo", env, config=dataclasses.replace(spec.algo, model=dataclasses.replace(spec.algo.model, max_len=32))
        )
