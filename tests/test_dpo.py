"""algo=dpo: offline DPO on preference pairs (read from JSONL, or built from the model's own samples)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rlzoo import ConfigError, make_agent
from rlzoo.llm import completion_log_probs, dpo_loss
from rlzoo.llm.preference_data import build_pairs, read_pairs, write_pairs
from rlzoo.logging import RunLogger

from .helpers import run_cli
from .test_grpo import TINY, starts_with_a_digit, task_env

DIGITS = [f"{d}:" for d in range(10)]
DPO_TINY = {**{key: TINY[key] for key in ("model", "eval_prompts", "log_every")}, "n_pairs": 40}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (None, r"cannot be read"),
        ('{"prompt": "1:", "chosen": "1"}\n', r"line 1 needs string columns prompt, chosen, rejected"),
        ('{"prompt": "1:", "chosen": "1", "rejected": "x"}\nnot json\n', r"line 2 is not JSON"),
        ("\n", r"holds no preference pair"),
    ],
)
def test_a_bad_preference_file_is_one_line_naming_it(tmp_path, text, error):
    path = tmp_path / "prefs.jsonl"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=f"^algo.data='{path}' {error}"):
        read_pairs(path)


def test_built_pairs_prefer_the_better_scored_sample_and_round_trip_through_jsonl(tmp_path):
    agent = make_agent("dpo", task_env(starts_with_a_digit, DIGITS, max_len=2), seed=0, temperature=3.0, **DPO_TINY)
    pairs = build_pairs(agent.policy, agent.task, agent.prompts, n_pairs=40, num_generations=8, temperature=3.0)
    assert len(pairs) == 40
    assert all(p["chosen_reward"] > p["rejected_reward"] for p in pairs)
    assert all(p["chosen"][:1].isdigit() and not p["rejected"][:1].isdigit() for p in pairs)
    assert read_pairs(write_pairs(tmp_path / "p.jsonl", pairs)) == pairs


def test_a_step_minimises_the_dpo_loss_of_the_sequences_log_probs():
    agent = make_agent("dpo", task_env(starts_with_a_digit, DIGITS, max_len=2), seed=0, temperature=3.0, beta=0.5,
                       loss_type="ipo", **DPO_TINY)  # fmt: skip
    agent.begin(10, RunLogger())
    pairs = agent.sample_pairs()
    chosen, rejected = agent.sequence_log_probs(agent.model, pairs)
    with torch.no_grad():
        ref = agent.sequence_log_probs(agent.ref_model, pairs)
    before = dpo_loss(chosen, rejected, *ref, beta=0.5, loss_type="ipo")
    torch.testing.assert_close(chosen, ref[0])  # the reference is the warm-started model itself
    agent.rng = np.random.default_rng(agent.seed)  # the step draws the same pairs again
    agent.sample_pairs = lambda: pairs
    stats = agent.advance(1, RunLogger())
    assert stats["loss"] == pytest.approx(float(before))
    assert {"rewards/chosen", "rewards/rejected", "rewards/accuracy", "rewards/margin"} <= set(stats)


def test_dpo_on_its_own_samples_teaches_a_toy_task_within_seconds():
    env = task_env(starts_with_a_digit, DIGITS, max_len=2)
    agent = make_agent("dpo", env, seed=0, temperature=2.0, learning_rate=3e-3, **{**DPO_TINY, "n_pairs": 200})
    before = agent.evaluate_heldout()["starts_with_a_digit"]
    logger = RunLogger()
    agent.learn(60, logger)
    assert before == 0.0 and agent.evaluate_heldout()["starts_with_a_digit"] == 1.0
    assert logger.last["rewards/accuracy"] == 1.0 and logger.last["rewards/margin"] > 0


@pytest.mark.slow  # two CLI processes: 13 s; algo.data in-process stays fast
def test_pairs_written_by_the_command_train_through_algo_data(tmp_path):
    small = ["algo.sft_steps=50", "algo.sft_target=null", "algo.eval_prompts=10", "algo.model.n_layer=1",
             "algo.model.d_model=32", "algo.model.n_head=2"]  # fmt: skip
    out = tmp_path / "prefs.jsonl"
    made = run_cli(str(out), *small, "algo.n_pairs=24", module="rlzoo.llm.preferences")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"{out}: 24 pairs") and len(read_pairs(out)) == 24
    again = run_cli(str(out), *small, module="rlzoo.llm.preferences")
    assert again.returncode == 2 and "exists; choose another file" in again.stderr
    trained = run_cli("algo=dpo", f"algo.data={out}", "total_steps=3", *small, f"hydra.run.dir={tmp_path / 'run'}")
    assert trained.returncode == 0, trained.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["preference_pairs"] == 24


def gridworld_text_dpo(**hyperparams):
    import gymnasium as gym

    env = gym.make("rlzoo/TextTask-v0", task="gridworld_text")
    model = {"n_layer": 1, "d_model": 32, "n_head": 2, "max_len": 40}
    return make_agent("dpo", env, seed=0, **{**DPO_TINY, "model": model, "sft_steps": 0, **hyperparams})


def test_the_action_mask_of_a_stored_completion_is_the_mask_it_was_sampled_with():
    agent = gridworld_text_dpo()
    rows = agent.task.train[:6]
    comp = agent.policy.sample([r["prompt"] for r in rows], 4, temperature=1.0)
    forced = 0
    for i, (ids, mask) in enumerate(zip(comp.ids.tolist(), comp.mask.tolist(), strict=True)):
        n = int(comp.mask[i].nonzero().max()) + 1  # through the last action (EOS, or truncation)
        assert agent.policy.action_mask(rows[i // 4]["prompt"], ids[:n]) == mask[:n]
        forced += mask[:n].count(0.0)
    assert forced > 10  # the cells the environment wrote were among them


def test_dpo_on_gridworld_text_scores_the_moves_not_the_cells_the_environment_writes():
    agent = gridworld_text_dpo()
    pairs = [{"prompt": "start 0 0:", "chosen": "D10R11", "rejected": "S00"}]
    agent.pairs = pairs
    agent.begin(1, RunLogger())
    prompt, ((chosen, chosen_mask), (_, rejected_mask)) = agent.encoded[0]
    assert chosen_mask == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0] and rejected_mask == [1.0, 0.0, 0.0, 1.0]  # + EOS
    logp, _ = completion_log_probs(agent.model, torch.tensor([prompt]), torch.tensor([chosen]))
    total, _ = agent.sequence_log_probs(agent.model, [0])
    torch.testing.assert_close(total[0], logp[0, [0, 3, 6]].sum())
    agent.pairs = [{"prompt": "start 0 0:", "chosen": "D10R12", "rejected": "S00"}]  # a cell the world never wrote
    with pytest.raises(ConfigError, match=r"^preference pair 0 \(chosen\): completion 'D10R12.*token 5 is '2'"):
        agent.begin(1, RunLogger())


def test_pairs_built_from_an_untrained_model_store_only_completions_their_text_gives_back():
    agent = gridworld_text_dpo(n_pairs=30, num_generations=4)  # samples special tokens, runs out of length
    agent.begin(1, RunLogger())  # builds the pairs and replays each through the task's feedback
    eos, completions = agent.tokenizer.eos_token_id, [c for _, cs in agent.encoded for c in cs]
    assert len(agent.pairs) == 30 and len(completions) == 60
    ended = [ids for ids, _ in completions if ids[-1] == eos]
    assert all(len(ids) == agent.max_new for ids, _ in completions if ids[-1] != eos)  # truncated: no EOS added
    assert 0 < len(ended) < 60 and all(len(ids) <= agent.max_new for ids in ended)
    assert sum(mask.count(0.0) for _, mask in completions) > 20  # with the cells the environment wrote
