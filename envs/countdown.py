"""Countdown (the game, and TinyZero's reasoning task): reach a target number from given numbers, each used once,
with + − × ÷. ``"3 7 5>26:"`` → ``"3*7=21,21+5=26"``.

A completion is a chain of steps ``a<op>b=r`` separated by commas, as the game is played: each step combines two
numbers still available (a given one or an earlier result), consumes them and makes ``r`` available. Only
non-negative integers are written, so a subtraction puts the larger number first and a division must be exact.
It is *well-formed* when every step has that form; *correct* when, in addition, every step's arithmetic is
right, every number it combines was available, and the steps use up all the given numbers to leave the target.
Writing each intermediate result is what lets a small model compute: every step is a two-number sum, difference,
product or quotient.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

OP_CHARS = "+-*/"
STEP = re.compile(r"(0|[1-9]\d*)([-+*/])(0|[1-9]\d*)=(0|[1-9]\d*)")
MAX_COMPLETION_CHARS = 128  # longer text is not parsed (a few steps are far shorter)

Step = tuple[int, str, int, int]  # a, op, b, r


def parse_steps(text: str) -> list[Step] | None:
    """The steps ``a<op>b=r`` (comma-separated, integers without leading zeros) of ``text``; None when it is
    anything else."""
    text = text.strip()
    if not text or len(text) > MAX_COMPLETION_CHARS:
        return None
    matches = [STEP.fullmatch(part) for part in text.split(",")]
    if any(m is None for m in matches):
        return None
    return [(int(m[1]), m[2], int(m[3]), int(m[4])) for m in matches]  # type: ignore[index]


def combine(a: int, op: str, b: int) -> int | None:
    """``a op b`` when it is a non-negative integer (a − b with a ≥ b, a ÷ b exact), else None."""
    if op == "+":
        return a + b
    if op == "*":
        return a * b
    if op == "-":
        return a - b if a >= b else None
    return a // b if b != 0 and a % b == 0 else None


def solves(steps: list[Step], numbers: list[int], target: int) -> bool:
    """Whether ``steps`` are right and reach ``target`` using each of ``numbers`` exactly once."""
    available = Counter(numbers)
    for a, op, b, r in steps:
        for x in (a, b):
            if available[x] == 0:
                return False
            available[x] -= 1
        if combine(a, op, b) != r:
            return False
        available[r] += 1
    return +available == Counter([target])


def correct_equation(prompts: list[str], completions: list[str], numbers: list[list[int]], target: list[int],
                     **_: Any) -> list[float | None]:  # fmt: skip
    """1 when the completion's steps are right and reach ``target`` using each of ``numbers`` once, else 0."""
    out: list[float | None] = []
    for text, nums, goal in zip(completions, numbers, target, strict=True):
        steps = parse_steps(text)
        out.append(float(steps is not None and solves(steps, nums, goal)))
    return out


def equation_format(prompts: list[str], completions: list[str], **_: Any) -> list[float | None]:
    """1 when the completion is well-formed steps (whatever their numbers and arithmetic), else 0: a format
    credit."""
    return [float(parse_steps(text) is not None) for text in completions]


def random_steps(numbers: list[int], rng: np.random.Generator) -> tuple[str, int] | None:
    """A random game with ``numbers``: at each step two available numbers drawn at random (the larger first for a
    subtraction) and a random operator. (The steps as text, the last result), or None when a division is not
    exact."""
    available, steps = list(numbers), []
    while len(available) > 1:
        i, j = (int(k) for k in rng.choice(len(available), size=2, replace=False))
        a, b = available[i], available[j]
        op = OP_CHARS[int(rng.integers(len(OP_CHARS)))]
        if op == "-" and a < b:
            a, b = b, a
        r = combine(a, op, b)
        if r is None:
            return None
        available = [x for k, x in enumerate(available) if k not in (i, j)] + [r]
        steps.append(f"{a}{op}{b}={r}")
    return ",".join(steps), available[0]


def countdown_problems(n_problems: int, n_numbers: int, max_number: int, max_target: int,
                       rng: np.random.Generator) -> list[dict[str, Any]]:  # fmt: skip
    """``n_problems`` distinct problems (distinct multiset of numbers and target): ``n_numbers`` numbers drawn from
    1…``max_number``, the target the result in 1…``max_target`` of a random game with them (:func:`random_steps`,
    kept as the row's ``solution``). Each row: ``prompt`` ``"<numbers>><target>:"`` with the numbers in a random
    order, ``numbers``, ``target`` and ``solution``. ``ValueError`` when random draws find fewer distinct problems
    (a small number range has few)."""
    rows: dict[tuple[tuple[int, ...], int], dict[str, Any]] = {}
    for _ in range(200 * n_problems):
        if len(rows) == n_problems:
            break
        numbers = [int(n) for n in rng.integers(1, max_number + 1, size=n_numbers)]
        game = random_steps(numbers, rng)
        if game is None or not 1 <= game[1] <= max_target:
            continue
        solution, target = game
        key = (tuple(sorted(numbers)), target)
        if key not in rows:
            shown = " ".join(str(n) for n in rng.permutation(numbers))
            rows[key] = {"prompt": f"{shown}>{target}:", "numbers": numbers, "target": target, "solution": solution}
    if len(rows) < n_problems:
        raise ValueError(f"countdown: n_problems={n_problems} distinct problems asked, {len(rows)} found with "
                         f"n_numbers={n_numbers}, max_number={max_number}, max_target={max_target}: lower "
                         "n_problems or widen the ranges")  # fmt: skip
    return list(rows.values())
