"""A fork server for the command-line tests: each ``python -m <module> <args>`` runs in a child forked from one
interpreter that has already imported rlzoo's command-line modules, instead of a new interpreter that spends 3–4 s
importing torch, gymnasium and Hydra first.

The child then does what ``python -m`` does after its imports: it sets ``sys.argv``, ``sys.path[0]`` (the working
directory), the environment and the standard streams (stdin from /dev/null, stdout and stderr to files), runs the
module as ``__main__`` (``runpy``), and ends as an interpreter ends — ``SystemExit`` codes, tracebacks and ``atexit``
handlers included. Nothing had run in the server but imports, so every child starts as fresh as a new process would
for everything rlzoo does at run time.

Protocol (one request at a time, JSON lines): the test process writes ``{"module", "args", "cwd", "env", "stdout",
"stderr", "timeout"}``; the server answers ``{"status": …, "expired": …}`` when the child has ended (``os.waitpid``'s
status; ``expired``: it was killed after ``timeout`` s). End of input stops the server.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import sys
import time

PRELOADED = ("rlzoo.train", "rlzoo.evaluate", "rlzoo.benchmark")  # what the command-line tests run


def serve() -> dict:
    """Answer requests until end of input (then exit); in a forked child, return its request."""
    for module in PRELOADED:
        __import__(module)
    requests, answers = sys.stdin.buffer, sys.stdout
    while line := requests.readline():
        request = json.loads(line)
        answers.flush()
        pid = os.fork()
        if pid == 0:
            return request
        status, expired = wait(pid, request["timeout"])
        answers.write(json.dumps({"status": status, "expired": expired}) + "\n")
        answers.flush()
    sys.exit(0)


def wait(pid: int, timeout: float) -> tuple[int, bool]:
    """The child's ``os.waitpid`` status and whether it was killed (SIGKILL) for running past ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status, False
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            return os.waitpid(pid, 0)[1], True
        time.sleep(0.005)


def become(request: dict) -> None:
    """Turn this forked child into ``python -m <module> <args>`` run in the request's directory and environment."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    streams = [os.open(os.devnull, os.O_RDONLY)]
    streams += [os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC) for name in ("stdout", "stderr")]
    for fd, stream in enumerate(streams):
        os.dup2(stream, fd)
        os.close(stream)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own stdin, as the interpreter opens it
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - block-buffered like a pipe's; flushed at exit
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
    sys.path[0] = os.getcwd()  # ``python -m`` puts the working directory first
    sys.argv = [request["module"], *request["args"]]  # runpy sets argv[0] to the module's file
    sys.modules.pop(request["module"], None)  # as in ``python -m``: the module itself not imported yet, only the rest
    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    become(serve())
