"""Helpers for tests that compose configs, run the CLI and read TensorBoard event files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from hydra import compose, initialize_config_module
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rlzoo.logging import RunLogger

REPO = Path(__file__).resolve().parents[1]


def composed(*overrides: str, hydra: bool = False):
    """The config ``python -m rlzoo.train <overrides>`` would compose (with the hydra node when ``hydra``)."""
    with initialize_config_module("rlzoo.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


def run_cli(
    *args: str, module: str = "rlzoo.train", timeout: float = 240, cwd: Path = REPO
) -> subprocess.CompletedProcess:
    """Run ``python -m <module> <args>`` as a process of its own (no TTY) in ``cwd`` (its modules importable),
    capturing output: rlzoo's modules in a child of the fork server (``cli_server.py``: a process that has imported
    them already), any other in a new interpreter."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    if module.startswith("rlzoo."):
        return _SERVER.run(module, list(args), cwd=Path(cwd), env=env, timeout=timeout)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
    )


class ForkServer:
    """The test process's end of ``cli_server.py``, started on first use and restarted if it has died."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.lock = threading.Lock()

    def _server(self) -> subprocess.Popen:
        if self.process is None or self.process.poll() is not None:
            script = Path(__file__).with_name("cli_server.py")
            self.process = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, text=True, bufsize=1)  # fmt: skip
        return self.process

    def run(self, module: str, args: list[str], *, cwd: Path, env: dict[str, str],
            timeout: float) -> subprocess.CompletedProcess:  # fmt: skip
        """``python -m module args`` forked from the server; ``subprocess.TimeoutExpired`` (the child killed)
        after ``timeout`` s."""
        with self.lock, tempfile.TemporaryDirectory() as tmp:
            out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
            server = self._server()
            request = {"module": module, "args": args, "cwd": str(cwd.resolve()), "env": env,
                       "stdout": str(out), "stderr": str(err), "timeout": timeout}  # fmt: skip
            try:
                server.stdin.write(json.dumps(request) + "\n")
                server.stdin.flush()
                line = server.stdout.readline()
            except BaseException:  # e.g. pytest-timeout's interrupt: the answer would be read by the next run
                server.kill()
                self.process = None
                raise
            if not line:
                raise RuntimeError("the command-line fork server (tests/cli_server.py) ended: its error is above")
            answer = json.loads(line)
            command = [sys.executable, "-m", module, *args]
            stdout, stderr = out.read_text(errors="replace"), err.read_text(errors="replace")
            if answer["expired"]:
                raise subprocess.TimeoutExpired(command, timeout, output=stdout, stderr=stderr)
            return subprocess.CompletedProcess(command, os.waitstatus_to_exitcode(answer["status"]), stdout, stderr)


_SERVER = ForkServer()


def readme_example(section: str) -> tuple[dict[str, str], list[str]]:
    """The files (path → text, from ``cat > path <<'EOF'`` blocks) and the ``python -m rlzoo.train`` arguments of
    the first bash block of the README's ``### <section>``: what a reader pastes, for a test to run as written."""
    readme = (REPO / "README.md").read_text()
    text = readme[readme.index(f"### {section}\n") :]
    start = text.index("```bash") + len("```bash")
    block = text[start : text.index("```", start)]
    files = {path: body + "\n" for path, body in re.findall(r"cat > (\S+) <<'EOF'\n(.*?)\nEOF", block, re.S)}
    command = block[block.index("python -m rlzoo.train") :].replace("\\\n", " ")
    return files, [arg.strip('"') for arg in command.split()[3:]]


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in ``run_dir``'s TensorBoard events as (step, value) lists."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


class RecordingLogger(RunLogger):
    """A silent logger that keeps every ``(tag, step, value)`` in ``records``."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[str, int, float]] = []

    def scalars(self, values: dict[str, float], step: int) -> None:
        super().scalars(values, step)
        self.records.extend((tag, int(step), float(value)) for tag, value in values.items())

    def steps(self, tag: str) -> list[int]:
        """The steps at which ``tag`` was logged."""
        return [s for t, s, _ in self.records if t == tag]
