"""A user's text task from files: prompt rows read from JSON Lines, JSON or CSV, and reward functions imported by
path (``"pkg.module:function"``) with the signature TRL's ``GRPOTrainer`` uses, ``f(prompts, completions,
**columns) -> list[float | None]`` (every column but ``prompt`` passed as a keyword list).

Every mistake is one ``ValueError`` line naming the key, the value and what is allowed: a missing file or column, a
wrong import path, a reward function whose parameters name a column the rows lack.
"""

from __future__ import annotations

import csv
import importlib
import inspect
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Row = dict[str, Any]
FILE_TYPES = (".jsonl", ".json", ".csv")
DEMONSTRATION_COLUMNS = ("completion", "answer")  # the first present is the warm start's demonstration


def read_rows(path: str | Path, key: str) -> list[Row]:
    """The rows of a JSON Lines (one object a line), JSON (a list of objects) or CSV (a header line) file, each
    with a string ``prompt``; a column missing from some rows is ``None`` there. ``key`` names the config key in
    errors."""
    p = Path(path)
    if p.suffix not in FILE_TYPES:
        raise ValueError(f"{key}={str(path)!r}: a {p.suffix or 'extension-less'} file is not supported, give one of "
                         f"{', '.join(FILE_TYPES)}")  # fmt: skip
    if not p.is_file():
        raise ValueError(f"{key}={str(path)!r}: no such file")
    text = p.read_text(encoding="utf-8")
    if p.suffix == ".csv":
        rows: list[Any] = list(csv.DictReader(text.splitlines()))
        where = [f"row {i + 2}" for i in range(len(rows))]  # line numbers, after the header
    elif p.suffix == ".json":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{key}={str(path)!r} is not JSON: {err}") from None
        if not isinstance(rows, list):
            raise ValueError(f"{key}={str(path)!r} holds a {type(rows).__name__}, not a list of rows")
        where = [f"row {i}" for i in range(len(rows))]
    else:
        lines = [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip()]
        rows, where = [], [f"line {n}" for n, _ in lines]
        for n, line in lines:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{key}={str(path)!r} line {n} is not JSON: {err}") from None
    if not rows:
        raise ValueError(f"{key}={str(path)!r} holds no rows")
    for row, at in zip(rows, where, strict=True):
        if not isinstance(row, dict):
            raise ValueError(f"{key}={str(path)!r} {at} is a {type(row).__name__}, not an object of columns")
        if not isinstance(row.get("prompt"), str):
            raise ValueError(f"{key}={str(path)!r} {at} has no 'prompt' string (its columns: {', '.join(row)})")
    columns = list(dict.fromkeys(k for row in rows for k in row))
    return [{c: row.get(c) for c in columns} for row in rows]


def import_reward_function(path: str, key: str) -> Callable[..., list[float | None]]:
    """The function at ``"package.module:function"`` (``function`` may be a dotted attribute path); ``key`` names
    the config key in errors."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{key}={path!r} is not an import path: write it 'package.module:function'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{key}={path!r}: cannot import {module_name!r} ({err})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{key}={path!r}: {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{key}={path!r} is a {type(obj).__name__}, not a function")
    return obj


def required_columns(fn: Callable[..., Any], key: str) -> list[str]:
    """The columns a reward function needs: its parameters without a default after ``prompts, completions``.
    ``ValueError`` when it cannot take the two positional lists."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: nothing to check
        return []
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) < 2 and not any(p.kind == p.VAR_POSITIONAL for p in params):
        raise ValueError(f"{key}: {fn.__name__}{inspect.signature(fn)} cannot be called as f(prompts, completions, "
                         "**columns)")  # fmt: skip
    named = positional[2:] + [p for p in params if p.kind == p.KEYWORD_ONLY]
    return [p.name for p in named if p.default is p.empty]


def check_columns(funcs: Sequence[Callable[..., Any]], paths: Sequence[str], rows: Sequence[Row], source: str,
                  key: str = "reward_funcs") -> None:  # fmt: skip
    """``ValueError`` naming the first reward function that needs a column ``rows`` (read from ``source``) lack."""
    have = [c for c in rows[0] if c != "prompt"]
    for i, (fn, path) in enumerate(zip(funcs, paths, strict=True)):
        for column in required_columns(fn, f"{key}[{i}]={path!r}"):
            if column not in have:
                raise ValueError(f"{key}[{i}]={path!r} needs column {column!r}, which {source} lacks (its columns: "
                                 f"{', '.join(['prompt', *have])})")  # fmt: skip


def demonstration_column(rows: Sequence[Row], source: str) -> str | None:
    """The column of the warm start's demonstrations: ``completion``, else ``answer``, else None (no warm start).
    ``ValueError`` when a row has no value in it."""
    column = next((c for c in DEMONSTRATION_COLUMNS if c in rows[0]), None)
    if column is not None:
        missing = [i for i, row in enumerate(rows) if row[column] is None]
        if missing:
            raise ValueError(f"{source} row {missing[0]} has no {column!r}: a warm start on the {column!r} column "
                             "needs it in every row")  # fmt: skip
    return column
