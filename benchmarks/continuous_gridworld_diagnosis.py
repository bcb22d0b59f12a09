"""Why DDPG / TD3 fall short on the continuous GridWorld: each seed's critic and actor against the exact values.

For every ``seed<k>/`` of a run directory (its final checkpoint), over the GridWorld's 25 states:

- the greedy policy μ's move in each state (``move_of`` its action) and how many are optimal (Q* argmax);
- the critic Q̂ at the centre of each move's region of [−1, 1]², and how often its best region is an optimal move;
- "local optima": states where the critic's best region is optimal but the actor sits in another region;
- the critic's bias on its own policy, mean Q̂(s, μ(s)) − v_μ(s), with v_μ the exact value of μ's moves;
- ‖v_μ − v*‖∞.

    python -m rlzoo.train +bench=gridworld_continuous_td3 n_seeds=5 hydra.run.dir=runs/td3_cgw
    python benchmarks/continuous_gridworld_diagnosis.py runs/td3_cgw
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from rlzoo.agents import Agent
from rlzoo.envs.continuous_gridworld import DOWN, LEFT, RIGHT, STAY, UP
from rlzoo.truth import GroundTruth

# a point well inside each move's region of [−1, 1]² (in the agent's action units, which equal the env's here)
REGION_CENTRES = {UP: (0.0, 0.8), RIGHT: (0.8, 0.0), DOWN: (0.0, -0.8), LEFT: (-0.8, 0.0), STAY: (0.0, 0.0)}


def diagnose(run: Path) -> dict[str, float]:
    """The figures above for one seed's run directory."""
    agent = Agent.load(run)
    truth, obs = agent.truth, agent.tensor(agent.states)
    n_states, n_moves = len(agent.states), len(REGION_CENTRES)
    with torch.inference_mode():
        actions = agent.greedy_actions(obs)
        q_mu = agent.critic(obs, actions)[0].double().numpy()
        q_regions = np.stack([agent.critic(obs, torch.tensor(REGION_CENTRES[m]).expand(n_states, 2))[0].double().numpy()
                              for m in range(n_moves)], axis=1)  # fmt: skip
    moves = agent.env.unwrapped.move_of(agent.scaler.to_env(actions.numpy()))
    optimal = truth.optimal_actions
    actor_optimal = optimal[np.arange(n_states), moves]
    critic_optimal = optimal[np.arange(n_states), q_regions.argmax(axis=1)]
    v_mu = GroundTruth.of_policy(truth.model, np.eye(n_moves)[moves], truth.gamma).v
    return {
        "actor_optimal_states": int(actor_optimal.sum()),
        "critic_best_region_optimal_states": int(critic_optimal.sum()),
        "local_optima": int((critic_optimal & ~actor_optimal).sum()),
        "critic_bias_on_own_policy": float(np.mean(q_mu - v_mu)),
        "critic_error_on_own_policy_mean": float(np.mean(np.abs(q_mu - v_mu))),
        "policy_value_gap_max": float(np.max(np.abs(v_mu - truth.v))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run directory with seed<k>/ subdirectories (n_seeds=K)")
    args = parser.parse_args()
    seeds = sorted(args.run_dir.glob("seed*"), key=lambda p: int(p.name.removeprefix("seed")))
    if not seeds:
        raise SystemExit(f"{args.run_dir} has no seed<k>/ run directories")
    for run in seeds:
        figures = diagnose(run)
        print(f"{run.name}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in figures.items()))  # fmt: skip


if __name__ == "__main__":
    main()
