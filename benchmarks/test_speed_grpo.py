"""GRPO speed: one step (sample G = 8 completions for 16 prompts, score, one update) with the default TinyGPT on
the arithmetic task, and the two halves separately."""

from __future__ import annotations

import gymnasium as gym
import torch

from rlzoo import make_agent
from rlzoo.agents.grpo import group_advantages
from rlzoo.logging import RunLogger


def _agent():
    return make_agent(
        "grpo", gym.make("rlzoo/TextTask-v0", task="arithmetic"), seed=0, sft_steps=0, dynamic_sampling=False
    )  # one sampling round: a step's cost does not depend on its rewards


def test_grpo_one_step(benchmark):
    agent, logger = _agent(), RunLogger()
    agent.step(logger, 1)
    benchmark(agent.step, logger, 2)
    benchmark.extra_info["completions_per_s"] = 16 * 8 / benchmark.stats["median"]


def test_grpo_sampling(benchmark):
    agent = _agent()
    benchmark(agent.sample_batch)


def test_grpo_update(benchmark):
    agent = _agent()
    _, comp, total, _, _ = agent.sample_batch()
    advantages = group_advantages(torch.from_numpy(total).float(), 8) + torch.linspace(-1, 1, len(total))
    benchmark(agent.optimize, comp, advantages)
