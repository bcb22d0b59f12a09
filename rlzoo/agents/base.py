"""The ``Agent`` interface every algorithm implements (DESIGN §4): learn, act, save, load."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from rlzoo.checkpoint import load_checkpoint, save_checkpoint
from rlzoo.config import AlgoConfig, ConfigError, build, to_dict
from rlzoo.logging import RunLogger


class NumericalError(RuntimeError):
    """A loss or parameter became NaN/inf: training stops, naming the quantity and the step."""


class Agent(ABC):
    """An RL agent bound to an env, configured by a validated dataclass ``Config``.

    Subclasses set ``name`` (the algo config name), ``family`` and ``Config``, and implement
    ``learn`` and ``act``; ``state_dict``/``load_state_dict`` extend the saved state.
    """

    name: ClassVar[str]
    family: ClassVar[str]
    Config: ClassVar[type[AlgoConfig]] = AlgoConfig
    data_parallel: ClassVar[bool] = False  # trains across torchrun processes (rlzoo.distributed)

    def __init__(
        self,
        env: gym.Env,
        config: AlgoConfig | dict[str, Any] | None = None,
        *,
        seed: int | None = None,
        **hyperparams: Any,
    ) -> None:
        self.config = build(self.Config, config, "algo", hyperparams)
        self.check_env(env)
        self.env = env
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.num_timesteps = 0

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        """Raise ``ConfigError`` if ``env`` cannot be used by this algorithm (default: any env)."""
        return

    @abstractmethod
    def learn(self, total_steps: int, logger: RunLogger | None = None, checkpointer: Any = None) -> Agent:
        """Train until ``num_timesteps`` reaches ``total_steps`` (env steps; planners: sweeps)."""

    @abstractmethod
    def act(self, obs: Any, deterministic: bool = True) -> Any:
        """The action for one observation."""

    def networks(self) -> list[torch.nn.Module]:
        """The trained torch modules (copied from rank 0 to every rank when training across processes)."""
        return []

    def summary(self) -> dict[str, Any]:
        """Algorithm-specific figures for ``summary.json`` (e.g. ``value_error``)."""
        return {}

    # ---- persistence -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"num_timesteps": self.num_timesteps, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.num_timesteps = int(state["num_timesteps"])
        self.rng.bit_generator.state = state["rng"]

    def save(self, path: str | Path) -> Path:
        """Write the agent (config, env spec, state) to ``path`` atomically."""
        spec = getattr(self.env, "spec", None)
        try:
            spec_json = spec.to_json() if spec is not None else None
        except (ValueError, TypeError):
            spec_json = None
        payload = {
            "algo": self.name,
            "config": to_dict(self.config),
            "env_spec": spec_json,
            "seed": self.seed,
            "state": self.state_dict(),
            "global_rng": global_rng_state(),
        }
        return save_checkpoint(path, payload)

    @classmethod
    def load(cls, path: str | Path, env: gym.Env | None = None) -> Agent:
        """Rebuild an agent saved with ``save``; the env is re-made from its saved spec if not given."""
        return cls.from_payload(load_checkpoint(path), env, source=str(path))

    @classmethod
    def from_payload(cls, payload: dict[str, Any], env: gym.Env | None = None, source: str = "checkpoint") -> Agent:
        """Rebuild an agent from a loaded checkpoint payload (see ``load``)."""
        from rlzoo.agents.registry import agent_class

        klass = agent_class(payload["algo"])
        if cls is not Agent and not issubclass(klass, cls):
            raise TypeError(f"{source} holds a {klass.__name__} agent, not a {cls.__name__}")
        if env is None:
            if payload.get("env_spec") is None:
                raise ValueError(f"{source} has no env spec (env not made by gymnasium.make): pass env=")
            env = gym.make(gym.envs.registration.EnvSpec.from_json(payload["env_spec"]))
        agent = klass(env, config=payload["config"], seed=payload.get("seed"))
        agent.load_state_dict(payload["state"])
        return agent

    def __repr__(self) -> str:
        return f"{type(self).__name__}({json.dumps(to_dict(self.config))})"


def global_rng_state() -> dict[str, Any]:
    """States of Python's, numpy's global and torch's CPU random generators."""
    import random

    import torch

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(), "numpy": (kind, keys, pos, has_gauss, cached), "torch": torch.get_rng_state()}


def set_global_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``global_rng_state`` returned (used when a run resumes)."""
    import random

    import torch

    random.setstate(state["python"])
    np.random.set_state(tuple(state["numpy"]))
    torch.set_rng_state(state["torch"])


def require_discrete(cls: type[Agent], env: gym.Env) -> None:
    """``ConfigError`` unless ``env`` has Discrete observation and action spaces."""
    obs = env.observation_space
    if not isinstance(obs, gym.spaces.Discrete):
        hint = " (for GridWorld use env.obs=index)"
        raise ConfigError(f"algo={cls.name} needs Discrete observations (state indices); the env has {obs}{hint}")
    require_discrete_actions(cls, env)


def require_discrete_actions(cls: type[Agent], env: gym.Env) -> None:
    """``ConfigError`` unless ``env`` has a Discrete action space."""
    if not isinstance(env.action_space, gym.spaces.Discrete):
        raise ConfigError(f"algo={cls.name} needs a Discrete action space; the env has {env.action_space}")
