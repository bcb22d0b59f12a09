"""PPO on MuJoCo side by side: rlzoo vs Stable-Baselines3, rl-baselines3-zoo's tuned settings on both sides.

SB3 runs in ``.venvs/sb3`` (made on first use, with mujoco); rlzoo never imports it. rlzoo reads its settings from
``conf/experiment/ppo_<env>.yaml`` (rl-baselines3-zoo's ``hyperparams/ppo.yml`` entry); SB3 gets the same entry in
its own names: VecNormalize on observations and rewards (γ of the entry), constant learning rate and clip range,
and the entry's policy_kwargs. One torch thread each; runs alternate; median steps/s over ``--repeats``, and each
run's evaluation (10 deterministic episodes, observations normalised with the run's own statistics). Each side's
clock starts after its first rollout and update, so that ``<env>-compiled`` (rlzoo with ``compile=true``: its
minibatch loss and acting step through ``torch.compile``) does not count the one-off compilation; SB3 is timed the
same way.

    python benchmarks/peers/sb3_mujoco_ppo.py --preset halfcheetah --steps 20000 --repeats 3
    python benchmarks/peers/sb3_mujoco_ppo.py --preset halfcheetah-compiled --steps 20000 --repeats 3
    python benchmarks/peers/sb3_mujoco_ppo.py --preset hopper --steps 20000 --repeats 3
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, compare, peer_python
from sb3_sac import SB3_REQUIREMENTS

ENVS = {"halfcheetah": "HalfCheetah-v5", "hopper": "Hopper-v5", "walker2d": "Walker2d-v5"}
PRESETS = {name: {"env": env_id, "algo": yaml.safe_load((ROOT / "conf" / "experiment" / f"ppo_{name}.yaml").read_text())
                  ["algo"]} for name, env_id in ENVS.items()}  # fmt: skip
PRESETS.update({f"{name}-compiled": {**preset, "compile": True} for name, preset in list(PRESETS.items())})

SB3_RUN = textwrap.dedent(
    """
    import json, sys, time
    import gymnasium as gym, numpy as np, torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize
    preset, steps, seed = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    hp = preset["algo"]
    venv = VecNormalize(make_vec_env(preset["env"], n_envs=hp["n_envs"], seed=seed), gamma=hp["gamma"])
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[hp["activation"]]
    width = hp["hidden"]
    policy_kwargs = dict(log_std_init=hp["log_std_init"], ortho_init=hp["ortho_init"], activation_fn=act,
                         net_arch=dict(pi=width, vf=width))
    keys = ("n_steps", "batch_size", "n_epochs", "gamma", "gae_lambda", "learning_rate", "ent_coef", "clip_range",
            "max_grad_norm", "vf_coef")
    model = PPO("MlpPolicy", venv, policy_kwargs=policy_kwargs, seed=seed, verbose=0, **{k: hp[k] for k in keys})
    first = hp["n_steps"] * hp["n_envs"]
    model.learn(first)  # the first rollout and update, not timed (as on rlzoo's side)
    t0 = time.perf_counter()
    model.learn(steps - first, reset_num_timesteps=False)
    wall = time.perf_counter() - t0
    env, rets = gym.make(preset["env"]), []
    for i in range(10):
        obs, _ = env.reset(seed=10_000 + i); done, total = False, 0.0
        while not done:
            a = model.predict(venv.normalize_obs(obs), deterministic=True)[0]
            obs, r, term, trunc, _ = env.step(a); total += float(r); done = term or trunc
        rets.append(total)
    print(json.dumps({"sps": (model.num_timesteps - first) / wall, "wall": wall, "eval": float(np.mean(rets))}))
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
    agent = make_agent("ppo", gym.make(preset["env"]), seed=seed, log_every=steps, **preset["algo"])
    if preset.get("compile"):
        agent.compile()
    first = preset["algo"]["n_steps"] * preset["algo"]["n_envs"]
    agent.learn(first)  # the first rollout and update (with compile: the compilation), not timed
    t0 = time.perf_counter()
    agent.learn(steps)
    wall = time.perf_counter() - t0
    score = evaluate(agent, gym.make(preset["env"]), 10, seed=10_000).mean
    print(json.dumps({"sps": (agent.num_timesteps - first) / wall, "wall": wall, "eval": score}))
    """
)

if __name__ == "__main__":
    compare(__doc__.splitlines()[0], {"rlzoo": (sys.executable, RLZOO_RUN),
            "sb3": (peer_python("sb3", SB3_REQUIREMENTS), SB3_RUN)}, PRESETS, 20_000)  # fmt: skip
