"""Many seeds in one process vs one process per seed: aggregate env steps/s on the same cores.

Side by side, alternating, through the command line as a user runs them:

- batch:  one ``python -m rlzoo.train algo=<algo> env=<env> n_seeds=16 torch_threads=<cores>`` process;
- single: ``<cores>`` processes ``python -m rlzoo.train algo=<algo> env=<env> seed=<k>`` (``torch_threads=1``, the CLI
  default) started together, each on its own core's share.

Each side's figure is its training throughput from ``summary.json`` (env steps over training wall time, evaluation
and process start excluded): the batch's ``batch_sps``; the singles' summed ``sps`` (they run at the same time). The
script prints every repeat and the median ratio batch / single.

    python benchmarks/seed_batch_throughput.py            # ppo, a2c, dqn on CartPole, ddpg, td3 on Pendulum, 3 repeats
    python benchmarks/seed_batch_throughput.py --algos ppo --repeats 5 --seeds 16
    python benchmarks/seed_batch_throughput.py --floor     # where the batch's time goes, and the ratio's ceiling

``--floor`` runs the batch side once under cProfile and splits its training time into time inside torch's C++
operators (the arithmetic: matrix products, activations, backward, optimizer) and the Python around them. Removing
all of that Python would speed the batch by training / torch time at most, so the best batch / single ratio any
implementation of the same computation could reach on this machine is the measured ratio times that factor.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

# algorithm → (env, single-seed budget, per-seed batch budget): about 10–30 s of training per side on a 2-core
# machine; the replay agents' the same on both sides (their first steps do not train)
BENCHES = {
    "ppo": ("cartpole", 40_000, 10_240),
    "a2c": ("cartpole", 100_000, 20_000),
    "reinforce": ("cartpole", 40_000, 10_000),
    "dqn": ("cartpole", 8_000, 8_000),
    "ddpg": ("pendulum", 6_000, 6_000),
    "td3": ("pendulum", 6_000, 6_000),
}


def train(overrides: list[str], run_dir: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "rlzoo.train", *overrides, f"hydra.run.dir={run_dir}", "checkpoint.every=0",
           "eval.episodes=1", "log.progress=false"]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait(processes: list[subprocess.Popen]) -> None:
    for p in processes:
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"a run failed ({p.returncode}): {err.strip().splitlines()[-1] if err else ''}")


def batch_side(algo: str, env: str, seeds: int, steps: int, cores: int, root: Path) -> float:
    run_dir = root / "batch"
    wait([train([f"algo={algo}", f"env={env}", f"n_seeds={seeds}", f"total_steps={steps}",
                 f"torch_threads={cores}"], run_dir)])  # fmt: skip
    return json.loads((run_dir / "seed0" / "summary.json").read_text())["batch_sps"]


def torch_seconds(profile: Path) -> float:
    """Seconds spent inside torch's C++ operators (``torch.*`` built-ins, tensor methods, the autograd engine)."""
    total = 0.0
    for (_, _, name), (_, _, tottime, _, _) in pstats.Stats(str(profile)).stats.items():
        if name.startswith(("<built-in method torch.", "<method 'run_backward'")) or "of 'torch._C." in name:
            total += tottime
    return total


def floor_side(algo: str, env: str, seeds: int, steps: int, cores: int, root: Path) -> tuple[float, float, float]:
    """One batch run under cProfile: its steps/s, training seconds and seconds inside torch operators."""
    run_dir, profile = root / "floor", root / "batch.prof"
    cmd = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "rlzoo.train", f"algo={algo}", f"env={env}",
           f"n_seeds={seeds}", f"total_steps={steps}", f"torch_threads={cores}", f"hydra.run.dir={run_dir}",
           "checkpoint.every=0", "eval.episodes=1", "log.progress=false"]  # fmt: skip
    wait([subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)])
    summary = json.loads((run_dir / "seed0" / "summary.json").read_text())
    return summary["batch_sps"], summary["wall_seconds"], torch_seconds(profile)


def single_side(algo: str, env: str, steps: int, cores: int, root: Path) -> float:
    dirs = [root / f"single{k}" for k in range(cores)]
    wait([train([f"algo={algo}", f"env={env}", f"seed={k}", f"total_steps={steps}"], d) for k, d in enumerate(dirs)])
    return sum(json.loads((d / "summary.json").read_text())["sps"] for d in dirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=list(BENCHES), choices=list(BENCHES))
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--floor", action="store_true", help="profile the batch side once (see above)")
    args = parser.parse_args()
    for algo in args.algos:
        env, single_steps, batch_steps = BENCHES[algo]
        if args.floor:
            with tempfile.TemporaryDirectory() as tmp:
                sps, wall, inside = floor_side(algo, env, args.seeds, batch_steps, args.cores, Path(tmp))
            print(f"{algo} on {env}: {args.seeds}-seed process {sps:.0f} steps/s (under cProfile), training "
                  f"{wall:.1f} s of which {inside:.1f} s ({inside / wall:.0%}) inside torch operators: without any "
                  f"Python around them the batch would be at most {wall / inside:.2f}x faster", flush=True)  # fmt: skip
            continue
        ratios = []
        for repeat in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp)
                order = ("batch", "single") if repeat % 2 == 0 else ("single", "batch")
                figures = {}
                for side in order:
                    if side == "batch":
                        figures[side] = batch_side(algo, env, args.seeds, batch_steps, args.cores, root)
                    else:
                        figures[side] = single_side(algo, env, single_steps, args.cores, root)
            ratios.append(figures["batch"] / figures["single"])
            print(f"{algo} on {env}, repeat {repeat}: {args.seeds}-seed process {figures['batch']:.0f} steps/s, "
                  f"{args.cores} single-seed processes {figures['single']:.0f} steps/s together: "
                  f"{ratios[-1]:.2f}x", flush=True)  # fmt: skip
        print(f"{algo} on {env}: median {statistics.median(ratios):.2f}x over {args.repeats} repeats", flush=True)


if __name__ == "__main__":
    main()
