"""The in-flight state of a run — envs mid-episode (their random generators included), the current observation,
running episode counters — saved with each checkpoint so that a resumed run continues exactly where it stopped.

An agent names these attributes in ``live_parts`` (dotted paths from the agent). They are pickled together with
``cloudpickle`` (vector envs hold their env factories as closures) into a byte array of the checkpoint, so the
checkpoint itself still loads with ``torch.load(weights_only=True)``. The bytes are unpickled only by
``Agent.restore_live``, which a ``resume=true`` run calls on the checkpoints of its own run directory after their
checksum was verified; ``Agent.load`` never unpickles them.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from functools import reduce
from typing import Any

import numpy as np


def _get(owner: Any, path: str) -> Any:
    return reduce(getattr, path.split("."), owner)


def _set(owner: Any, path: str, value: Any) -> None:
    *parents, name = path.split(".")
    setattr(reduce(getattr, parents, owner), name, value)


def capture(owner: Any, paths: Sequence[str]) -> dict[str, Any]:
    """``{"pickle": uint8 array}`` of the attributes ``paths`` of ``owner``, or ``{"error": why}`` when they
    cannot be pickled (e.g. envs in subprocesses); ``{}`` when there are none."""
    if not paths:
        return {}
    import cloudpickle

    try:
        blob = cloudpickle.dumps({path: _get(owner, path) for path in paths})
    except Exception as err:  # pickling fails with many types (locks, pipes, C handles)
        return {"error": f"{type(err).__name__}: {err}"}
    return {"pickle": np.frombuffer(blob, dtype=np.uint8).copy()}


def restore(owner: Any, saved: dict[str, Any] | None, paths: Sequence[str]) -> str | None:
    """Put back what ``capture`` saved; returns None, or why it could not (``owner`` is then unchanged)."""
    if not paths:
        return None
    if not saved:
        return "the checkpoint holds no env state (saved by an rlzoo that did not store it)"
    if "error" in saved:
        return f"the env state could not be saved ({saved['error']})"
    try:
        values = pickle.loads(np.asarray(saved["pickle"], dtype=np.uint8).tobytes())
    except Exception as err:  # a class renamed or removed since the checkpoint was written
        return f"the saved env state cannot be read ({type(err).__name__}: {err})"
    if set(values) != set(paths):
        return f"the saved env state holds {sorted(values)}, not {sorted(paths)}"
    for path in paths:
        _set(owner, path, values[path])
    return None


def joined_reasons(*reasons: str | None) -> str | None:
    """The reasons a restore was not exact, joined with "; " (None when there are none)."""
    return "; ".join(why for why in reasons if why) or None
