"""DQN throughput side by side: rlzoo vs Stable-Baselines3, same hyper-parameters, same machine.

Stable-Baselines3 runs in its own virtual environment (``.venvs/sb3``, created on first use with
``pip install torch==2.13.0 stable-baselines3``); rlzoo never imports it. Runs alternate
(rlzoo, SB3, rlzoo, SB3, …) so that machine load hits both alike; the report is the median
steps/s over ``--repeats`` runs each and their ratio, plus each run's final evaluation return.

    python benchmarks/peers/sb3_dqn_cartpole.py --preset default --steps 20000 --repeats 3
    python benchmarks/peers/sb3_dqn_cartpole.py --preset tuned --steps 50000 --repeats 3
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PEER_EVAL, compare, peer_python

# Hyper-parameters in SB3's names; rlzoo's names differ only for the network.
PRESETS = {
    "default": {  # SB3's DQN defaults, with learning_starts lowered to fit the budget
        "learning_rate": 1e-4, "buffer_size": 100_000, "learning_starts": 1000, "batch_size": 32, "gamma": 0.99,
        "train_freq": 4, "gradient_steps": 1, "target_update_interval": 1000, "exploration_fraction": 0.1,
        "exploration_final_eps": 0.05, "max_grad_norm": 10.0, "net_arch": [64, 64],
    },
    "tuned": {  # rl-baselines3-zoo's CartPole-v1 settings (conf/experiment/dqn_cartpole.yaml)
        "learning_rate": 2.3e-3, "buffer_size": 100_000, "learning_starts": 1000, "batch_size": 64, "gamma": 0.99,
        "train_freq": 256, "gradient_steps": 128, "target_update_interval": 10, "exploration_fraction": 0.16,
        "exploration_final_eps": 0.04, "max_grad_norm": 10.0, "net_arch": [256, 256],
    },
}  # fmt: skip

SB3_RUN = PEER_EVAL + textwrap.dedent(
    """
    import json, sys, time
    import gymnasium as gym, torch
    from stable_baselines3 import DQN
    hp, steps, seed = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    net = hp.pop("net_arch")
    model = DQN("MlpPolicy", gym.make("CartPole-v1"), policy_kwargs={"net_arch": net}, seed=seed, verbose=0, **hp)
    t0 = time.perf_counter()
    model.learn(steps)
    wall = time.perf_counter() - t0
    ret = peer_eval("CartPole-v1", lambda o: int(model.predict(o, deterministic=True)[0]))
    print(json.dumps({"sps": steps / wall, "wall": wall, "eval": ret}))
    """
)

RLZOO_RUN = textwrap.dedent(
    """
    import json, sys, time
    import gymnasium as gym
    import torch
    from rlzoo import make_agent
    from rlzoo.evaluate import evaluate
    from rlzoo.seeding import seed_everything
    hp, steps, seed = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    hp["hidden"] = hp.pop("net_arch")
    torch.set_num_threads(1)  # as `python -m rlzoo.train` does by default (torch_threads=1)
    seed_everything(seed)
    agent = make_agent("dqn", gym.make("CartPole-v1"), seed=seed, log_every=steps, **hp)
    t0 = time.perf_counter()
    agent.learn(steps)
    wall = time.perf_counter() - t0
    res = evaluate(agent, gym.make("CartPole-v1"), 10, seed=10_000)
    print(json.dumps({"sps": steps / wall, "wall": wall, "eval": res.mean}))
    """
)


if __name__ == "__main__":
    compare(__doc__.splitlines()[0], {"rlzoo": (sys.executable, RLZOO_RUN),
            "sb3": (peer_python("sb3", ["stable-baselines3"]), SB3_RUN)}, PRESETS, 20_000)  # fmt: skip
