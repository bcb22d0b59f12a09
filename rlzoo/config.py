"""Structured config schemas (dataclasses) and their validation.

Every config node is merged into its dataclass schema with OmegaConf, so a wrong key or type
is caught, then each field's declared range or choices is checked. Every problem becomes one
``ConfigError`` line naming the key, the bad value and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import MISSING, OmegaConf
from omegaconf.errors import ConfigKeyError, MissingMandatoryValue, OmegaConfBaseException

from rlzoo.envs import CONTINUOUS_GRIDWORLD_ID, DEFAULT_LAYOUT, GRIDWORLD_ID, TEXT_FILE_ID, LayoutError
from rlzoo.envs.gridworld import OBS_MODES, world_layout

T = TypeVar("T")


class ConfigError(ValueError):
    """A user mistake in a config or its use: one line naming the key, the bad value and what is allowed."""


def seeds_label(seed: int, n_seeds: int = 1, trial_seeds: int = 1) -> str:
    """The seed part of a run or sweep-job directory's name (``conf/config.yaml``, resolver ``rlzoo_seeds``):
    ``seed<s>``, or ``seeds<s>-<s+K-1>`` for a job that trains K seeds (``n_seeds``, ``trial_seeds``)."""
    n = max(int(n_seeds), int(trial_seeds))
    return f"seed{seed}" if n == 1 else f"seeds{seed}-{int(seed) + n - 1}"


OmegaConf.register_new_resolver("rlzoo_seeds", seeds_label, replace=True)


def param(
    default: Any = MISSING,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: tuple[Any, ...] | None = None,
    help: str = "",
) -> Any:
    """A dataclass field with a declared range (``ge``/``gt``/``le``/``lt``) or set of ``choices``."""
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "help": help}
    if isinstance(default, (list, dict, tuple)):
        value = list(default) if isinstance(default, tuple) else default
        return field(default_factory=lambda: copy.deepcopy(value), metadata=meta)
    return field(default=default, metadata=meta)


def _interval(m: Mapping[str, Any]) -> str:
    lo = f"[{m['ge']}" if m["ge"] is not None else (f"({m['gt']}" if m["gt"] is not None else "(-inf")
    hi = f"{m['le']}]" if m["le"] is not None else (f"{m['lt']})" if m["lt"] is not None else "inf)")
    return f"{lo}, {hi}"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def check_fields(obj: Any, prefix: str = "") -> None:
    """Check every field of dataclass ``obj`` against its declared range/choices, recursively."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        key = _join(prefix, f.name)
        if is_dataclass(value):
            check_fields(value, key)
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}={value!r} is not allowed: give a finite number")
        m = f.metadata
        if value is None or not m:
            continue
        if m.get("choices") is not None and value not in m["choices"]:
            allowed = ", ".join(map(str, m["choices"]))
            raise ConfigError(f"{key}={value!r} is not allowed: choose one of {allowed}")
        bounds = [(m.get("ge"), lambda v, b: v >= b), (m.get("gt"), lambda v, b: v > b)]
        bounds += [(m.get("le"), lambda v, b: v <= b), (m.get("lt"), lambda v, b: v < b)]
        for bound, ok in bounds:
            if bound is not None and not ok(value, bound):
                raise ConfigError(f"{key}={value!r} is out of range: allowed {_interval(m)}")
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate(prefix)


def _schema_at(schema: type, path: list[str]) -> type | None:
    hints = typing.get_type_hints(schema)
    for part in path:
        t = hints.get(part)
        if not (isinstance(t, type) and is_dataclass(t)):
            return None
        schema, hints = t, typing.get_type_hints(t)
    return schema


def _describe(err: OmegaConfBaseException, schema: type, prefix: str) -> str:
    full_key = str(getattr(err, "full_key", "") or getattr(err, "key", "") or "")
    key = _join(prefix, full_key) if full_key else prefix or "config"
    parts = full_key.split(".")
    parent = _schema_at(schema, parts[:-1])
    if isinstance(err, ConfigKeyError):
        allowed = ", ".join(f.name for f in fields(parent)) if parent else "see the schema"
        return f"{key} is not a known key; allowed keys here: {allowed}"
    if isinstance(err, MissingMandatoryValue):
        return f"{key} is required but missing"
    expected = ""
    if parent is not None:
        hint = typing.get_type_hints(parent).get(parts[-1])
        if hint is not None:
            expected = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
    value = getattr(err, "value", None)
    msg = str(getattr(err, "msg", err)).splitlines()[0]
    return f"{key}={value!r} has the wrong type: expected {expected or 'another type'} ({msg})"


def build(schema: type[T], values: Any = None, prefix: str = "", overrides: Mapping[str, Any] | None = None) -> T:
    """Merge ``values`` (mapping, DictConfig or a ``schema`` instance) and ``overrides`` into ``schema``.

    Returns a validated dataclass instance; raises ``ConfigError`` with one clear line.
    """
    layers: list[Any] = [OmegaConf.structured(schema)]
    if values is not None:
        layers.append(OmegaConf.structured(values) if is_dataclass(values) else values)
    if overrides:
        layers.append(dict(overrides))
    try:
        obj = OmegaConf.to_object(OmegaConf.merge(*layers))
    except OmegaConfBaseException as err:
        raise ConfigError(_describe(err, schema, prefix)) from None
    check_fields(obj, prefix)
    return obj  # type: ignore[return-value]


def to_dict(obj: Any) -> dict[str, Any]:
    """A plain (JSON-able) dict of a config dataclass."""
    return dataclasses.asdict(obj)


# ---- run-level schemas -----------------------------------------------------------------------


@dataclass
class EvalConfig:
    """Evaluation before and after training and, with ``every`` > 0, during it (``eval/return_mean``)."""

    episodes: int = param(10, ge=1)
    every: int = param(0, ge=0, help="env steps between evaluations during training; 0: only at the end")
    deterministic: bool = True
    max_episode_steps: int = param(1000, ge=1, help="cap for envs without a time limit")
    video: bool = param(False, help="an MP4 of one episode per evaluation in videos/ (pip install -e '.[video]')")

    def validate(self, prefix: str) -> None:
        if self.video:
            from rlzoo.video import VideoUnavailable, require_video

            try:
                require_video(f"{_join(prefix, 'video')}=true")
            except VideoUnavailable as err:
                raise ConfigError(str(err)) from None


@dataclass
class CheckpointConfig:
    """Periodic checkpoints (``every`` env steps; 0 = only the final one) and how many to keep."""

    every: int = param(10000, ge=0)
    keep: int = param(3, ge=1)


@dataclass
class LogConfig:
    """Where scalars go (``backends``: TensorBoard event files, W&B, MLflow; ``rlzoo/trackers.py``) and the console
    progress bar (null = only on a terminal)."""

    backends: list[str] = param(["tensorboard"], help="any of tensorboard, wandb, mlflow")
    project: str = param("rlzoo", help="the W&B project and the MLflow experiment")
    mlflow_uri: str = param("mlruns", help="MLflow tracking URI; a path is a local file store")
    wandb_mode: str = param("auto", choices=("auto", "online", "offline"), help="auto: online only with an API key")
    progress: bool | None = None

    def validate(self, prefix: str) -> None:
        from rlzoo.trackers import BACKENDS, TRACK_EXTRA, missing_packages

        key = _join(prefix, "backends")
        for backend in self.backends:
            if backend not in BACKENDS:
                raise ConfigError(f"{key}={self.backends} names {backend!r}: choose from {', '.join(BACKENDS)}")
        if len(set(self.backends)) < len(self.backends):
            raise ConfigError(f"{key}={self.backends} names a backend twice")
        if missing := missing_packages(self.backends):
            raise ConfigError(f"{key}={self.backends} needs {' and '.join(missing)}: {TRACK_EXTRA}")
        if "://" not in self.mlflow_uri and not self.mlflow_uri.startswith("file:"):  # a path: a local file store
            self.mlflow_uri = Path(self.mlflow_uri).resolve().as_uri()


@dataclass
class RunConfig:
    """Top-level keys of ``conf/config.yaml`` (``algo`` and ``env`` have their own schemas)."""

    seed: int = param(0, ge=0)
    total_steps: int = param(MISSING, ge=1, help="budget in env steps (planners: iterations)")
    torch_threads: int | None = param(1, ge=1, help="intra-op CPU threads; 1 suits small networks")
    compile: bool = param(False, help="run the update through torch.compile (the replay actor-critics and PPO)")
    device: str = param("cpu", choices=("auto", "cpu", "cuda"), help="networks and replay storage; auto: a GPU if any")
    resume: bool = False
    trial_seeds: int = param(
        1,
        ge=1,
        help="seeds a job trains (seed, seed+1, …, each in seed<k>/); the job "
        "returns their mean eval return (an Optuna trial's objective)",
    )
    n_seeds: int = param(1, ge=1, help="seeds (seed, seed+1, …, each in seed<k>/) trained as one batch in one process")
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def validate(self, prefix: str) -> None:
        from rlzoo.devices import resolve_device

        resolve_device(self.device)  # device=cuda without a GPU: one line before anything is written
        if self.n_seeds > 1 and self.trial_seeds > 1:
            raise ConfigError(f"n_seeds={self.n_seeds} and trial_seeds={self.trial_seeds}: both train seeds seed, "
                              "seed+1, … in seed<k>/ (n_seeds as one batch); give one of them")  # fmt: skip


@dataclass
class AlgoConfig:
    """Base of every algorithm's schema (the budget is the top-level ``total_steps``, not an algorithm key)."""


@dataclass
class DiscountedConfig(AlgoConfig):
    """Algorithms of a discounted return: the discount factor γ."""

    gamma: float = param(0.9, ge=0.0, lt=1.0)


ALGO_SCHEMA_GROUP = "schema/algo"


def register_configs() -> None:
    """Store each registered algorithm's ``Config`` defaults in Hydra's ConfigStore as ``schema/algo/<name>``.

    ``conf/algo/<name>.yaml`` extends its entry (``- /schema/algo/<name>@algo`` in its defaults list), so the
    dataclass is the one place of every ``algo.*`` default. The stored node is the dataclass's values, untyped:
    the composed config is checked by ``build`` (``rlzoo.train.resolve``), which reports a wrong key, type or
    range in one line, where Hydra would stop at composition with its own multi-line error. Idempotent;
    ``rlzoo.conf`` calls it on import, before Hydra reads a config from it.
    """
    from hydra.core.config_store import ConfigStore

    from rlzoo.agents import AGENTS

    store = ConfigStore.instance()
    for name, cls in AGENTS.items():
        store.store(group=ALGO_SCHEMA_GROUP, name=name, node=OmegaConf.to_container(OmegaConf.structured(cls.Config)))
    for name, schema in ENV_SCHEMA_NODES.items():  # env files that extend their schema (conf/env/gym.yaml, …)
        store.store(group=ENV_SCHEMA_GROUP, name=name, node=OmegaConf.to_container(OmegaConf.structured(schema)))


# ---- env schemas -----------------------------------------------------------------------------


@dataclass
class GymEnvConfig:
    """Any registered gymnasium env: its id (``module:Name-v0`` imports ``module`` first, gymnasium's syntax), optional
    time limit and constructor kwargs."""

    id: str = MISSING
    max_episode_steps: int | None = param(None, ge=1)
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class GridWorldEnvConfig:
    """The GridWorld (``rlzoo/GridWorld-v0``; its rules: ARCHITECTURE.md, "The GridWorld")."""

    id: str = GRIDWORLD_ID
    layout: list[str] = param(DEFAULT_LAYOUT)
    layout_file: str | None = param(None, help="text file of the layout, one row a line (layout at its default)")
    r_boundary: float = -1.0
    r_forbidden: float = -1.0
    r_target: float = 1.0
    r_other: float = 0.0
    slip: float = param(0.0, ge=0.0, le=1.0)
    episodic: bool = False
    start: list[int] | None = None
    max_episode_steps: int | None = param(None, ge=1)
    obs: str = param("index", choices=OBS_MODES)

    def validate(self, prefix: str) -> None:
        try:
            world_layout(self.layout, self.start, self.layout_file)
        except LayoutError as err:
            if str(err).startswith("layout_file="):  # the message names the file: env.layout_file='…' …
                raise ConfigError(_join(prefix, str(err))) from None
            key = "start" if str(err).startswith("start") else "layout"
            raise ConfigError(f"{_join(prefix, key)}: {err}") from None
        if self.layout_file is not None:  # a resume or rlzoo.evaluate from another directory reads the same file
            self.layout_file = os.path.abspath(self.layout_file)


@dataclass
class ContinuousGridWorldEnvConfig(GridWorldEnvConfig):
    """The GridWorld with a continuous action in [−1, 1]² mapped to a move (``rlzoo/GridWorldContinuous-v0``)."""

    id: str = CONTINUOUS_GRIDWORLD_ID
    stay_radius: float = param(0.25, ge=0.0, lt=1.0, help="both |x|, |y| below it: stay")


@dataclass
class TextFileEnvConfig:
    """A text task from files (``rlzoo/TextFile-v0``, ``envs/text_file.py``): prompt rows and reward functions."""

    id: str = TEXT_FILE_ID
    train: str = param(MISSING, help="training prompt rows: .jsonl, .json or .csv with a 'prompt' column")
    test: str | None = param(None, help="held-out rows (null: a test_fraction share of train)")
    test_fraction: float = param(0.1, gt=0.0, lt=1.0, help="share of train held out when test is null")
    seed: int = param(0, help="which rows test_fraction holds out")
    reward_funcs: list[str] = param(MISSING, help="import paths 'package.module:function'")
    reward_weights: list[float] | None = param(None, help="one per reward function (null: 1 each)")
    chat_template: bool = param(False, help="write each prompt through the model's chat template")
    max_completion_length: int = param(16, ge=1, help="tokens per completion")

    def validate(self, prefix: str) -> None:
        for key in ("train", "test"):  # a resume or rlzoo.evaluate from another directory reads the same files
            if getattr(self, key) is not None:
                setattr(self, key, os.path.abspath(getattr(self, key)))


ENV_SCHEMAS: dict[str, type] = {GRIDWORLD_ID: GridWorldEnvConfig, CONTINUOUS_GRIDWORLD_ID: ContinuousGridWorldEnvConfig,
                                TEXT_FILE_ID: TextFileEnvConfig}  # fmt: skip
ENV_SCHEMA_GROUP = "schema/env"
ENV_SCHEMA_NODES: dict[str, type] = {"gym": GymEnvConfig, "text_file": TextFileEnvConfig}  # as schema/env/<name>


def build_env_config(values: Mapping[str, Any], prefix: str = "env") -> Any:
    """Validate an env config against the schema registered for its ``id`` (else ``GymEnvConfig``)."""
    env_id = values.get("id") if isinstance(values, Mapping) else None
    if not env_id:
        raise ConfigError(f"{prefix}.id is required: the gymnasium id of the env, e.g. {GRIDWORLD_ID}")
    return build(ENV_SCHEMAS.get(env_id, GymEnvConfig), values, prefix)
