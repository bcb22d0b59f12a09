"""SAC / TD3 on MuJoCo side by side: rlzoo vs Stable-Baselines3, same machine, runs alternating.

SB3 runs in ``.venvs/sb3`` (made on first use, with mujoco); rlzoo never imports it. One torch thread each, identical
hyper-parameters on both sides:

- SAC: stable-baselines3's SAC defaults (rlzoo's ``algo=sac`` defaults are the same): 256×256 ReLU actor and twin
  critics, batch 256, lr 3e-4, γ 0.99, τ 0.005, learned temperature from 1.0, target entropy −dim(A).
- TD3: rl-baselines3-zoo's MuJoCo entry: 400×300, lr 1e-3, batch 256, Gaussian noise 0.1, γ 0.99, policy delay 2,
  target noise 0.2 clipped at 0.5.

Throughput (one gradient step per env step from step 100 on): median steps/s over ``--repeats``.

    python benchmarks/peers/sb3_sac.py --preset sac-halfcheetah --steps 3000 --repeats 3
    python benchmarks/peers/sb3_sac.py --preset sac-hopper --steps 3000 --repeats 3
    python benchmarks/peers/sb3_sac.py --preset td3-halfcheetah --steps 3000 --repeats 3

Learning at rl-baselines3-zoo's settings (10k random steps first), final evaluation return (10 deterministic
episodes, seeds 10 000 + i) after ``--steps`` env steps, seeds 0..repeats−1:

    python benchmarks/peers/sb3_sac.py --preset sac-halfcheetah-zoo --steps 50000 --repeats 3
    python benchmarks/peers/sb3_sac.py --preset td3-halfcheetah-zoo --steps 50000 --repeats 3
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PEER_EVAL, compare, peer_python

SAC = {"learning_rate": 3e-4, "buffer_size": 1_000_000, "learning_starts": 100, "batch_size": 256, "tau": 0.005,
       "gamma": 0.99, "train_freq": 1, "gradient_steps": 1, "net_arch": [256, 256]}  # fmt: skip
TD3 = {**SAC, "learning_rate": 1e-3, "net_arch": [400, 300], "noise_std": 0.1}
PRESETS = {
    **{f"{algo}-{env.lower()}": {"algo": algo, "env": f"{env}-v5", "hp": hp}
       for algo, hp in (("sac", SAC), ("td3", TD3)) for env in ("HalfCheetah", "Hopper")},
    "sac-halfcheetah-zoo": {"algo": "sac", "env": "HalfCheetah-v5", "hp": {**SAC, "learning_starts": 10_000}},
    "td3-halfcheetah-zoo": {"algo": "td3", "env": "HalfCheetah-v5", "hp": {**TD3, "learning_starts": 10_000}},
}  # fmt: skip

SB3_RUN = PEER_EVAL + textwrap.dedent(
    """
    import json, sys, time
    import gymnasium as gym, numpy as np, torch
    from stable_baselines3 import SAC, TD3
    from stable_baselines3.common.noise import NormalActionNoise
    preset, steps, seed = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    env, hp = gym.make(preset["env"]), dict(preset["hp"])
    kwargs = {"policy_kwargs": {"net_arch": hp.pop("net_arch")}}
    if "noise_std" in hp:
        dim = env.action_space.shape[0]
        kwargs["action_noise"] = NormalActionNoise(np.zeros(dim), hp.pop("noise_std") * np.ones(dim))
    model = {"sac": SAC, "td3": TD3}[preset["algo"]]("MlpPolicy", env, seed=seed, verbose=0, **kwargs, **hp)
    t0 = time.perf_counter()
    model.learn(steps)
    wall = time.perf_counter() - t0
    score = peer_eval(preset["env"], lambda o: model.predict(o, deterministic=True)[0])
    print(json.dumps({"sps": model.num_timesteps / wall, "wall": wall, "eval": score}))
    """
)

RLZOO_RUN = textwrap.dedent(
    """
    import json, sys, time
    import gymnasium as gym, torch
    from rlzoo import make_agent
    from rlzoo.evaluate import evaluate
    preset, steps, seed = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)  # as `python -m rlzoo.train` does by default (torch_threads=1)
    hp = dict(preset["hp"])
    hp["hidden"] = hp.pop("net_arch")
    agent = make_agent(preset["algo"], gym.make(preset["env"]), seed=seed, log_every=steps, **hp)
    t0 = time.perf_counter()
    agent.learn(steps)
    wall = time.perf_counter() - t0
    score = evaluate(agent, gym.make(preset["env"]), 10, seed=10_000).mean  # PEER_EVAL's episodes and seeds
    print(json.dumps({"sps": agent.num_timesteps / wall, "wall": wall, "eval": score}))
    """
)

SB3_REQUIREMENTS = ["stable-baselines3", "sb3-contrib", "mujoco", "imageio", "packaging"]  # gymnasium's MuJoCo envs

if __name__ == "__main__":
    compare(__doc__.splitlines()[0], {"rlzoo": (sys.executable, RLZOO_RUN),
            "sb3": (peer_python("sb3", SB3_REQUIREMENTS), SB3_RUN)}, PRESETS, 3000)  # fmt: skip
