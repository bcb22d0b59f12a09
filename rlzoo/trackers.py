"""Experiment trackers beside TensorBoard (``log.backends``): Weights & Biases and MLflow receive every scalar the
run logs (same tag, same env step), the run's config (``run.json``), its tags (algorithm, env, seed) and, at the
end, ``summary.json``. Both are optional extras (``pip install -e '.[track]'``).

- W&B: ``log.wandb_mode=auto`` runs online only when an API key is configured (``WANDB_API_KEY`` or a netrc entry
  for api.wandb.ai) and offline otherwise, so a run never waits on the network; its files go to
  ``<run_dir>/wandb`` (``wandb sync`` uploads an offline run later).
- MLflow: ``log.mlflow_uri`` (default: a file store ``mlruns/`` in the working directory, MLflow's own default
  place) in the experiment ``log.project``.

A resumed run goes on logging into the same tracker runs (their ids are kept in ``<run_dir>/trackers.json``).
"""

from __future__ import annotations

import importlib
import json
import netrc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from rlzoo.atomic import atomic_write_json

BACKENDS = ("tensorboard", "wandb", "mlflow")
WANDB_MODES = ("auto", "online", "offline")
TRACK_EXTRA = "pip install -e '.[track]'"
IDS_FILE = "trackers.json"


class Tracker(Protocol):
    """What the run logger sends a tracker."""

    def scalar(self, tag: str, value: float, step: int) -> None: ...
    def finish(self, summary: Mapping[str, Any] | None) -> None: ...


def missing_packages(backends: list[str]) -> list[str]:
    """The tracker packages ``backends`` need (each backend's package has its name) that cannot be imported."""
    missing = []
    for package in (b for b in backends if b != "tensorboard"):
        try:
            importlib.import_module(package)
        except ImportError:
            missing.append(package)
    return missing


def wandb_mode(mode: str, environ: Mapping[str, str] | None = None, netrc_path: str | None = None) -> str:
    """``online`` or ``offline`` for ``log.wandb_mode``: ``auto`` is online only with a configured API key."""
    if mode != "auto":
        return mode
    environ = os.environ if environ is None else environ
    if environ.get("WANDB_API_KEY"):
        return "online"
    try:
        hosts = netrc.netrc(netrc_path).hosts
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return "offline"
    return "online" if any("wandb" in host for host in hosts) else "offline"


def flat(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level with dotted keys (``{"algo_config": {"gamma": 0.9}}`` → ``algo_config.gamma``)."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat(value, f"{name}."))
        else:
            out[name] = value
    return out


class WandbTracker:
    """A W&B run (offline unless an API key is configured) in ``<run_dir>/wandb``."""

    def __init__(self, run_dir: Path, project: str, record: Mapping[str, Any], tags: list[str], mode: str,
                 run_id: str | None) -> None:  # fmt: skip
        import wandb

        os.environ.setdefault("WANDB_SILENT", "true")
        self.run = wandb.init(project=project, dir=str(run_dir), name=run_dir.name, group=tags[0] + "-" + tags[1],
                              tags=tags, config=dict(record), mode=mode, id=run_id, resume="allow" if run_id else None,
                              reinit="create_new")  # fmt: skip
        self.id = self.run.id

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.run.log({tag: value}, step=step)

    def finish(self, summary: Mapping[str, Any] | None) -> None:
        if summary is not None:
            self.run.summary.update({k: v for k, v in flat(summary).items() if isinstance(v, int | float | str)})
        self.run.finish()


class MlflowTracker:
    """An MLflow run in experiment ``project`` of the tracking store ``uri``."""

    def __init__(self, uri: str, project: str, name: str, record: Mapping[str, Any], tags: dict[str, str],
                 run_id: str | None) -> None:  # fmt: skip
        if uri.startswith("file:") or "://" not in uri:
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # the local default, kept by MLflow on request
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        if run_id is None:
            experiment = self.client.get_experiment_by_name(project)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(project)
            run_id = self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
            params = {k: json.dumps(v)[:6000] if not isinstance(v, str) else v[:6000] for k, v in flat(record).items()}
            for key, value in params.items():
                self.client.log_param(run_id, key, value)
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.id = run_id

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.client.log_metric(self.id, tag, value, step=step)

    def finish(self, summary: Mapping[str, Any] | None) -> None:
        if summary is not None:
            self.client.log_dict(self.id, dict(summary), "summary.json")
        self.client.set_terminated(self.id, status="FINISHED" if summary is not None else "KILLED")


def make_trackers(backends: list[str], run_dir: Path, record: Mapping[str, Any], tags: list[str], *, project: str,
                  mlflow_uri: str, wandb_mode_setting: str, resume: bool) -> list[Tracker]:  # fmt: skip
    """The W&B and MLflow trackers ``backends`` name for the run in ``run_dir`` (``record``: its ``run.json``;
    ``tags``: algorithm, env and ``seed<n>``); with ``resume`` the tracker runs of ``trackers.json`` go on."""
    ids = json.loads((run_dir / IDS_FILE).read_text()) if resume and (run_dir / IDS_FILE).is_file() else {}
    trackers: dict[str, Any] = {}
    if "wandb" in backends:
        mode = wandb_mode(wandb_mode_setting)
        trackers["wandb"] = WandbTracker(run_dir, project, record, tags, mode, ids.get("wandb"))
    if "mlflow" in backends:
        mlflow_tags = {"algo": tags[0], "env": tags[1], "seed": tags[2].removeprefix("seed")}
        trackers["mlflow"] = MlflowTracker(mlflow_uri, project, run_dir.name, record, mlflow_tags, ids.get("mlflow"))
    if trackers:
        atomic_write_json(run_dir / IDS_FILE, {name: tracker.id for name, tracker in trackers.items()})
    return list(trackers.values())
