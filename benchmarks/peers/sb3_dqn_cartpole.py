"""DQN throughput side by side: rlzoo vs Stable-Baselines3, same hyper-parameters, same machine.

Stable-Baselines3 runs in its own virtual environment (``.venvs/sb3``, created on first use with
``pip install torch==2.13.0 stable-baselines3``); rlzoo never imports it. Runs alternate
(rlzoo, SB3, rlzoo, SB3, …) so that machine load hits both alike; the report is the median
steps/s over ``--repeats`` runs each and their ratio, plus each run's final evaluation return.

    python benchmarks/peers/sb3_dqn_cartpole.py --preset default --steps 20000 --repeats 3
    python benchmarks/peers/sb3_dqn_cartpole.py --preset tuned --steps 50000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venvs" / "sb3"

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

SB3_RUN = textwrap.dedent(
    """
    import json, sys, time
    import gymnasium as gym, numpy as np, torch
    from stable_baselines3 import DQN
    hp, steps, seed = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    net = hp.pop("net_arch")
    model = DQN("MlpPolicy", gym.make("CartPole-v1"), policy_kwargs={"net_arch": net}, seed=seed, verbose=0, **hp)
    t0 = time.perf_counter()
    model.learn(steps)
    wall = time.perf_counter() - t0
    env, rets = gym.make("CartPole-v1"), []
    for i in range(10):
        obs, _ = env.reset(seed=10_000 + i); done, total = False, 0.0
        while not done:
            obs, r, term, trunc, _ = env.step(int(model.predict(obs, deterministic=True)[0])); total += r
            done = term or trunc
        rets.append(total)
    print(json.dumps({"sps": steps / wall, "wall": wall, "eval": float(np.mean(rets))}))
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


def sb3_python() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        venv.create(VENV, with_pip=True)
        for req in (["torch==2.13.0"], ["stable-baselines3"]):
            subprocess.run([str(py), "-m", "pip", "install", "-q", *req], check=True)
    return py


def run(python: str, code: str, hp: dict, steps: int, seed: int) -> dict:
    out = subprocess.run([python, "-c", code, json.dumps(hp), str(steps), str(seed)], capture_output=True,
                         text=True, check=True, cwd=ROOT)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here too")
    args = parser.parse_args()
    sb3 = str(sb3_python())
    results: dict[str, list[dict]] = {"rlzoo": [], "sb3": []}
    for rep in range(args.repeats):
        for name, python, code in (("rlzoo", sys.executable, RLZOO_RUN), ("sb3", sb3, SB3_RUN)):
            res = run(python, code, dict(PRESETS[args.preset]), args.steps, seed=rep)
            results[name].append(res)
            print(f"repeat {rep} {name:5s}: {res['sps']:8.0f} steps/s  eval {res['eval']:.1f}", flush=True)
    med = {k: statistics.median(r["sps"] for r in v) for k, v in results.items()}
    report = {"preset": args.preset, "steps": args.steps, "repeats": args.repeats, "median_sps": med,
              "ratio_rlzoo_over_sb3": med["rlzoo"] / med["sb3"], "runs": results}  # fmt: skip
    print(json.dumps({k: report[k] for k in ("preset", "steps", "median_sps", "ratio_rlzoo_over_sb3")}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
