"""The GRPO trainer: sampling, masks, gradient accumulation, dynamic sampling, learning, model paths."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlzoo import ConfigError, make_agent
from rlzoo.agents import Agent
from rlzoo.envs.text_tasks import TextTask, TextTaskEnv
from rlzoo.llm import (
    CharTokenizer,
    Completions,
    TinyGPT,
    TinyGPTConfig,
    completion_log_probs,
    group_advantages,
    sample_completions,
    save_tiny_hf_model,
)
from rlzoo.logging import RunLogger
from rlzoo.seeding import seeded_torch

TINY = {"model": {"n_layer": 1, "d_model": 32, "n_head": 2, "max_len": 16}, "prompts_per_step": 8,
        "num_generations": 4, "log_every": 5, "eval_prompts": 10}  # fmt: skip


def first_digit_reward(prompts, completions, **_):
    """1 when the completion starts with the prompt's digit: "7:" → "7…"."""
    return [float(c[:1] == p[0]) for p, c in zip(prompts, completions, strict=True)]


def constant_for_a(prompts, completions, **_):
    """0 for every completion of prompt "a:" (a group with identical rewards); for "b:", 1 when the completion
    starts with a character of even code (about half the samples)."""
    return [
        0.0 if p == "a:" else float(c[:1] != "" and ord(c[0]) % 2 == 0)
        for p, c in zip(prompts, completions, strict=True)
    ]


def task_env(reward, prompts, max_len=3) -> TextTaskEnv:
    env = TextTaskEnv("arithmetic")
    rows = [{"prompt": p} for p in prompts]
    env.task = TextTask("toy", rows, rows, [reward], [1.0], max_len)
    return env


def test_sampling_masks_through_eos_and_flags_truncation():
    torch.manual_seed(0)
    model = TinyGPT(TinyGPTConfig(vocab_size=10, max_len=16, n_layer=1, d_model=16, n_head=2))
    comp = sample_completions(model, torch.tensor([[1, 5], [1, 6]]), 3, 6, eos_id=2, pad_id=0,
                              generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert comp.ids.shape[0] == 6 and comp.old_logp.shape == comp.ids.shape
    assert comp.truncated.any() and not comp.truncated.all()  # this seed gives both kinds of completion
    for row, mask, trunc in zip(comp.ids, comp.mask, comp.truncated, strict=True):
        eos = (row == 2).nonzero()
        if len(eos):
            end = int(eos[0]) + 1
            assert mask[:end].all() and not mask[end:].any() and (row[end:] == 0).all() and not trunc
        else:
            assert mask.all() and trunc
    assert (comp.old_logp[comp.mask == 0] == 0).all() and (comp.old_logp[comp.mask == 1] < 0).all()


def test_greedy_sampling_is_deterministic_and_top_k_1_is_greedy():
    torch.manual_seed(1)
    model = TinyGPT(TinyGPTConfig(vocab_size=12, max_len=16, n_layer=1, d_model=16, n_head=2))
    prompt = torch.tensor([[1, 4, 5]])
    greedy = sample_completions(model, prompt, 2, 5, 2, 0, temperature=0.0).ids
    top1 = sample_completions(model, prompt, 2, 5, 2, 0, top_k=1, generator=torch.Generator().manual_seed(3)).ids
    torch.testing.assert_close(greedy, top1)
    assert torch.equal(greedy[0], greedy[1])


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo"])
def test_gradient_accumulation_gives_the_full_batch_gradient(loss_type):
    env = task_env(first_digit_reward, [f"{d}:" for d in range(10)])
    agent = make_agent("grpo", env, seed=0, loss_type=loss_type, beta=0.05, **TINY)
    agent.ref_model = TinyGPT(agent.model.config)
    batch = agent.sample_batch()
    comp = batch.completions
    adv = group_advantages(torch.from_numpy(batch.rewards).float(), 4) + torch.linspace(-1, 1, 32)  # non-trivial
    mask = agent.completion_mask(comp)
    grads = []
    for chunks in (1, 4):
        agent.model.zero_grad(set_to_none=True)
        agent.accumulate_gradients(comp, adv, mask, chunks)
        grads.append(torch.cat([p.grad.flatten() for p in agent.model.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-7)


def test_minibatches_take_one_step_each_on_their_share_and_the_later_ones_are_off_policy():
    env = task_env(first_digit_reward, [f"{d}:" for d in range(10)])
    agent = make_agent("grpo", env, seed=0, num_minibatches=4, learning_rate=0.03, **TINY)
    batch = agent.sample_batch()
    seen, objective = [], agent.objective

    def spy(logp, old_logp, ref, advantages, mask):
        seen.append((advantages.clone(), float(((logp - old_logp) * mask).abs().max())))
        return objective(logp, old_logp, ref, advantages, mask)

    agent.objective = spy
    advantages = torch.linspace(-1, 1, 32)
    agent.optimize(batch.completions, advantages)
    torch.testing.assert_close(torch.cat([a for a, _ in seen]), advantages)  # four consecutive quarters, in order
    assert [len(a) for a, _ in seen] == [8, 8, 8, 8]
    assert all(int(s["step"]) == 4 for s in agent.optimizer.state.values())  # one AdamW step each
    assert seen[0][1] < 1e-4 < 1e-2 < min(change for _, change in seen[1:])  # on-policy first, then not


def test_all_truncated_with_masking_gives_zero_gradient():
    env = task_env(first_digit_reward, [f"{d}:" for d in range(10)])
    agent = make_agent("grpo", env, seed=0, mask_truncated_completions=True, **TINY)
    comp = agent.sample_batch().completions
    truncated = Completions(comp.prompt_ids, comp.ids, comp.mask, comp.old_logp, torch.ones_like(comp.truncated))
    before = [p.clone() for p in agent.model.parameters()]
    stats = agent.optimize(truncated, torch.randn(32))
    assert stats["grad_norm"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, agent.model.parameters(), strict=True))


def test_dynamic_sampling_drops_groups_with_identical_rewards():
    env = task_env(constant_for_a, ["a:", "b:"])
    agent = make_agent("grpo", env, seed=0, dynamic_sampling=True, temperature=3.0, **TINY)
    batch = agent.sample_batch()
    # the first draw had "a:" groups (and maybe flat "b:" ones) ...
    assert batch.info.zero_std_groups > 0 and batch.info.rounds > 1
    assert len(batch.rows) == 8 and all(r["prompt"] == "b:" for r in batch.rows)  # ... none of which survived
    assert (batch.rewards.reshape(-1, 4).std(axis=1) > 0).all()
    assert batch.function_rewards.shape == (1, 32)


def test_dynamic_sampling_resamples_prompts_of_the_same_length():
    env = task_env(constant_for_a, ["a:", "b:", "bb:", "cc:"])
    for seed in range(6):
        agent = make_agent("grpo", env, seed=seed, dynamic_sampling=True, temperature=3.0, **TINY)
        batch = agent.sample_batch()
        assert len({len(r["prompt"]) for r in batch.rows}) == 1
        assert batch.completions.prompt_ids.shape[0] == len(batch.rewards) == 32
        assert 0.0 <= batch.info.sampled_reward_mean <= 1.0


def starts_with_a_digit(prompts, completions, **_):
    """1 when the completion starts with a digit (about 10 of the tokenizer's 86 symbols)."""
    return [float(c[:1].isdigit()) for c in completions]


def reward_curve(agent, steps: int) -> list[float]:
    """``reward/mean`` of each of ``steps`` learning steps, one ``learn`` call each."""
    logger, rewards = RunLogger(), []
    for t in range(1, steps + 1):
        agent.learn(t, logger)
        rewards.append(logger.last["reward/mean"])
    return rewards


def test_grpo_raises_the_reward_of_a_toy_task_within_seconds():
    env = task_env(starts_with_a_digit, [f"{d}:" for d in range(10)], max_len=2)
    # plain GRPO (no dynamic sampling): one batch of 16 prompts per step
    agent = make_agent(
        "grpo", env, seed=0, learning_rate=3e-3, dynamic_sampling=False, **{**TINY, "prompts_per_step": 16}
    )
    rewards = reward_curve(agent, 80)
    assert np.mean(rewards[:10]) < 0.2 and np.mean(rewards[-10:]) > 0.6, (rewards[:10], rewards[-10:])
    assert agent.evaluate_heldout()["starts_with_a_digit"] == 1.0


def first_character_code(prompts, completions, **_):
    """The completion's first character's code point (0 when empty): a random model's completions of one prompt
    almost never all start alike, so every group has an advantage to learn from."""
    return [float(ord(c[0])) if c else 0.0 for c in completions]


def test_a_saved_model_directory_trains_through_model_path(tmp_path):
    """The saved model's weights come from a fixed seed, not from whatever the tests before it drew from torch's
    global generator; the reward differs within a group, so two steps always have a gradient. (With the first-digit
    reward and an unseeded model, 13 of 30 global seeds gave no completion the right digit and no update.)"""
    tok = CharTokenizer()
    with seeded_torch(0):
        TinyGPT(TinyGPTConfig(tok.vocab_size, 16, 1, 32, 2)).save(tmp_path / "m", tok)
    env = task_env(first_character_code, [f"{d}:" for d in range(10)])
    agent = make_agent("grpo", env, seed=0, **{**TINY, "model": {"path": str(tmp_path / "m")}})
    before = [p.clone() for p in agent.model.parameters()]
    agent.learn(2)
    assert agent.num_timesteps == 2 and not torch.equal(before[0], next(agent.model.parameters()))


def test_save_load_and_bad_inputs(tmp_path):
    env = task_env(first_digit_reward, [f"{d}:" for d in range(10)])
    agent = make_agent("grpo", env, seed=0, **TINY).learn(3)
    loaded = Agent.load(agent.save(tmp_path / "g.pt"), env=env)
    assert [loaded.act(f"{d}:") for d in range(10)] == [agent.act(f"{d}:") for d in range(10)]
    with pytest.raises(ConfigError, match="algo=grpo needs a text task env"):
        make_agent("grpo", gym.make("CartPole-v1"))
    with pytest.raises(ConfigError, match=r"gradient_accumulation_steps=3 × num_minibatches=1 must divide .* = 32$"):
        make_agent("grpo", env, gradient_accumulation_steps=3, **TINY)
    with pytest.raises(ConfigError, match=r"gradient_accumulation_steps=2 × num_minibatches=3 must divide .* = 32$"):
        make_agent("grpo", env, gradient_accumulation_steps=2, num_minibatches=3, **TINY)
    with pytest.raises(ValueError, match="not a directory"):
        make_agent("grpo", env, **{**TINY, "model": {"path": str(tmp_path / "nope")}})


def test_a_hugging_face_model_saved_with_save_pretrained_trains_through_model_path(tmp_path):
    save_tiny_hf_model(tmp_path / "hf", n_layer=1, d_model=32, n_head=2)  # GPT-2 config, save_pretrained
    assert (tmp_path / "hf" / "config.json").exists() and (tmp_path / "hf" / "tokenizer.json").exists()

    env = task_env(starts_with_a_digit, [f"{d}:" for d in range(10)], max_len=2)
    options = {**TINY, "prompts_per_step": 16, "model": {"path": str(tmp_path / "hf")}}
    agent = make_agent("grpo", env, seed=0, learning_rate=3e-3, **options)
    assert type(agent.model).__name__ == "GPT2LMHeadModel"
    assert agent.tokenizer.decode(agent.tokenizer.encode("12+3=")) == "12+3="
    logger = RunLogger()
    rewards = []
    for t in range(1, 41):
        agent.learn(t, logger)
        rewards.append(logger.last["reward/mean"])
    assert np.mean(rewards[-10:]) > np.mean(rewards[:10]) + 0.2, rewards


def starts_with_7(prompts, completions, **_):
    return [float(c[:1] == "7") for c in completions]


def test_warm_start_stops_at_its_target_measured_on_prompts_it_never_trains_on():
    env = task_env(starts_with_7, [f"{i:02d}:" for i in range(100)])
    env.task.demonstration = lambda row, rng: "7"
    cfg = {**TINY, "eval_prompts": 20, "sft_steps": 1000, "sft_learning_rate": 3e-3, "sft_batch_size": 16}
    agent = make_agent("grpo", env, seed=0, sft_target=0.9, **cfg)
    trained = {r["prompt"] for bucket in agent.prompts.buckets for r in bucket}
    held = {r["prompt"] for r in agent.validation}
    assert len(held) == 20 and len(trained) == 80 and not held & trained
    before = agent.evaluate(agent.validation)["starts_with_7"]
    steps = agent.warm_start(RunLogger())
    assert steps % 100 == 0 and steps < 1000  # stopped at a check, well before the cap
    assert before < 0.9 <= agent.evaluate(agent.validation)["starts_with_7"]
    untargeted = make_agent("grpo", env, seed=0, sft_target=None, **{**cfg, "sft_steps": 150})
    assert untargeted.validation == [] and untargeted.warm_start(RunLogger()) == 150  # every prompt trains


def test_answer_characters_gives_partial_credit_by_position():
    from rlzoo.envs.text_tasks import answer_characters, arithmetic_task

    got = answer_characters(["", "", "", "", ""], ["55", " 54 ", "5", "555", "-5"], answer=["55"] * 4 + ["-4"])
    assert got == [1.0, 0.5, 0.5, 2 / 3, 0.5]
    task = arithmetic_task(digit_weight=0.5)
    total, per = task.rewards(task.test[:1], [task.test[0]["answer"][:-1] + "x"])
    assert per[0, 0] == 0.0 and total[0] == pytest.approx(0.5 * per[2, 0]) and per[2, 0] > 0


class Uncached(torch.nn.Module):
    """The same model seen as a plain ``input_ids → logits`` module: every call re-runs the whole sequence."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        out = self.model(input_ids)
        return out if isinstance(out, torch.Tensor) else out.logits


def tiny_models(tmp_path):
    torch.manual_seed(0)
    tiny = TinyGPT(TinyGPTConfig(vocab_size=12, max_len=16, n_layer=2, d_model=16, n_head=2))
    hf_dir = save_tiny_hf_model(tmp_path / "hf", n_layer=2, d_model=16, n_head=2, max_len=16, seed=1)
    from transformers import AutoModelForCausalLM

    return {"tinygpt": tiny, "hf": AutoModelForCausalLM.from_pretrained(hf_dir, local_files_only=True)}


@pytest.mark.parametrize("kind", ["tinygpt", "hf"])
def test_shared_prompt_cache_gives_the_log_probs_and_gradients_of_whole_sequences(tmp_path, kind):
    model = tiny_models(tmp_path)[kind]
    prompts = torch.tensor([[1, 5, 6], [1, 7, 3], [1, 4, 4]]).repeat_interleave(3, dim=0)  # groups of G = 3
    prompts[-1] = torch.tensor([1, 8, 9])  # a group cut short by a different prompt at the end
    ids = torch.randint(3, 12, (9, 5), generator=torch.Generator().manual_seed(2))
    results = []
    for m in (model, Uncached(model)):
        model.zero_grad()
        logp, entropy = completion_log_probs(m, prompts, ids, temperature=0.7)
        (logp * torch.linspace(-1, 1, 45).view(9, 5)).sum().backward()
        results.append((logp.detach(), entropy.detach(), [p.grad.clone() for p in model.parameters()]))
    (lc, ec, gc), (lf, ef, gf) = results
    torch.testing.assert_close(lc, lf, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ec, ef, atol=1e-5, rtol=1e-5)
    for a, b in zip(gc, gf, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kind", ["tinygpt", "hf"])
def test_cached_sampling_draws_what_whole_sequence_sampling_draws(tmp_path, kind):
    model = tiny_models(tmp_path)[kind].eval()
    prompts = torch.tensor([[1, 5, 6], [1, 7, 3]])
    draws = [sample_completions(m, prompts, 4, 6, eos_id=2, pad_id=0, generator=torch.Generator().manual_seed(5))
             for m in (model, Uncached(model))]  # fmt: skip
    assert torch.equal(draws[0].ids, draws[1].ids) and torch.equal(draws[0].mask, draws[1].mask)
    torch.testing.assert_close(draws[0].old_logp, draws[1].old_logp, atol=1e-5, rtol=1e-5)


def test_gridworld_text_optimal_values_are_the_best_returns_of_every_move_string():
    import itertools

    from rlzoo.envs.text_tasks import gridworld_text_task

    task = gridworld_text_task(horizon=4, gamma=0.9, annotate_cells=False)
    plans = ["".join(p) for p in itertools.product("URDLS", repeat=4)]
    for row in task.train[::3]:
        returns, _ = task.rewards([row] * len(plans), plans)  # format_weight 0: the return alone
        assert returns.max() == pytest.approx(row["optimal"]), row
    assert {r["prompt"] for r in task.train} == {f"start {i} {j}:" for i in range(5) for j in range(5)}


def test_gridworld_text_demonstrations_annotate_the_cells_the_gridworld_reaches():
    from rlzoo.envs import GridWorld
    from rlzoo.envs.text_tasks import MOVE_CHARS, gridworld_text_task

    task, env = gridworld_text_task(horizon=8), GridWorld()
    rng = np.random.default_rng(0)
    for row in task.train:
        demo = task.demonstration(row, rng)
        assert len(demo) == task.max_completion_length == 24
        env.reset(options={"state": row["start"]})
        for i in range(0, 24, 3):
            state, *_ = env.step(MOVE_CHARS.index(demo[i]))
            assert demo[i + 1 : i + 3] == f"{state // 5}{state % 5}"
    # the reward reads the moves only: wrong annotations change nothing, the format credit needs all of them
    row = task.train[0]
    good, wrong, plain = "D10D20R21R22D32S32S32S32", "D44D44R44R44D44S44S44S44", "DDRRDSSS"
    returns, per = task.rewards([row] * 3, [good, wrong, plain])
    assert returns[0] == returns[1] == returns[2] == pytest.approx(row["optimal"])
    assert list(per[1]) == [1.0, 1.0, 0.0]


def test_environment_feedback_is_written_into_completions_but_is_no_action():
    torch.manual_seed(0)
    model = TinyGPT(TinyGPTConfig(vocab_size=10, max_len=32, n_layer=1, d_model=16, n_head=2))

    def echo_twice(row, generated):
        """After every sampled token t ≥ 3 the environment writes 9, 9; nothing after 9s or special tokens."""
        return [9, 9] if generated[-1] not in (2, 9) and generated[-1] >= 3 else []

    comp = sample_completions(model, torch.tensor([[1, 5], [1, 6]]), 4, 12, eos_id=2, pad_id=0,
                              generator=torch.Generator().manual_seed(0), feedback=echo_twice)  # fmt: skip
    forced_seen = 0
    for row, mask, logp in zip(comp.ids.tolist(), comp.mask, comp.old_logp, strict=True):
        i = 0
        while i < len(row) and row[i] not in (0, 2):
            if row[i] >= 3 and row[i] != 9:  # a sampled action, then the two environment tokens
                assert mask[i] == 1 and logp[i] < 0
                if i + 2 < len(row):
                    assert row[i + 1 : i + 3] == [9, 9] and not mask[i + 1 : i + 3].any()
                    assert not logp[i + 1 : i + 3].any()
                    forced_seen += 1
                i += 3
            else:  # a sampled 9 or special token: no feedback
                assert mask[i] == 1
                i += 1
    assert forced_seen > 4


def test_gridworld_text_agent_sees_the_cells_the_environment_writes():
    from rlzoo.envs import GridWorld

    env = gym.make("rlzoo/TextTask-v0", task="gridworld_text")
    model = {"n_layer": 1, "d_model": 32, "n_head": 2, "max_len": 40}
    agent = make_agent("grpo", env, seed=0, **{**TINY, "model": model})
    rows, grid = env.unwrapped.task.train, GridWorld()
    moves_checked = 0
    for _ in range(4):  # an untrained model writes moves among other characters; after each move, its cell
        for row, text in zip(rows, agent.complete([r["prompt"] for r in rows], temperature=1.0), strict=True):
            grid.reset(options={"state": row["start"]})
            i = 0
            while i < len(text):
                if text[i] in "URDLS":
                    state, *_ = grid.step("URDLS".index(text[i]))
                    assert text[i + 1 : i + 3] == f"{state // 5}{state % 5}"[: len(text) - i - 1], (row, text)
                    moves_checked += 1
                    i += 3
                else:
                    i += 1
    assert moves_checked > 20
