"""Device checks and GPU figures for a lent GPU machine (CI has none; the tests run everything on the CPU).

Every deep agent trains a few steps on ``--device`` with its networks there, saves, loads onto the CPU and back
onto the device and trains on; then the figures issue 19 asks for where a GPU is lent: SAC's steps/s with
``compile=true`` against eager, and PPO's on CartPole, on the device. One process, a few minutes; exit code 1 when
a check fails (each failure printed on its own line).

    python benchmarks/gpu_checks.py                    # on the GPU machine
    python benchmarks/gpu_checks.py --device cpu --quick   # the same checks on the CPU (what this script runs)
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

import gymnasium as gym
import torch

import rlzoo
from rlzoo.agents import Agent

DEEP = {  # algorithm → (env, its smallest options, steps)
    "dqn": ("CartPole-v1", {"learning_starts": 50, "batch_size": 32}, 200),
    "ppo": ("Pendulum-v1", {"n_envs": 2, "n_steps": 32, "batch_size": 32, "n_epochs": 2, "use_sde": True}, 128),
    "a2c": ("CartPole-v1", {"n_envs": 2, "n_steps": 8}, 64),
    "reinforce": ("CartPole-v1", {"n_envs": 2, "n_steps": 16}, 64),
    "trpo": ("Pendulum-v1", {"n_envs": 2, "n_steps": 32}, 128),
    "qac": ("CartPole-v1", {"n_envs": 2}, 64),
    "off_policy_ac": ("CartPole-v1", {"n_envs": 2}, 64),
    "ddpg": ("Pendulum-v1", {"learning_starts": 50, "batch_size": 32}, 200),
    "td3": ("Pendulum-v1", {"learning_starts": 50, "batch_size": 32}, 200),
    "sac": ("Pendulum-v1", {"learning_starts": 50, "batch_size": 32}, 200),
}


def parameters_on(agent: Agent, device: torch.device) -> bool:
    return all(p.device.type == device.type for net in agent.networks() for p in net.parameters())


def check_agent(algo: str, device: str, directory: Path) -> None:
    """Train on ``device``, save, load on the CPU and on the device, train on each."""
    env_id, options, steps = DEEP[algo]
    agent = rlzoo.make_agent(algo, gym.make(env_id), seed=0, device=device, **options).learn(steps)
    assert parameters_on(agent, agent.device), f"{algo}: networks not on {agent.device}"
    path = agent.save(directory / f"{algo}.pt")
    for target in ("cpu", device):
        loaded = Agent.load(path, gym.make(env_id), device=target)
        assert parameters_on(loaded, loaded.device), f"{algo}: loaded networks not on {loaded.device}"
        loaded.learn(steps // 2)


def check_language_model(device: str, directory: Path) -> None:
    """GRPO on arithmetic with a tiny TinyGPT: a step on the device, a checkpoint onto the CPU and back."""
    env = gym.make("rlzoo/TextTask-v0", task="arithmetic")
    options = {"model": {"n_layer": 1, "d_model": 32, "n_head": 2}, "num_generations": 4, "prompts_per_step": 2,
               "sft_steps": 2, "log_every": 10**9}  # fmt: skip
    agent = rlzoo.make_agent("grpo", env, seed=0, device=device, **options).learn(2)
    assert all(p.device.type == agent.device.type for p in agent.model.parameters())
    path = agent.save(directory / "grpo.pt")
    for target in ("cpu", device):
        Agent.load(path, gym.make("rlzoo/TextTask-v0", task="arithmetic"), device=target).learn(3)


def steps_per_second(algo: str, env_id: str, device: str, steps: int, compiled: bool, **options) -> float:
    agent = rlzoo.make_agent(algo, gym.make(env_id), seed=0, device=device, **options)
    if compiled:
        agent.compile()
    warm = options.get("learning_starts", 0) + 1024  # compilation, CUDA graph capture, first rollouts off the clock
    agent.learn(warm)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    agent.learn(warm + steps)
    if device == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--quick", action="store_true", help="checks only, no timings")
    args = parser.parse_args(argv)
    failures, figures = [], {"device": torch.cuda.get_device_name() if args.device == "cuda" else "cpu"}
    checks = {**{algo: functools.partial(check_agent, algo) for algo in DEEP}, "grpo": check_language_model}
    with tempfile.TemporaryDirectory() as tmp:
        for name, check in checks.items():
            try:
                check(args.device, Path(tmp))
                print(f"ok   {name}", flush=True)
            except Exception:  # every failure is reported, then the next check runs
                failures.append(name)
                print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)
    if not args.quick:
        sac = {"hidden": [256, 256], "batch_size": 256, "learning_starts": 1000}
        for compiled in (False, True):
            key = f"sac_halfcheetah_steps_per_s_{'compiled' if compiled else 'eager'}"
            figures[key] = steps_per_second("sac", "HalfCheetah-v5", args.device, 3000, compiled, **sac)
            print(key, round(figures[key], 1), flush=True)
        figures["ppo_cartpole_steps_per_s"] = steps_per_second("ppo", "CartPole-v1", args.device, 20_000, False)
        print(json.dumps(figures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
