"""GridWorld layouts: parsing, validation and random generation.

A layout is a list of equal-length ASCII rows: ``.`` ordinary, ``#`` or ``F`` forbidden,
``T`` target (exactly one), ``S`` start (at most one). State index ``s = row * n_cols + col``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

#: The 5x5 world of S. Zhao, *Mathematical Foundations of RL* (2024): target at (4,3) and
#: forbidden cells (2,2), (2,3), (3,3), (4,2), (4,4), (5,2) in the book's 1-based (row, col).
DEFAULT_LAYOUT: tuple[str, ...] = (".....", ".##..", "..#..", ".#T#.", ".#...")

ORDINARY, FORBIDDEN, TARGET, START = ".", "#", "T", "S"
_ALLOWED = {".": ORDINARY, "#": FORBIDDEN, "F": FORBIDDEN, "T": TARGET, "S": START}


class LayoutError(ValueError):
    """A GridWorld layout or start cell that does not describe a valid world."""


@dataclass(frozen=True)
class Layout:
    """A validated grid: its size, forbidden mask (S,), target index and optional start index."""

    n_rows: int
    n_cols: int
    forbidden: tuple[bool, ...]
    target: int
    start: int | None = None

    @property
    def n_states(self) -> int:
        return self.n_rows * self.n_cols

    def cell(self, s: int) -> tuple[int, int]:
        """(row, col) of state index ``s``."""
        return divmod(int(s), self.n_cols)

    def index(self, row: int, col: int) -> int:
        return row * self.n_cols + col

    def forbidden_mask(self) -> np.ndarray:
        return np.array(self.forbidden, dtype=bool)

    def rows(self) -> list[str]:
        """The layout back as ASCII rows (``S`` marks the start when there is one)."""
        out = []
        for r in range(self.n_rows):
            chars = []
            for c in range(self.n_cols):
                s = self.index(r, c)
                if s == self.target:
                    chars.append(TARGET)
                elif self.forbidden[s]:
                    chars.append(FORBIDDEN)
                elif s == self.start:
                    chars.append(START)
                else:
                    chars.append(ORDINARY)
            out.append("".join(chars))
        return out

    @classmethod
    def parse(cls, rows: Sequence[str], start: Sequence[int] | None = None) -> Layout:
        """Validate ASCII ``rows`` (and an optional ``start`` [row, col] overriding ``S``)."""
        if isinstance(rows, str) or not isinstance(rows, Sequence):
            raise LayoutError(f"layout must be a list of strings (rows), got {rows!r}")
        rows = tuple(str(r) for r in rows)
        try:
            key = None if start is None else tuple(start)
            hash(key)
        except TypeError:  # not a sequence of numbers: the scan names the problem
            return cls._scan(rows, start)
        return _parse(rows, key)

    @classmethod
    def _scan(cls, rows: tuple[str, ...], start: Sequence[int] | None) -> Layout:
        """``parse`` of rows given as strings, cell by cell (memoised by ``_parse``)."""
        if not rows or not rows[0]:
            raise LayoutError("layout is empty: give at least one row with at least one cell")
        n_cols = len(rows[0])
        forbidden: list[bool] = []
        targets: list[tuple[int, int]] = []
        starts: list[tuple[int, int]] = []
        for r, row in enumerate(rows):
            if len(row) != n_cols:
                raise LayoutError(
                    f"layout row {r} has {len(row)} cells, expected {n_cols} like row 0 (rows must be equal length)"
                )
            for c, ch in enumerate(row):
                kind = _ALLOWED.get(ch)
                if kind is None:
                    raise LayoutError(
                        f"layout has unknown character {ch!r} at row {r}, col {c}; "
                        "allowed: '.' ordinary, '#' or 'F' forbidden, 'T' target, 'S' start"
                    )
                forbidden.append(kind == FORBIDDEN)
                if kind == TARGET:
                    targets.append((r, c))
                elif kind == START:
                    starts.append((r, c))
        if not targets:
            raise LayoutError("layout has no target cell: mark exactly one cell with 'T'")
        if len(targets) > 1:
            raise LayoutError(f"layout has {len(targets)} target cells at {targets}: exactly one 'T' is allowed")
        if len(starts) > 1:
            raise LayoutError(f"layout has {len(starts)} start cells at {starts}: at most one 'S' is allowed")
        n_rows = len(rows)
        start_idx: int | None = None
        if start is not None:
            if len(start) != 2:
                raise LayoutError(f"start must be [row, col], got {list(start)!r}")
            r, c = (int(x) for x in start)
            if not (0 <= r < n_rows and 0 <= c < n_cols):
                allowed = f"rows 0..{n_rows - 1}, cols 0..{n_cols - 1}"
                raise LayoutError(f"start [{r}, {c}] is outside the {n_rows}x{n_cols} grid ({allowed})")
            start_idx = r * n_cols + c
        elif starts:
            start_idx = starts[0][0] * n_cols + starts[0][1]
        if start_idx is not None and forbidden[start_idx]:
            raise LayoutError(f"start {list(divmod(start_idx, n_cols))} is a forbidden cell: choose an enterable one")
        tr, tc = targets[0]
        return cls(n_rows, n_cols, tuple(forbidden), tr * n_cols + tc, start_idx)


@lru_cache(maxsize=16)
def _parse(rows: tuple[str, ...], start: tuple[int, ...] | None) -> Layout:
    """``Layout.parse`` memoised: an env, its evaluation copy and the config check parse one layout once."""
    return Layout._scan(rows, start)


def read_layout_file(path: str | os.PathLike) -> list[str]:
    """The rows of a layout file: one row a line; spaces around a row and blank lines before the first row and
    after the last are ignored. ``LayoutError`` naming the path when it cannot be read."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = (err.strerror or str(err)) if isinstance(err, OSError) else f"not UTF-8 text: {err.reason}"
        raise LayoutError(f"layout_file={str(path)!r} cannot be read ({reason})") from None
    rows = [line.strip() for line in text.splitlines()]
    while rows and not rows[-1]:
        rows.pop()
    while rows and not rows[0]:
        rows.pop(0)
    return rows


def random_layout(
    n_rows: int, n_cols: int, p_forbidden: float = 0.2, rng: np.random.Generator | int | None = None
) -> list[str]:
    """A random layout: each cell forbidden with probability ``p_forbidden``, one random target."""
    rng = np.random.default_rng(rng)
    grid = np.where(rng.random((n_rows, n_cols)) < p_forbidden, FORBIDDEN, ORDINARY)
    t = rng.integers(n_rows * n_cols)
    grid[t // n_cols, t % n_cols] = TARGET
    return ["".join(row) for row in grid]
