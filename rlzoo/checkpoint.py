"""Checkpoints: atomic save/load of an agent's state and periodic checkpointing during training.

A checkpoint file (format 2) is one header line followed by the body::

    RLZOO-CHECKPOINT 2 sha256=<64 hex digits of the SHA-256 of the body>  (ends with a newline)
    <body: a ``torch.save`` of a dict>

numpy arrays are stored as tensors so that loading works with ``weights_only=True`` (no arbitrary
pickles are executed on load). ``load_checkpoint`` hashes the body before unpickling it, so a flipped
byte anywhere in the file is a ``CheckpointError`` ("checksum mismatch") instead of silently wrong
weights: torch's own zip container does not check the bytes of a tensor. Files of format 1 (a bare
``torch.save``, no checksum) are still read; see ``load_checkpoint``.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rlzoo.atomic import atomic_write_bytes, atomic_write_json
from rlzoo.callbacks import Callback, next_multiple

if TYPE_CHECKING:
    from rlzoo.agents.base import Agent

FORMAT_VERSION = 2
LEGACY_FORMAT_VERSION = 1  # no checksum; still loaded (see load_checkpoint)
_MAGIC = b"RLZOO-CHECKPOINT "
_ZIP_MAGIC = b"PK\x03\x04"  # what every torch.save (zip format, hence every format-1 checkpoint) starts with
_HEADER = re.compile(rb"RLZOO-CHECKPOINT (\d+) sha256=([0-9a-f]{64})\n")
_ND = "__ndarray__"


class CheckpointError(RuntimeError):
    """A checkpoint file that is missing, truncated, corrupted or not an rlzoo checkpoint."""


def _pack(obj: Any) -> Any:
    import torch

    if isinstance(obj, np.ndarray):
        return {_ND: torch.from_numpy(np.ascontiguousarray(obj))}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, torch.Tensor) and obj.untyped_storage().nbytes() > obj.numel() * obj.element_size():
        return obj.clone()  # a view (a seed batch's lane of stacked parameters): its own elements, not the storage
    if isinstance(obj, dict):
        return {k: _pack(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_pack(v) for v in obj)
    return obj


def _unpack(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_ND}:
            return obj[_ND].numpy()
        return {k: _unpack(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_unpack(v) for v in obj)
    return obj


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (temp file, fsync, rename), with a SHA-256 of the body."""
    import torch

    buf = io.BytesIO()
    torch.save({"rlzoo_checkpoint": FORMAT_VERSION, **_pack(payload)}, buf)
    body = buf.getvalue()
    header = _MAGIC + f"{FORMAT_VERSION} sha256={hashlib.sha256(body).hexdigest()}\n".encode()
    return atomic_write_bytes(path, header + body)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``; raises ``CheckpointError`` naming ``path`` if it is
    missing, truncated, corrupted (checksum mismatch) or not an rlzoo checkpoint.

    Files of the previous format (1: a bare ``torch.save``, recognised by the zip signature it starts
    with) are read as before, without a checksum: runs saved before checksums existed must still resume
    and evaluate, and there is no digest to check them against. A format-2 body with its header
    stripped is refused (its inner version is 2), so removing the checksum does not bypass it.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from None
    if data.startswith(_MAGIC):
        header = _HEADER.match(data)
        if header is None:
            raise CheckpointError(f"{path}: corrupted checkpoint header")
        version, digest = int(header.group(1)), header.group(2).decode()
        if version != FORMAT_VERSION:
            raise CheckpointError(f"{path}: checkpoint format {version} is not supported (format {FORMAT_VERSION})")
        body = data[header.end() :]
        if hashlib.sha256(body).hexdigest() != digest:
            raise CheckpointError(f"{path}: checksum mismatch (the file is corrupted or truncated)")
    elif data.startswith(_ZIP_MAGIC):
        version, body = LEGACY_FORMAT_VERSION, data
    else:
        raise CheckpointError(f"{path}: not an rlzoo checkpoint (format {FORMAT_VERSION} expected)")
    try:
        obj = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for truncated or foreign files
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(obj, dict) or obj.get("rlzoo_checkpoint") != version:
        raise CheckpointError(f"{path}: not an rlzoo checkpoint (format {version} expected)")
    obj.pop("rlzoo_checkpoint")
    return _unpack(obj)


class Checkpointer(Callback):
    """Saves ``step_<n>.pt`` every ``every`` steps (0 = never), keeps the newest ``keep``, and ``final.pt``.

    A training-loop callback (``rlzoo.callbacks``): the trainer stops at ``next_step`` to call it."""

    _PATTERN = re.compile(r"step_(\d+)\.pt$")

    def __init__(self, directory: str | Path, every: int, keep: int, start_step: int) -> None:
        self.directory = Path(directory)
        self.every = int(every)
        self.keep = int(keep)
        self.next_step = next_multiple(start_step, self.every) if self.every > 0 else None

    def __call__(self, agent: Agent, step: int) -> None:
        """Save when ``step`` has reached the next multiple of ``every``."""
        if self.next_step is None or step < self.next_step:
            return
        self.next_step = next_multiple(step, self.every)
        agent.save(self.directory / f"step_{step:010d}.pt")
        for old in periodic_checkpoints(self.directory)[: -self.keep]:
            old.unlink(missing_ok=True)

    def save_final(self, agent: Agent) -> Path:
        return agent.save(self.directory / "final.pt")


class BestCheckpoint(Callback):
    """Keeps ``best.pt``, the agent at the evaluation with the highest mean return so far (ties: the later one),
    and ``best.json`` with that evaluation's step and return, from which a resumed run goes on. A training-loop
    callback (``on_evaluation``); ``seconds`` is the time its saves took."""

    def __init__(self, directory: str | Path) -> None:
        self.path, self.record = Path(directory) / "best.pt", Path(directory) / "best.json"
        self.step: int | None = None
        self.eval_return = -math.inf
        self.seconds = 0.0
        if self.path.is_file() and self.record.is_file():
            best = json.loads(self.record.read_text())
            self.step, self.eval_return = int(best["step"]), float(best["eval_return"])

    def consider(self, agent: Agent, step: int, eval_return: float) -> bool:
        """Save ``agent`` as the best when ``eval_return`` (at env step ``step``) is at least the best so far."""
        if not eval_return >= self.eval_return:  # NaN is never the best
            return False
        start = time.perf_counter()
        agent.save(self.path)
        self.step, self.eval_return = int(step), float(eval_return)
        atomic_write_json(self.record, self.summary())
        self.seconds += time.perf_counter() - start
        return True

    def on_evaluation(self, agent: Agent, step: int, mean_return: float) -> None:
        self.consider(agent, step, mean_return)

    def summary(self) -> dict[str, Any] | None:
        """``{"step", "eval_return"}`` of the best evaluation, None before the first."""
        return None if self.step is None else {"step": self.step, "eval_return": self.eval_return}


CHECKPOINT_CHOICES = {"last": "final.pt", "best": "best.pt"}


def run_checkpoint(path: str | Path, which: str = "last") -> Path:
    """``path`` when it is a checkpoint file; for a run directory its ``checkpoints/final.pt`` (``which="last"``) or
    ``checkpoints/best.pt`` (``"best"``, kept with periodic evaluation). ``ValueError`` naming what is missing."""
    if which not in CHECKPOINT_CHOICES:
        raise ValueError(f"which={which!r} is not allowed: choose one of {', '.join(CHECKPOINT_CHOICES)}")
    path = Path(path)
    if not path.is_dir():
        return path
    chosen = path / "checkpoints" / CHECKPOINT_CHOICES[which]
    if not chosen.is_file():
        why = " (kept only with periodic evaluation, eval.every > 0)" if which == "best" else ""
        raise ValueError(f"{path} has no checkpoints/{chosen.name}{why}")
    return chosen


def checkpoint_step(path: Path) -> int:
    """The step of a periodic checkpoint ``step_<n>.pt``."""
    match = Checkpointer._PATTERN.match(path.name)
    if match is None:
        raise ValueError(f"{path} is not a periodic checkpoint (step_<n>.pt)")
    return int(match.group(1))


def periodic_checkpoints(directory: str | Path) -> list[Path]:
    """The periodic checkpoints ``step_<n>.pt`` in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := Checkpointer._PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_valid(directory: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest periodic checkpoint in ``directory`` that loads; unreadable ones are skipped with a warning."""
    for path in reversed(periodic_checkpoints(directory)):
        try:
            return path, load_checkpoint(path)
        except CheckpointError as err:
            logging.getLogger("rlzoo").warning("skipping corrupted checkpoint %s (using an older one): %s", path, err)
    return None
