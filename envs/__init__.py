"""rlzoo environments (installed as ``rlzoo.envs``): the GridWorld, its vector form, its
continuous-action form, and ``make``.

Importing this module registers ``rlzoo/GridWorld-v0``, ``rlzoo/GridWorldContinuous-v0`` and the text task envs
``rlzoo/TextTask-v0`` (built-in tasks) and ``rlzoo/TextFile-v0`` (a task from files) with gymnasium.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from .continuous_gridworld import ContinuousGridWorld, move_of
from .dynamics import ACTIONS, GridDynamics, Rewards
from .gridworld import GridWorld
from .layout import DEFAULT_LAYOUT, Layout, LayoutError, random_layout
from .model import TabularModel
from .numpy_vector_env import NumpyVectorEnv, common_batch_kind
from .vector_cartpole import CartPoleVectorEnv
from .vector_gridworld import GridWorldVectorEnv
from .vector_pendulum import PendulumVectorEnv

GRIDWORLD_ID = "rlzoo/GridWorld-v0"
CONTINUOUS_GRIDWORLD_ID = "rlzoo/GridWorldContinuous-v0"
TEXT_TASK_ID = "rlzoo/TextTask-v0"
TEXT_FILE_ID = "rlzoo/TextFile-v0"

if GRIDWORLD_ID not in gym.registry:
    gym.register(
        id=GRIDWORLD_ID,
        entry_point="rlzoo.envs.gridworld:GridWorld",
        vector_entry_point="rlzoo.envs.vector_gridworld:GridWorldVectorEnv",
    )
if CONTINUOUS_GRIDWORLD_ID not in gym.registry:
    gym.register(id=CONTINUOUS_GRIDWORLD_ID, entry_point="rlzoo.envs.continuous_gridworld:ContinuousGridWorld")
if TEXT_TASK_ID not in gym.registry:
    gym.register(id=TEXT_TASK_ID, entry_point="rlzoo.envs.text_tasks:TextTaskEnv", disable_env_checker=True)
if TEXT_FILE_ID not in gym.registry:
    gym.register(id=TEXT_FILE_ID, entry_point="rlzoo.envs.text_tasks:TextFileEnv", disable_env_checker=True)


def split_env_config(env_cfg: Mapping[str, Any] | Any) -> tuple[str, dict[str, Any]]:
    """``(id, constructor kwargs)`` of an env config: every key but ``id``, with a ``kwargs`` mapping merged in."""
    cfg = dict(env_cfg) if isinstance(env_cfg, Mapping) else dict(vars(env_cfg))
    env_id = cfg.pop("id")
    return env_id, {**(cfg.pop("kwargs", None) or {}), **cfg}


def make(env_cfg: Mapping[str, Any] | Any, **overrides: Any) -> gym.Env:
    """``gymnasium.make(cfg.id, **kwargs)`` from an env config (mapping or dataclass).

    Every key except ``id`` (and a ``kwargs`` mapping, merged in) is passed to the env constructor.
    """
    env_id, kwargs = split_env_config(env_cfg)
    route_mujoco_warnings(env_id)
    return gym.make(env_id, **{**kwargs, **overrides})


def route_mujoco_warnings(env_id: str) -> None:
    """Before a MuJoCo env is made: MuJoCo's warnings (its compiler's deprecation notes about gymnasium's model files)
    become Python warnings instead of lines appended to ``MUJOCO_LOG.TXT`` in the working directory."""
    try:
        entry_point = str(gym.spec(env_id).entry_point)
    except gym.error.Error:
        return  # not registered: gym.make names the problem
    if not entry_point.startswith("gymnasium.envs.mujoco"):
        return
    try:
        import mujoco
    except ImportError:
        return  # gym.make raises DependencyNotInstalled, which the CLI turns into one line
    mujoco.set_mju_user_warning(_mujoco_warning)


def _mujoco_warning(message: str) -> None:
    warnings.warn(f"MuJoCo: {message}", stacklevel=2)


VECTOR_MODES = ("sync", "async", "numpy")
CARTPOLE_ID = "CartPole-v1"
PENDULUM_ID = "Pendulum-v1"
NUMPY_VECTOR_IDS = (GRIDWORLD_ID, CARTPOLE_ID, PENDULUM_ID)  # the envs with a numpy batch form


def numpy_vector_env(spec: gym.envs.registration.EnvSpec, n_envs: int) -> gym.vector.VectorEnv | None:
    """The numpy batch env of ``spec`` (the GridWorld; ``CartPole-v1``, ``Pendulum-v1`` made without extra wrappers
    or a render mode, CartPole with its default reward), or None when there is none."""
    if spec.id == GRIDWORLD_ID:
        return GridWorldVectorEnv(n_envs, **spec.kwargs, max_episode_steps=spec.max_episode_steps)
    if spec.additional_wrappers or spec.kwargs.get("render_mode") is not None:
        return None
    if spec.id == CARTPOLE_ID and not spec.kwargs.get("sutton_barto_reward", False):
        return CartPoleVectorEnv(n_envs, max_episode_steps=spec.max_episode_steps or 500)
    if spec.id == PENDULUM_ID and set(spec.kwargs) <= {"g", "render_mode"}:
        return PendulumVectorEnv(n_envs, max_episode_steps=spec.max_episode_steps or 200, g=spec.kwargs.get("g", 10.0))
    return None


def step_vector_envs(envs: Sequence[gym.vector.VectorEnv], actions: Sequence[np.ndarray]) -> list[tuple]:
    """Each env's ``step(actions[i])``; numpy batch envs of one class as one array computation
    (``NumpyVectorEnv.step_together``: the same results), so that a seed batch's envs cost little more than one's."""
    kind = common_batch_kind(envs)
    if kind is not None:
        return kind.step_together(envs, actions)
    return [env.step(a) for env, a in zip(envs, actions, strict=True)]


def make_vec(env_cfg: Mapping[str, Any] | Any, n_envs: int, mode: str = "sync") -> gym.vector.VectorEnv:
    """``n_envs`` copies of the env of ``env_cfg`` as one gymnasium ``VectorEnv``.

    Every mode autoresets in the same step: a finished copy returns the next episode's first
    observation and ``infos["final_obs"]`` (mask ``infos["_final_obs"]``) holds the true last one,
    which is what a value target must bootstrap from after a truncation. ``numpy`` is the batch
    GridWorld or CartPole (one array step for all copies); ``sync``/``async`` wrap any env (async: processes).
    """
    from gymnasium.vector import AutoresetMode

    if mode not in VECTOR_MODES:
        raise ValueError(f"vector mode {mode!r} is not allowed: choose one of {', '.join(VECTOR_MODES)}")
    env_id, kwargs = split_env_config(env_cfg)
    if mode == "numpy":
        if env_id == CARTPOLE_ID and set(kwargs) <= {"max_episode_steps"}:
            return CartPoleVectorEnv(n_envs, kwargs.get("max_episode_steps") or 500)
        if env_id == PENDULUM_ID and set(kwargs) <= {"max_episode_steps", "g"}:
            return PendulumVectorEnv(n_envs, kwargs.get("max_episode_steps") or 200, g=kwargs.get("g", 10.0))
        if env_id != GRIDWORLD_ID:
            raise ValueError(f"vector mode 'numpy' exists for {', '.join(NUMPY_VECTOR_IDS)} only, not {env_id}")
        return GridWorldVectorEnv(n_envs, **kwargs)
    route_mujoco_warnings(env_id)
    return gym.make_vec(env_id, num_envs=n_envs, vectorization_mode=mode,
                        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **kwargs)  # fmt: skip


def vectorize(env: gym.Env, n_envs: int, mode: str = "auto") -> gym.vector.VectorEnv:
    """``n_envs`` fresh copies of a made ``env`` as one same-step-autoreset ``VectorEnv``.

    Copies are re-made from ``env.spec`` (same kwargs, time limit and wrappers); ``auto`` picks the
    numpy batch env where there is one (``numpy_vector_env``: the GridWorld, CartPole — the same episodes as
    ``sync``, faster) and ``sync`` otherwise. An env made without gymnasium (no spec) is deep-copied instead.
    """
    import copy

    from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

    if mode not in ("auto", *VECTOR_MODES):
        raise ValueError(f"vector mode {mode!r} is not allowed: choose one of auto, {', '.join(VECTOR_MODES)}")
    spec = env.spec
    if spec is None:
        if mode == "async":
            raise ValueError("vector mode 'async' needs an env made by gymnasium.make (it has no spec)")
        copies = [copy.deepcopy(env) for _ in range(n_envs)]
        return SyncVectorEnv([lambda e=e: e for e in copies], autoreset_mode=AutoresetMode.SAME_STEP)
    if mode in ("auto", "numpy"):
        batch = numpy_vector_env(spec, n_envs)
        if batch is not None:
            return batch
        if mode == "numpy":
            raise ValueError(f"vector mode 'numpy' exists for {', '.join(NUMPY_VECTOR_IDS)} (made without extra "
                             f"wrappers) only, not {spec.id}")  # fmt: skip
        mode = "sync"
    factory = SyncVectorEnv if mode == "sync" else AsyncVectorEnv
    return factory([lambda: gym.make(spec) for _ in range(n_envs)], autoreset_mode=AutoresetMode.SAME_STEP)


def seeded_copies(env: gym.Env, n: int) -> gym.vector.VectorEnv | None:
    """``n`` fresh copies of a made ``env`` as one same-step-autoreset ``VectorEnv`` whose ``reset(seed=s)`` starts
    copy i exactly as ``env.reset(seed=s + i)`` would: the numpy batch form where it seeds each copy so (CartPole,
    Pendulum with their time limit: ``NumpyVectorEnv``), else ``SyncVectorEnv`` of copies re-made from ``env.spec``.
    None when the copies could differ from ``env`` or be watched: an env made without gymnasium (no spec), wrapped
    after ``make``, or with a render mode (n windows, or frames nobody asked for)."""
    spec = env.spec
    if spec is None or spec.additional_wrappers or env.render_mode is not None:
        return None
    if spec.id in (CARTPOLE_ID, PENDULUM_ID) and spec.max_episode_steps is not None:
        batch = numpy_vector_env(spec, n)
        if batch is not None:
            return batch
    return vectorize(env, n, "sync")


class OneEnvVector(gym.vector.VectorEnv):
    """One env as a one-copy vector env with same-step autoreset (an ended episode's env has started the next one,
    ``infos["final_obs"]`` holds its true last observation), stepping the env itself: without ``SyncVectorEnv``'s
    per-step machinery (batched spaces, merged infos), so a single run steps as fast as its env."""

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, env: gym.Env) -> None:
        from gymnasium.vector.utils import batch_space

        self.env, self.num_envs, self.render_mode = env, 1, None
        self.single_observation_space, self.single_action_space = env.observation_space, env.action_space
        self.observation_space = batch_space(env.observation_space, 1)
        self.action_space = batch_space(env.action_space, 1)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return np.asarray(obs)[None], info

    def step(self, actions):
        action = actions[0]
        obs, reward, terminated, truncated, _ = self.env.step(action.item() if action.ndim == 0 else action)
        infos: dict[str, Any] = {}
        if terminated or truncated:
            final = np.empty(1, dtype=object)
            final[0] = obs
            obs = self.env.reset()[0]
            infos = {"final_obs": final, "_final_obs": np.ones(1, dtype=bool)}
        return np.asarray(obs)[None], np.array([reward], dtype=np.float64), np.array([terminated]), \
            np.array([truncated]), infos  # fmt: skip


def acting_env(env: gym.Env, batch_lane: bool) -> gym.vector.VectorEnv:
    """The one-copy vector env an off-policy agent acts in: for a seed batch's lane (``batch_lane``) the numpy batch
    form of ``env`` where it has one (``numpy_vector_env``: a fresh copy, the same episodes; a batch steps its lanes'
    as one array computation), else ``env`` itself (``OneEnvVector``: its own wrappers, also ones that cannot be
    re-made from a spec; a single run steps it as fast as the env)."""
    batch = numpy_vector_env(env.spec, 1) if batch_lane and env.spec is not None else None
    return batch if batch is not None else OneEnvVector(env)


def model_of(env: gym.Env) -> TabularModel | None:
    """The exact model of ``env`` if it exposes one, else None.

    Understood: ``tabular_model()`` (compact), ``model()`` returning dense ``(P, R)``, and the
    toy-text ``P[s][a]`` transition lists of FrozenLake, CliffWalking and Taxi.
    """
    base = env.unwrapped
    if hasattr(base, "tabular_model"):
        return base.tabular_model()
    if hasattr(base, "model"):
        P, R = base.model()
        return TabularModel.from_dense(P, R)
    P = getattr(base, "P", None)
    if isinstance(P, dict) and isinstance(env.observation_space, gym.spaces.Discrete):
        return TabularModel.from_transitions(P, int(env.observation_space.n), int(env.action_space.n))
    return None


def supports_state_reset(env: gym.Env) -> bool:
    """Whether ``reset_to_state`` can start an episode of ``env`` in a chosen state."""
    base = env.unwrapped
    return isinstance(base, GridWorld) or isinstance(getattr(base, "P", None), dict)


def reset_to_state(env: gym.Env, state: int) -> int:
    """Reset the unwrapped ``env`` and put it in ``state`` (exploring starts); returns the observation.

    GridWorld takes ``options={"state": s}``; toy-text envs keep their state in ``.s``.
    """
    base = env.unwrapped
    if isinstance(base, GridWorld):
        return base.reset(options={"state": int(state)})[0]
    if isinstance(getattr(base, "P", None), dict):
        base.reset()
        base.s = int(state)
        return int(state)
    raise ValueError(f"{env} cannot be reset to a chosen state (needed for exploring starts)")


__all__ = [
    "ACTIONS",
    "CARTPOLE_ID",
    "CONTINUOUS_GRIDWORLD_ID",
    "DEFAULT_LAYOUT",
    "GRIDWORLD_ID",
    "PENDULUM_ID",
    "TEXT_FILE_ID",
    "TEXT_TASK_ID",
    "CartPoleVectorEnv",
    "ContinuousGridWorld",
    "GridDynamics",
    "GridWorld",
    "GridWorldVectorEnv",
    "Layout",
    "LayoutError",
    "NumpyVectorEnv",
    "OneEnvVector",
    "PendulumVectorEnv",
    "Rewards",
    "TabularModel",
    "acting_env",
    "common_batch_kind",
    "make",
    "make_vec",
    "model_of",
    "move_of",
    "random_layout",
    "reset_to_state",
    "seeded_copies",
    "step_vector_envs",
    "supports_state_reset",
    "vectorize",
]
