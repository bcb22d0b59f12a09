"""rlzoo: modular RL agents on shared buffers, approximators and the GridWorld, driven by Hydra.

``import rlzoo`` registers the environments (``rlzoo/GridWorld-v0``) with gymnasium.
"""

from rlzoo import envs
from rlzoo.agents import AGENTS, Agent, make_agent
from rlzoo.config import ConfigError
from rlzoo.evaluate import evaluate

__version__ = "0.1.0"
__all__ = ["AGENTS", "Agent", "ConfigError", "__version__", "envs", "evaluate", "make_agent"]
