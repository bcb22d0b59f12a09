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

``TextTaskEnv`` wraps a task as a one-step gymnasium env (observation: a prompt, action: a completion),
so the trainer, evaluation and configs treat it like any other env.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from .dynamics import GridDynamics, Rewards
from .layout import DEFAULT_LAYOUT, Layout

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

    def rewards(self, rows: Sequence[dict[str, Any]], completions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(total (N,), per-function (F, N)) rewards; a ``None`` counts as 0 in the total and NaN per function."""
        prompts = [r["prompt"] for r in rows]
        columns = {k: [r[k] for r in rows] for k in rows[0] if k != "prompt"} if rows else {}
        per = np.array([[np.nan if v is None else float(v) for v in f(prompts, list(completions), **columns)]
                        for f in self.reward_funcs])  # fmt: skip
        total = np.nansum(per * np.asarray(self.reward_weights)[:, None], axis=0)
        return total, per


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


TASKS: dict[str, Callable[..., TextTask]] = {"arithmetic": arithmetic_task, "gridworld_text": gridworld_text_task}


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
