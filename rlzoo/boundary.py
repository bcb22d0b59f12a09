"""The library boundary: arguments of the public calls checked where they enter, so that a bad value is one
``TypeError``/``ValueError`` naming the argument and what is allowed, not a traceback from deep inside numpy or
torch (``Agent.__init__``: the env; ``Agent.act``: the observation; ``Agent.load``: the env's spaces)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

SPACE_KINDS = ("observation_space", "action_space")


def require_gym_env(env: Any) -> None:
    """``TypeError`` naming ``env`` unless it is a ``gymnasium.Env`` (wrappers included)."""
    if isinstance(env, gym.Env):
        return
    hint = f"gymnasium.make({env!r})" if isinstance(env, str) else "gymnasium.make('CartPole-v1')"
    raise TypeError(
        f"env={short_repr(env)} ({type(env).__name__}) is not a gymnasium.Env: pass a gymnasium.Env, e.g. {hint}"
    )


def short_repr(value: Any, limit: int = 80) -> str:
    text = " ".join(repr(value).split())  # one line: numpy wraps long arrays
    return text if len(text) <= limit else text[: limit - 3] + "..."


def space_text(space: gym.Space) -> str:
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
            problem = f"{short_repr(obs)} has values outside the space"
        return problem
    if isinstance(space, gym.spaces.Text):
        if not isinstance(obs, str):
            return f"a str is needed, {type(obs).__name__} was given"
        if not space.min_length <= len(obs) <= space.max_length:
            return f"length {space.min_length} … {space.max_length} is allowed, {len(obs)} was given"
        odd = sorted(set(obs) - set(space.character_set))
        return f"characters {''.join(odd)!r} are not in the space's charset" if odd else None
    try:
        return None if space.contains(obs) else f"{type(obs).__name__} {short_repr(obs)} is not in it"
    except Exception as err:  # a space's contains may fail on a foreign value
        return f"{type(obs).__name__} {short_repr(obs)} is not in it ({type(err).__name__}: {err})"


def describe_space(space: gym.Space) -> dict[str, Any]:
    """What a checkpoint records of a space: its text and what an agent's saved state depends on."""
    out: dict[str, Any] = {"text": space_text(space), "type": type(space).__name__}
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
