"""algo=kimi: Kimi k1.5's mirror-descent loss on GRPO's sampler, with the length reward in the rewards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlzoo import ConfigError, make_agent
from rlzoo.llm import kimi_loss, length_reward
from rlzoo.llm.decoding import completion_log_probs

from .test_grpo import TINY, first_digit_reward, reward_curve, starts_with_a_digit, task_env

DIGITS = [f"{d}:" for d in range(10)]


@pytest.mark.parametrize(("steps", "minibatches"), [(16, 1), (4, 4)])
def test_a_chunk_that_splits_a_group_is_refused(steps, minibatches):
    with pytest.raises(ConfigError, match=rf"algo\.gradient_accumulation_steps={steps} × num_minibatches="
                                          rf"{minibatches} splits groups: each chunk of 4 "):  # fmt: skip
        make_agent("kimi", task_env(first_digit_reward, DIGITS), seed=0, gradient_accumulation_steps=steps,
                   num_minibatches=minibatches, **{**TINY, "num_generations": 8})  # fmt: skip


def test_the_loss_is_kimi_loss_of_the_summed_log_probs_and_accumulates_by_whole_groups():
    agent = make_agent("kimi", task_env(first_digit_reward, DIGITS), seed=0, tau=0.3, **TINY)
    batch = agent.sample_batch()
    comp, rewards = batch.completions, agent.advantages(batch.rewards) + torch.linspace(0, 1, 32)
    mask = agent.completion_mask(comp)
    logp, _ = completion_log_probs(agent.model, comp.prompt_ids, comp.ids, agent.config.temperature)
    expected = kimi_loss((logp * mask).sum(1), (comp.old_logp * mask).sum(1), rewards, 4, tau=0.3)
    torch.testing.assert_close(agent.objective(logp, comp.old_logp, None, rewards, mask), expected)
    grads = []
    for chunks in (1, 4):  # 8 prompts × 4: chunks of 2 whole groups
        agent.model.zero_grad(set_to_none=True)
        agent.accumulate_gradients(comp, rewards, mask, chunks)
        grads.append(torch.cat([p.grad.flatten() for p in agent.model.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-7)


def test_the_length_reward_is_added_with_its_weight():
    agent = make_agent("kimi", task_env(first_digit_reward, DIGITS, max_len=4), seed=0, temperature=3.0,
                       length_reward_weight=0.5, **TINY)  # fmt: skip
    batch = agent.sample_batch()
    shaped, terms = agent.shaped_rewards(batch)
    lengths, correct = batch.completions.mask.sum(1), torch.from_numpy(batch.function_rewards[0] >= 1.0)
    bonus = 0.5 * length_reward(lengths, correct, 4).numpy()
    np.testing.assert_allclose(shaped, batch.rewards + bonus, rtol=1e-6)
    assert np.abs(bonus).sum() > 0 and terms["reward/length_reward"] == pytest.approx(bonus.mean(), abs=1e-6)


def test_kimi_raises_the_reward_of_a_toy_task_within_seconds():
    env = task_env(starts_with_a_digit, DIGITS, max_len=2)
    agent = make_agent("kimi", env, seed=0, learning_rate=3e-3, dynamic_sampling=False,
                       **{**TINY, "prompts_per_step": 16})  # fmt: skip
    rewards = reward_curve(agent, 80)
    assert np.mean(rewards[:5]) < 0.25 and np.mean(rewards[-10:]) > 0.8, (rewards[:10], rewards[-10:])
