"""A2C throughput side by side: rlzoo vs Stable-Baselines3, same hyper-parameters, same machine.

SB3 runs in ``.venvs/sb3`` (made on first use); runs alternate and the report is the median
steps/s of each over ``--repeats`` runs and their ratio, plus every run's final evaluation return.
Both use 8 synchronous CartPole-v1 envs, 5 steps per env per update, RMSprop, separate 64×64 tanh
actor and critic networks with orthogonal init, one torch thread.

    python benchmarks/peers/sb3_a2c.py --preset default --steps 100000 --repeats 3
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PEER_EVAL, compare, peer_python

# SB3's A2C defaults (RMSprop, n_steps 5, λ = 1, no entropy bonus) with rl-zoo's 8 envs for CartPole-v1
PRESETS = {
    "default": {"env": "CartPole-v1", "n_envs": 8, "n_steps": 5, "learning_rate": 7e-4, "gamma": 0.99,
                "gae_lambda": 1.0, "ent_coef": 0.0, "vf_coef": 0.5, "max_grad_norm": 0.5, "net_arch": [64, 64]},
    "pendulum": {"env": "Pendulum-v1", "n_envs": 8, "n_steps": 8, "learning_rate": 7e-4, "gamma": 0.9,
                 "gae_lambda": 0.9, "ent_coef": 0.0, "vf_coef": 0.4, "max_grad_norm": 0.5, "net_arch": [64, 64]},
}  # fmt: skip

SB3_RUN = PEER_EVAL + textwrap.dedent(
    """
    import json, sys, time
    import torch
    from stable_baselines3 import A2C
    from stable_baselines3.common.env_util import make_vec_env
    hp, steps, seed = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    env_id, n_envs, net = hp.pop("env"), hp.pop("n_envs"), hp.pop("net_arch")
    env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    model = A2C("MlpPolicy", env, policy_kwargs={"net_arch": dict(pi=net, vf=net)}, seed=seed, verbose=0, **hp)
    t0 = time.perf_counter()
    model.learn(steps)
    wall = time.perf_counter() - t0
    discrete = env_id != "Pendulum-v1"
    ret = peer_eval(env_id, lambda o: (lambda a: int(a) if discrete else a)(model.predict(o, deterministic=True)[0]))
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
    hp, steps, seed = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)  # as `python -m rlzoo.train` does by default (torch_threads=1)
    env_id = hp.pop("env")
    hp["hidden"] = hp.pop("net_arch")
    agent = make_agent("a2c", gym.make(env_id), seed=seed, optimizer="rmsprop", lr_schedule="constant",
                       log_every=steps, **hp)
    t0 = time.perf_counter()
    agent.learn(steps)
    wall = time.perf_counter() - t0
    res = evaluate(agent, gym.make(env_id), 10, seed=10_000)
    print(json.dumps({"sps": steps / wall, "wall": wall, "eval": res.mean}))
    """
)

if __name__ == "__main__":
    compare(__doc__.splitlines()[0], {"rlzoo": (sys.executable, RLZOO_RUN),
            "sb3": (peer_python("sb3", ["stable-baselines3"]), SB3_RUN)}, PRESETS, 100_000)  # fmt: skip
