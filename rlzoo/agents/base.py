"""The ``Agent`` interface every algorithm implements: learn, act, save, load — and what a family supplies to the
one training loop (``rlzoo.trainer``): ``begin``, ``advance``, ``log_point``, ``truth_tables``, ``watched``."""

from __future__ import annotations

import dataclasses
import json
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from rlzoo.agents.registry import agent_class
from rlzoo.checkpoint import load_checkpoint, save_checkpoint
from rlzoo.config import AlgoConfig, ConfigError, build, to_dict
from rlzoo.logging import RunLogger
from rlzoo.trainer import Callback, NumericalError, Trainer, truth_scalars

__all__ = [
    "Agent",
    "NumericalError",
    "describe_space",
    "global_rng_state",
    "observation_problem",
    "require_discrete",
    "require_gym_env",
    "set_global_rng_state",
]

SPACE_KINDS = ("observation_space", "action_space")


class Agent(ABC):
    """An RL agent bound to an env, configured by a validated dataclass ``Config``.

    Subclasses set ``name`` (the algo config name), ``family`` and ``Config``, build their parts in ``setup`` and
    implement ``advance`` (gather experience and update: the trainer calls it) and ``_act`` (what the public
    ``act`` returns once it has checked the observation); ``state_dict``/``load_state_dict`` extend the saved state.
    """

    name: ClassVar[str]
    family: ClassVar[str]
    Config: ClassVar[type[AlgoConfig]] = AlgoConfig
    data_parallel: ClassVar[bool] = False  # trains across torchrun processes (rlzoo.distributed)
    # truth/* with v_π of the current policy solved exactly at each log point (policy_value_gap, critic_error):
    # policy-gradient agents; not planners and tabular learners, whose frequent log points would each cost a solve
    solves_policy_truth: ClassVar[bool] = False
    saved_parts: ClassVar[tuple[str, ...]] = ()  # attributes saved by their own state_dict (networks, optimizers)

    def __init__(
        self,
        env: gym.Env,
        config: AlgoConfig | dict[str, Any] | None = None,
        *,
        seed: int | None = None,
        **hyperparams: Any,
    ) -> None:
        require_gym_env(env)
        self.config = build(self.Config, config, "algo", hyperparams)
        self.check_env(env)
        self.env = env
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.num_timesteps = 0
        self.total_steps = 0  # the budget of the current learn() call (set by begin)
        self.finished = False  # True: nothing left to learn (a planner converged); the trainer stops
        self.setup()

    def setup(self) -> None:
        """Build the parts (networks, tables, buffers) from ``config`` and ``env``; ``__init__`` ends with it."""
        return

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        """Raise ``ConfigError`` if ``env`` cannot be used by this algorithm (default: any env)."""
        return

    def learn(self, total_steps: int, logger: RunLogger | None = None, callbacks: Sequence[Callback] = ()) -> Agent:
        """Train until ``num_timesteps`` reaches ``total_steps`` (env steps; planners: sweeps) on the one
        training loop (``rlzoo.trainer.Trainer``); ``callbacks`` run when due (evaluation, checkpoints)."""
        if isinstance(total_steps, bool) or not isinstance(total_steps, (int, np.integer)) or total_steps < 1:
            raise ValueError(f"total_steps={total_steps!r} is not allowed: give a positive int")
        return Trainer(self, int(total_steps), logger, callbacks).run()

    # ---- what a family supplies to the training loop -------------------------------------------
    def begin(self, total_steps: int, logger: RunLogger) -> None:
        """Prepare to train toward ``total_steps`` (called at the start of every ``learn``)."""
        self.total_steps = total_steps

    @abstractmethod
    def advance(self, n_steps: int, logger: RunLogger) -> dict[str, float]:
        """Gather experience and update for at least one and about ``n_steps`` env steps, advancing
        ``num_timesteps``; returns the scalars of the last update (``key`` → ``losses/key``; a key with a ``/``
        is its own tag). Episodes that end are logged with ``logger.episode``."""

    @property
    def log_every(self) -> int:
        """Env steps between log points (losses, truth)."""
        return self.config.log_every

    def log_point(self, step: int) -> dict[str, float]:
        """Extra scalars at a log point (tags as in ``advance``)."""
        return {}

    def truth_tables(self) -> tuple[np.ndarray | None, np.ndarray | None] | None:
        """On an env with a model: the policy π (S, A) and state values v (S,) whose ``truth/*`` errors are
        logged (either may be None); None when there is no ground truth to report."""
        return None

    def watched(self) -> dict[str, Any]:
        """Quantities the NaN/inf guard checks after each advance besides the losses (e.g. value tables)."""
        return {}

    def act(self, obs: Any, deterministic: bool = True) -> Any:
        """The action for one observation of the env's ``observation_space`` (greedy when ``deterministic``);
        ``ValueError`` naming ``obs``, the space and what was given for anything else."""
        problem = observation_problem(self.env.observation_space, obs)
        if problem is not None:
            raise ValueError(
                f"obs={_short_repr(obs)} is not an observation of this agent's observation space "
                f"{_space_text(self.env.observation_space)}: {problem}"
            )
        return self._act(obs, deterministic)

    @abstractmethod
    def _act(self, obs: Any, deterministic: bool = True) -> Any:
        """The action for one observation already checked by ``act`` (a family calls it directly when it acts
        on observations of its own env)."""

    def networks(self) -> list[torch.nn.Module]:
        """The trained torch modules (copied from rank 0 to every rank when training across processes)."""
        return []

    def summary(self) -> dict[str, Any]:
        """Figures for ``summary.json``: the ground truth of the final tables and the family's own counters."""
        out: dict[str, Any] = truth_scalars(self)
        if "value_error" in out:
            out["value_error_target"] = self.truth.target
        return out

    # ---- persistence -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        parts = {name: getattr(self, name).state_dict() for name in self.saved_parts}
        return {"num_timesteps": self.num_timesteps, "rng": self.rng.bit_generator.state, **parts}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.num_timesteps = int(state["num_timesteps"])
        self.rng.bit_generator.state = state["rng"]
        for name in self.saved_parts:
            getattr(self, name).load_state_dict(state[name])

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
            "spaces": {kind: describe_space(getattr(self.env, kind)) for kind in SPACE_KINDS},
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
        klass = agent_class(payload["algo"])
        if cls is not Agent and not issubclass(klass, cls):
            raise TypeError(f"{source} holds a {klass.__name__} agent, not a {cls.__name__}")
        if env is None:
            if payload.get("env_spec") is None:
                raise ValueError(f"{source} has no env spec (env not made by gymnasium.make): pass env=")
            env = gym.make(gym.envs.registration.EnvSpec.from_json(payload["env_spec"]))
        else:
            require_gym_env(env)
            check_saved_spaces(payload, env, source)
        # a saved config was valid when saved: keys the schema has retired since (total_steps, GRPO's gamma) go
        known = {f.name for f in dataclasses.fields(klass.Config)}
        config = {k: v for k, v in payload["config"].items() if k in known}
        agent = klass(env, config=config, seed=payload.get("seed"))
        if "spaces" not in payload:  # a checkpoint from before the spaces were saved: compare the state's shapes
            check_state_shapes(payload["state"], agent.state_dict(), source)
        agent.load_state_dict(payload["state"])
        return agent

    def __repr__(self) -> str:
        return f"{type(self).__name__}({json.dumps(to_dict(self.config))})"


def global_rng_state() -> dict[str, Any]:
    """States of Python's, numpy's global and torch's CPU random generators."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_global_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``global_rng_state`` returned (used when a run resumes)."""
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


# ---- the library boundary: arguments checked where they enter ----------------------------------------------
def require_gym_env(env: Any) -> None:
    """``TypeError`` naming ``env`` unless it is a ``gymnasium.Env`` (wrappers included)."""
    if isinstance(env, gym.Env):
        return
    hint = f"gymnasium.make({env!r})" if isinstance(env, str) else "gymnasium.make('CartPole-v1')"
    raise TypeError(
        f"env={_short_repr(env)} ({type(env).__name__}) is not a gymnasium.Env: pass a gymnasium.Env, e.g. {hint}"
    )


def _short_repr(value: Any, limit: int = 80) -> str:
    text = " ".join(repr(value).split())  # one line: numpy wraps long arrays
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _space_text(space: gym.Space) -> str:
    return str(space).replace("\n", "\\n")  # one line: a Text space's charset may hold a newline


def _index(obs: Any) -> tuple[int | None, str | None]:
    """A state index from an int, a numpy integer, an integral float or a 0-d array of one; else the problem."""
    if type(obs) is int or isinstance(obs, np.integer):  # the common case, cheaply
        return int(obs), None
    if isinstance(obs, (bool, np.bool_, str, bytes)):
        return None, f"a state index (an int) is needed, {type(obs).__name__} was given"
    try:
        arr = np.asarray(obs)
    except (TypeError, ValueError):
        return None, f"a state index (an int) is needed, {type(obs).__name__} was given"
    if arr.ndim != 0:
        return None, f"a state index is a scalar, an array of shape {arr.shape} was given"
    if arr.dtype.kind in "iu":
        return int(arr), None
    if arr.dtype.kind == "f" and np.isfinite(arr) and float(arr).is_integer():
        return int(arr), None
    return None, f"a state index must be an integer, {type(obs).__name__} {obs!r} was given"


def _numeric_array(obs: Any, shape: tuple[int, ...], kinds: str = "biuf") -> tuple[np.ndarray | None, str | None]:
    if isinstance(obs, (str, bytes)):
        return None, f"an array of shape {shape} is needed, {type(obs).__name__} was given"
    try:
        arr = np.asarray(obs)
    except (TypeError, ValueError) as err:
        return None, f"an array of shape {shape} is needed, {type(obs).__name__} was given ({err})"
    if arr.dtype.kind not in kinds:
        return None, f"an array of numbers is needed, dtype {arr.dtype} was given"
    if arr.shape != shape:
        return None, f"shape {shape} is needed, shape {arr.shape} was given"
    return arr, None


def observation_problem(space: gym.Space, obs: Any) -> str | None:
    """Why ``obs`` is not an observation of ``space``, or None if it is. Lenient where the agents are: any float or
    int dtype for a Box (bounds are not checked), Python or numpy ints (or integral floats) for a Discrete."""
    if isinstance(space, gym.spaces.Discrete):
        index, problem = _index(obs)
        if problem is not None:
            return problem
        first, last = int(space.start), int(space.start) + int(space.n) - 1
        if not first <= index <= last:
            return f"state index {index} is out of range: {first} … {last} are allowed"
        return None
    if isinstance(space, gym.spaces.Box):
        return _numeric_array(obs, space.shape)[1]
    if isinstance(space, (gym.spaces.MultiDiscrete, gym.spaces.MultiBinary)):
        arr, problem = _numeric_array(obs, space.shape, "biuf")
        if problem is None and not space.contains(np.asarray(arr, space.dtype)):
            problem = f"{_short_repr(obs)} has values outside the space"
        return problem
    if isinstance(space, gym.spaces.Text):
        if not isinstance(obs, str):
            return f"a str is needed, {type(obs).__name__} was given"
        if not space.min_length <= len(obs) <= space.max_length:
            return f"length {space.min_length} … {space.max_length} is allowed, {len(obs)} was given"
        odd = sorted(set(obs) - set(space.character_set))
        return f"characters {''.join(odd)!r} are not in the space's charset" if odd else None
    try:
        return None if space.contains(obs) else f"{type(obs).__name__} {_short_repr(obs)} is not in it"
    except Exception as err:  # a space's contains may fail on a foreign value
        return f"{type(obs).__name__} {_short_repr(obs)} is not in it ({type(err).__name__}: {err})"


def describe_space(space: gym.Space) -> dict[str, Any]:
    """What a checkpoint records of a space: its text and what an agent's saved state depends on."""
    out: dict[str, Any] = {"text": _space_text(space), "type": type(space).__name__}
    if isinstance(space, gym.spaces.Discrete):
        out.update(n=int(space.n), start=int(space.start))
    elif isinstance(space, gym.spaces.Box):
        out.update(
            shape=list(space.shape),
            low=np.asarray(space.low, np.float64).ravel().tolist(),
            high=np.asarray(space.high, np.float64).ravel().tolist(),
        )
    elif isinstance(space, gym.spaces.MultiDiscrete):
        out.update(nvec=np.asarray(space.nvec).ravel().tolist(), shape=list(space.shape))
    elif isinstance(space, gym.spaces.MultiBinary):
        out.update(shape=list(space.shape))
    elif isinstance(space, gym.spaces.Text):
        charset = "".join(sorted(space.character_set))
        out.update(min_length=space.min_length, max_length=space.max_length, charset=charset)
    return out


def check_saved_spaces(payload: dict[str, Any], env: gym.Env, source: str) -> None:
    """``ValueError`` naming the space of ``env`` that differs from the saved agent's (checkpoints that predate the
    saved spaces pass)."""
    saved = payload.get("spaces")
    if not isinstance(saved, dict):
        return
    for kind in SPACE_KINDS:
        if kind not in saved:
            continue
        given = describe_space(getattr(env, kind))
        if {k: v for k, v in saved[kind].items() if k != "text"} != {k: v for k, v in given.items() if k != "text"}:
            raise ValueError(
                f"{source}: env.{kind} differs from the saved agent's: saved {saved[kind].get('text')}, "
                f"given {given['text']} — load onto an env with the spaces the agent was trained on"
            )


def check_state_shapes(saved: Any, fresh: Any, source: str, key: str = "state") -> None:
    """``ValueError`` if an array of the saved state has another shape than the same array of an agent built on the
    given env (the env's observation or action space differs from the saved agent's)."""
    if isinstance(saved, dict) and isinstance(fresh, dict):
        for k in saved.keys() & fresh.keys():
            check_state_shapes(saved[k], fresh[k], source, f"{key}.{k}")
    elif isinstance(saved, (list, tuple)) and isinstance(fresh, (list, tuple)) and len(saved) == len(fresh):
        for i, (a, b) in enumerate(zip(saved, fresh, strict=True)):
            check_state_shapes(a, b, source, f"{key}[{i}]")
    elif (
        isinstance(saved, (np.ndarray, torch.Tensor))
        and isinstance(fresh, (np.ndarray, torch.Tensor))
        and tuple(saved.shape) != tuple(fresh.shape)
    ):
        raise ValueError(
            f"{source}: {key} has shape {tuple(saved.shape)} but shape {tuple(fresh.shape)} on the given env: "
            "env.observation_space or env.action_space differs from the saved agent's"
        )
