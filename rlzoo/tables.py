"""Run artefacts of tabular agents: ``tables.npz`` (v, q, policy) and their picture on the grid."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np

from rlzoo.atomic import atomic_write_bytes
from rlzoo.envs.render import render_values, save_values_png

if TYPE_CHECKING:
    from rlzoo.agents.tabular import TabularAgent


def write_tables(agent: TabularAgent, run_dir: str | Path, env: gym.Env, title: str = "") -> list[Path]:
    """Write ``tables.npz`` and, on a grid env, ``values_policy.png`` and ``values_policy.txt``."""
    run_dir = Path(run_dir)
    buf = io.BytesIO()
    np.savez(buf, **agent.tables())
    written = [atomic_write_bytes(run_dir / "tables.npz", buf.getvalue())]
    layout = getattr(env.unwrapped, "layout", None)
    if layout is not None and layout.n_states == agent.n_states:
        written.append(save_values_png(layout, agent.v, agent.policy, run_dir / "values_policy.png", title))
        text = render_values(layout, agent.v, agent.policy)
        written.append(atomic_write_bytes(run_dir / "values_policy.txt", text.encode()))
    return written
