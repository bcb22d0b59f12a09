"""One Markdown row per LLM run of a sweep directory and one per method (median over seeds): held-out first-reward
accuracy after the warm start and after RL, the gain, and the minutes end to end.

python benchmarks/summarize_llm_sweep.py multirun/<time>
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def method_of(run_dir: Path) -> str:
    """The experiment preset a run was started with (its Hydra overrides), else its algorithm."""
    overrides = (run_dir / ".hydra" / "overrides.yaml").read_text() if (run_dir / ".hydra").is_dir() else ""
    named = [line.split("experiment=", 1)[1].strip() for line in overrides.splitlines() if "experiment=" in line]
    return named[0] if named else json.loads((run_dir / "summary.json").read_text())["algo"]


def main(sweep_dir: str) -> None:
    runs = []
    for path in sorted(Path(sweep_dir).glob("*/summary.json")):
        s = json.loads(path.read_text())
        key = next(k for k in s if k.startswith("heldout_") and k.endswith("_after_warm_start"))
        first, final = s[key], s[key.replace("_after_warm_start", "_final")]
        minutes = (s["wall_seconds"] + s["eval_seconds"]) / 60
        runs.append((method_of(path.parent), s["seed"], 100 * first, 100 * final, 100 * (final - first), minutes))
    if not runs:
        sys.exit(f"no */summary.json under {sweep_dir}")
    print("| method | seed | after warm start | after RL | gain | minutes |\n|---|---|---|---|---|---|")
    for method, seed, first, final, gain, minutes in sorted(runs):
        print(f"| {method} | {seed} | {first:.1f} % | {final:.1f} % | {gain:+.1f} | {minutes:.1f} |")
    print("\n| method | seeds | median gain | gains | longest run (min) |\n|---|---|---|---|---|")
    for method in sorted({r[0] for r in runs}):
        mine = [r for r in runs if r[0] == method]
        gains = [r[4] for r in mine]
        print(f"| {method} | {len(mine)} | **{statistics.median(gains):+.1f}** | "
              f"{', '.join(f'{g:+.1f}' for g in gains)} | {max(r[5] for r in mine):.1f} |")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1])
