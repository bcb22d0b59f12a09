"""Name → agent class registry and ``make_agent``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import gymnasium as gym

from rlzoo.config import ConfigError

if TYPE_CHECKING:
    from rlzoo.agents.base import Agent

AGENTS: dict[str, type[Agent]] = {}
A = TypeVar("A", bound="type[Agent]")


def register_agent(cls: A) -> A:
    """Class decorator: make ``cls`` available as ``algo=<cls.name>``."""
    if cls.name in AGENTS and AGENTS[cls.name] is not cls:
        raise ValueError(f"two agents are registered as {cls.name!r}: {AGENTS[cls.name]} and {cls}")
    AGENTS[cls.name] = cls
    return cls


def agent_class(name: str) -> type[Agent]:
    """The agent class registered as ``name``; ``ConfigError`` listing the known names otherwise."""
    try:
        return AGENTS[name]
    except KeyError:
        raise ConfigError(
            f"algo.name={name!r} is not a known algorithm: choose one of {', '.join(sorted(AGENTS))}"
        ) from None


def make_agent(name: str, env: gym.Env, config: Any = None, *, seed: int | None = None, device: Any = "cpu",
               **hyperparams: Any) -> Agent:  # fmt: skip
    """Build the agent ``name`` on ``env`` and ``device`` (auto | cpu | cuda); ``hyperparams`` override its config
    (validated)."""
    return agent_class(name)(env, config=config, seed=seed, device=device, **hyperparams)


def compile_unavailable(name: str) -> str:
    """Why ``compile=true`` is refused for ``algo=name``: the algorithms that have a compiled update."""
    have = sorted(n for n, cls in AGENTS.items() if cls.has_compiled_update)
    return f"compile=true is not available for algo={name}: the update of {', '.join(have)} compiles"


def seed_batch_compile_unavailable(name: str, n_seeds: int) -> str:
    """Why ``compile=true`` with ``n_seeds`` > 1 is refused for ``algo=name``: the algorithms whose seed batch
    compiles."""
    have = sorted(n for n, cls in AGENTS.items() if cls.seed_batch_compiles)
    return (
        f"compile=true with n_seeds={n_seeds} is not supported for algo={name}: its seed batch runs its updates "
        f"eagerly (the seed batches of {', '.join(have)} compile); set compile=false"
    )
