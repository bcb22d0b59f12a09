"""Hydra entry point: ``python -m rlzoo.train algo=<name> env=<name> seed=<n> [overrides]``.

Composes ``conf/config.yaml`` + ``conf/algo/<name>.yaml`` + ``conf/env/<name>.yaml`` (+ the
``conf/experiment/<algo>_<env>.yaml`` preset when present), validates it, trains, evaluates and
writes the run directory: TensorBoard events, ``summary.json``, checkpoints and, for tabular
agents, ``tables.npz`` with a picture of values and policy.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import re
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import rlzoo
from rlzoo import distributed, live_state, run_lock
from rlzoo.agents import AGENTS, Agent, NumericalError, TabularAgent, agent_class, make_agent
from rlzoo.agents.base import set_global_rng_state
from rlzoo.agents.registry import compile_unavailable, seed_batch_compile_unavailable
from rlzoo.atomic import atomic_write_json
from rlzoo.callbacks import PeriodicEvaluation
from rlzoo.checkpoint import (
    BestCheckpoint,
    Checkpointer,
    CheckpointError,
    checkpoint_step,
    latest_valid,
    load_checkpoint,
    periodic_checkpoints,
)
from rlzoo.config import ConfigError, RunConfig, build, build_env_config, to_dict
from rlzoo.envs import make as make_env
from rlzoo.envs.text_tasks import RewardFunctionError
from rlzoo.evaluate import evaluate, evaluation_seed
from rlzoo.llm.lm_agent import LMAgent
from rlzoo.logging import RunLogger
from rlzoo.seed_batch import SeedBatch, seed_batch_obstacle
from rlzoo.seeding import seed_everything
from rlzoo.tables import write_tables
from rlzoo.trackers import make_trackers
from rlzoo.video import EvaluationVideo, VideoUnavailable

log = logging.getLogger("rlzoo")

# the budget was algo.total_steps before it became one top-level key
RETIRED_BUDGET_KEY = "algo.total_steps is not a known key: the budget is the top-level total_steps=<n>"


@dataclass
class RunSpec:
    """A validated run: top-level settings, the algorithm's name and config, and the env config."""

    run: RunConfig
    algo_name: str
    algo: Any
    env: Any


def resolve(cfg: DictConfig | dict[str, Any]) -> RunSpec:
    """Validate a composed config against the schemas; ``ConfigError`` on the first problem."""
    try:
        raw = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    except OmegaConfBaseException as err:
        raise ConfigError(f"{getattr(err, 'full_key', '') or 'config'}: {str(err).splitlines()[0]}") from None
    algo_raw, env_raw = dict(raw.pop("algo", None) or {}), dict(raw.pop("env", None) or {})
    run = build(RunConfig, raw)
    name = algo_raw.pop("name", None)
    if name is None:
        raise ConfigError("algo.name is required: choose an algorithm with algo=<name>")
    if "total_steps" in algo_raw:
        raise ConfigError(RETIRED_BUDGET_KEY)
    algo = build(agent_class(name).Config, algo_raw, "algo")
    if run.compile and not agent_class(name).has_compiled_update:
        raise ConfigError(compile_unavailable(name))
    if run.compile and run.n_seeds > 1 and not agent_class(name).seed_batch_compiles:
        raise ConfigError(seed_batch_compile_unavailable(name, run.n_seeds))
    agent_class(name).place(run.device)  # device=cuda for an algorithm that runs on the CPU: one line
    return RunSpec(run, name, algo, build_env_config(env_raw))


def _make_env(env_cfg: Any):
    keys = env_cfg if isinstance(env_cfg, Mapping) else vars(env_cfg)
    try:
        return make_env(env_cfg)
    except gym.error.DependencyNotInstalled as err:
        if "mujoco" in str(err).lower():  # gymnasium's advice names its own extra; rlzoo's installs the same package
            raise ConfigError(f"env.id={keys['id']!r} needs MuJoCo: pip install -e '.[mujoco]'") from None
        raise ConfigError(f"env.id={keys['id']!r}: {str(err).splitlines()[0]}") from None
    except (gym.error.Error, ModuleNotFoundError) as err:  # no such id or version, its module, a missing dependency
        raise ConfigError(f"env.id={keys['id']!r}: {str(err).splitlines()[0]}") from None
    except (ValueError, TypeError) as err:  # constructor rejected an argument
        # a message that starts with one of the env's keys ("train='…': no such file") is about env.train
        key = re.split(r"[=\[ ]", str(err), maxsplit=1)[0]
        raise ConfigError(f"env.{err}" if key in keys and key != "id" else f"env: {err}") from None


def finished(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a finished run (its ``summary.json``)."""
    return (run_dir / "summary.json").exists()


def check_run_dir(run_dir: Path, resume: bool = False) -> None:
    """Refuse to write into a directory holding a finished run, or an unfinished one without ``resume``."""
    if finished(run_dir):
        raise ConfigError(f"hydra.run.dir={run_dir} already holds a finished run (summary.json); choose another")
    if not resume and (run_dir / "checkpoints").exists():
        raise ConfigError(
            f"hydra.run.dir={run_dir} already holds a run's checkpoints; add resume=true to continue it, "
            "or choose another hydra.run.dir"
        )


# algorithm keys that may change when a run resumes (cadence only); every other key must match the run's own
RESUME_SAFE_ALGO_KEYS = frozenset({"log_every"})


class FinalArtefactError(RuntimeError):
    """The run trained and wrote its summary and tables, but its final checkpoint could not be written."""


def run_record(spec: RunSpec) -> dict[str, Any]:
    """What a run trains, as written to ``run.json`` when it starts and checked when it resumes (a GridWorld's
    ``layout_file`` by its contents' SHA-256 too: the file may change while its name stays)."""
    env = to_dict(spec.env)
    if env.get("layout_file") is not None:
        env["layout_file_sha256"] = hashlib.sha256(Path(env["layout_file"]).read_bytes()).hexdigest()
    return {"algo": spec.algo_name, "seed": spec.run.seed, "algo_config": to_dict(spec.algo), "env": env}


def resume_changes(record: dict[str, Any], spec: RunSpec) -> dict[str, tuple[Any, Any]]:
    """The safe changes (``RESUME_SAFE_ALGO_KEYS``) that ``spec`` makes to the run ``record`` describes;
    ``ConfigError`` listing every other difference (algorithm, seed, algo or env key)."""
    now = run_record(spec)
    changes = {key: (record[key], now[key]) for key in ("algo", "seed") if record[key] != now[key]}
    for section, prefix in (("algo_config", "algo."), ("env", "env.")):
        for key in sorted(set(record[section]) | set(now[section])):
            old, new = record[section].get(key), now[section].get(key)
            if old != new:
                changes[prefix + key] = (old, new)
    refused = {k: v for k, v in changes.items() if k.removeprefix("algo.") not in RESUME_SAFE_ALGO_KEYS}
    if refused:
        listed = "; ".join(f"{key}: {old!r} → {new!r}" for key, (old, new) in refused.items())
        raise ConfigError(f"resume=true with settings the run did not train with ({listed}); resume with the run's "
                          "own settings (its run.json), or start a new run in another hydra.run.dir")  # fmt: skip
    return changes


@dataclass
class Resumed:
    """A run continued from a checkpoint: its agent, the safe config changes applied, and why it is not exact
    (None: it continues as the uninterrupted run would have, its envs restored mid-episode)."""

    agent: Agent
    changes: dict[str, tuple[Any, Any]]
    inexact: str | None


def check_resume_settings(run_dir: Path, spec: RunSpec) -> dict[str, tuple[Any, Any]]:
    """``resume_changes`` of ``spec`` against the run in ``run_dir`` (none when it has no ``run.json``)."""
    record = _read_record(run_dir)
    return resume_changes(record, spec) if record is not None else {}


def _read_record(run_dir: Path) -> dict[str, Any] | None:
    record_file = run_dir / "run.json"
    return json.loads(record_file.read_text()) if record_file.exists() else None


def _listed(changes: dict[str, tuple[Any, Any]]) -> dict[str, list[Any]]:
    return {key: list(change) for key, change in changes.items()}


def _resume_agent(run_dir: Path, env: Any, spec: RunSpec, at_step: int | None = None) -> Resumed | None:
    """The agent of the newest readable checkpoint in ``run_dir`` (of step ``at_step`` when given) (envs, episode in
    flight and global RNGs restored; safe config changes applied), or None; ``ConfigError`` when ``spec`` differs from
    what the run trains."""
    if at_step is None:
        found = latest_valid(run_dir / "checkpoints")
    else:
        path = run_dir / "checkpoints" / f"step_{at_step:010d}.pt"
        try:
            found = path, load_checkpoint(path)
        except CheckpointError as err:
            raise ConfigError(f"resume=true cannot continue from {path}: {err}") from None
    if found is None:
        log.warning("resume=true but %s holds no readable checkpoint: starting from step 0", run_dir / "checkpoints")
        return None
    changes = check_resume_settings(run_dir, spec)
    path, payload = found
    if payload["algo"] != spec.algo_name:  # a run directory from before run.json
        raise ConfigError(f"resume=true with algo={spec.algo_name}, but {path} holds a {payload['algo']} run")
    try:
        agent = Agent.from_payload(payload, env, source=str(path), device=spec.run.device)
    except (ValueError, KeyError, TypeError) as err:  # another env's spaces, a state this code cannot read
        raise ConfigError(f"resume=true cannot continue from {path}: {err}") from None
    safe = {key.removeprefix("algo."): new for key, (_, new) in changes.items() if key.startswith("algo.")}
    agent.config = dataclasses.replace(agent.config, **safe)
    set_global_rng_state(payload["global_rng"])
    live_inexact = agent.restore_live(payload)
    inexact = live_state.joined_reasons(agent.state_inexact, live_inexact)
    if inexact is None:
        log.info("resuming from %s at step %d", path, agent.num_timesteps)
    else:
        log.warning("resuming from %s at step %d, not exactly: %s%s", path, agent.num_timesteps, inexact,
                    "; the envs restart from a reset" if live_inexact else "")  # fmt: skip
    return Resumed(agent, changes, inexact)


def train(spec: RunSpec, run_dir: str | Path, names: dict[str, str] | None = None) -> dict[str, Any]:
    """Train, evaluate and write the run directory; returns the summary dict.

    The run holds ``run_dir``'s lock (``rlzoo.run_lock``) while it writes. With ``resume=true`` it continues
    from the newest readable checkpoint in ``run_dir`` (a corrupted one is skipped with a warning) exactly:
    agent, envs mid-episode and random generators as they were; TensorBoard drops anything the interrupted
    process logged after that checkpoint, so curves have neither gaps nor duplicate steps.
    """
    run, run_dir = spec.run, Path(run_dir)
    names = names or {"algo": spec.algo_name, "env": spec.env.id}
    if distributed.init_from_env():  # under torchrun: rank k > 0 samples with seed + k and writes in rank<k>/
        if not agent_class(spec.algo_name).data_parallel:
            parallel = sorted(name for name, cls in AGENTS.items() if cls.data_parallel)
            raise ConfigError(f"algo={spec.algo_name} does not train across processes (torchrun); algorithms that "
                              f"do: {', '.join(parallel)}")  # fmt: skip
        if distributed.rank() > 0:
            run = dataclasses.replace(run, seed=run.seed + distributed.rank())
            run_dir = run_dir / f"rank{distributed.rank()}"
    spec = dataclasses.replace(spec, run=run)
    with claimed(run_dir, spec):  # one owner: a second run into run_dir is refused while this one writes
        summary = _train_in(spec, run_dir, names)
    distributed.shutdown()  # under torchrun: every rank finished; leave the process group before exiting
    return summary


def seed_runs(spec: RunSpec, run_dir: str | Path) -> list[tuple[RunSpec, Path]]:
    """The runs of a job that trains ``n_seeds`` (or ``trial_seeds``) seeds: seed ``seed + k`` in ``run_dir/seed<k>``
    (one run in ``run_dir`` itself otherwise)."""
    n = max(spec.run.n_seeds, spec.run.trial_seeds)
    if n == 1:
        return [(spec, Path(run_dir))]
    one = dataclasses.replace(spec.run, n_seeds=1, trial_seeds=1)
    seeds = [spec.run.seed + k for k in range(n)]
    return [(dataclasses.replace(spec, run=dataclasses.replace(one, seed=s)), Path(run_dir) / f"seed{s}")
            for s in seeds]  # fmt: skip


def check_run_for(run_dir: Path, spec: RunSpec) -> None:
    """``check_run_dir`` and, on resume, ``check_resume_settings``: may ``spec`` write into ``run_dir`` (into each of
    its seeds' directories, for a job of several seeds; a resumed job keeps the seeds that finished, unless all did)?"""
    runs = seed_runs(spec, run_dir)
    if len(runs) > 1 and spec.run.resume:
        runs = [(one, directory) for one, directory in runs if not finished(directory)] or runs
    for one, directory in runs:
        check_run_dir(directory, one.run.resume)
        if one.run.resume:
            check_resume_settings(directory, one)


def claim(run_dir: Path, spec: RunSpec, what: str = "run directory") -> None:
    """Take ``run_dir``'s lock for a run of ``spec`` (``run_lock.release`` gives it back): ``check_run_for`` runs
    before the lock (a refused run leaves every byte as it was) and again under it (no other run can change the
    directory then); a refusal leaves the lock as it was."""
    check_run_for(run_dir, spec)
    run_lock.acquire(run_dir, what)
    try:
        check_run_for(run_dir, spec)
    except ConfigError:
        run_lock.release(run_dir)
        raise


@contextmanager
def claimed(run_dir: Path, spec: RunSpec) -> Iterator[None]:
    """``claim`` ``run_dir`` for the ``with`` block."""
    claim(run_dir, spec)
    try:
        yield
    finally:
        run_lock.release(run_dir)


class RunSession:
    """One run directory's part of a training job, around the training itself: the agent (made, or resumed from the
    directory's newest checkpoint), ``run.json``, the initial evaluation, the logger and the callbacks (periodic
    evaluation, checkpoints, best model, videos); after training, ``finish`` writes the final evaluation, the tables,
    ``summary.json`` and ``checkpoints/final.pt``. A single run has one; a seed batch one per seed."""

    def __init__(self, spec: RunSpec, run_dir: Path, names: dict[str, str], resume_step: int | None = None) -> None:
        self.spec, self.run_dir, self.names = spec, run_dir, names
        run = spec.run
        self.env, self.eval_env = _make_env(spec.env), _make_env(spec.env)
        self.env.action_space.seed(run.seed)
        resumed = _resume_agent(run_dir, self.env, spec, resume_step) if run.resume else None
        if resumed is not None:
            agent, self.resumed_from, self.changes = resumed.agent, resumed.agent.num_timesteps, resumed.changes
            record = _read_record(run_dir) or run_record(spec)
            record["resumes"] = [*record.get("resumes", []), {"from_step": self.resumed_from,
                                 "exact": resumed.inexact is None, "why_not_exact": resumed.inexact,
                                 "changes": _listed(self.changes)}]  # fmt: skip
        else:
            agent = make_agent(spec.algo_name, self.env, config=spec.algo, seed=run.seed, device=run.device)
            self.resumed_from, self.changes = None, {}
            record = run_record(spec)
        self.agent, self.record = agent, record
        # a function of the agent and env only: a callback holding the session would keep its envs alive in a cycle
        self.evaluate = functools.partial(evaluate_run, agent, self.eval_env, run)
        atomic_write_json(run_dir / "run.json", record)
        for network in agent.networks():  # every rank starts from rank 0's weights (also after a resume)
            distributed.broadcast_parameters(network)
        initial_file = run_dir / "initial_eval.json"
        if self.resumed_from is not None and initial_file.exists():
            self.initial_mean = json.loads(initial_file.read_text())["eval_return_mean"]
        else:
            self.initial_mean = self.evaluate().mean
            atomic_write_json(initial_file, {"eval_return_mean": self.initial_mean})
        log.info("run directory: %s  (tensorboard --logdir %s)", run_dir, run_dir)
        self.start_step = start_step = self.resumed_from or 0
        if start_step == 0:  # a run killed before its first checkpoint starts clean: no curves from the dead process
            for stale in run_dir.glob("events.out.tfevents.*"):
                log.warning("removing %s, written by an earlier start that left no checkpoint", stale.name)
                stale.unlink()
        lg = run.log  # W&B and MLflow beside TensorBoard (log.backends): the same scalars, the config, the summary
        trackers = make_trackers(lg.backends, run_dir, record, [names["algo"], names["env"], f"seed{run.seed}"],
                                 project=lg.project, mlflow_uri=lg.mlflow_uri, wandb_mode_setting=lg.wandb_mode,
                                 resume=self.resumed_from is not None)  # fmt: skip
        self.logger = logger = RunLogger(run_dir, run.total_steps, tensorboard="tensorboard" in lg.backends,
                                         progress=lg.progress, start_step=start_step, trackers=trackers)  # fmt: skip
        if start_step == 0:
            logger.scalar("eval/return_mean", self.initial_mean, 0)
        self.checkpointer = Checkpointer(run_dir / "checkpoints", run.checkpoint.every, run.checkpoint.keep, start_step)
        # with periodic evaluation, checkpoints/best.pt: the agent at its best evaluation (initial, periodic or final)
        self.best = BestCheckpoint(run_dir / "checkpoints") if run.eval.every else None
        # with eval.video, videos/eval_step<n>.mp4 of one episode at each evaluation (initial, periodic, final)
        video = None
        if run.eval.video:
            ev = run.eval
            video = EvaluationVideo(self.eval_env, run_dir / "videos", seed=evaluation_seed(run.seed, ev.episodes),
                                    deterministic=ev.deterministic,
                                    max_episode_steps=ev.max_episode_steps, logger=logger)  # fmt: skip
        self.watchers = [c for c in (self.best, video) if c is not None]  # their time is evaluation time
        if start_step == 0:  # the initial evaluation is theirs too
            for watcher in self.watchers:
                watcher.on_evaluation(agent, 0, self.initial_mean)
        evaluate_mean = functools.partial(mean_return, self.evaluate)
        self.periodic = PeriodicEvaluation(evaluate_mean, run.eval.every, start_step, run.total_steps)
        self.final: Any = None

    @property
    def callbacks(self) -> list[Any]:
        """What the training loop calls for this run: periodic evaluation, checkpoints, best model, videos."""
        return [self.periodic, self.checkpointer, *self.watchers]

    @property
    def eval_seconds(self) -> float:
        """Time spent evaluating (and saving the best model, recording videos) during training."""
        return self.periodic.seconds + sum(c.seconds for c in self.watchers)

    def final_evaluation(self) -> None:
        """The evaluation at the end of training, logged and shown to the best-model and video callbacks."""
        agent = self.agent
        self.final = final = self.evaluate()
        self.logger.scalars({"eval/return_mean": final.mean, "eval/return_std": final.std}, agent.num_timesteps)
        for watcher in self.watchers:
            watcher.on_evaluation(agent, agent.num_timesteps, final.mean)

    def finish(self, wall: float, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Tables, ``summary.json`` (``wall``: training seconds; ``extra``: more fields) and ``checkpoints/final.pt``
        after ``final_evaluation``; returns the summary."""
        spec, run, agent, names, final = self.spec, self.spec.run, self.agent, self.names, self.final
        title = f"{names['algo']} on {names['env']}"
        if isinstance(agent, TabularAgent):
            write_tables(agent, self.run_dir, self.env, title)
        steps_here = agent.num_timesteps - self.start_step
        summary = {
            "algo": names["algo"],
            "env": names["env"],
            "env_id": spec.env.id,
            "seed": run.seed,
            "total_steps": run.total_steps,
            "steps": agent.num_timesteps,
            "wall_seconds": wall,
            "eval_seconds": self.eval_seconds,
            "sps": steps_here / wall if wall > 0 else float("inf"),
            "eval_episodes": run.eval.episodes,
            "eval_return_mean": final.mean,
            "eval_return_std": final.std,
            "eval_return_initial": self.initial_mean,
            "best": self.best.summary() if self.best is not None else None,  # checkpoints/best.pt: step and return
            "resumed_from_step": self.resumed_from,
            "resumed_with_changes": _listed(self.changes),
            "resumes": self.record.get("resumes", []),  # every resume of this run: from which step, exactly or why not
            **(extra or {}),
            **agent.summary(),
            "algo_config": to_dict(agent.config),
            "rlzoo_version": rlzoo.__version__,
        }
        atomic_write_json(self.run_dir / "summary.json", summary)  # before final.pt: a failed save loses nothing
        self.logger.finish_trackers(summary)
        try:
            self.checkpointer.save_final(agent)
        except (OSError, RuntimeError) as err:
            raise FinalArtefactError(f"checkpoints/final.pt could not be written ({type(err).__name__}: {err}); "
                                     "summary.json and the tables are kept") from None  # fmt: skip
        if isinstance(agent, LMAgent):  # the trained policy as a model directory that algo.model.path loads
            agent.export_model(self.run_dir / "model")
        extra_text = f"  value_error={summary['value_error']:.3g}" if "value_error" in summary else ""
        log.info("%s: eval return %.3f ± %.3f (initial %.3f)%s", title, final.mean, final.std, self.initial_mean,
                 extra_text)  # fmt: skip
        return summary


def evaluate_run(agent: Agent, eval_env: gym.Env, run: RunConfig) -> Any:
    """``eval.episodes`` episodes of ``agent`` on ``eval_env``, from its seed's own start states."""
    ev = run.eval
    return evaluate(agent, eval_env, ev.episodes, seed=evaluation_seed(run.seed, ev.episodes),
                    deterministic=ev.deterministic, max_episode_steps=ev.max_episode_steps)  # fmt: skip


def mean_return(evaluate_agent: Any, _agent: Agent) -> float:
    """The mean return of ``evaluate_agent()`` (``PeriodicEvaluation`` passes the agent, which it already holds)."""
    return evaluate_agent().mean


@contextmanager
def training(sessions: list[RunSession]) -> Iterator[None]:
    """The ``with`` block that trains ``sessions`` and evaluates them at the end: on an error their trackers end as
    stopped, without a summary; their loggers are closed either way."""
    try:
        yield
    except BaseException:
        for session in sessions:
            session.logger.finish_trackers(None)
        raise
    finally:
        for session in sessions:
            session.logger.close()


def _prepare_process(run: RunConfig) -> None:
    if run.torch_threads is not None:
        torch.set_num_threads(run.torch_threads)
    seed_everything(run.seed)


def _train_in(spec: RunSpec, run_dir: Path, names: dict[str, str]) -> dict[str, Any]:
    """``train`` in the run directory it has claimed."""
    _prepare_process(spec.run)
    session = RunSession(spec, run_dir, names)
    if spec.run.compile:
        session.agent.compile()
    start = time.perf_counter()
    with training([session]):
        session.agent.learn(spec.run.total_steps, logger=session.logger, callbacks=session.callbacks)
        wall = time.perf_counter() - start - session.eval_seconds
        session.final_evaluation()
    return session.finish(wall)


def train_seeds(spec: RunSpec, run_dir: str | Path, names: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Train the seeds of a job of several (``n_seeds`` or ``trial_seeds``: ``seed``, ``seed`` + 1, …), each in
    ``run_dir/seed<k>`` exactly as a single run of it writes its run directory: ``n_seeds`` as one seed batch
    (``train_batch``) when the algorithm and config can be batched, else, like ``trial_seeds``, one after another in
    this process. With ``resume=true`` the seeds that finished keep their runs and the others continue. Returns the
    seeds' summaries in seed order."""
    names = names or {"algo": spec.algo_name, "env": spec.env.id}
    if spec.run.n_seeds > 1 and distributed.init_from_env():
        raise ConfigError("n_seeds > 1 under torchrun is not supported: the seeds of a job train in one process")
    runs = seed_runs(spec, run_dir)
    done = {directory: _read_summary(directory) for _, directory in runs if spec.run.resume and finished(directory)}
    pending = [(one, directory) for one, directory in runs if directory not in done]
    for directory in done:
        log.info("resume=true: %s holds a finished run, which is kept", directory)
    batch = spec.run.n_seeds > 1 and len(pending) > 1  # trial_seeds: always one after another
    obstacle = seed_batch_obstacle(spec.algo_name, spec.algo) if batch else None
    if batch and obstacle is None:
        summaries = train_batch(pending, names)
    else:
        if obstacle is not None:
            log.warning("%s: its %d seeds train one after another in this process", obstacle, len(pending))
        summaries = [train(one, directory, names) for one, directory in pending]
    done.update(zip([directory for _, directory in pending], summaries, strict=True))
    return [done[directory] for _, directory in runs]


def _read_summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())


def train_batch(runs: list[tuple[RunSpec, Path]], names: dict[str, str]) -> list[dict[str, Any]]:
    """Train ``runs`` (one config's seeds, each with its run directory: ``seed_runs``) as one batched computation
    (``rlzoo.seed_batch``); ``resume=true`` continues every seed from the newest checkpoint step they all have. Returns
    the seeds' summaries, each with ``n_seeds`` and the batch's aggregate env steps/s."""
    spec = runs[0][0]
    with ExitStack() as claims:
        for one, directory in runs:
            claims.enter_context(claimed(directory, one))
        _prepare_process(spec.run)
        step = common_checkpoint_step([directory for _, directory in runs]) if spec.run.resume else None
        if spec.run.resume and step is None:
            log.warning("resume=true but the seeds' directories share no checkpoint step: starting from step 0")
            runs = [(dataclasses.replace(one, run=dataclasses.replace(one.run, resume=False)), d) for one, d in runs]
        sessions = [RunSession(one, directory, names, step) for one, directory in runs]
        batch = SeedBatch([session.agent for session in sessions])
        if spec.run.compile:  # the stacked agent, which trains every seed
            batch.stacked.compile()
        start = time.perf_counter()
        with training(sessions):
            batch.learn(spec.run.total_steps, [s.logger for s in sessions], [s.callbacks for s in sessions])
            wall = time.perf_counter() - start - sum(s.eval_seconds for s in sessions)
            for session in sessions:
                session.final_evaluation()
        steps = batch.num_timesteps - sessions[0].start_step
        extra = {"n_seeds": len(runs), "batch_sps": len(runs) * steps / wall if wall > 0 else float("inf")}
        return [session.finish(wall, extra) for session in sessions]


def common_checkpoint_step(run_dirs: list[Path]) -> int | None:
    """The newest periodic checkpoint step every one of ``run_dirs`` holds (a seed batch saves its seeds one after
    another, so a batch killed between two saves resumes from the step before); None when they share none."""
    common: set[int] | None = None
    for directory in run_dirs:
        steps = {checkpoint_step(path) for path in periodic_checkpoints(directory / "checkpoints")}
        common = steps if common is None else common & steps
    return max(common) if common else None


def write_trial(run_dir: str | Path, summaries: list[dict[str, Any]]) -> float:
    """A tuning trial's objective: the mean final eval return of its ``trial_seeds`` seeds (one seed's return is too
    noisy to rank configs by), written to ``trial.json`` with each seed's."""
    returns = {summary["seed"]: summary["eval_return_mean"] for summary in summaries}
    mean = float(sum(returns.values()) / len(returns))
    atomic_write_json(Path(run_dir) / "trial.json", {"eval_return_mean": mean, "per_seed": returns})
    log.info("trial: mean eval return %.3f over seeds %s", mean, list(returns))
    return mean


# how a run that stops on an error reports it: the line's template and the exit code
FAILURES: dict[type[Exception], tuple[str, int]] = {
    ConfigError: ("config error: {}", 2),
    RewardFunctionError: ("{}", 2),
    VideoUnavailable: ("config error: {}", 2),
    NumericalError: ("training stopped: {}; the last good checkpoint is kept", 3),
    FinalArtefactError: ("run finished, but {}", 4),
}


@hydra.main(config_path="pkg://rlzoo.conf", config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    try:
        spec = resolve(cfg)
        out, choices = hc.runtime.output_dir, dict(hc.runtime.choices)
        if spec.run.trial_seeds > 1:
            return write_trial(out, train_seeds(spec, out, choices))
        if spec.run.n_seeds > 1:
            summaries = train_seeds(spec, out, choices)
            return float(sum(s["eval_return_mean"] for s in summaries) / len(summaries))
        summary = train(spec, out, choices)
    except tuple(FAILURES) as err:
        template, code = next(failure for kind, failure in FAILURES.items() if isinstance(err, kind))
        what = template.format(err)
        print(f"rlzoo: {what}", file=sys.stderr)
        if hc.mode == RunMode.MULTIRUN:  # one failed job of a sweep must not stop its siblings
            atomic_write_json(Path(hc.runtime.output_dir) / "failed.json", {"error": what})
            return float("nan")
        sys.exit(code)
    return summary["eval_return_mean"]


def main() -> None:
    """Console entry point (``rlzoo-train``), same as ``python -m rlzoo.train``."""
    if any(arg.lstrip("+~").startswith("algo.total_steps=") for arg in sys.argv[1:]):  # Hydra would say far more
        print(f"rlzoo: config error: {RETIRED_BUDGET_KEY}", file=sys.stderr)
        sys.exit(2)
    _hydra_main()


if __name__ == "__main__":
    # run the imported module's main, not this __main__ copy: launchers that pickle the task function
    # (joblib, submitit) then send it by reference instead of by value with everything it reaches
    from rlzoo.train import main as _main

    _main()
