"""Value iteration on a large GridWorld, end to end through the command line (issue: 300×300 in under 10 s).

End to end is what a user waits for: ``python -m rlzoo.train algo=value_iteration env=gridworld …`` from process
start to exit — Hydra composition, building the env, planning to convergence, the initial and final evaluations,
``summary.json``, ``tables.npz`` and the picture. Each repeat runs in a fresh subprocess into its own temporary
``hydra.run.dir``; the script prints each wall time and their median.

    python benchmarks/large_gridworld.py                          # 300×300, 3 repeats, layout from a file
    python benchmarks/large_gridworld.py --repeats 5 --size 200
    python benchmarks/large_gridworld.py --layout-via override    # the rows as env.layout=[...] instead
    python benchmarks/large_gridworld.py --profile vi.prof        # one run under cProfile (top 25 printed)
    python benchmarks/large_gridworld.py --print-layout > maze.txt  # just the layout, one row a line

The layout is a deterministic maze of rooms: walls every ``ROOM`` cells with a door in each wall segment, 5 %
scattered forbidden cells, start top-left, target bottom-right. Forbidden cells are written ``F`` (``#`` starts a
comment in Hydra's override syntax).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOM = 10  # side of a room (walls included)


def maze_layout(size: int = 300, seed: int = 0) -> list[str]:
    """A ``size``×``size`` layout: rooms of ``ROOM`` cells separated by forbidden walls with one door per wall
    segment, 5 % scattered forbidden cells, ``S`` at the top-left and ``T`` at the bottom-right."""
    rng = np.random.default_rng(seed)
    grid = np.full((size, size), ".", dtype="<U1")
    grid[rng.random((size, size)) < 0.05] = "F"
    for w in range(ROOM - 1, size - 1, ROOM):  # a wall row and a wall column every ROOM cells
        grid[w, :] = "F"
        grid[:, w] = "F"
        for lo in range(0, size, ROOM):  # one door in each segment between two crossings
            hi = min(lo + ROOM - 1, size)
            grid[w, rng.integers(lo, hi)] = "."
            grid[rng.integers(lo, hi), w] = "."
    grid[0, 0] = "S"
    grid[size - 1, size - 1] = "T"
    return ["".join(row) for row in grid]


def command(layout_arg: str, run_dir: Path, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "rlzoo.train", "algo=value_iteration", "env=gridworld", layout_arg,
            f"hydra.run.dir={run_dir}", "log.progress=false", *extra]  # fmt: skip


def run_once(layout_arg: str, extra: list[str], profile: Path | None = None) -> float:
    """Wall seconds of one end-to-end run (a fresh process into a fresh run directory)."""
    with tempfile.TemporaryDirectory(prefix="rlzoo-large-gw-") as tmp:
        run_dir = Path(tmp) / "run"
        cmd = command(layout_arg, run_dir, extra)
        if profile is not None:
            cmd[1:3] = ["-m", "cProfile", "-o", str(profile), "-m", "rlzoo.train"]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HYDRA_FULL_ERROR": "1"})
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"run failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        for artefact in ("summary.json", "tables.npz", "values_policy.png"):
            if not (run_dir / artefact).exists():
                sys.exit(f"run finished without {artefact}")
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=300, help="rows = columns of the maze (default 300)")
    parser.add_argument("--repeats", "-n", type=int, default=3, help="runs to take the median of (default 3)")
    parser.add_argument("--layout-via", choices=("file", "override"), default="file",
                        help="env.layout_file=<path> (default) or the rows in env.layout=[...]")  # fmt: skip
    parser.add_argument("--profile", type=Path, metavar="OUT.prof",
                        help="run once under cProfile, write the stats there and print the top 25")  # fmt: skip
    parser.add_argument("--print-layout", action="store_true", help="print the layout, one row a line, and exit")
    parser.add_argument("overrides", nargs="*", help="more Hydra overrides, e.g. algo.gamma=0.95")
    args = parser.parse_args(argv)
    rows = maze_layout(args.size)
    if args.print_layout:
        print("\n".join(rows))
        return
    with tempfile.TemporaryDirectory(prefix="rlzoo-large-gw-layout-") as tmp:
        if args.layout_via == "file":
            path = Path(tmp) / f"maze{args.size}.txt"
            path.write_text("\n".join(rows) + "\n")
            layout_arg = f"env.layout_file={path}"
        else:
            layout_arg = f"env.layout=[{','.join(rows)}]"
        shown = layout_arg if len(layout_arg) < 120 else f"{layout_arg[:60]}…({len(layout_arg)} chars)"
        print("command:", " ".join(command(shown, Path("<tmp>/run"), args.overrides)))
        if args.profile is not None:
            seconds = run_once(layout_arg, args.overrides, args.profile)
            print(f"profiled run: {seconds:.2f} s (stats in {args.profile})")
            import pstats

            pstats.Stats(str(args.profile)).sort_stats("cumulative").print_stats(25)
            return
        times = []
        for i in range(args.repeats):
            times.append(run_once(layout_arg, args.overrides))
            print(f"run {i + 1}/{args.repeats}: {times[-1]:.2f} s", flush=True)
    print(f"{args.size}x{args.size} value iteration end to end: median {statistics.median(times):.2f} s "
          f"over {len(times)} runs (min {min(times):.2f}, max {max(times):.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
