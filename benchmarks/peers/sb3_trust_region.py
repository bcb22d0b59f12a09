"""PPO and TRPO throughput side by side: rlzoo vs Stable-Baselines3 (PPO) / sb3-contrib (TRPO).

The peers run in ``.venvs/sb3`` (made on first use). Same env, hyper-parameters, networks (separate
64×64 tanh actor and critic, orthogonal init), one torch thread each; runs alternate and the report
is the median steps/s of each over ``--repeats`` runs and their ratio, plus every run's evaluation.

    python benchmarks/peers/sb3_trust_region.py --preset ppo --steps 100000 --repeats 3
    python benchmarks/peers/sb3_trust_region.py --preset trpo --steps 100000 --repeats 3
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PEER_EVAL, compare, peer_python

# rlzoo's CartPole-v1 defaults (PPOConfig, TRPOConfig in rlzoo/agents/) in each library's names
PRESETS = {
    "ppo": {"algo": "ppo", "n_envs": 8, "n_steps": 32, "batch_size": 256, "n_epochs": 20, "gamma": 0.98,
            "gae_lambda": 0.8, "learning_rate": 1e-3, "clip_range": 0.2, "ent_coef": 0.0, "vf_coef": 0.5,
            "max_grad_norm": 0.5},
    # CleanRL ppo.py's defaults (also what benchmarks/peers/cleanrl_ppo.py runs)
    "ppo-cleanrl": {"algo": "ppo", "n_envs": 4, "n_steps": 128, "batch_size": 128, "n_epochs": 4, "gamma": 0.99,
                    "gae_lambda": 0.95, "learning_rate": 2.5e-4, "clip_range": 0.2, "ent_coef": 0.01, "vf_coef": 0.5,
                    "max_grad_norm": 0.5, "clip_range_vf": 0.2},
    "trpo": {"algo": "trpo", "n_envs": 4, "n_steps": 256, "batch_size": 64, "gamma": 0.99, "gae_lambda": 0.95,
             "learning_rate": 1e-3, "target_kl": 0.01, "cg_max_steps": 10, "cg_damping": 0.1,
             "line_search_shrinking_factor": 0.8, "line_search_max_iter": 10, "n_critic_updates": 5},
}  # fmt: skip

SB3_RUN = PEER_EVAL + textwrap.dedent(
    """
    import json, sys, time
    import torch
    from stable_baselines3.common.env_util import make_vec_env
    hp, steps, seed = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    algo, n_envs = hp.pop("algo"), hp.pop("n_envs")
    env = make_vec_env("CartPole-v1", n_envs=n_envs, seed=seed)
    policy_kwargs = {"net_arch": dict(pi=[64, 64], vf=[64, 64]), "activation_fn": torch.nn.Tanh}
    if algo == "ppo":
        from stable_baselines3 import PPO
        lr0, clip0 = hp.pop("learning_rate"), hp.pop("clip_range")
        clip = clip0 if "clip_range_vf" in hp else (lambda f: clip0 * f)  # CleanRL's preset: constant clip
        model = PPO("MlpPolicy", env, learning_rate=lambda f: lr0 * f, clip_range=clip,
                    policy_kwargs=policy_kwargs, seed=seed, verbose=0, **hp)
    else:
        from sb3_contrib import TRPO
        model = TRPO("MlpPolicy", env, policy_kwargs=policy_kwargs, seed=seed, verbose=0, **hp)
    t0 = time.perf_counter()
    model.learn(steps)
    wall = time.perf_counter() - t0
    ret = peer_eval("CartPole-v1", lambda o: int(model.predict(o, deterministic=True)[0]))
    print(json.dumps({"sps": model.num_timesteps / wall, "wall": wall, "eval": ret}))
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
    algo = hp.pop("algo")
    if algo == "ppo":
        hp["clip_schedule"] = "constant" if "clip_range_vf" in hp else "linear"
    if algo == "trpo":
        names = {"target_kl": "max_kl", "cg_max_steps": "cg_iters", "n_critic_updates": "vf_epochs",
                 "line_search_shrinking_factor": "line_search_decay", "line_search_max_iter": "line_search_steps",
                 "batch_size": "vf_batch_size"}
        hp = {names.get(k, k): v for k, v in hp.items()}
    agent = make_agent(algo, gym.make("CartPole-v1"), seed=seed, log_every=steps, **hp)
    t0 = time.perf_counter()
    agent.learn(steps)
    wall = time.perf_counter() - t0
    res = evaluate(agent, gym.make("CartPole-v1"), 10, seed=10_000)
    print(json.dumps({"sps": agent.num_timesteps / wall, "wall": wall, "eval": res.mean}))
    """
)

if __name__ == "__main__":
    compare(__doc__.splitlines()[0], {"rlzoo": (sys.executable, RLZOO_RUN),
            "sb3": (peer_python("sb3", ["stable-baselines3", "sb3-contrib"]), SB3_RUN)}, PRESETS, 100_000)  # fmt: skip
