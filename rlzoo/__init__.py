"""rlzoo: modular RL agents on shared buffers, approximators and the GridWorld, driven by Hydra.

``import rlzoo`` registers the environments (``rlzoo/GridWorld-v0``) with gymnasium.
"""

from rlzoo import envs
from rlzoo.agents import AGENTS, Agent, make_agent
from rlzoo.callbacks import Callback, Evaluate, StopOnReward
from rlzoo.config import ConfigError

__version__ = "0.1.0"
__all__ = ["AGENTS", "Agent", "Callback", "ConfigError", "Evaluate", "StopOnReward", "__version__", "envs",
           "make_agent"]  # fmt: skip
