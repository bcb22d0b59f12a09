"""Fingerprint what short seeded runs of every algorithm produce, to show a refactor preserves behaviour.

For each algorithm on its default env (plus a few non-default envs that exercise other code paths), one
short seeded run through ``rlzoo.train.train``; recorded: a SHA-256 of every array in the final checkpoint's
agent state (weights, tables, optimiser moments, buffers) and every TensorBoard scalar except wall-clock
ones (``charts/SPS`` and throughput tags).

    python benchmarks/behaviour_fingerprint.py record out.json         # on one commit
    python benchmarks/behaviour_fingerprint.py compare old.json new.json

``compare`` lists, per run, the state arrays and scalar tags that differ, and the tags only one side has.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra import compose, initialize_config_module
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

# (label, overrides): every registered algorithm on its default env with a budget of a few log points
RUNS: list[tuple[str, list[str]]] = [
    ("value_iteration", ["algo=value_iteration", "total_steps=20"]),
    ("policy_iteration", ["algo=policy_iteration", "total_steps=10"]),
    ("truncated_policy_iteration", ["algo=truncated_policy_iteration", "total_steps=10"]),
    ("policy_evaluation", ["algo=policy_evaluation", "total_steps=10", "algo.method=iterative"]),
    ("mc_basic", ["algo=mc_basic", "total_steps=3000", "algo.log_every=500"]),
    ("mc_exploring_starts", ["algo=mc_exploring_starts", "total_steps=3000", "algo.log_every=500"]),
    ("mc_epsilon_greedy", ["algo=mc_epsilon_greedy", "total_steps=3000", "algo.log_every=500"]),
    ("td0", ["algo=td0", "total_steps=3000", "algo.log_every=500"]),
    ("sarsa", ["algo=sarsa", "total_steps=3000", "algo.log_every=500"]),
    ("sarsa_linear", ["algo=sarsa", "total_steps=3000", "algo.log_every=500", "algo.approximator=linear"]),
    ("expected_sarsa", ["algo=expected_sarsa", "total_steps=3000", "algo.log_every=500"]),
    ("nstep_sarsa", ["algo=nstep_sarsa", "total_steps=3000", "algo.log_every=500"]),
    ("qlearning", ["algo=qlearning", "total_steps=3000", "algo.log_every=500"]),
    ("td_linear", ["algo=td_linear", "total_steps=3000", "algo.log_every=500"]),
    ("dqn", ["algo=dqn", "total_steps=3000", "algo.learning_starts=500", "algo.log_every=500"]),
    (
        "dqn_gridworld",
        ["algo=dqn", "env=gridworld", "total_steps=3000", "algo.learning_starts=500", "algo.log_every=500"],
    ),
    ("reinforce", ["algo=reinforce", "total_steps=3000", "algo.log_every=500"]),
    ("reinforce_no_baseline", ["algo=reinforce", "total_steps=3000", "algo.log_every=500", "algo.baseline=false"]),
    ("qac", ["algo=qac", "total_steps=3000", "algo.log_every=500"]),
    ("a2c", ["algo=a2c", "total_steps=3000", "algo.log_every=500"]),
    ("a2c_gridworld", ["algo=a2c", "env=gridworld", "total_steps=3000", "algo.log_every=500"]),
    ("off_policy_ac", ["algo=off_policy_ac", "total_steps=3000", "algo.log_every=500"]),
    ("trpo", ["algo=trpo", "total_steps=3000", "algo.log_every=500"]),
    ("trpo_pendulum", ["algo=trpo", "env=pendulum", "total_steps=8192", "algo.log_every=500"]),
    ("ppo", ["algo=ppo", "total_steps=3000", "algo.log_every=500"]),
    (
        "ppo_normalized",
        ["algo=ppo", "total_steps=3000", "algo.log_every=500", "algo.normalize_obs=true", "algo.normalize_reward=true"],
    ),
    ("ppo_pendulum", ["algo=ppo", "env=pendulum", "total_steps=8192", "algo.log_every=500"]),
    ("ddpg", ["algo=ddpg", "total_steps=2000", "algo.learning_starts=500", "algo.log_every=500"]),
    ("td3", ["algo=td3", "total_steps=2000", "algo.learning_starts=500", "algo.log_every=500"]),
    ("sac", ["algo=sac", "total_steps=1500", "algo.learning_starts=500", "algo.log_every=500"]),
    (
        "ddpg_gridworld_continuous",
        ["algo=ddpg", "env=gridworld_continuous", "total_steps=2000", "algo.learning_starts=500", "algo.log_every=500"],
    ),
    (
        "grpo",
        [
            "algo=grpo",
            "total_steps=4",
            "algo.log_every=2",
            "algo.sft_steps=20",
            "algo.prompts_per_step=4",
            "algo.num_generations=4",
        ],
    ),
]
# wall-clock measurements differ between any two runs
UNTIMED = ("charts/SPS", "charts/generation_tokens_per_s", "charts/training_tokens_per_s")


def _arrays(obj: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """Every array, tensor and number in a nested state dict, by dotted key."""
    out: dict[str, np.ndarray] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_arrays(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_arrays(v, f"{prefix}[{i}]"))
    elif isinstance(obj, torch.Tensor):
        out[prefix] = obj.detach().cpu().numpy()
    elif isinstance(obj, (np.ndarray, np.generic)):
        out[prefix] = np.asarray(obj)
    elif isinstance(obj, (float, int, bool)):  # Python ints can exceed 64 bits (bit-generator states)
        out[prefix] = np.frombuffer(repr(obj).encode(), dtype=np.uint8)
    return out


def fingerprint(overrides: list[str], directory: Path) -> dict[str, Any]:
    """Run one config in ``directory``; hashes of its final state arrays and its scalar curves."""
    from rlzoo.checkpoint import load_checkpoint
    from rlzoo.train import resolve, train

    with initialize_config_module("rlzoo.conf", version_base="1.3"):
        cfg = compose("config", overrides=[*overrides, "log.progress=false", "checkpoint.every=0"])
    summary = train(resolve(cfg), directory)
    state = load_checkpoint(directory / "checkpoints" / "final.pt")["state"]
    arrays = {k: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()[:16] for k, v in _arrays(state).items()}
    acc = EventAccumulator(str(directory), size_guidance={"scalars": 0})
    acc.Reload()
    scalars = {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]
               if tag not in UNTIMED}  # fmt: skip
    return {"state": arrays, "scalars": scalars, "eval_return_mean": summary["eval_return_mean"]}


def record(out: Path, only: list[str]) -> None:
    results = {}
    for label, overrides in RUNS:
        if only and label not in only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            results[label] = fingerprint(overrides, Path(tmp) / "run")
        print(f"{label}: {len(results[label]['state'])} arrays, {len(results[label]['scalars'])} tags", flush=True)
    out.write_text(json.dumps(results, indent=1))


def compare(old_path: Path, new_path: Path) -> int:
    old, new = json.loads(old_path.read_text()), json.loads(new_path.read_text())
    differing = 0
    for label in old:
        if label not in new:
            print(f"{label}: missing from {new_path}")
            continue
        a, b = old[label], new[label]
        notes = []
        for kind in ("state", "scalars"):
            changed = sorted(k for k in set(a[kind]) & set(b[kind]) if a[kind][k] != b[kind][k])
            if changed:
                notes.append(f"{kind} differ: {', '.join(changed)}")
            if set(a[kind]) - set(b[kind]):
                notes.append(f"{kind} only before: {', '.join(sorted(set(a[kind]) - set(b[kind])))}")
            if set(b[kind]) - set(a[kind]):
                notes.append(f"{kind} only after: {', '.join(sorted(set(b[kind]) - set(a[kind])))}")
        same = not any("differ" in n for n in notes)
        differing += not same
        print(f"{label}: {'identical' if not notes else 'IDENTICAL where both have it' if same else 'DIFFERENT'}")
        for note in notes:
            print(f"    {note}")
    return differing


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "record":
        torch.set_num_threads(1)
        record(Path(sys.argv[2]), sys.argv[3:])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(1 if compare(Path(sys.argv[2]), Path(sys.argv[3])) else 0)
    else:
        sys.exit(__doc__)
