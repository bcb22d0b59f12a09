"""rlzoo environments (installed as ``rlzoo.envs``): the GridWorld, its vector form, and ``make``.

Importing this module registers ``rlzoo/GridWorld-v0`` with gymnasium.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym

from .dynamics import ACTIONS, GridDynamics, Rewards
from .gridworld import GridWorld
from .layout import DEFAULT_LAYOUT, Layout, LayoutError, random_layout
from .model import TabularModel
from .vector_gridworld import GridWorldVectorEnv

GRIDWORLD_ID = "rlzoo/GridWorld-v0"

if GRIDWORLD_ID not in gym.registry:
    gym.register(
        id=GRIDWORLD_ID,
        entry_point="rlzoo.envs.gridworld:GridWorld",
        vector_entry_point="rlzoo.envs.vector_gridworld:GridWorldVectorEnv",
    )


def make(env_cfg: Mapping[str, Any] | Any, **overrides: Any) -> gym.Env:
    """``gymnasium.make(cfg.id, **kwargs)`` from an env config (mapping or dataclass).

    Every key except ``id`` (and a ``kwargs`` mapping, merged in) is passed to the env constructor.
    """
    cfg = dict(env_cfg) if isinstance(env_cfg, Mapping) else dict(vars(env_cfg))
    env_id = cfg.pop("id")
    kwargs = dict(cfg.pop("kwargs", None) or {})
    kwargs.update(cfg)
    kwargs.update(overrides)
    return gym.make(env_id, **kwargs)


def model_of(env: gym.Env) -> TabularModel | None:
    """The exact model of ``env`` if it exposes one (``tabular_model()`` or dense ``model()``), else None."""
    base = env.unwrapped
    if hasattr(base, "tabular_model"):
        return base.tabular_model()
    if hasattr(base, "model"):
        P, R = base.model()
        return TabularModel.from_dense(P, R)
    return None


__all__ = [
    "ACTIONS",
    "DEFAULT_LAYOUT",
    "GRIDWORLD_ID",
    "GridDynamics",
    "GridWorld",
    "GridWorldVectorEnv",
    "Layout",
    "LayoutError",
    "Rewards",
    "TabularModel",
    "make",
    "model_of",
    "random_layout",
]
