"""Print one Markdown row per run of a Hydra sweep directory (reads each run's summary.json).

python benchmarks/summarize_sweep.py multirun/<time>
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def main(sweep_dir: str) -> None:
    rows = [json.loads(p.read_text()) for p in sorted(Path(sweep_dir).glob("*/summary.json"))]
    if not rows:
        sys.exit(f"no */summary.json under {sweep_dir}")
    print("| algo | env | seed | steps | eval return | value_error | wall s | steps/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        err = f"{r['value_error']:.3g}" if "value_error" in r else "—"
        print(
            f"| {r['algo']} | {r['env']} | {r['seed']} | {r['steps']} | {r['eval_return_mean']:.1f} ± "
            f"{r['eval_return_std']:.1f} | {err} | {r['wall_seconds']:.1f} | {r['sps']:.0f} |"
        )
    groups: dict[tuple[str, str], list[float]] = {}
    for r in rows:
        groups.setdefault((r["algo"], r["env"]), []).append(r["eval_return_mean"])
    for (algo, env), rets in groups.items():
        print(f"\n{algo} on {env}: median eval return {statistics.median(rets):.1f} over {len(rets)} seeds: {rets}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "multirun")
