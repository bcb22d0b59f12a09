"""GRPO speed: one step (sample G = 8 completions for 16 prompts, score, one update) with the default TinyGPT on
the arithmetic task, and the two halves separately."""

from __future__ import annotations

import gymnasium as gym
import torch

from rlzoo import make_agent
from rlzoo.llm import group_advantages
from rlzoo.logging import RunLogger


def _agent():
    return make_agent(
        "grpo", gym.make("rlzoo/TextTask-v0", task="arithmetic"), seed=0, sft_steps=0, dynamic_sampling=False
    )  # one sampling round: a step's cost does not depend on its rewards


def test_grpo_one_step(benchmark):
    agent, logger = _agent(), RunLogger()
    agent.advance(1, logger)
    benchmark(agent.advance, 1, logger)
    benchmark.extra_info["completions_per_s"] = 16 * 8 / benchmark.stats["median"]


def test_grpo_sampling(benchmark):
    agent = _agent()
    benchmark(agent.sample_batch)


def test_grpo_update(benchmark):
    agent = _agent()
    batch = agent.sample_batch()
    n = len(batch.rewards)
    advantages = group_advantages(torch.from_numpy(batch.rewards).float(), 8) + torch.linspace(-1, 1, n)
    benchmark(agent.optimize, batch.completions, advantages)
