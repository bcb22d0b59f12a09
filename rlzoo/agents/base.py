"""The ``Agent`` interface every algorithm implements: learn, act, save, load — and what a family supplies to the
one training loop (``rlzoo.trainer``): ``begin``, ``advance``, ``log_point``, ``truth_tables``, ``watched``."""

from __future__ import annotations

import copy
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

from rlzoo import live_state
from rlzoo.agents.registry import agent_class, compile_unavailable
from rlzoo.boundary import (
    SPACE_KINDS,
    check_saved_spaces,
    check_state_shapes,
    describe_space,
    observation_problem,
    require_gym_env,
    short_repr,
    space_text,
)
from rlzoo.callbacks import Callback
from rlzoo.checkpoint import load_checkpoint, run_checkpoint, save_checkpoint
from rlzoo.config import AlgoConfig, ConfigError, build, to_dict
from rlzoo.devices import resolve_device
from rlzoo.envs import route_mujoco_warnings
from rlzoo.logging import RunLogger
from rlzoo.seed_stack import SeedGenerators
from rlzoo.trainer import NumericalError, Trainer, truth_scalars

__all__ = ["Agent", "NumericalError", "global_rng_state", "require_discrete", "set_global_rng_state"]


def compiled(fn: Any, device: torch.device, backend: str) -> Any:
    """``torch.compile(fn)`` as one whole graph (``fullgraph``: a graph break is an error, not a slow path); on a GPU
    with TorchInductor replayed as CUDA graphs (``reduce-overhead``, LeanRL's recipe)."""
    mode = "reduce-overhead" if device.type == "cuda" and backend == "inductor" else None
    return torch.compile(fn, backend=backend, fullgraph=True, mode=mode)


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
    has_compiled_update: ClassVar[bool] = False  # ``compile`` runs its update through torch.compile
    seed_batch_compiles: ClassVar[bool] = False  # a seed batch's stacked agent can ``compile`` too
    runs_on_device: ClassVar[bool] = False  # its networks and replay storage may live on a GPU (``device``)
    seed_batchable: ClassVar[bool] = False  # trains K seeds as one batched computation (``rlzoo.seed_batch``)
    acts_in_batches: ClassVar[bool] = False  # ``act_batch`` is one network call (evaluation runs episodes together)
    n_seeds: int = 1  # > 1: a seed batch's stacked agent, whose tensors lead with the seed axis (``Agent.stacked``)
    in_seed_batch: bool = False  # a lane of a seed batch (set by ``Agent.stacked``, before the lanes ``begin``)
    # truth/* with v_π of the current policy solved exactly at each log point (policy_value_gap, critic_error):
    # policy-gradient agents; not planners and tabular learners, whose frequent log points would each cost a solve
    solves_policy_truth: ClassVar[bool] = False
    saved_parts: ClassVar[tuple[str, ...]] = ()  # attributes saved by their own state_dict (networks, optimizers)
    # the run in flight (dotted attribute paths): envs mid-episode, their observation, running episode counters;
    # pickled into each checkpoint (rlzoo.live_state) so that a resumed run continues exactly where it stopped
    live_parts: ClassVar[tuple[str, ...]] = ()
    state_inexact: str | None = None  # why ``load_state_dict`` could not restore everything exactly (another device)

    def __init__(
        self,
        env: gym.Env,
        config: AlgoConfig | dict[str, Any] | None = None,
        *,
        seed: int | None = None,
        device: str | torch.device = "cpu",
        **hyperparams: Any,
    ) -> None:
        require_gym_env(env)
        self.config = build(self.Config, config, "algo", hyperparams)
        self.check_env(env)
        self.device = self.place(device)
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
    def place(cls, device: str | torch.device) -> torch.device:
        """The device ``device`` (auto | cpu | cuda) means for this algorithm: ``rlzoo.devices.resolve_device`` for an
        agent that ``runs_on_device``, the CPU for the others (``device=cuda`` for those: one ``ConfigError`` line)."""
        if cls.runs_on_device:
            return resolve_device(device)
        if str(device).startswith("cuda"):
            raise ConfigError(f"device={device} is not available for algo={cls.name}: it runs on the CPU")
        return torch.device("cpu")

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        """Raise ``ConfigError`` if ``env`` cannot be used by this algorithm (default: any env)."""
        return

    def learn(self, total_steps: int, logger: RunLogger | None = None, callbacks: Sequence[Callback] = ()) -> Agent:
        """Train until ``num_timesteps`` reaches ``total_steps`` (env steps; planners: sweeps) on the one
        training loop (``rlzoo.trainer.Trainer``); ``callbacks`` (``rlzoo.callbacks``) run when due (evaluation,
        checkpoints), at each log point and after each evaluation, and may stop training early (``StopOnReward``)."""
        if isinstance(total_steps, bool) or not isinstance(total_steps, (int, np.integer)) or total_steps < 1:
            raise ValueError(f"total_steps={short_repr(total_steps)} is not allowed: give a positive int")
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

    def env_seed(self) -> int | None:
        """The seed an env (re)starts with: the agent's seed on a fresh start, ``seed + num_timesteps`` on a resume
        that could not restore the envs (so that they do not replay the first episodes); None for an unseeded
        agent."""
        return None if self.seed is None else self.seed + self.num_timesteps

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
                f"obs={short_repr(obs)} is not an observation of this agent's observation space "
                f"{space_text(self.env.observation_space)}: {problem}"
            )
        return self._act(obs, deterministic)

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions (N, …) for a batch of observations (N, …) of the env, each what ``act(obs[i])`` returns up
        to the last bits of batched arithmetic; a family with ``acts_in_batches`` answers in one network call
        (default: ``act`` row by row). ``ValueError`` for rows that are not observations of the env, and on a seed
        batch's stacked agent (its lanes act)."""
        if self.n_seeds > 1:
            raise ValueError(f"this is a seed batch of {self.n_seeds} agents: act with one of its lanes")
        obs, space = np.asarray(obs), self.env.observation_space
        if obs.ndim == 0 or (space.shape is not None and obs.shape[1:] != space.shape):
            wanted = ", ".join(map(str, ("N", *(space.shape or ()))))
            raise ValueError(f"obs of shape {obs.shape} is not a batch of observations of this agent's observation "
                             f"space {space_text(space)}: give shape ({wanted})")  # fmt: skip
        return self._act_batch(obs)

    def _act_batch(self, obs: np.ndarray) -> np.ndarray:
        """``act_batch`` of a batch already checked; a family with ``acts_in_batches`` overrides it."""
        return np.stack([np.asarray(self.act(row, deterministic=True)) for row in obs])

    @abstractmethod
    def _act(self, obs: Any, deterministic: bool = True) -> Any:
        """The action for one observation already checked by ``act`` (a family calls it directly when it acts
        on observations of its own env)."""

    def networks(self) -> list[torch.nn.Module]:
        """The trained torch modules (copied from rank 0 to every rank when training across processes)."""
        return []

    def compile(self, backend: str = "inductor") -> Agent:
        """Run the update through ``torch.compile`` with ``backend`` (``compile=true``: TorchInductor); a family with a
        compiled update (``has_compiled_update``) overrides it. ``ConfigError`` naming those families otherwise."""
        raise ConfigError(compile_unavailable(self.name))

    # ---- seed batches (``rlzoo.seed_batch``): families with ``seed_batchable`` override these -----------------------
    @classmethod
    def check_seed_batch(cls, config: AlgoConfig) -> None:
        """``ConfigError`` for a setting this family cannot train as a seed batch (default: none)."""
        return

    @classmethod
    def stacked(cls, lanes: Sequence[Agent]) -> Agent:
        """The stacked agent of a seed batch of ``lanes`` (agents of this class and one config): here a copy of the
        first lane acting for all of them (``lanes``), its generator drawing each lane's numbers from the lane's own
        (``SeedGenerators``); a ``seed_batchable`` family stacks its networks, optimizers and buffers on top."""
        if not cls.seed_batchable:
            raise ConfigError(f"algo={cls.name} cannot train seeds as one batch")
        for lane in lanes:
            lane.in_seed_batch = True
        stacked = copy.copy(lanes[0])
        stacked.n_seeds, stacked.seed_lanes = len(lanes), list(lanes)
        stacked.rng = SeedGenerators([lane.rng for lane in lanes])
        return stacked

    @property
    def lanes(self) -> list[Agent]:
        """The agents this one acts for: itself, or a stacked agent's seeds (``Agent.stacked`` sets ``seed_lanes``)."""
        return getattr(self, "seed_lanes", None) or [self]

    def begin_stacked(self, total_steps: int) -> None:
        """Prepare a stacked agent to train toward ``total_steps``, its lanes having begun (``SeedBatch.begin``)."""
        self.total_steps = total_steps

    def sync_lane(self, lane: Agent, k: int) -> None:
        """Bring ``lane``, seed ``k`` of the batch this stacked agent trains, up to date: its counters and optimizer
        state (its parameters are views of the stacked ones)."""
        lane.num_timesteps = self.num_timesteps

    @property
    def storage_device(self) -> torch.device | None:
        """Where a replay buffer keeps its arrays: None (numpy on the host) on the CPU, else the agent's device."""
        return None if self.device.type == "cpu" else self.device

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        """A host array (observations) as a tensor on the agent's device."""
        return torch.as_tensor(array, device=self.device)

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
        for name in self.saved_parts:  # a part with no state (NoCritic) may be absent from older checkpoints
            getattr(self, name).load_state_dict(state.get(name, {}))

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
            "live": live_state.capture(self, self.live_parts),
            "global_rng": global_rng_state(),
        }
        return save_checkpoint(path, payload)

    @classmethod
    def load(cls, path: str | Path, env: gym.Env | None = None, *, which: str = "last",
             device: str | torch.device = "cpu") -> Agent:  # fmt: skip
        """Rebuild an agent saved with ``save`` (a checkpoint file, or a run directory: its ``checkpoints/final.pt``
        with ``which="last"``, ``best.pt`` with ``"best"``) on ``device`` (whatever device it was saved on); the env is
        re-made from its saved spec if not given."""
        return cls.from_payload(load_checkpoint(run_checkpoint(path, which)), env, source=str(path), device=device)

    @classmethod
    def from_payload(cls, payload: dict[str, Any], env: gym.Env | None = None, source: str = "checkpoint",
                     device: str | torch.device = "cpu") -> Agent:  # fmt: skip
        """Rebuild an agent from a loaded checkpoint payload (see ``load``)."""
        klass = agent_class(payload["algo"])
        if cls is not Agent and not issubclass(klass, cls):
            raise TypeError(f"{source} holds a {klass.__name__} agent, not a {cls.__name__}")
        if env is None:
            if payload.get("env_spec") is None:
                raise ValueError(f"{source} has no env spec (env not made by gymnasium.make): pass env=")
            spec = gym.envs.registration.EnvSpec.from_json(payload["env_spec"])
            route_mujoco_warnings(spec.id)
            env = gym.make(spec)
        else:
            require_gym_env(env)
            check_saved_spaces(payload, env, source)
        # a saved config was valid when saved: keys the schema has retired since (total_steps, GRPO's gamma) go
        known = {f.name for f in dataclasses.fields(klass.Config)}
        config = {k: v for k, v in payload["config"].items() if k in known}
        agent = klass(env, config=config, seed=payload.get("seed"), device=device)
        if "spaces" not in payload:  # a checkpoint from before the spaces were saved: compare fixed-shape state
            fixed = (*klass.saved_parts, "v", "q", "policy", "approximator")  # (a replay buffer's length varies)
            saved, fresh = payload["state"], agent.state_dict()
            check_state_shapes({k: saved[k] for k in fixed if k in saved}, {k: fresh[k] for k in fixed if k in fresh},
                               source)  # fmt: skip
        agent.load_state_dict(payload["state"])
        return agent

    def restore_live(self, payload: dict[str, Any]) -> str | None:
        """Continue from the envs, observation and episode counters saved in ``payload`` (a checkpoint of this run:
        it unpickles them, see ``rlzoo.live_state``); returns None, or why not (the envs then restart from a reset
        with ``env_seed``, so the run continues validly but not as the uninterrupted one would have)."""
        return live_state.restore(self, payload.get("live"), self.live_parts)

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
