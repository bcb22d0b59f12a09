"""DDPG / TD3 on Pendulum-v1 side by side: rlzoo vs Stable-Baselines3, same machine, runs alternating.

SB3 runs in ``.venvs/sb3`` (made on first use); rlzoo never imports it. One torch thread each.

Throughput at identical hyper-parameters (400×300 ReLU actor and critic, batch 256, one gradient step
per env step, Gaussian noise 0.1, γ 0.98, 100 random steps first): median steps/s over ``--repeats``.

    python benchmarks/peers/sb3_ddpg.py --preset ddpg-400x300 --steps 3000 --repeats 3
    python benchmarks/peers/sb3_ddpg.py --preset td3-400x300 --steps 3000 --repeats 3

Wall-clock to a mean evaluation return of −200 (10 deterministic episodes every 1000 env steps,
training time only — evaluation is off the clock — and the run stops at the first hit; budget
``--steps``): SB3 DDPG with rl-baselines3-zoo's tuned Pendulum-v1 settings against rlzoo's best
preset (its ``algo=ddpg`` / ``algo=td3`` defaults), seeds 0..repeats−1, median over seeds.

    python benchmarks/peers/sb3_ddpg.py --preset race-ddpg --steps 20000 --repeats 5
    python benchmarks/peers/sb3_ddpg.py --preset race-td3 --steps 20000 --repeats 5
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PEER_EVAL, compare, peer_python

SAME = {"gamma": 0.98, "learning_rate": 1e-3, "buffer_size": 200_000, "learning_starts": 100, "batch_size": 256,
        "tau": 0.005, "train_freq": 1, "gradient_steps": 1, "noise_std": 0.1, "net_arch": [400, 300]}  # fmt: skip
# rl-baselines3-zoo hyperparams/ddpg.yml and td3.yml, Pendulum-v1 (identical for the two algorithms)
ZOO = {**SAME, "learning_starts": 10_000}
PRESETS = {
    "ddpg-400x300": {"algo": "ddpg", "sb3": SAME, "rlzoo": SAME},
    "td3-400x300": {"algo": "td3", "sb3": SAME, "rlzoo": SAME},
    "race-ddpg": {"algo": "ddpg", "race": -200.0, "sb3": ZOO, "rlzoo": {}},
    "race-td3": {"algo": "td3", "race": -200.0, "sb3": ZOO, "rlzoo": {}},
}

SB3_RUN = PEER_EVAL + textwrap.dedent(
    """
    import json, sys, time
    import gymnasium as gym, numpy as np, torch
    from stable_baselines3 import DDPG, TD3
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.noise import NormalActionNoise
    preset, steps, seed = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    hp, race = dict(preset["sb3"]), preset.get("race")
    noise = NormalActionNoise(np.zeros(1), hp.pop("noise_std") * np.ones(1))
    policy_kwargs = {"net_arch": hp.pop("net_arch")}
    algo = {"ddpg": DDPG, "td3": TD3}[preset["algo"]]
    model = algo("MlpPolicy", gym.make("Pendulum-v1"), action_noise=noise, policy_kwargs=policy_kwargs, seed=seed,
                 verbose=0, **hp)
    predict = lambda o: model.predict(o, deterministic=True)[0]

    class Race(BaseCallback):  # evaluate every 1000 steps off the clock; stop at the first hit
        def __init__(self):
            super().__init__()
            self.off, self.hit, self.hit_step = 0.0, None, None
        def _on_step(self):
            if race is None or self.num_timesteps % 1000:
                return True
            t = time.perf_counter()
            trained = t - t0 - self.off
            ret = peer_eval("Pendulum-v1", predict)
            self.off += time.perf_counter() - t
            if ret >= race:
                self.hit, self.hit_step = trained, self.num_timesteps
                return False
            return True

    cb = Race()
    t0 = time.perf_counter()
    model.learn(steps, callback=cb)
    wall = time.perf_counter() - t0 - cb.off
    out = {"sps": model.num_timesteps / wall, "wall": wall, "eval": peer_eval("Pendulum-v1", predict)}
    if race is not None:
        out.update(time_to=cb.hit, steps_to=cb.hit_step)
    print(json.dumps(out))
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
    hp, race = dict(preset["rlzoo"]), preset.get("race")
    if "net_arch" in hp:
        hp["hidden"] = hp.pop("net_arch")
    agent = make_agent(preset["algo"], gym.make("Pendulum-v1"), seed=seed, log_every=steps, **hp)
    evaluate_env = gym.make("Pendulum-v1")
    score = lambda: evaluate(agent, evaluate_env, 10, seed=10_000).mean  # PEER_EVAL's episodes and seeds
    wall, hit, hit_step = 0.0, None, None
    chunk = 1000 if race is not None else steps
    for t in range(chunk, steps + 1, chunk):
        t0 = time.perf_counter()
        agent.learn(t)  # learn() continues where it stopped; evaluation between chunks is off the clock
        wall += time.perf_counter() - t0
        if race is not None and score() >= race:
            hit, hit_step = wall, t
            break
    out = {"sps": agent.num_timesteps / wall, "wall": wall, "eval": score()}
    if race is not None:
        out.update(time_to=hit, steps_to=hit_step)
    print(json.dumps(out))
    """
)

if __name__ == "__main__":
    compare(__doc__.splitlines()[0], {"rlzoo": (sys.executable, RLZOO_RUN),
            "sb3": (peer_python("sb3", ["stable-baselines3", "sb3-contrib"]), SB3_RUN)}, PRESETS, 3000)  # fmt: skip
