"""Benchmark report of a Hydra sweep directory: a Markdown table and learning-curve plots.

    python -m rlzoo.benchmark report multirun/<time> [--out DIR]

Reads every run's ``summary.json`` (or ``failed.json``) and TensorBoard events and writes into the sweep
directory (or ``--out``):

- ``report.md``: per env × algo, the final evaluation return as the interquartile mean (IQM) over seeds with
  a 95 % percentile-bootstrap confidence interval (Agarwal et al., 2021, "Deep RL at the edge of the
  statistical precipice"), the env steps at which periodic evaluation first reached the env's threshold,
  wall seconds and steps/s (medians over seeds; the seeds of a seed batch, "batched", share one training and report
  its wall seconds and aggregate steps/s), and on GridWorld the final ‖v − v*‖∞ and, for learners with a critic,
  ‖v̂ − v_π‖∞ (the critic against the exact value of the run's own policy, ``critic_error``);
- beside it, for envs with published results (MuJoCo), rlzoo's return next to rl-baselines3-zoo's and CleanRL's
  (``rlzoo.published``);
- ``curves_<env>.png``: ``eval/return_mean`` against env steps, IQM line and 95 % CI band, one line per algo;
- ``gridworld_value_error.png``: ``truth/value_error`` against env steps for every algorithm on the GridWorld.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import trim_mean

from rlzoo.published import SOURCES, published

THRESHOLDS: dict[str, float] = {"CartPole-v1": 475.0, "Pendulum-v1": -200.0}
CURVE_TAG, TRUTH_TAG = "eval/return_mean", "truth/value_error"


@dataclass
class Run:
    """One run of the sweep: its summary (None if it failed) and the curves read from TensorBoard."""

    path: Path
    algo: str
    env: str
    seed: int
    summary: dict[str, Any] | None
    error: str | None = None
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def load_runs(sweep_dir: str | Path) -> list[Run]:
    """Every run directory under ``sweep_dir`` that finished (``summary.json``) or failed (``failed.json``, or a
    ``summary.json`` that cannot be read: listed as failed). Runs of one algorithm and env trained with different
    configs are told apart (``label_configs``), never pooled as seeds of one."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = []
    for run_dir in run_directories(sweep_dir):
        summary_file, failed_file = run_dir / "summary.json", run_dir / "failed.json"
        if summary_file.exists():
            try:
                s = json.loads(summary_file.read_text())
                run = Run(run_dir, str(s["algo"]), str(s["env"]), int(s["seed"]), s)
                float(s["eval_return_mean"]), int(s["total_steps"])  # the fields the report reads
            except (ValueError, KeyError, TypeError) as err:
                cfg = _hydra_choices(run_dir)
                error = f"unreadable summary.json ({type(err).__name__}: {err})"
                runs.append(Run(run_dir, cfg.get("algo", "?"), cfg.get("env", "?"), -1, None, error))
                continue
            acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
            acc.Reload()
            for tag in (CURVE_TAG, TRUTH_TAG):
                if tag in acc.Tags()["scalars"]:
                    events = acc.Scalars(tag)
                    run.curves[tag] = (np.array([e.step for e in events]), np.array([e.value for e in events]))
            runs.append(run)
        elif failed_file.exists():
            cfg = _hydra_choices(run_dir)
            runs.append(Run(run_dir, cfg.get("algo", "?"), cfg.get("env", "?"), -1, None,
                            json.loads(failed_file.read_text())["error"]))  # fmt: skip
    label_configs(runs)
    return runs


def run_directories(sweep_dir: str | Path) -> list[Path]:
    """The sweep's run directories: each job's own, or, for a job that trained several seeds (``n_seeds``,
    ``trial_seeds``) and did not fail as a whole, its ``seed<k>/`` directories."""
    out = []
    for job in sorted(p for p in Path(sweep_dir).iterdir() if p.is_dir()):
        seeds = sorted(p for p in job.glob("seed*") if p.is_dir() and p.name[4:].isdigit())
        if seeds and not (job / "summary.json").exists() and not (job / "failed.json").exists():
            out += sorted(seeds, key=lambda p: int(p.name[4:]))
        else:
            out.append(job)
    return out


def run_config(run: Run) -> dict[str, Any]:
    """What a finished run trained besides its seed: budget, ``algo.*`` and (from ``run.json``) ``env.*``."""
    config: dict[str, Any] = {"total_steps": run.summary["total_steps"]}
    config.update({f"algo.{k}": v for k, v in run.summary.get("algo_config", {}).items()})
    record = run.path / "run.json"
    if record.exists():
        config.update({f"env.{k}": v for k, v in json.loads(record.read_text()).get("env", {}).items()})
    return config


def label_configs(runs: list[Run]) -> None:
    """Where finished runs of one (env, algo) differ in config, append the differing keys to their ``algo``
    label (e.g. ``ppo (algo.learning_rate=0.001)``), so each config gets its own row and curve."""
    groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for run in runs:
        if run.summary is not None:
            groups[(run.env, run.algo)].append(run)
    for group in groups.values():
        configs = [run_config(run) for run in group]
        keys = sorted(
            {k for c in configs for k in c if len({json.dumps(d.get(k), sort_keys=True) for d in configs}) > 1}
        )
        for run, config in zip(group, configs, strict=True):
            if keys:
                run.algo += " (" + ", ".join(f"{k}={config.get(k)}" for k in keys) + ")"


def _hydra_choices(run_dir: Path) -> dict[str, str]:
    from omegaconf import OmegaConf

    hydra_file = run_dir / ".hydra" / "hydra.yaml"
    if not hydra_file.exists():  # a seed of a job that trained several: the job's record
        hydra_file = run_dir.parent / ".hydra" / "hydra.yaml"
    if not hydra_file.exists():
        return {}
    return dict(OmegaConf.load(hydra_file).hydra.runtime.choices)


def iqm(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50 % (25 % trimmed from each end)."""
    return trim_mean(values, 0.25, axis=axis)


def bootstrap_ci(values: np.ndarray, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """Percentile-bootstrap CI of the IQM over runs (axis 0 of ``values``, any trailing shape): (2, …)."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(resamples, len(values)))
    stats = iqm(values[idx], axis=1)
    alpha = (1.0 - level) / 2.0
    return np.quantile(stats, [alpha, 1.0 - alpha], axis=0)


def first_step_reaching(steps: np.ndarray, values: np.ndarray, threshold: float) -> int | None:
    """The first logged step whose value is ≥ ``threshold``, or None."""
    hit = np.flatnonzero(values >= threshold)
    return int(steps[hit[0]]) if hit.size else None


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def _iqm_of(runs: list[Run], key: str) -> str:
    """The IQM over ``runs`` of ``summary[key]`` (of the runs that report it), or "—" when none does."""
    values = [r.summary[key] for r in runs if key in r.summary]
    return _fmt(float(iqm(np.array(values)))) if values else "—"


def table(runs: list[Run]) -> str:
    """The Markdown table, one row per env × algo."""
    groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run.env, run.algo)].append(run)
    header = ("env", "algo", "seeds", "budget (steps)", "final eval return, IQM [95 % CI]",
              "steps to threshold (median; reached)", "‖v − v*‖∞ IQM", "‖v̂ − v_π‖∞ IQM", "wall s",
              "steps/s")  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (env, algo), group in sorted(groups.items()):
        ok = [r for r in group if r.summary is not None]
        failed = len(group) - len(ok)
        if not ok:
            lines.append(f"| {env} | {algo} | 0 ({failed} failed) |" + " — |" * (len(header) - 3))
            continue
        s0 = ok[0].summary
        returns = np.array([r.summary["eval_return_mean"] for r in ok])
        lo, hi = bootstrap_ci(returns)
        threshold = THRESHOLDS.get(s0["env_id"])
        reach = "—"
        if threshold is not None:
            hits = [first_step_reaching(*r.curves[CURVE_TAG], threshold) for r in ok if CURVE_TAG in r.curves]
            reached = [h for h in hits if h is not None]
            median = f"{np.median(reached):,.0f}" if len(reached) * 2 > len(ok) else "not reached"
            reach = f"{median} ({len(reached)}/{len(ok)} ≥ {threshold:g})"
        err, critic_err = (_iqm_of(ok, key) for key in ("value_error", "critic_error"))
        seeds = f"{len(ok)}" + (f" ({failed} failed)" if failed else "") + (" batched" if "n_seeds" in s0 else "")
        wall = np.median([r.summary["wall_seconds"] for r in ok])
        sps = np.median([r.summary.get("batch_sps", r.summary["sps"]) for r in ok])
        lines.append(f"| {env} | {algo} | {seeds} | {s0['total_steps']:,} | {_fmt(float(iqm(returns)))} "
                     f"[{_fmt(lo)}, {_fmt(hi)}] | {reach} | {err} | {critic_err} | {wall:.1f} | "
                     f"{sps:,.0f} |")  # fmt: skip
    return "\n".join(lines)


def published_table(runs: list[Run]) -> str | None:
    """rlzoo's final return beside the published ones (``rlzoo.published``) for every env × algo that has one, or
    None when no run of the sweep has a published counterpart (the classic sweep)."""
    groups: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for run in runs:
        if run.summary is not None and published(run.summary["env_id"], run.summary["algo"]):
            groups[(run.env, run.algo)].append(run)
    if not groups:
        return None
    header = ("env", "algo", "rlzoo: final eval return, IQM [95 % CI] (seeds, steps)",
              *(f"{source}: mean ± std (env version, steps)" for source in SOURCES))  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (env, algo), group in sorted(groups.items()):
        s0 = group[0].summary
        returns = np.array([r.summary["eval_return_mean"] for r in group])
        lo, hi = bootstrap_ci(returns)
        ours = f"{_fmt(float(iqm(returns)))} [{_fmt(lo)}, {_fmt(hi)}] ({len(group)}, {s0['total_steps']:,})"
        theirs = published(s0["env_id"], s0["algo"])
        cells = [f"{_fmt(p.mean)} ± {_fmt(p.std)} ({p.version}, {p.steps:,})" if (p := theirs.get(source)) else "—"
                 for source in SOURCES]  # fmt: skip
        lines.append(f"| {env} | {algo} | {ours} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _curve_band(curves: list[tuple[np.ndarray, np.ndarray]], grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each run's curve interpolated onto ``grid``; returns the IQM and the (2, len(grid)) CI."""
    values = np.array([np.interp(grid, steps, vals) for steps, vals in curves])
    return iqm(values), bootstrap_ci(values)


def plot_curves(runs: list[Run], out_dir: Path) -> list[Path]:
    """``curves_<env>.png`` for every env: IQM and 95 % CI of ``eval/return_mean`` vs env steps per algo."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_env: dict[str, dict[str, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        if run.summary is not None and len(run.curves.get(CURVE_TAG, ([], []))[0]) > 2:
            by_env[run.env][run.algo].append(run)
    written = []
    for env, algos in sorted(by_env.items()):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for algo, group in sorted(algos.items()):
            curves = [r.curves[CURVE_TAG] for r in group]
            grid = np.linspace(0, min(c[0][-1] for c in curves), 60)
            mid, (lo, hi) = _curve_band(curves, grid)
            ax.plot(grid, mid, label=f"{algo} ({len(group)})")
            ax.fill_between(grid, lo, hi, alpha=0.2)
        threshold = THRESHOLDS.get(next(iter(algos.values()))[0].summary["env_id"])
        if threshold is not None:
            ax.axhline(threshold, color="grey", linestyle="--", linewidth=1)
        ax.set(xlabel="env steps", ylabel="eval return (IQM, 95 % CI)", title=env)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"curves_{env}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def plot_value_error(runs: list[Run], out_dir: Path) -> Path | None:
    """``gridworld_value_error.png``: ‖v − v*‖∞ (``truth/value_error``) vs env steps, every algorithm (IQM
    over seeds, 95 % CI band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        if run.summary is not None and run.env.startswith("gridworld") and TRUTH_TAG in run.curves:
            groups[f"{run.algo}" + ("" if run.env == "gridworld" else f" ({run.env})")].append(run)
    if not groups:
        return None
    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.cm.tab20(np.linspace(0, 1, 20))
    for i, (name, group) in enumerate(sorted(groups.items())):
        curves = [r.curves[TRUTH_TAG] for r in group]
        end = min(c[0][-1] for c in curves)
        grid = np.unique(np.concatenate([[0], np.geomspace(1, max(end, 1), 60)]))
        mid, (lo, hi) = _curve_band(curves, grid)
        style = {"color": colors[i % 20], "linestyle": ("-", "--", ":")[i // 20 % 3]}
        ax.plot(np.maximum(grid, 1), mid, label=name, **style)
        ax.fill_between(np.maximum(grid, 1), lo, hi, alpha=0.15, color=style["color"])
    ax.set(xscale="log", yscale="log", xlabel="env steps (planners: sweeps)", ylabel="‖v − v*‖∞ (IQM over seeds)",
           title="GridWorld: error to the optimal values")  # fmt: skip
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = out_dir / "gridworld_value_error.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def machine() -> str:
    """One line naming the machine the sweep ran on (this one, when the report is made where it ran)."""
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
            f"{platform.system()} {platform.release()}")  # fmt: skip


def sweep_wall_minutes(runs: list[Run]) -> float:
    """Minutes from the first run's start (its ``.hydra`` files) to the last run's end (its summary)."""
    configs = [directory / ".hydra" / "config.yaml" for r in runs for directory in (r.path, r.path.parent)]
    starts = [config.stat().st_mtime for config in configs if config.exists()]  # a job's seed<k>/: the job's
    ends = [p.stat().st_mtime for r in runs for p in (r.path / "summary.json", r.path / "failed.json") if p.exists()]
    return (max(ends) - min(starts)) / 60.0 if starts and ends else float("nan")


def report(sweep_dir: str | Path, out_dir: str | Path | None = None) -> str:
    """Write ``report.md`` and the plots for ``sweep_dir``; returns the Markdown."""
    runs = load_runs(sweep_dir)
    if not runs:
        raise SystemExit(f"rlzoo.benchmark: no finished runs (summary.json) under {sweep_dir}")
    out = Path(out_dir) if out_dir is not None else Path(sweep_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = plot_curves(runs, out)
    value_error = plot_value_error(runs, out)
    failed = [r for r in runs if r.summary is None]
    text = [f"# Benchmark: {sweep_dir}", "",
            f"{len(runs) - len(failed)} runs finished, {len(failed)} failed; sweep wall-clock "
            f"{sweep_wall_minutes(runs):.1f} min on {machine()}.", "",
            "Final eval return: mean of the run's final evaluation episodes, IQM over seeds with a 95 % "
            "percentile-bootstrap CI; steps to threshold: first periodic evaluation at or above it "
            "(median over the seeds that reached it, shown when more than half did); wall s and steps/s: one run's "
            "training (medians over seeds), a seed batch's (\"batched\": its seeds share it) for all its seeds.", "",
            table(runs), ""]  # fmt: skip
    beside = published_table(runs)
    if beside is not None:
        text += ["## Beside published results", "",
                 "rl-baselines3-zoo: one agent on the v3 envs, deterministic evaluation (SAC, PPO, TRPO trained with "
                 "the settings of conf/experiment/<algo>_<env>.yaml, TD3 with the zoo's older v3 entry); CleanRL: 3 "
                 "seeds of its own defaults on the v4 envs, training episodic return (rlzoo/published.py).", "",
                 beside, ""]  # fmt: skip
    text += [f"![{p.stem}]({p.name})" for p in [*plots, *([value_error] if value_error else [])]]
    for r in failed:
        text.append(f"- failed: {r.path.name}: {r.error}")
    markdown = "\n".join(text) + "\n"
    (out / "report.md").write_text(markdown)
    return markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlzoo.benchmark", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="table and plots of a sweep directory")
    rep.add_argument("sweep_dir", type=Path)
    rep.add_argument("--out", type=Path, default=None, help="where to write (default: the sweep directory)")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        print(f"rlzoo.benchmark: {args.sweep_dir} is not a directory", file=sys.stderr)
        return 2
    print(report(args.sweep_dir, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
