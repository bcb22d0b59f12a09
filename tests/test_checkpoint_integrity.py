"""Checkpoint integrity: a SHA-256 of the body is checked on load, so corrupted files are never read as weights."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rlzoo
import rlzoo.checkpoint
from rlzoo.agents import Agent
from rlzoo.atomic import atomic_write_bytes
from rlzoo.checkpoint import (
    FORMAT_VERSION,
    LEGACY_FORMAT_VERSION,
    CheckpointError,
    _pack,
    latest_valid,
    load_checkpoint,
    save_checkpoint,
)
from rlzoo.envs import GRIDWORLD_ID


def trained_agent():
    """A value-iteration agent after a few sweeps, so its tables hold numbers other than zeros."""
    agent = rlzoo.make_agent("value_iteration", gym.make(GRIDWORLD_ID), seed=0)
    agent.learn(3)
    assert np.abs(agent.v).max() > 0
    return agent


class Saved(NamedTuple):
    """One saved agent's checkpoint: its path, its bytes and the length of its header line."""

    path: Path
    data: bytes
    header_len: int

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example: not 16 kB of bytes
        return f"Saved({self.path}, {len(self.data)} bytes)"


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Saved:
    """A saved agent's checkpoint; tests copy it, never change it."""
    path = trained_agent().save(tmp_path_factory.mktemp("ck") / "agent.pt")
    data = path.read_bytes()
    return Saved(path, data, data.index(b"\n") + 1)


def assert_same(a, b):
    """Deep equality of two loaded payloads (numpy arrays compared exactly)."""
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    else:
        assert a == b


def flip(data: bytes, draw, start: int, stop: int) -> bytes:
    """``data`` with 1 to 64 distinct bytes in ``[start, stop)`` XOR-ed with a non-zero mask (drawn by ``draw``)."""
    offsets = draw(st.lists(st.integers(start, stop - 1), min_size=1, max_size=64, unique=True), label="offsets")
    out = bytearray(data)
    for offset in offsets:
        out[offset] ^= draw(st.integers(1, 255), label=f"mask at {offset}")
    return bytes(out)


def test_a_saved_checkpoint_has_a_checksum_header_and_round_trips(saved, tmp_path):
    path, data, header_len = saved
    assert data.startswith(f"RLZOO-CHECKPOINT {FORMAT_VERSION} sha256=".encode()) and header_len == 17 + 2 + 72
    agent = Agent.load(path)
    original = trained_agent()
    np.testing.assert_array_equal(agent.v, original.v)
    np.testing.assert_array_equal(agent.q, original.q)
    assert agent.num_timesteps == original.num_timesteps == 3
    assert_same(load_checkpoint(path), load_checkpoint(agent.save(tmp_path / "again.pt")))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_flipped_bytes_in_the_payload_are_a_checksum_mismatch(saved, tmp_path, data):
    bad = tmp_path / "flipped.pt"
    bad.write_bytes(flip(saved.data, data.draw, saved.header_len, len(saved.data)))
    with pytest.raises(CheckpointError, match=r"checksum mismatch") as err:
        load_checkpoint(bad)  # never returns (different) numbers
    assert str(bad) in str(err.value)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), in_header=st.booleans())
def test_flipped_bytes_anywhere_in_the_file_are_refused(saved, tmp_path, data, in_header):
    bad = tmp_path / "flipped.pt"
    # half of the examples aim at the header line only (magic, version, digest, newline)
    bad.write_bytes(flip(saved.data, data.draw, 0, saved.header_len if in_header else len(saved.data)))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(bad)
    assert str(bad) in str(err.value)


@pytest.mark.parametrize("keep", [0, 1, 50, 91, 200, -1])
def test_truncated_checkpoints_are_refused(saved, tmp_path, keep):
    _, data, _ = saved
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[:keep] if keep >= 0 else data[:-1])
    with pytest.raises(CheckpointError, match=re.escape(str(bad))):
        load_checkpoint(bad)


def test_latest_valid_skips_a_corrupted_newest_checkpoint_with_a_warning(tmp_path, caplog):
    agent = trained_agent()
    older = agent.save(tmp_path / "step_0000000003.pt")
    agent.learn(5)  # the newer checkpoint holds different tables
    newest = agent.save(tmp_path / "step_0000000005.pt")
    data = bytearray(newest.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(b ^ 0x40 for b in data[len(data) // 2 : len(data) // 2 + 64])
    newest.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="rlzoo"):
        found = latest_valid(tmp_path)
    assert found is not None
    path, payload = found
    assert path == older and payload["state"]["num_timesteps"] == 3
    assert_same(payload, load_checkpoint(older))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"skipping corrupted checkpoint {newest}" in warnings[0] and "checksum mismatch" in warnings[0]


def write_format_1(path, payload) -> None:
    """Write ``payload`` exactly as ``save_checkpoint`` did in format 1 (a bare torch.save, no checksum)."""
    buf = io.BytesIO()
    torch.save({"rlzoo_checkpoint": LEGACY_FORMAT_VERSION, **_pack(payload)}, buf)
    path.write_bytes(buf.getvalue())


def test_a_checkpoint_of_the_previous_format_still_loads(saved, tmp_path):
    path, _, _ = saved
    payload = load_checkpoint(path)
    old = tmp_path / "old.pt"
    write_format_1(old, payload)
    assert old.read_bytes()[:4] == b"PK\x03\x04"
    assert_same(load_checkpoint(old), payload)
    agent, reference = Agent.load(old), Agent.load(path)
    np.testing.assert_array_equal(agent.q, reference.q)
    assert [agent.act(s) for s in range(25)] == [reference.act(s) for s in range(25)]
    (tmp_path / "step_0000000001.pt").write_bytes(old.read_bytes())
    assert latest_valid(tmp_path)[0] == tmp_path / "step_0000000001.pt"


def test_a_format_2_body_without_its_checksum_header_is_refused(saved, tmp_path):
    _, data, header_len = saved
    stripped = tmp_path / "stripped.pt"
    stripped.write_bytes(data[header_len:])  # a bare torch.save, but of format 2: the checksum cannot be dropped
    with pytest.raises(CheckpointError, match=r"not an rlzoo checkpoint \(format 1 expected\)"):
        load_checkpoint(stripped)


def test_a_foreign_file_is_not_an_rlzoo_checkpoint(tmp_path):
    foreign = tmp_path / "foreign.pt"
    foreign.write_text("hello")
    with pytest.raises(CheckpointError, match="not an rlzoo checkpoint"):
        load_checkpoint(foreign)
    torch_file = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(3)}, torch_file)
    with pytest.raises(CheckpointError, match="not an rlzoo checkpoint"):
        load_checkpoint(torch_file)


def test_the_save_stays_atomic_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    calls = []

    def recording(path, data):
        calls.append(path)
        return atomic_write_bytes(path, data)

    monkeypatch.setattr(rlzoo.checkpoint, "atomic_write_bytes", recording)
    target = save_checkpoint(tmp_path / "c.pt", {"x": np.arange(4.0)})
    assert calls == [tmp_path / "c.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]
    np.testing.assert_array_equal(load_checkpoint(target)["x"], np.arange(4.0))
