"""One owner per run directory: an exclusive advisory lock on ``<run_dir>/.rlzoo.lock`` held while a run writes.

The lock is ``fcntl.flock`` (POSIX): the kernel releases it when its process dies, so a run killed with SIGKILL
never leaves a stale lock behind and can be resumed at once. The lock file holds who took it (pid, host, start
time, command line), which a refused second run names. Within one process the lock is re-entrant: the Hydra
callback takes it before Hydra writes ``.hydra/`` and ``train`` takes it again for the run itself.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from rlzoo.config import ConfigError

LOCK_FILE = ".rlzoo.lock"
_held: dict[Path, tuple[int, int]] = {}  # directories this process holds: resolved path -> (fd, how many holds)


def holder_of(directory: str | Path) -> str:
    """Who holds (or last held) the lock of ``directory``, as written in its lock file."""
    try:
        info = json.loads((Path(directory) / LOCK_FILE).read_text())
        return f"pid {info['pid']} on {info['host']} since {info['started']}: {info['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet written its name"


def acquire(directory: str | Path, what: str = "run directory") -> None:
    """Take the lock of ``directory`` (created if missing); ``ConfigError`` naming the holder if another process
    has it."""
    import fcntl

    path = Path(directory).resolve()
    if path in _held:
        fd, holds = _held[path]
        _held[path] = (fd, holds + 1)
        return
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        named = f"{what}={directory}" if what.startswith("hydra.") else f"{what} {directory}"
        raise ConfigError(f"{named} is in use by another run ({holder_of(path)}); wait for it to end, or choose "
                          "another directory") from None  # fmt: skip
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv)}  # fmt: skip
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(info).encode())
    _held[path] = (fd, 1)


def release(directory: str | Path) -> None:
    """Give back one hold on ``directory`` taken by ``acquire``; the lock goes with the last one."""
    path = Path(directory).resolve()
    if path not in _held:
        return
    fd, holds = _held.pop(path)
    if holds > 1:
        _held[path] = (fd, holds - 1)
    else:
        os.close(fd)  # closing the only descriptor releases the flock
