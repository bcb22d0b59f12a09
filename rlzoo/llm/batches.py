"""One GRPO step's batch, sampled with DAPO's dynamic sampling (Yu et al., 2025) as an option: groups whose G
rewards are all equal have zero advantage and no gradient, so they are replaced by fresh prompts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rlzoo.envs.text_tasks import RewardFn, TextTask
from rlzoo.llm.decoding import Completions
from rlzoo.llm.policy import LanguagePolicy
from rlzoo.llm.prompts import PromptBuckets, Row

MAX_ROUNDS = 4  # sampling rounds of dynamic sampling; the last one fills the batch whatever its rewards


@dataclass
class SamplingInfo:
    """How a batch was sampled: zero-std groups in the first round, the mean reward of every completion sampled
    (kept or not: an unbiased estimate of the policy's reward) and the number of rounds."""

    zero_std_groups: int
    sampled_reward_mean: float
    rounds: int


@dataclass
class GroupBatch:
    """Prompt rows (P), their G completions each (N = P·G rows, a group's rows adjacent), the total rewards
    (N,), the rewards of each reward function (F, N; NaN where a function does not score) and sampling info."""

    rows: list[Row]
    completions: Completions
    rewards: np.ndarray
    function_rewards: np.ndarray
    info: SamplingInfo

    def scalars(self, prompts_per_step: int, reward_funcs: list[RewardFn]) -> dict[str, float]:
        """Reward and completion-length diagnostics (``reward/*``, ``completions/*``), with the mean and std of
        each reward function over the completions it scores (``reward/<name>_{mean,std}``)."""
        lengths = self.completions.mask.sum(1)
        out = {"reward/mean": self.info.sampled_reward_mean, "reward/kept_mean": self.rewards.mean(),
               "reward/std": self.rewards.std(), "reward/sampling_rounds": self.info.rounds,
               "reward/frac_reward_zero_std": self.info.zero_std_groups / prompts_per_step,
               "completions/length_mean": float(lengths.mean()), "completions/length_max": float(lengths.max()),
               "completions/truncated_ratio": float(self.completions.truncated.float().mean())}  # fmt: skip
        for f, values in zip(reward_funcs, self.function_rewards, strict=True):
            out[f"reward/{f.__name__}_mean"] = float(np.nanmean(values))
            out[f"reward/{f.__name__}_std"] = float(np.nanstd(values))
        return out

    def samples_text(self, decode: Callable[[torch.Tensor], str], num_generations: int, n: int = 4) -> str:
        """The first completion of each of the first ``n`` prompts, as ``prompt → 'completion'`` lines."""
        firsts = self.completions.ids[::num_generations][:n]
        return "\n\n".join(f"{r['prompt']} → {decode(c)!r}" for r, c in zip(self.rows[:n], firsts, strict=False))


def sample_groups(policy: LanguagePolicy, task: TextTask, prompts: PromptBuckets, *, prompts_per_step: int,
                  num_generations: int, temperature: float = 1.0, top_k: int = 0,
                  dynamic_sampling: bool = False) -> GroupBatch:  # fmt: skip
    """``num_generations`` completions of each of ``prompts_per_step`` training prompts of one drawn length,
    scored by the task. With ``dynamic_sampling``, groups whose G rewards are all equal are dropped and replaced
    by fresh prompts of the same length, for up to ``MAX_ROUNDS`` rounds (the last keeps every group)."""
    G = num_generations
    rows: list[Row] = []
    parts: list[tuple[Completions, np.ndarray, np.ndarray]] = []
    zero_std, sampled, bucket = 0, [], prompts.draw_bucket()
    for round_ in range(MAX_ROUNDS if dynamic_sampling else 1):
        batch_rows = prompts.sample(prompts_per_step - len(rows), bucket)
        comp = policy.sample([r["prompt"] for r in batch_rows], G, temperature, top_k)
        texts = [policy.tokenizer.decode(row) for row in comp.ids.tolist()]  # one copy to the host
        total, per = task.rewards([r for r in batch_rows for _ in range(G)], texts)
        sampled.append(total)
        flat = total.reshape(-1, G).std(axis=1) == 0
        if round_ == 0:
            zero_std = int(flat.sum())
        keep = ~flat if dynamic_sampling and round_ < MAX_ROUNDS - 1 else np.ones(len(batch_rows), dtype=bool)
        kept = np.repeat(keep, G)
        rows += [r for r, k in zip(batch_rows, keep, strict=True) if k]
        parts.append((comp.select(torch.as_tensor(kept, device=comp.ids.device)), total[kept], per[:, kept]))
        if len(rows) >= prompts_per_step:
            break
    info = SamplingInfo(zero_std, float(np.concatenate(sampled).mean()), len(sampled))
    completions = Completions.concat([p[0] for p in parts], policy.tokenizer.pad_token_id)
    return GroupBatch(rows, completions, np.concatenate([p[1] for p in parts]),
                      np.concatenate([p[2] for p in parts], axis=1), info)  # fmt: skip
