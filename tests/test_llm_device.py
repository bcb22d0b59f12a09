"""device=auto|cpu|cuda for the language-model agents (GRPO, Kimi, DPO): cuda without a GPU is one line; the policy,
its reference copy, the optimiser state and the sampler's generator live on the agent's device; checkpoints move
between devices; and no tensor the LLM code makes stays on the host whatever the model's device (checked on the CPU
by recording every tensor factory and ``.numpy()`` call that code makes). The GPU cases are
``benchmarks/gpu_checks.py``, run on a lent GPU machine."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

import rlzoo.llm
from rlzoo import ConfigError, make_agent
from rlzoo.agents import Agent
from rlzoo.devices import resolve_device
from rlzoo.llm.packing import completion_lengths
from rlzoo.logging import RunLogger

from .test_devices import CUDA_LINE
from .test_grpo import TINY, first_digit_reward, task_env

DEVICES = ["cpu", "auto"]  # (on a GPU machine auto is the GPU; benchmarks/gpu_checks.py covers cuda explicitly)
LLM_DIR = str(Path(rlzoo.llm.__file__).resolve().parent) + os.sep
DPO_TINY = {**{key: TINY[key] for key in ("model", "eval_prompts", "log_every")}, "n_pairs": 8, "batch_size": 4,
            "num_generations": 4, "temperature": 3.0}  # fmt: skip


def digits_env() -> gym.Env:
    """Prompts "0:" … "9:", rewarded when the completion starts with the prompt's digit; a one-character
    demonstration (the answer) for the warm start."""
    env = task_env(first_digit_reward, [f"{d}:" for d in range(10)])
    env.task.demonstration = lambda row, rng: row["prompt"][0]
    return env


def agent_on(algo: str, device: str, **hyperparams) -> Agent:
    """A tiny ``algo`` agent on :func:`digits_env` and ``device``, with two warm-start steps."""
    base = DPO_TINY if algo == "dpo" else TINY
    options = {**base, "sft_steps": 2, "sft_batch_size": 4, "sft_target": None, **hyperparams}
    return make_agent(algo, digits_env(), seed=0, device=device, **options)


@pytest.mark.parametrize("algo", ["grpo", "kimi", "dpo"])
def test_cuda_without_a_gpu_is_one_line(monkeypatch, algo):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on CI, also on a machine with a GPU
    with pytest.raises(ConfigError) as err:
        agent_on(algo, "cuda")
    assert str(err.value) == CUDA_LINE
    assert agent_on(algo, "auto").device == torch.device("cpu")


def on_device(tensor: torch.Tensor, device: torch.device) -> bool:
    return tensor.device.type == device.type


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("algo", ["grpo", "dpo"])
def test_the_model_its_reference_and_the_optimiser_state_live_on_the_agents_device(algo, device):
    agent = agent_on(algo, device, beta=0.05)  # (a reference model for GRPO too)
    assert agent.device == resolve_device(device)
    assert all(on_device(p, agent.device) for p in agent.model.parameters())
    assert agent.generator.device.type == agent.device.type  # multinomial draws on the model's device
    before = [p.detach().cpu().clone() for p in agent.model.parameters()]
    agent.learn(1)
    assert agent.num_timesteps == 1
    assert any(not torch.equal(a, b.detach().cpu()) for a, b in zip(before, agent.model.parameters(), strict=True))
    assert all(on_device(t, agent.device) for t in [*agent.model.parameters(), *agent.ref_model.parameters()])
    moments = [v for s in agent.optimizer.state.values() for k, v in s.items() if k != "step"]
    assert moments and all(on_device(v, agent.device) for v in moments)


def test_initial_weights_and_bf16_autocast_follow_the_device():
    cpu = agent_on("grpo", "cpu")
    auto = agent_on("grpo", "auto", precision="bf16")  # autocast on the device its parameters are on
    for a, b in zip(cpu.model.parameters(), auto.model.parameters(), strict=True):
        assert torch.equal(a, b.cpu())  # built on the CPU under the seed, then moved
    logger = RunLogger()
    auto.learn(1, logger)
    assert np.isfinite(logger.last["losses/loss"])


def test_a_checkpoint_loads_onto_any_device_and_trains_on(tmp_path, saved_on="cpu", loaded_on="auto"):
    agent = agent_on("grpo", saved_on, beta=0.05).learn(1)
    loaded = Agent.load(agent.save(tmp_path / "g.pt"), env=digits_env(), device=loaded_on)
    assert loaded.device == resolve_device(loaded_on)
    for a, b in zip(agent.model.parameters(), loaded.model.parameters(), strict=True):
        assert on_device(b, loaded.device) and torch.equal(a.cpu(), b.cpu())
    assert loaded.ref_model is not None and all(on_device(p, loaded.device) for p in loaded.ref_model.parameters())
    prompts = [f"{d}:" for d in range(10)]
    assert loaded.complete(prompts) == agent.complete(prompts)  # greedy
    same = resolve_device(saved_on).type == loaded.device.type
    inexact = f"saved on {agent.device.type}, continued on {loaded.device.type}: sampling generator re-seeded"
    assert loaded.state_inexact == (None if same else inexact)
    loaded.learn(2)
    assert loaded.num_timesteps == 2


def test_a_generator_saved_on_another_device_is_reseeded_and_said():
    agent = agent_on("grpo", "cpu").learn(1)
    state = agent.state_dict()
    state["generator_device"] = "cuda"  # as from a GPU run: a CUDA generator's state is not a CPU one's
    state["generator"] = torch.zeros(16, dtype=torch.uint8)
    other = agent_on("grpo", "cpu")
    other.load_state_dict(state)
    assert other.state_inexact == "saved on cuda, continued on cpu: sampling generator re-seeded"
    assert all(torch.equal(a, b) for a, b in zip(agent.model.parameters(), other.model.parameters(), strict=True))
    other.learn(2)  # samples on with the re-seeded generator


# ---- no host tensors: every tensor the LLM code makes is made on a device it names ------------------------------

FACTORIES = {torch.tensor, torch.zeros, torch.ones, torch.full, torch.empty, torch.arange, torch.linspace, torch.eye,
             torch.rand, torch.randn, torch.randint, torch.randperm}  # fmt: skip


def llm_caller() -> str | None:
    """``file:line`` of the code that called the torch function being handled, when it is in ``rlzoo/llm``."""
    frame = sys._getframe(2)  # (0: here, 1: the handler, 2: the caller of the torch function)
    if not frame.f_code.co_filename.startswith(LLM_DIR):
        return None
    return f"{frame.f_code.co_filename[len(LLM_DIR) :]}:{frame.f_lineno}"


class HostTensors(TorchFunctionMode):
    """Records, as ``file:line function``, each call made by ``rlzoo/llm`` code that makes a tensor on the host
    whatever the device of the tensors it is used with: a factory without a ``device`` (``as_tensor`` of a tensor
    keeps its device) and ``.numpy()`` of a tensor that was not brought to the host with ``.cpu()``."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.on_host: list[torch.Tensor] = []  # the results of .cpu() (held: their ids are not reused)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func is torch.Tensor.cpu:
            self.on_host.append(out)
        elif func in FACTORIES or (func is torch.as_tensor and not isinstance(args[0], torch.Tensor)):
            if kwargs.get("device") is None and (where := llm_caller()):
                self.found.append(f"{where} {func.__name__}")
        elif func is torch.Tensor.numpy and not any(args[0] is t for t in self.on_host) and (where := llm_caller()):
            self.found.append(f"{where} numpy")
        return out


@contextlib.contextmanager
def host_tensors(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Inside, :class:`HostTensors` records; ``torch.from_numpy`` (which takes no device and no torch function mode
    sees) is recorded whenever ``rlzoo/llm`` code calls it. Yields the list of what was found."""
    mode, from_numpy = HostTensors(), torch.from_numpy

    def recorded_from_numpy(array: np.ndarray) -> torch.Tensor:
        frame = sys._getframe(1)
        if frame.f_code.co_filename.startswith(LLM_DIR):
            mode.found.append(f"{frame.f_code.co_filename[len(LLM_DIR) :]}:{frame.f_lineno} from_numpy")
        return from_numpy(array)

    monkeypatch.setattr(torch, "from_numpy", recorded_from_numpy)
    with mode:
        yield mode.found


def test_the_recorder_finds_host_tensors_made_in_llm_code(monkeypatch):
    probe = ("torch.zeros(3)\ntorch.ones(2, device='cpu')\nx = torch.tensor([1.0])\nx.numpy()\nx.cpu().numpy()\n"
             "torch.as_tensor(x)\ntorch.as_tensor([1])\ntorch.from_numpy(np.zeros(2))\n")  # fmt: skip
    with host_tensors(monkeypatch) as found:
        exec(compile(probe, LLM_DIR + "probe.py", "exec"), {"torch": torch, "np": np})
        torch.zeros(3)  # (not LLM code)
    assert found == ["probe.py:1 zeros", "probe.py:3 tensor", "probe.py:4 numpy", "probe.py:7 as_tensor",
                     "probe.py:8 from_numpy"]  # fmt: skip


RUNS = {
    "grpo_kl_overlong_packed": ("grpo", {"beta": 0.05, "overlong_buffer": 1, "packing": True,
                                         "gradient_accumulation_steps": 2, "precision": "bf16"}),
    "grpo_kl_in_reward_rloo": ("grpo", {"beta": 0.05, "kl_in_reward": True, "advantage_estimator": "rloo",
                                        "top_k": 5, "mask_truncated_completions": True}),
    "kimi": ("kimi", {"beta": 0.05, "num_minibatches": 2}),
    "dpo": ("dpo", {"nll_weight": 0.5, "packing": True}),
}  # fmt: skip


@pytest.mark.parametrize("run", RUNS)
def test_a_training_step_makes_no_host_tensor(monkeypatch, run):
    algo, options = RUNS[run]
    agent = agent_on(algo, "cpu", **options)
    with host_tensors(monkeypatch) as found:
        agent.learn(1)  # warm start, held-out evaluations, the reference copy, one step (DPO: its pairs)
        agent.complete(["3:", "14:"], temperature=1.0)
    assert found == []


def test_sampling_with_the_tasks_feedback_makes_no_host_tensor(monkeypatch):
    env = gym.make("rlzoo/TextTask-v0", task="gridworld_text")  # the task writes cells into the completions
    model = {"n_layer": 1, "d_model": 32, "n_head": 2, "max_len": 64}
    agent = make_agent("grpo", env, seed=0, **{**TINY, "model": model, "sft_steps": 0, "prompts_per_step": 2})
    with host_tensors(monkeypatch) as found:
        comp = agent.sample_batch().completions
    ended = torch.arange(comp.ids.shape[1]) >= completion_lengths(comp.ids, agent.tokenizer.eos_token_id)[:, None]
    assert (comp.mask[~ended] == 0).any()  # the task wrote tokens (no actions) before the completions ended
    assert found == []
