"""Text tasks with verifiable rewards for LLM policies (GRPO): prompts plus reward functions.

A reward function has the familiar signature ``f(prompts, completions, **columns) -> list[float | None]``
(``None``: this function does not score that sample); a task has several with weights, and its reward is
their weighted sum. Each prompt row is a dict with ``prompt`` and any extra columns the rewards read.

- ``arithmetic``: ``"47+08="`` → ``"55"``; two-digit addition and subtraction, exact-answer reward 1 and an
  optional format credit for any integer.
- ``gridworld_text``: ``"start 2 3:"`` → a string of moves over ``U R D L S`` (by default the environment writes
  the cell each move reaches after it, ``"D33L32…"``); the reward is the discounted return of those moves from
  that cell in the shared GridWorld (``rlzoo.envs``), so the optimal value of every prompt is known exactly
  (finite-horizon dynamic programming).
- ``countdown``: ``"3 7 5>26:"`` → ``"3*7=21,21+5=26"``; reach the target with each number once and + − × ÷,
  one step at a time (``rlzoo.envs.countdown``), reward 1 for correct steps and a format credit for well-formed ones.

``TextTaskEnv`` wraps a task as a one-step gymnasium env (observation: a prompt, action: a completion),
so the trainer, evaluation and configs treat it like any other env.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from .countdown import correct_equation, countdown_problems, equation_format
from .dynamics import GridDynamics, Rewards
from .layout import DEFAULT_LAYOUT, Layout
from .text_file import check_columns, demonstration_column, import_reward_function, read_rows

RewardFn = Callable[..., list[float | None]]
MOVE_CHARS = "URDLS"  # 0 up, 1 right, 2 down, 3 left, 4 stay
CHARSET = "0123456789+-=*/()<>.,:;!? abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n"


@dataclass
class TextTask:
    """Train and held-out prompt rows, weighted reward functions and the completion length budget."""

    name: str
    train: list[dict[str, Any]]
    test: list[dict[str, Any]]
    reward_funcs: list[RewardFn]
    reward_weights: list[float]
    max_completion_length: int
    demonstration: Callable[[dict[str, Any], np.random.Generator], str] | None = None  # for a warm start
    # feedback(prompt, completion so far) -> text the environment writes after the model's latest token
    # (an observation: not sampled, not trained on); None: the model writes the whole completion
    feedback: Callable[[str, str], str] | None = None

    chat_template: bool = False  # prompts go through the model's chat template (the agent applies it)

    def rewards(self, rows: Sequence[dict[str, Any]], completions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(total (N,), per-function (F, N)) rewards; a ``None`` counts as 0 in the total and NaN per function. A
        reward function that reads a column the rows lack, or returns other than one float or None per completion,
        is a ``RewardFunctionError`` naming it."""
        prompts = [r.get(SOURCE_PROMPT, r["prompt"]) for r in rows]
        columns = {k: [r[k] for r in rows] for k in rows[0] if k not in ("prompt", SOURCE_PROMPT)} if rows else {}
        per = np.array([checked_rewards(f, prompts, list(completions), columns) for f in self.reward_funcs])
        total = np.nansum(per * np.asarray(self.reward_weights)[:, None], axis=0)
        return total, per

    def with_chat_template(self, template: Callable[[str], str]) -> TextTask:
        """This task with every prompt written through ``template`` (a model's chat template); the reward
        functions and the task's feedback still see the prompt as the task wrote it."""
        if self.feedback is not None:
            raise ValueError(f"the {self.name} task writes feedback keyed by its prompts: it takes no chat template")

        def templated(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{**r, "prompt": template(r["prompt"]), SOURCE_PROMPT: r["prompt"]} for r in rows]

        return dataclasses.replace(self, train=templated(self.train), test=templated(self.test), chat_template=False)


class RewardFunctionError(ValueError):
    """A reward function that cannot score a batch: a column it reads is missing, or what it returned is not one
    float (or None) per completion."""


SOURCE_PROMPT = "source_prompt"  # a templated row's prompt as the task wrote it (what reward functions receive)


def reward_function_name(f: RewardFn) -> str:
    """``module:qualified_name`` of a reward function, as a reward import path is written."""
    return f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', repr(f))}"


def checked_rewards(f: RewardFn, prompts: list[str], completions: list[str],
                    columns: dict[str, list[Any]]) -> list[float]:  # fmt: skip
    """``f(prompts, completions, **columns)`` as floats (``None`` → NaN), or a ``RewardFunctionError`` naming ``f``
    when it reads a column that is not there or returns anything but one float or None per completion."""
    try:
        values = f(prompts, completions, **columns)
    except KeyError as err:
        column = err.args[0] if err.args else None
        if isinstance(column, str) and column not in columns:
            have = ", ".join(["prompt", *columns])
            raise RewardFunctionError(f"reward function {reward_function_name(f)} reads column {column!r}, which "
                                      f"the rows lack (columns: {have})") from None  # fmt: skip
        raise
    if isinstance(values, str | bytes | dict) or not hasattr(values, "__len__"):
        raise RewardFunctionError(f"reward function {reward_function_name(f)} returned a {type(values).__name__}, "
                                  "not a list of one float (or None) per completion")  # fmt: skip
    if len(values) != len(completions):
        raise RewardFunctionError(f"reward function {reward_function_name(f)} returned {len(values)} rewards for "
                                  f"{len(completions)} completions")  # fmt: skip
    try:
        return [np.nan if v is None else float(v) for v in values]
    except (TypeError, ValueError):
        bad = next(v for v in values if v is not None and not isinstance(v, int | float | np.number))
        raise RewardFunctionError(f"reward function {reward_function_name(f)} returned {bad!r}: give a float or "
                                  "None per completion") from None  # fmt: skip


# ---- arithmetic --------------------------------------------------------------------------------------------


def exact_answer(prompts: list[str], completions: list[str], answer: list[str], **_: Any) -> list[float | None]:
    """1 when the completion is exactly the answer (surrounding spaces ignored), else 0."""
    return [float(c.strip() == a) for c, a in zip(completions, answer, strict=True)]


def integer_format(prompts: list[str], completions: list[str], **_: Any) -> list[float | None]:
    """1 when the completion is an integer (a partial credit for the format), else 0."""
    return [float(re.fullmatch(r"-?\d+", c.strip()) is not None) for c in completions]


def answer_characters(prompts: list[str], completions: list[str], answer: list[str], **_: Any) -> list[float | None]:
    """Share of positions where completion and answer agree, over the longer of the two (a dense partial
    credit: 1 only for the exact answer, ½ for one wrong digit of two)."""
    out: list[float | None] = []
    for c, a in zip(completions, answer, strict=True):
        c = c.strip()
        out.append(sum(x == y for x, y in zip(c, a, strict=False)) / max(len(c), len(a), 1))
    return out


def arithmetic_task(
    n_test: int = 200, seed: int = 0, format_weight: float = 0.0, digit_weight: float = 0.0
) -> TextTask:
    """Every ``a±b=`` with a, b ∈ 0…99 written with two digits; ``n_test`` of them held out (fixed by ``seed``).
    Reward: exact answer + ``format_weight`` × integer format + ``digit_weight`` × answer characters."""
    rows = [{"prompt": f"{a:02d}{op}{b:02d}=", "answer": str(a + b if op == "+" else a - b)}
            for a in range(100) for b in range(100) for op in "+-"]  # fmt: skip
    order = np.random.default_rng(seed).permutation(len(rows))
    test = [rows[i] for i in order[:n_test]]
    train = [rows[i] for i in order[n_test:]]
    return TextTask("arithmetic", train, test, [exact_answer, integer_format, answer_characters],
                    [1.0, format_weight, digit_weight], 4,
                    demonstration=lambda row, rng: row["answer"])  # fmt: skip


# ---- gridworld_text -----------------------------------------------------------------------------------------


def gridworld_text_task(horizon: int = 8, gamma: float = 0.9, layout: Sequence[str] = DEFAULT_LAYOUT,
                        format_weight: float = 0.0, annotate_cells: bool = True) -> TextTask:  # fmt: skip
    """One prompt per GridWorld cell; reward = Σ_t γ^t r_t of the completion's first ``horizon`` moves.

    Each row carries ``start`` and ``optimal`` (the best ``horizon``-step return from it, by backward
    induction V_k(s) = max_a r(s, a) + γ V_{k−1}(s')), so a completion's optimality gap is exact.
    With ``annotate_cells`` the environment writes after each move the cell it leads to (``"start 0 0:" →
    "D10D20R21…"``, the digits are ``feedback``, not sampled): the model's next move can depend on where it is
    — a closed-loop policy, as an agent that observes its state — instead of only on the start and the step
    count. The reward reads the moves only.
    """
    dyn = GridDynamics(Layout.parse(layout), Rewards())
    nxt, rew = dyn.tables
    v = np.zeros(dyn.layout.n_states)
    for _ in range(horizon):
        v = (rew + gamma * v[nxt]).max(axis=1)
    n_cols = dyn.layout.n_cols
    if max(dyn.layout.n_rows, n_cols) > 10 and annotate_cells:
        raise ValueError("annotate_cells needs at most 10 rows and columns (one digit each)")
    rows = [{"prompt": f"start {s // n_cols} {s % n_cols}:", "start": s, "optimal": float(v[s])}
            for s in range(dyn.layout.n_states)]  # fmt: skip
    step = "[URDLS][0-9][0-9]" if annotate_cells else "[URDLS]"
    well_formed = re.compile(f"(?:{step}){{{horizon}}}")

    def discounted_return(prompts: list[str], completions: list[str], start: list[int], **_: Any):
        """Σ_t γ^t r_t of the moves (characters of U R D L S, others skipped) from ``start``, ``horizon`` at most."""
        out = []
        for text, s in zip(completions, start, strict=True):
            total, state = 0.0, int(s)
            for t, a in enumerate([MOVE_CHARS.index(c) for c in text if c in MOVE_CHARS][:horizon]):
                total += gamma**t * rew[state, a]
                state = int(nxt[state, a])
            out.append(total)
        return out

    def exact_moves(prompts: list[str], completions: list[str], **_: Any):
        """1 when the completion is exactly ``horizon`` moves (each followed by a cell with ``annotate_cells``)."""
        return [float(well_formed.fullmatch(c) is not None) for c in completions]

    def cell_text(state: int) -> str:
        """A cell as its row and column digits: ``"23"``."""
        return "{}{}".format(*dyn.layout.cell(state))

    def random_moves(row: dict[str, Any], rng: np.random.Generator) -> str:
        """A format demonstration: ``horizon`` uniformly random moves (no hint of the good ones), each followed by
        the cell it leads to when annotating (what the environment writes)."""
        text, state = "", int(row["start"])
        for a in rng.integers(len(MOVE_CHARS), size=horizon):
            state = int(nxt[state, a])
            text += MOVE_CHARS[a] + (cell_text(state) if annotate_cells else "")
        return text

    start_of = {row["prompt"]: row["start"] for row in rows}

    def cell_reached(prompt: str, completion: str) -> str:
        """After a move, the cell the moves so far lead to from the prompt's start (``""`` after anything else)."""
        if not completion or completion[-1] not in MOVE_CHARS:
            return ""
        state = start_of[prompt]
        for a in [MOVE_CHARS.index(c) for c in completion if c in MOVE_CHARS]:
            state = int(nxt[state, a])
        return cell_text(state)

    length = horizon * (3 if annotate_cells else 1)
    return TextTask("gridworld_text", rows, rows, [discounted_return, exact_moves], [1.0, format_weight], length,
                    demonstration=random_moves, feedback=cell_reached if annotate_cells else None)  # fmt: skip


# ---- countdown ----------------------------------------------------------------------------------------------


def countdown_task(n_numbers: int = 3, max_number: int = 20, max_target: int = 99, n_problems: int = 8000,
                   n_test: int = 200, seed: int = 0, format_weight: float = 0.1) -> TextTask:  # fmt: skip
    """Countdown (``rlzoo.envs.countdown``): ``n_problems`` distinct problems drawn with ``seed``, ``n_test`` of
    them held out. Reward: correct steps (each number once, the target reached) + ``format_weight`` × well-formed
    steps (TinyZero's format credit). The demonstration for a warm start is the game each problem was drawn from;
    the completion budget is the longest of them and 2 tokens more."""
    if not 2 <= n_numbers <= 6:
        raise ValueError(f"n_numbers={n_numbers} is not allowed: give 2 to 6")
    if n_test >= n_problems:
        raise ValueError(f"n_test={n_test} is not allowed: give fewer than n_problems={n_problems}")
    rng = np.random.default_rng(seed)
    rows = countdown_problems(n_problems, n_numbers, max_number, max_target, rng)
    rows = [rows[i] for i in rng.permutation(len(rows))]  # the split does not follow the order of discovery
    length = max(len(r["solution"]) for r in rows) + 2
    return TextTask("countdown", rows[n_test:], rows[:n_test], [correct_equation, equation_format],
                    [1.0, format_weight], length, demonstration=lambda row, rng: row["solution"])  # fmt: skip


# ---- text_file: a user's task -------------------------------------------------------------------------------


def text_file_task(train: str, reward_funcs: Sequence[str], test: str | None = None, test_fraction: float = 0.1,
                   seed: int = 0, reward_weights: Sequence[float] | None = None, chat_template: bool = False,
                   max_completion_length: int = 16) -> TextTask:  # fmt: skip
    """A task from files (``rlzoo.envs.text_file``): prompt rows of ``train`` (JSON Lines, JSON or CSV with a
    ``prompt`` column), held out: the rows of ``test``, else a ``test_fraction`` share of ``train`` drawn with
    ``seed``. ``reward_funcs`` are import paths ``"package.module:function"``, weighted by ``reward_weights``
    (1 each by default); every column but ``prompt`` reaches them as a keyword list. A ``completion`` (else
    ``answer``) column is the demonstration of a warm start (none without one). ``chat_template``: the agent
    writes each prompt through its model's chat template."""
    rows = read_rows(train, "train")
    if not reward_funcs:
        raise ValueError("reward_funcs is empty: give at least one import path 'package.module:function'")
    funcs = [import_reward_function(path, f"reward_funcs[{i}]") for i, path in enumerate(reward_funcs)]
    names = [f.__name__ for f in funcs]
    if len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"reward_funcs={list(reward_funcs)}: two functions are named {twice!r} (the name keys "
                         "their logged rewards)")  # fmt: skip
    weights = [1.0] * len(funcs) if reward_weights is None else [float(w) for w in reward_weights]
    if len(weights) != len(funcs):
        raise ValueError(f"reward_weights={list(reward_weights or [])} has {len(weights)} values for "
                         f"{len(funcs)} reward_funcs: give one weight per function")  # fmt: skip
    if test is not None:
        held = read_rows(test, "test")
    else:
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction={test_fraction} is not allowed: give a share in (0, 1)")
        if len(rows) < 2:
            raise ValueError(f"train={train!r} holds {len(rows)} row: give at least 2, or a test file")
        order = np.random.default_rng(seed).permutation(len(rows))
        n_test = min(max(1, round(test_fraction * len(rows))), len(rows) - 1)
        held, rows = [rows[i] for i in order[:n_test]], [rows[i] for i in sorted(order[n_test:])]
    check_columns(funcs, reward_funcs, rows, f"train={train!r}")
    check_columns(funcs, reward_funcs, held, f"test={test!r}" if test is not None else f"train={train!r}")
    column = demonstration_column(rows, f"train={train!r}")
    demonstration = None if column is None else (lambda row, rng: str(row[column]))
    return TextTask("text_file", rows, held, funcs, weights, max_completion_length, demonstration=demonstration,
                    chat_template=chat_template)  # fmt: skip


TASKS: dict[str, Callable[..., TextTask]] = {"arithmetic": arithmetic_task, "gridworld_text": gridworld_text_task,
                                             "countdown": countdown_task, "text_file": text_file_task}  # fmt: skip


class TextTaskEnv(gym.Env):
    """A text task as a one-step env: ``reset`` draws a prompt (``split`` train or test), ``step(completion)``
    returns its weighted reward and ends the episode. ``task`` exposes the prompts and reward functions."""

    def __init__(self, task: str = "arithmetic", split: str = "train", **task_kwargs: Any) -> None:
        if task not in TASKS:
            raise ValueError(f"task={task!r} is not a text task: choose one of {', '.join(TASKS)}")
        if split not in ("train", "test"):
            raise ValueError(f"split={split!r} is not allowed: choose train or test")
        self.task = TASKS[task](**task_kwargs)
        self.split = split
        self.observation_space = gym.spaces.Text(max_length=256, charset=CHARSET)
        self.action_space = gym.spaces.Text(max_length=256, charset=CHARSET)
        self._row: dict[str, Any] | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        rows = getattr(self.task, self.split)
        self._row = rows[int(self.np_random.integers(len(rows)))]
        return self._row["prompt"], {"row": self._row}

    def step(self, action: str):
        if self._row is None:
            raise RuntimeError("call reset() before step()")
        total, _ = self.task.rewards([self._row], [action])
        return self._row["prompt"], float(total[0]), True, False, {"row": self._row}


class TextFileEnv(TextTaskEnv):
    """``rlzoo/TextFile-v0``: :class:`TextTaskEnv` of a task read from files (:func:`text_file_task`)."""

    def __init__(self, split: str = "train", **file_kwargs: Any) -> None:
        super().__init__("text_file", split, **file_kwargs)
