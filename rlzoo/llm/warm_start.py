"""The supervised warm start before GRPO: minimise −Σ_t log π_θ(y_t | prompt, y_<t) over the tokens of a text
task's demonstrations y (+ EOS), averaged over the global batch's tokens."""

from __future__ import annotations

import numpy as np
import torch

from rlzoo import distributed
from rlzoo.envs.text_tasks import TextTask
from rlzoo.llm.decoding import completion_log_probs
from rlzoo.llm.evaluation import evaluate_greedy
from rlzoo.llm.models import model_device
from rlzoo.llm.policy import LanguagePolicy
from rlzoo.llm.prompts import PromptBuckets, Row, prompt_tensor, right_padded
from rlzoo.logging import RunLogger

CHECK_EVERY = 100  # warm-start steps between logged losses and validation checks


def supervised_warm_start(policy: LanguagePolicy, task: TextTask, prompts: PromptBuckets, validation: list[Row],
                          logger: RunLogger, rng: np.random.Generator, *, steps: int, batch_size: int,
                          learning_rate: float, max_grad_norm: float, target: float | None, packing: bool,
                          train_model: torch.nn.Module | None = None) -> int:  # fmt: skip
    """At most ``steps`` AdamW steps (a fresh optimiser at ``learning_rate``) of cross-entropy on
    ``task.demonstration(row, rng)`` for batches of ``batch_size`` same-length training prompts; with
    ``target``, stops at the first check (every 100 steps) where the greedy first-reward mean on ``validation``
    (averaged over torchrun ranks) reaches it; the loss pass packed without padding when ``packing``. Only the
    parameters that require gradients are trained (LoRA's adapters, when on). The loss calls ``train_model`` (the
    policy's model in its torchrun wrapper, :func:`rlzoo.distributed.wrap`; the model itself by default), with the
    batches on the model's device. Returns the number of steps taken (0 without demonstrations)."""
    if steps == 0 or task.demonstration is None:
        return 0
    model, tokenizer = policy.model, policy.tokenizer
    train_model, device = model if train_model is None else train_model, model_device(model)
    key = task.reward_funcs[0].__name__
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=learning_rate)
    model.train()
    for step in range(steps):
        rows = prompts.sample(batch_size)
        targets = [[*tokenizer.encode(task.demonstration(r, rng)), tokenizer.eos_token_id] for r in rows]
        ids = right_padded(targets, tokenizer.pad_token_id, device)
        mask = right_padded([[1.0] * len(t) for t in targets], 0.0, device)
        prompt_ids = prompt_tensor(tokenizer, [r["prompt"] for r in rows], device)
        logp, _ = completion_log_probs(train_model, prompt_ids, ids, packing=packing, eos_id=tokenizer.eos_token_id)
        loss = -(logp * mask).sum() / distributed.all_reduce_sum(mask.sum())  # token mean of the global batch
        opt.zero_grad(set_to_none=True)
        (loss * distributed.gradient_scale()).backward()  # the wrapper averages the ranks' gradients
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        opt.step()
        if (step + 1) % CHECK_EVERY == 0:
            logger.scalar("sft/loss", loss.item(), step + 1)
            if target is not None:
                # the ranks' mean: one stopping decision for every rank
                with distributed.gathered(model):
                    scores = evaluate_greedy(policy, task, validation)
                score = float(distributed.all_reduce_mean(torch.tensor(scores[key], device=device)))
                model.train()
                logger.scalar(f"sft/validation_{key}", score, step + 1)
                if score >= target:
                    break
    return step + 1
