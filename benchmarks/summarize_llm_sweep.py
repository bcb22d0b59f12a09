"""One Markdown row per LLM run of a sweep directory and one per method (median over seeds). Arithmetic runs:
held-out first-reward accuracy after the warm start and after RL, and the gain; gridworld_text runs: the greedy
return as a share of the optimal v* (``fraction_of_optimal``). Both with the minutes end to end.

python benchmarks/summarize_llm_sweep.py multirun/<time>
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def method_of(run_dir: Path, summary: dict) -> str:
    """The experiment preset a run was started with (``experiment=`` among its Hydra overrides); with ``algo=`` and
    no experiment, the ``<algo>_<env>`` preset Hydra applies, else the algorithm."""
    path = run_dir / ".hydra" / "overrides.yaml"
    overrides = [line.lstrip("- ").strip() for line in path.read_text().splitlines()] if path.is_file() else []
    named = dict(o.split("=", 1) for o in overrides if o.split("=", 1)[0] in ("experiment", "algo"))
    if "algo" in named:
        return f"{summary['algo']}_{summary['env']}"
    return named.get("experiment", summary["algo"])


def main(sweep_dir: str) -> None:
    runs, paths = [], sorted(Path(sweep_dir).glob("*/summary.json"))
    for path in paths:
        s = json.loads(path.read_text())
        minutes = (s["wall_seconds"] + s["eval_seconds"]) / 60
        if "fraction_of_optimal" in s["heldout"]["final"]:  # gridworld_text: share of v*
            first, final = (s["heldout"][k]["fraction_of_optimal"] for k in ("after_warm_start", "final"))
        else:
            key = next(k for k in s if k.startswith("heldout_") and k.endswith("_after_warm_start"))
            first, final = s[key], s[key.replace("_after_warm_start", "_final")]
        runs.append((method_of(path.parent, s), s["seed"], 100 * first, 100 * final, 100 * (final - first), minutes))
    if not runs:
        sys.exit(f"no */summary.json under {sweep_dir}")
    print("| method | seed | after warm start | after RL | gain | minutes |\n|---|---|---|---|---|---|")
    for method, seed, first, final, gain, minutes in sorted(runs):
        print(f"| {method} | {seed} | {first:.1f} % | {final:.1f} % | {gain:+.1f} | {minutes:.1f} |")
    print("\n| method | seeds | median gain | gains | median after RL | longest run (min) |\n|---|---|---|---|---|---|")
    for method in sorted({r[0] for r in runs}):
        mine = [r for r in runs if r[0] == method]
        gains = [r[4] for r in mine]
        print(f"| {method} | {len(mine)} | **{statistics.median(gains):+.1f}** | "
              f"{', '.join(f'{g:+.1f}' for g in gains)} | {statistics.median(r[3] for r in mine):.1f} % | "
              f"{max(r[5] for r in mine):.1f} |")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1])
