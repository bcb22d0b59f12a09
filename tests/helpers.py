"""Helpers for tests that compose configs, run the CLI and read TensorBoard event files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_module
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

REPO = Path(__file__).resolve().parents[1]


def composed(*overrides: str, hydra: bool = False):
    """The config ``python -m rlzoo.train <overrides>`` would compose (with the hydra node when ``hydra``)."""
    with initialize_config_module("rlzoo.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=hydra)


def run_cli(*args: str, module: str = "rlzoo.train", timeout: float = 240) -> subprocess.CompletedProcess:
    """Run ``python -m <module> <args>`` in a subprocess (no TTY), capturing output."""
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag in ``run_dir``'s TensorBoard events as (step, value) lists."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
