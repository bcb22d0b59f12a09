"""device=auto|cpu|cuda: cuda without a GPU is one line wherever it is asked for; the replay buffer's device storage
(torch tensors, minibatches indexed where they live) holds and samples what the host storage does, and saves and
resumes; auto is the CPU here; the on-policy agents take their device; GPU results come back in one packed copy."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlzoo import ConfigError, make_agent
from rlzoo.agents import Agent
from rlzoo.buffers import ReplayBuffer
from rlzoo.devices import packed_to_host, to_host
from rlzoo.train import resolve

from .helpers import composed
from .test_ddpg import PointReach

CUDA_LINE = f"device=cuda needs a CUDA GPU, and torch {torch.__version__} sees none: use device=cpu or device=auto"


def test_cuda_without_a_gpu_is_one_line_from_the_cli_and_the_library(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on CI, also on a machine with a GPU
    with pytest.raises(ConfigError) as err:
        resolve(composed("algo=sac", "device=cuda"))
    assert str(err.value) == CUDA_LINE
    with pytest.raises(ConfigError) as err:
        make_agent("dqn", gym.make("CartPole-v1"), device="cuda")
    assert str(err.value) == CUDA_LINE


def test_cuda_for_an_algorithm_that_runs_on_the_cpu_is_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a GPU machine: the algorithm is the limit
    with pytest.raises(ConfigError) as err:
        resolve(composed("algo=sarsa", "device=cuda"))
    assert str(err.value) == "device=cuda is not available for algo=sarsa: it runs on the CPU"
    assert make_agent("sarsa", gym.make("rlzoo/GridWorld-v0"), device="auto").device == torch.device("cpu")
    with pytest.raises(ConfigError, match="device='tpu' is not allowed: choose one of auto, cpu, cuda"):
        make_agent("sac", PointReach(), device="tpu")


def test_auto_is_the_cpu_without_a_gpu_and_the_library_default_is_the_cpu():
    assert make_agent("sac", PointReach(), seed=0, hidden=[8]).device == torch.device("cpu")
    agent = make_agent("sac", PointReach(), seed=0, hidden=[8], device="auto")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert agent.device.type == expected and next(agent.actor.parameters()).device.type == expected


def fill(buffer: ReplayBuffer, n: int) -> None:
    rng = np.random.default_rng(0)
    for t in range(n):
        obs, nxt = rng.normal(size=(1, 3)).astype(np.float32), rng.normal(size=(1, 3)).astype(np.float32)
        buffer.add(obs, rng.uniform(-1, 1, (1, 2)).astype(np.float32), (float(t),), nxt, (t % 7 == 6,), (False,))


def test_device_storage_holds_and_samples_what_host_storage_does():
    kwargs = {"action_shape": (2,), "action_dtype": np.float32, "n_envs": 1, "n_step": 1, "gamma": 0.9}
    host, device = ReplayBuffer(8, (3,), **kwargs), ReplayBuffer(8, (3,), **kwargs, device=torch.device("cpu"))
    fill(host, 11)  # wraps around the ring
    fill(device, 11)
    assert isinstance(device.obs, torch.Tensor) and isinstance(host.obs, np.ndarray)
    for key in ("obs", "next_obs", "actions", "rewards", "discounts"):
        np.testing.assert_array_equal(getattr(device, key).numpy(), getattr(host, key))
    batch = device.sample_tensors(64, np.random.default_rng(1))
    rows = {tuple(r) for r in host.obs.tolist()}
    assert batch.obs.shape == (64, 3) and all(tuple(r) in rows for r in batch.obs.tolist())
    # a row's fields stay together: reward t was stored with discount 0 exactly when t % 7 == 6
    assert all(
        (d == 0.0) == (int(r) % 7 == 6) for r, d in zip(batch.rewards.tolist(), batch.discounts.tolist(), strict=True)
    )
    # checkpoints hold host arrays: one saved from device storage loads into host storage and back
    restored = ReplayBuffer(8, (3,), **kwargs)
    restored.load_state_dict(device.state_dict())
    np.testing.assert_array_equal(restored.obs, host.obs)
    again = ReplayBuffer(8, (3,), **kwargs, device=torch.device("cpu"))
    again.load_state_dict(device.state_dict())
    assert torch.equal(again.sample_tensors(16, np.random.default_rng(5)).obs, device.sample_tensors(16, None).obs)


def device_storage(agent) -> ReplayBuffer:
    return ReplayBuffer(1000, (1,), (1,), action_dtype=np.float32, n_envs=1, n_step=1, gamma=agent.config.gamma,
                        device=torch.device("cpu"))  # fmt: skip


def test_an_agent_on_device_storage_trains_saves_and_continues_exactly(tmp_path):
    agent = make_agent("sac", PointReach(), seed=0, hidden=[16], learning_starts=50, batch_size=32)
    agent.buffer = device_storage(agent)
    agent.learn(200)
    loaded = Agent.load(agent.save(tmp_path / "sac.pt"), PointReach())  # onto host storage: the same transitions
    assert loaded.buffer.size == agent.buffer.size == 200
    # but not the same minibatches (the rng draws them there, not the storage's index generator), and it says so
    assert loaded.state_inexact == "replay storage cpu then host: minibatch indices drawn anew"
    np.testing.assert_array_equal(loaded.buffer.obs[:200], agent.buffer.obs[:200].numpy())
    again = make_agent("sac", PointReach(), seed=0, hidden=[16], learning_starts=50, batch_size=32)
    again.buffer = device_storage(again)
    # onto device storage: the index generator continues (a copy, as a checkpoint file is: a live state dict shares
    # its optimiser's step tensors with the loaded one)
    again.load_state_dict(copy.deepcopy(agent.state_dict()))
    assert again.state_inexact is None
    agent.train_step()
    again.train_step()
    for a, b in zip(agent.actor.parameters(), again.actor.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_generator_saved_on_another_device_is_reseeded_and_said(tmp_path):
    agent = make_agent("sac", PointReach(), seed=0, hidden=[8], learning_starts=50).learn(100)
    state = agent.state_dict()
    state["generator_device"] = "cuda"  # as from a GPU run: a CUDA generator's state is not a CPU one's
    state["generator"] = torch.zeros(16, dtype=torch.uint8)
    other = make_agent("sac", PointReach(), seed=0, hidden=[8], learning_starts=50)
    other.load_state_dict(state)
    assert other.state_inexact == "saved on cuda, continued on cpu: noise generator re-seeded"
    other.learn(150)  # trains on


def test_packed_to_host_returns_each_tensor_with_its_shape_dtype_and_values():
    actions = torch.tensor([3, 0, 2**40 + 1])  # integers beyond float32's range stay exact through float64
    log_probs = torch.tensor([-0.1, -2.5, -7.3e-8], dtype=torch.float32)
    boxes = torch.arange(6, dtype=torch.float32).reshape(3, 2) / 3
    for packed, plain in zip(packed_to_host(actions, log_probs, boxes), to_host(actions, log_probs, boxes),
                             strict=True):  # fmt: skip
        assert packed.dtype == plain.dtype and packed.shape == plain.shape
        np.testing.assert_array_equal(packed, plain)
    assert np.shares_memory(to_host(log_probs)[0], log_probs.numpy())  # on the CPU: views, no copy


@pytest.mark.parametrize("algo", ["ppo", "a2c", "reinforce", "trpo", "qac", "off_policy_ac"])
def test_the_on_policy_agents_run_on_the_device_they_are_given(algo, monkeypatch):
    env = gym.make("CartPole-v1")
    agent = make_agent(algo, env, seed=0, device="auto", n_envs=2, n_steps=8)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert agent.device.type == expected
    assert {p.device.type for net in agent.networks() for p in net.parameters()} == {expected}
    agent.learn(32)
    assert isinstance(agent.act(env.reset(seed=0)[0]), int)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError) as err:
        make_agent(algo, env, device="cuda")
    assert str(err.value) == CUDA_LINE
