"""Side-by-side runs of rlzoo and a peer library, alternating, each in its own interpreter.

A peer (Stable-Baselines3, sb3-contrib, CleanRL) lives in its own virtual environment under
``.venvs/<name>`` made on first use with the pinned CPU torch first; rlzoo never imports it. Each
run is a fresh process that prints one JSON line ``{"sps": …, "wall": …, "eval": …}``; runs
alternate (rlzoo, peer, rlzoo, peer, …) so machine load hits both alike, and the report is the
median steps/s of each and their ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# evaluation shared by the peer snippets: 10 deterministic episodes, reset seeds 10_000 + i
PEER_EVAL = """
def peer_eval(env_id, predict, episodes=10):
    import gymnasium as gym, numpy as np
    env, rets = gym.make(env_id), []
    for i in range(episodes):
        obs, _ = env.reset(seed=10_000 + i); done, total = False, 0.0
        while not done:
            obs, r, term, trunc, _ = env.step(predict(obs)); total += float(r); done = term or trunc
        rets.append(total)
    return float(np.mean(rets))
"""


def peer_python(name: str, requirements: list[str]) -> Path:
    """The interpreter of ``.venvs/<name>``, created with ``torch==2.13.0``, with ``requirements`` installed."""
    py = ROOT / ".venvs" / name / "bin" / "python"
    if not py.exists():
        venv.create(py.parents[1], with_pip=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "torch==2.13.0"], check=True)
    # also when the venv exists: a later script may need more of it (MuJoCo); a no-op when all are there
    subprocess.run([str(py), "-m", "pip", "install", "-q", *requirements], check=True)
    return py


def run(python: str | Path, code: str, hp: dict, steps: int, seed: int) -> dict:
    """Run ``code`` with argv (hyper-parameters JSON, steps, seed); its last stdout line is the result."""
    out = subprocess.run([str(python), "-c", code, json.dumps(hp), str(steps), str(seed)], capture_output=True,
                         text=True, check=True, cwd=ROOT)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(description: str, contenders: dict[str, tuple[str | Path, str]], presets: dict[str, dict],
            default_steps: int) -> dict:  # fmt: skip
    """Command-line driver: alternate the contenders' runs and report median steps/s and ratios to the first."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--preset", choices=sorted(presets), default=next(iter(presets)))
    parser.add_argument("--steps", type=int, default=default_steps)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here too")
    args = parser.parse_args()
    results: dict[str, list[dict]] = {name: [] for name in contenders}
    for rep in range(args.repeats):
        for name, (python, code) in contenders.items():
            res = run(python, code, dict(presets[args.preset]), args.steps, seed=rep)
            results[name].append(res)
            extra = "".join(f"  {k} {v:.1f}" for k, v in res.items() if k not in ("sps", "eval", "wall") and
                            isinstance(v, (int, float)))  # fmt: skip
            print(f"repeat {rep} {name:8s}: {res['sps']:8.0f} steps/s  eval {res['eval']:.1f}{extra}", flush=True)
    medians = {name: median_metrics(runs) for name, runs in results.items()}
    med = {k: m["sps"] for k, m in medians.items()}
    ours = next(iter(contenders))
    ratios = {f"{ours}/{k}": med[ours] / med[k] for k in med if k != ours}
    for key in sorted(set(medians[ours]) - {"sps", "eval"}):  # times: ours / peer, lower is better
        ratios.update({f"{key} {ours}/{k}": medians[ours][key] / medians[k][key] for k in medians
                       if k != ours and medians[k].get(key)})  # fmt: skip
    report = {"preset": args.preset, "steps": args.steps, "repeats": args.repeats, "median_sps": med,
              "medians": medians, "ratios": ratios, "python": sys.version.split()[0], "runs": results}  # fmt: skip
    print(json.dumps({k: report[k] for k in ("preset", "steps", "median_sps", "medians", "ratios")}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))
    return report


def median_metrics(runs: list[dict]) -> dict[str, float]:
    """Median of every numeric metric over runs; a missing value (e.g. a threshold never reached) counts as +inf."""
    keys = {k for r in runs for k, v in r.items() if isinstance(v, (int, float)) or v is None}
    return {k: statistics.median(float("inf") if r.get(k) is None else float(r[k]) for r in runs) for k in keys}
