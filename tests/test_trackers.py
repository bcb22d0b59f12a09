"""Experiment trackers: W&B (offline) and MLflow (a local file store) receive the scalars TensorBoard gets, the
config, the tags and ``summary.json``; read back here from their own files."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from rlzoo.config import ConfigError
from rlzoo.trackers import flat, wandb_mode
from rlzoo.train import resolve, train

from .helpers import composed, scalars

BLOCK = 32768  # the .wandb file: a 7-byte header, then LevelDB-log records (crc32, length, type) in 32 KiB blocks


def wandb_records(path: Path) -> list:
    """The protobuf ``Record`` messages of a W&B run file (``run-<id>.wandb``)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, records, pending = path.read_bytes(), 7, [], b""
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a header is padding
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            break
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last part of one
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def key_of(item) -> str:
    """A W&B record item's key (newer versions write it as ``nested_key``)."""
    return item.key or "/".join(item.nested_key)


def wandb_run(run_dir: Path) -> tuple[dict, dict, list[str], dict]:
    """(scalars {tag: [(step, value)]}, config, tags, summary) of the offline W&B run in ``run_dir/wandb``."""
    (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    history: dict[str, list] = {}
    config, tags, summary = {}, [], {}
    for record in wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            items = {key_of(item): json.loads(item.value_json) for item in record.history.item}
            step = items.pop("_step")
            for key, value in items.items():
                if not key.startswith("_"):
                    history.setdefault(key, []).append((step, value))
        elif kind == "run":
            config = {key_of(item): json.loads(item.value_json) for item in record.run.config.update}
            config.pop("_wandb", None)  # W&B's own bookkeeping
            tags = list(record.run.tags)
        elif kind == "summary":
            summary.update({key_of(item): json.loads(item.value_json) for item in record.summary.update})
    return history, config, tags, summary


def mlflow_run(uri: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "rlzoo-test"]
    (run,) = client.search_runs([experiment.experiment_id])
    return client, run


def same_curves(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for tag in a:
        assert [s for s, _ in a[tag]] == [s for s, _ in b[tag]], tag
        assert [v for _, v in a[tag]] == pytest.approx([v for _, v in b[tag]], rel=1e-6), tag


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("trackers")
    uri = (root / "mlruns").as_uri()
    overrides = ["algo=qlearning", "total_steps=3000", "eval.every=1000", "checkpoint.every=0",
                 "log.backends=[tensorboard,wandb,mlflow]", "log.wandb_mode=offline", f"log.mlflow_uri={uri}",
                 "log.project=rlzoo-test"]  # fmt: skip
    train(resolve(composed(*overrides)), root / "run")
    return root / "run", uri


def test_wandb_and_mlflow_hold_what_tensorboard_holds(tracked_run):
    run_dir, uri = tracked_run
    board = scalars(run_dir)
    assert {"eval/return_mean", "truth/value_error", "charts/episodic_return"} <= set(board)
    history, config, tags, summary = wandb_run(run_dir)
    same_curves(board, history)
    client, run = mlflow_run(uri)
    same_curves(board, {tag: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, tag)]
                        for tag in run.data.metrics})  # fmt: skip
    record = json.loads((run_dir / "run.json").read_text())
    saved = json.loads((run_dir / "summary.json").read_text())
    assert config == record and tags == ["qlearning", "rlzoo/GridWorld-v0", "seed0"]  # in-process: the env id
    assert summary["eval_return_mean"] == saved["eval_return_mean"] and summary["best.step"] == saved["best"]["step"]
    assert run.data.tags["algo"] == "qlearning" and run.data.tags["seed"] == "0"
    assert run.data.params["algo_config.gamma"] == json.dumps(record["algo_config"]["gamma"])
    stored = Path(client.download_artifacts(run.info.run_id, "summary.json", str(run_dir.parent)))
    assert json.loads(stored.read_text()) == saved
    assert run.info.status == "FINISHED"
    assert json.loads((run_dir / "trackers.json").read_text())["mlflow"] == run.info.run_id


def test_tensorboard_can_be_left_out(tmp_path):
    uri = (tmp_path / "mlruns").as_uri()
    train(resolve(composed("algo=qlearning", "total_steps=500", "checkpoint.every=0", "log.backends=[mlflow]",
                           f"log.mlflow_uri={uri}", "log.project=rlzoo-test")), tmp_path / "run")  # fmt: skip
    assert not list((tmp_path / "run").glob("events.out.tfevents.*"))
    _, run = mlflow_run(uri)
    assert "eval/return_mean" in run.data.metrics


@pytest.mark.parametrize(("override", "message"), [
    ("log.backends=[tensorboard,neptune]", r"^log.backends=\['tensorboard', 'neptune'\] names 'neptune': choose from "
                                           r"tensorboard, wandb, mlflow$"),
    ("log.backends=[mlflow,mlflow]", r"names a backend twice$"),
    ("log.wandb_mode=sometimes", r"^log.wandb_mode='sometimes' is not allowed: choose one of auto, online, offline$"),
])  # fmt: skip
def test_bad_tracker_settings_are_one_line(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve(composed("algo=qlearning", override))


def test_a_missing_tracker_package_is_one_line_naming_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ConfigError, match=r"^log.backends=\['wandb'\] needs wandb: pip install -e '\.\[track\]'$"):
        resolve(composed("algo=qlearning", "log.backends=[wandb]"))


def test_wandb_goes_online_only_with_an_api_key(tmp_path):
    empty = tmp_path / "netrc"
    empty.write_text("")
    assert wandb_mode("auto", {}, str(empty)) == "offline"
    assert wandb_mode("auto", {"WANDB_API_KEY": "x"}, str(empty)) == "online"
    empty.write_text("machine api.wandb.ai login user password key\\n")
    assert wandb_mode("auto", {}, str(empty)) == "online"
    assert wandb_mode("offline", {"WANDB_API_KEY": "x"}) == "offline"


def test_flat_joins_nested_keys_with_dots():
    assert flat({"a": {"b": 1, "c": {"d": [2]}}, "e": "x"}) == {"a.b": 1, "a.c.d": [2], "e": "x"}


def test_a_resumed_run_goes_on_in_the_same_mlflow_run(tmp_path, monkeypatch):
    """Killed after its first checkpoint and resumed: one MLflow run, finished, holding every step TensorBoard has
    (the steps between the checkpoint and the kill twice, with the same values: the resume is exact)."""
    from .test_exact_resume import Killed, interrupted_at

    uri = (tmp_path / "mlruns").as_uri()
    overrides = ["algo=qlearning", "total_steps=3000", "checkpoint.every=1000", "log.backends=[tensorboard,mlflow]",
                 f"log.mlflow_uri={uri}", "log.project=rlzoo-test"]  # fmt: skip
    with monkeypatch.context() as patch:
        interrupted_at(patch, "qlearning", 1500)
        with pytest.raises(Killed):
            train(resolve(composed(*overrides)), tmp_path / "run")
    first = json.loads((tmp_path / "run" / "trackers.json").read_text())["mlflow"]
    train(resolve(composed(*overrides, "resume=true")), tmp_path / "run")
    client, run = mlflow_run(uri)
    assert run.info.run_id == first and run.info.status == "FINISHED"
    board = scalars(tmp_path / "run")
    for tag in ("eval/return_mean", "truth/value_error", "charts/episodic_return"):
        logged = {(m.step, float(np.float32(m.value))) for m in client.get_metric_history(first, tag)}
        assert set(board[tag]) == logged, tag  # TensorBoard keeps float32
