"""How much faster is greedy evaluation with its episodes side by side than one after another?

For each (algo, env) below, an agent trained for a few thousand steps (seed 0) is evaluated on ``--episodes``
episodes by ``rlzoo.evaluate.evaluate`` twice in alternation: side by side (``evaluate_together``: one
``act_batch`` call a step in ``seeded_copies`` of the env) and one at a time (the same call with the family's
``acts_in_batches`` switched off). Prints the medians over ``--repeats`` rounds, their ratio, and the largest
difference between the two results' returns.

    python benchmarks/evaluation_speed.py                    # 50 episodes (the Pendulum benchmark's), 5 rounds
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np

import rlzoo
from rlzoo.evaluate import EvalResult, evaluate

CASES = [  # (algo, env id, env kwargs, training steps before the evaluation)
    ("ppo", "CartPole-v1", {}, 4096),
    ("dqn", "CartPole-v1", {}, 4000),
    ("ppo", "Pendulum-v1", {}, 4096),
    ("ddpg", "Pendulum-v1", {}, 2000),
    ("dqn", rlzoo.envs.GRIDWORLD_ID, {"obs": "onehot"}, 4000),
    ("td3", rlzoo.envs.CONTINUOUS_GRIDWORLD_ID, {}, 2000),
]


def timed(agent, env: gym.Env, episodes: int, together: bool) -> tuple[float, EvalResult]:
    """Seconds of one evaluation and its result, side by side or (``together`` False) one at a time."""
    batched = agent.acts_in_batches
    agent.acts_in_batches = together and batched  # on this agent only, its family untouched
    try:
        start = time.perf_counter()
        result = evaluate(agent, env, episodes, seed=1_000_000)
        return time.perf_counter() - start, result
    finally:
        del agent.acts_in_batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| algo, env | one at a time (s) | side by side (s) | × faster | largest return difference |")
    print("|---|---|---|---|---|")
    for algo, env_id, kwargs, steps in CASES:
        env = gym.make(env_id, **kwargs)
        agent = rlzoo.make_agent(algo, env, seed=0)
        agent.learn(steps)
        singles, together, difference = [], [], 0.0
        for _ in range(args.repeats):
            t1, r1 = timed(agent, env, args.episodes, together=False)
            t2, r2 = timed(agent, env, args.episodes, together=True)
            singles.append(t1)
            together.append(t2)
            difference = max(difference, float(np.max(np.abs(np.subtract(r1.returns, r2.returns)))))
        one, side = statistics.median(singles), statistics.median(together)
        print(f"| {algo}, {env_id} | {one:.3f} | {side:.3f} | {one / side:.1f} | {difference:.2g} |")


if __name__ == "__main__":
    main()
