"""Videos of evaluation episodes: MP4 files through ``imageio`` and its ffmpeg plugin (``pip install -e
'.[video]'``, which also brings ``pygame`` for gymnasium's classic-control pictures), and the GridWorld's greedy
policy walking over its value heat-map as an animated GIF."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from rlzoo.callbacks import Callback

if TYPE_CHECKING:
    from rlzoo.agents.base import Agent
    from rlzoo.logging import RunLogger

VIDEO_EXTRA = "pip install -e '.[video]'"


class VideoUnavailable(RuntimeError):
    """The video extra (imageio with its ffmpeg plugin) is not installed; the message names the command."""


def require_video(what: str = "eval.video=true") -> Any:
    """``imageio.v2`` with a working ffmpeg; ``VideoUnavailable`` naming the ``pip install`` to run otherwise."""
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        raise VideoUnavailable(f"{what} needs imageio and its ffmpeg plugin: {VIDEO_EXTRA}") from None
    return imageio


def rgb_env(env: gym.Env) -> gym.Env:
    """A new copy of ``env`` (made by ``gymnasium.make``) that renders ``rgb_array`` frames."""
    if env.spec is None:
        raise ValueError(f"{env} was not made by gymnasium.make: it cannot be re-made to render frames")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # pygame draws off-screen: no banner, no display
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    try:
        return gym.make(env.spec, render_mode="rgb_array")
    except gym.error.DependencyNotInstalled as err:  # classic control draws with pygame
        raise VideoUnavailable(f"{env.spec.id} renders with a missing package ({err}): {VIDEO_EXTRA}") from None


def episode_frames(agent: Agent, env: gym.Env, *, seed: int, deterministic: bool = True,
                   max_episode_steps: int = 1000,
                   draw: Callable[[], np.ndarray] | None = None) -> tuple[list[np.ndarray], float]:  # fmt: skip
    """The frames of one episode of ``agent`` on ``env`` as ``rlzoo.evaluate.evaluate`` plays it (reset with
    ``seed``), drawn by ``draw()`` (default: ``env.render()``) after the reset and each step, and its return."""
    from rlzoo.evaluate import evaluate

    frames: list[np.ndarray] = []
    draw = draw or env.render
    result = evaluate(agent, env, 1, seed=seed, deterministic=deterministic, max_episode_steps=max_episode_steps,
                      observe=lambda: frames.append(draw()))  # fmt: skip
    return frames, result.returns[0]


def write_video(path: str | Path, frames: list[np.ndarray], fps: int) -> Path:
    """``frames`` (H, W, 3 uint8) as an MP4 (H.264, sides padded to even sizes) or, for a ``.gif`` path, a GIF."""
    imageio = require_video()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gif":
        imageio.mimsave(path, frames, duration=1000 / fps, loop=0)
        return path
    h, w = frames[0].shape[:2]
    even = [np.pad(f, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") for f in frames]
    imageio.mimsave(path, even, fps=fps, codec="libx264", macro_block_size=1)
    return path


def record_episode(agent: Agent, env: gym.Env, path: str | Path, *, seed: int, deterministic: bool = True,
                   max_episode_steps: int = 1000,
                   logger: RunLogger | None = None, step: int = 0) -> tuple[Path, float]:  # fmt: skip
    """One episode of ``agent`` on an ``rgb_array`` copy of ``env`` written to ``path``, and shown in ``logger``'s
    TensorBoard as ``eval/video`` at ``step`` when given; (path, its return)."""
    require_video()
    video_env = rgb_env(env)
    try:
        frames, total = episode_frames(agent, video_env, seed=seed, deterministic=deterministic,
                                       max_episode_steps=max_episode_steps)  # fmt: skip
    finally:
        video_env.close()
    fps = int(video_env.metadata.get("render_fps") or 30)
    if logger is not None:
        logger.video("eval/video", frames, step, fps)
    return write_video(path, frames, fps), total


def policy_walk_frames(agent: Agent, env: gym.Env, *, seed: int, max_episode_steps: int = 100) -> list[np.ndarray]:
    """The GridWorld (``env.unwrapped`` a ``GridWorld``) as the greedy agent walks it from the start ``seed``
    draws, each frame over the heat-map of the agent's state values (its ``truth_tables``; the layout's colours
    when it has none)."""
    from rlzoo.envs.render import render_rgb

    world = env.unwrapped
    tables = agent.truth_tables()
    values = tables[1] if tables is not None else None
    frames, _ = episode_frames(agent, env, seed=seed, max_episode_steps=max_episode_steps,
                               draw=lambda: render_rgb(world.layout, world.state, values=values))  # fmt: skip
    return frames


class EvaluationVideo(Callback):
    """After each evaluation, one episode of the agent (greedy unless ``deterministic`` is False, reset with
    ``seed``) as ``<directory>/eval_step<step>.mp4`` (and ``eval/video`` in ``logger``'s TensorBoard); on the
    GridWorld also ``eval_step<step>.gif``, the greedy policy walking over its value heat-map. ``seconds``: the time
    the videos took."""

    def __init__(self, env: gym.Env, directory: str | Path, *, seed: int, deterministic: bool = True,
                 max_episode_steps: int = 1000, logger: RunLogger | None = None) -> None:  # fmt: skip
        require_video()
        self.env, self.directory, self.seed, self.logger = env, Path(directory), seed, logger
        self.deterministic, self.max_episode_steps = deterministic, max_episode_steps
        self.seconds = 0.0

    def on_evaluation(self, agent: Agent, step: int, mean_return: float) -> None:
        start = time.perf_counter()
        name = f"eval_step{step:010d}"
        record_episode(agent, self.env, self.directory / f"{name}.mp4", seed=self.seed,
                       deterministic=self.deterministic, max_episode_steps=self.max_episode_steps, logger=self.logger,
                       step=step)  # fmt: skip
        if hasattr(self.env.unwrapped, "layout") and hasattr(self.env.unwrapped, "state"):
            walk = policy_walk_frames(agent, self.env, seed=self.seed, max_episode_steps=self.max_episode_steps)
            write_video(self.directory / f"{name}.gif", walk, fps=4)
        self.seconds += time.perf_counter() - start
