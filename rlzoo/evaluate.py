"""Evaluate an agent: run episodes and report the (undiscounted) return.

Command line: ``python -m rlzoo.evaluate <run_dir | checkpoint.pt> [--checkpoint last|best] [--episodes N]
[--render ansi] [--video]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np

from rlzoo.envs import seeded_copies

if TYPE_CHECKING:
    from rlzoo.agents.base import Agent


@dataclass
class EvalResult:
    """Returns and lengths of evaluation episodes."""

    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))


def evaluate(
    agent: Agent,
    env: gym.Env,
    episodes: int = 10,
    *,
    seed: int = 0,
    deterministic: bool = True,
    max_episode_steps: int = 1000,
    render: bool = False,
    observe: Callable[[], None] | None = None,
) -> EvalResult:
    """Run ``episodes`` episodes (episode ``i`` reset with ``seed + i``); each capped at ``max_episode_steps``.
    ``render`` prints ``env.render()`` after each step; ``observe()`` is called after each reset and each step
    (a video records its frames there).

    Greedy episodes of an agent that ``acts_in_batches`` run side by side in fresh copies of ``env``
    (``evaluate_together``) where ``env`` can be re-made (``rlzoo.envs.seeded_copies``) and nothing watches its steps;
    otherwise one after another in ``env``. Raises ``ValueError`` for ``episodes`` < 1: the mean of no returns is
    not a result."""
    if episodes < 1:
        raise ValueError(f"episodes={episodes} is not allowed: evaluate at least 1 episode")
    if deterministic and agent.acts_in_batches and not render and observe is None:
        copies = seeded_copies(env, episodes)
        if copies is not None:
            try:
                return evaluate_together(agent, copies, seed=seed, max_episode_steps=max_episode_steps)
            finally:
                copies.close()
    result = EvalResult()
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        if observe is not None:
            observe()
        total, length, done = 0.0, 0, False
        while not done and length < max_episode_steps:
            obs, reward, terminated, truncated, _ = env.step(agent.act(obs, deterministic=deterministic))
            total += float(reward)
            length += 1
            done = terminated or truncated
            if observe is not None:
                observe()
            if render:
                print(env.render())
        result.returns.append(total)
        result.lengths.append(length)
    return result


def evaluate_together(agent: Agent, envs: gym.vector.VectorEnv, *, seed: int, max_episode_steps: int) -> EvalResult:
    """Greedy episodes side by side, episode i in copy i of ``envs`` reset with ``seed + i`` (``seeded_copies``):
    one ``agent.act_batch`` call a step for every copy (a finished one's actions are ignored), until each episode has
    ended or run ``max_episode_steps``. The same episodes as ``evaluate``'s one-at-a-time loop: each batch row's
    action is the one-row call's up to the last bits of the batched products."""
    n = envs.num_envs
    obs, _ = envs.reset(seed=seed)
    returns, lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
    running = np.full(n, max_episode_steps > 0)
    while running.any():
        obs, rewards, terminated, truncated, _ = envs.step(agent.act_batch(obs))
        returns += np.where(running, rewards, 0.0)  # float64 sums in evaluate's order: the same numbers
        lengths += running
        running &= ~(terminated | truncated) & (lengths < max_episode_steps)
    return EvalResult(returns=returns.tolist(), lengths=lengths.tolist())


EVALUATION_SEEDS = 1_000_000  # evaluation resets draw from seeds this far above any training seed


def evaluation_seed(run_seed: int, episodes: int) -> int:
    """The reset seed of the first evaluation episode of the run with seed ``run_seed`` (episode i: this + i):
    1 000 000 + run_seed × episodes, so runs of different seeds evaluate on disjoint sets of start states and their
    spread over seeds is the spread of what they learned, not of shared start states."""
    return EVALUATION_SEEDS + run_seed * episodes


def main(argv: list[str] | None = None) -> int:
    """CLI: load a run's final checkpoint (or a given checkpoint file) and evaluate it."""
    import rlzoo  # noqa: F401  (registers envs)
    from rlzoo.agents import Agent
    from rlzoo.checkpoint import CHECKPOINT_CHOICES, CheckpointError

    parser = argparse.ArgumentParser(prog="python -m rlzoo.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="a run directory (checkpoints/final.pt or best.pt) or a checkpoint")
    parser.add_argument("--checkpoint", choices=list(CHECKPOINT_CHOICES), default="last",
                        help="of a run directory: the last agent (final.pt) or the best (best.pt)")  # fmt: skip
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of acting greedily")
    parser.add_argument("--render", choices=["none", "ansi"], default="none")
    parser.add_argument("--max-episode-steps", type=int, default=1000)
    parser.add_argument("--video", action="store_true",
                        help="also write each episode to videos/ as MP4 (pip install -e '.[video]')")  # fmt: skip
    args = parser.parse_args(argv)
    if args.episodes < 1:
        print(f"rlzoo.evaluate: --episodes {args.episodes} is not allowed: give 1 or more", file=sys.stderr)
        return 2
    try:
        agent = Agent.load(args.path, which=args.checkpoint)
    except (CheckpointError, ValueError, KeyError, TypeError) as err:
        print(f"rlzoo.evaluate: {err}", file=sys.stderr)
        return 2
    env = agent.env
    if args.render == "ansi":
        env = gym.make(env.spec, render_mode="ansi")
    res = evaluate(
        agent,
        env,
        args.episodes,
        seed=args.seed,
        deterministic=not args.stochastic,
        max_episode_steps=args.max_episode_steps,
        render=args.render == "ansi",
    )
    print(f"{agent.name}: return {res.mean:.3f} ± {res.std:.3f} over {args.episodes} episodes")
    if args.video:
        from rlzoo.video import VideoUnavailable, record_episode

        where = (args.path if args.path.is_dir() else args.path.parent) / "videos"
        name = args.checkpoint if args.path.is_dir() else args.path.stem
        try:
            for i in range(args.episodes):  # the episodes just evaluated: same seeds, same actions
                path, total = record_episode(agent, agent.env, where / f"evaluate_{name}_ep{i}.mp4", seed=args.seed + i,
                                             deterministic=not args.stochastic,
                                             max_episode_steps=args.max_episode_steps)  # fmt: skip
                print(f"{path}: return {total:.3f}")
        except VideoUnavailable as err:
            print(f"rlzoo.evaluate: {err}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
