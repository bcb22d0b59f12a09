"""One measured GRPO run in a fresh process, for ``llm_memory.py`` and ``trl_grpo_compare.py``:

    python benchmarks/llm_bench_child.py rlzoo|trl CONFIG.json RESULT.json

``rlzoo`` runs in rlzoo's interpreter: ``make_agent("grpo", arithmetic task)`` on the model directory, then
``agent.learn(warmup_steps + steps)`` — the training loop, so the configured precision's autocast is on as in a real
run — with ``advance`` (one GRPO step: sample, score, optimise) timed and its peak RSS taken. ``trl`` runs in TRL's
virtual environment: ``GRPOTrainer`` on the same directory, prompts and batch, ``max_steps = warmup_steps + steps``,
each optimiser step (``on_step_begin`` → ``on_step_end``: generation, rewards, loss, backward, clip, AdamW) timed and
its peak RSS taken. Both write the same result fields. Never prints a number it did not measure: a setting the
installed rlzoo lacks is an ``error`` in the result, not a run.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from llm_bench_common import PeakRSS

TRACKER = PeakRSS()
T0 = time.perf_counter()


def main() -> None:
    side, cfg_file, out_file = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    cfg = json.loads(cfg_file.read_text())
    try:
        result = {"rlzoo": run_rlzoo, "trl": run_trl}[side](cfg)
    except UnsupportedSetting as err:
        result = {"side": side, "error": str(err)}
        out_file.write_text(json.dumps(result, indent=1))
        sys.exit(3)
    result["process_peak_rss_bytes"] = TRACKER.whole_life()
    result["process_s"] = time.perf_counter() - T0
    out_file.write_text(json.dumps(result, indent=1))


class UnsupportedSetting(Exception):
    """A requested setting the installed library does not have."""


def _steps_summary(steps: list[dict[str, Any]], warmup: int) -> dict[str, Any]:
    measured = steps[warmup:]
    if not measured:
        return {}
    seconds = sum(s["time_s"] for s in measured)
    times = sorted(s["time_s"] for s in measured)
    mid = len(times) // 2
    median = times[mid] if len(times) % 2 else (times[mid - 1] + times[mid]) / 2
    return {"median_step_s": median,
            "completions_per_s": sum(s["completions"] for s in measured) / seconds,
            "completion_tokens_per_s": sum(s["completion_tokens"] for s in measured) / seconds,
            "measured_step_peak_rss_bytes": max(s["peak_rss_bytes"] for s in measured)}  # fmt: skip


def _param_summary(model: Any) -> dict[str, Any]:
    total, trained, by_dtype = 0, 0, {}
    seen = set()
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trained += p.numel() if p.requires_grad else 0
        key = f"{str(p.dtype).removeprefix('torch.')}{'' if p.requires_grad else ' frozen'}"
        by_dtype[key] = by_dtype.get(key, 0) + p.numel()
    return {"parameters": total, "trained_parameters": trained, "parameters_by_dtype": by_dtype}


# ---- rlzoo ------------------------------------------------------------------------------------------------------

OFF = {"precision": "fp32", "gradient_checkpointing": False, "packing": False, "lora": {"r": 0}}


def run_rlzoo(cfg: dict[str, Any]) -> dict[str, Any]:
    import dataclasses

    import torch

    torch.set_num_threads(cfg["threads"])
    import gymnasium as gym

    # load_pretrained's imports, here because TRL's side has them imported: the RSS after imports and the load time
    # then mean the same on both sides
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

    import rlzoo  # noqa: F401  (registers rlzoo/TextTask-v0)
    from rlzoo import make_agent
    from rlzoo.agents.registry import agent_class
    from rlzoo.logging import RunLogger

    if cfg.get("lora_r"):
        import peft  # noqa: F401

    rss_imported = TRACKER.current()
    hp: dict[str, Any] = dict(
        sft_steps=0, sft_target=None, eval_prompts=1, log_every=10**9,  # no warm start; 1 held-out prompt at begin/end
        dynamic_sampling=False,  # TRL has none: one sampling round per step on both sides
        prompts_per_step=cfg["prompts"], num_generations=cfg["G"], max_completion_length=cfg["completion_length"],
        gradient_accumulation_steps=cfg["grad_accum"], learning_rate=cfg["learning_rate"], temperature=1.0,
        beta=0.0, loss_type="grpo", num_iterations=1, model={"path": cfg["model_dir"]},
    )  # fmt: skip
    for key in ("precision", "gradient_checkpointing", "packing"):
        if cfg.get(key) is not None:
            hp[key] = cfg[key]
    if cfg.get("lora_r") == 0:
        hp["lora"] = {"r": 0}  # full fine-tuning
    elif cfg.get("lora_r") is not None:
        hp["lora"] = {"r": cfg["lora_r"], "alpha": cfg["lora_alpha"], "dropout": cfg["lora_dropout"],
                      "target_modules": cfg["lora_target_modules"]}  # fmt: skip
    fields = {f.name for f in dataclasses.fields(agent_class("grpo").Config)}
    # a setting rlzoo does not have yet is dropped only when it asks for what rlzoo does without it (fp32, no
    # checkpointing, no LoRA, no packing); anything else is an error, never a run under another name
    absent = [k for k, off in OFF.items() if k in hp and k not in fields and hp[k] == off]
    for key in absent:
        del hp[key]
    missing = sorted(set(hp) - fields)
    if missing:
        raise UnsupportedSetting(f"this rlzoo's GRPO has no algo.{', algo.'.join(missing)}")

    env = gym.make("rlzoo/TextTask-v0", task="arithmetic", digit_weight=cfg["digit_weight"])
    start = time.perf_counter()
    agent = make_agent("grpo", env, seed=cfg["seed"], **hp)
    load_s = time.perf_counter() - start
    steps: list[dict[str, Any]] = []
    counts: list[tuple[int, float]] = []
    advance, sample_batch = agent.advance, agent.sample_batch

    def counted_sample_batch():
        batch = sample_batch()
        counts.append((int(batch.completions.ids.shape[0]), float(batch.completions.mask.sum())))
        return batch

    def timed_advance(n_steps, logger):
        rss_before = TRACKER.current()
        TRACKER.start_window()
        t = time.perf_counter()
        out = advance(n_steps, logger)
        dt = time.perf_counter() - t
        completions, tokens = counts[-1]
        steps.append({"time_s": dt, "completions": completions, "completion_tokens": tokens,
                      "peak_rss_bytes": TRACKER.end_window(), "rss_before_bytes": rss_before,
                      "reward_mean": out.get("reward/mean"),
                      "generation_tokens_per_s": out.get("charts/generation_tokens_per_s"),
                      "training_tokens_per_s": out.get("charts/training_tokens_per_s")})  # fmt: skip
        return out

    agent.advance, agent.sample_batch = timed_advance, counted_sample_batch
    total = cfg["warmup_steps"] + cfg["steps"]
    start = time.perf_counter()
    agent.learn(total, RunLogger())
    learn_s = time.perf_counter() - start
    if len(steps) != total:
        raise RuntimeError(f"learn({total}) ran {len(steps)} GRPO steps")
    return {"side": "rlzoo", "settings": {k: v for k, v in hp.items() if k != "model"},
            "settings_absent_in_rlzoo": absent, "load_s": load_s,
            "learn_s": learn_s, "rss_after_imports_bytes": rss_imported, "steps": steps,
            **_steps_summary(steps, cfg["warmup_steps"]), **_param_summary(agent.model),
            "torch": torch.__version__, "threads": torch.get_num_threads()}  # fmt: skip


# ---- TRL --------------------------------------------------------------------------------------------------------


def exact_answer(prompts: list[str], completions: list[str], answer: list[str], **_: Any) -> list[float]:
    """rlzoo's arithmetic reward (``rlzoo.envs.text_tasks.exact_answer``)."""
    return [float(c.strip() == a) for c, a in zip(completions, answer, strict=True)]


def answer_characters(prompts: list[str], completions: list[str], answer: list[str], **_: Any) -> list[float]:
    """rlzoo's partial credit (``rlzoo.envs.text_tasks.answer_characters``)."""
    out = []
    for c, a in zip(completions, answer, strict=True):
        c = c.strip()
        out.append(sum(x == y for x, y in zip(c, a, strict=False)) / max(len(c), len(a), 1))
    return out


def run_trl(cfg: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(cfg["threads"])
    import peft
    import transformers
    import trl
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    rss_imported = TRACKER.current()
    model_dir = cfg["model_dir"]
    rows = json.loads(Path(cfg["prompt_rows_file"]).read_text())
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    # TRL tokenizes plain-text prompts with tokenizer(text=...); rlzoo writes <bos> + the prompt's characters
    expected = cfg["expected_prompt_ids"]
    prefix = next((p for p in ("", tokenizer.bos_token or "") if tokenizer(text=p + rows[0]["prompt"])["input_ids"]
                   == expected), None)  # fmt: skip
    if prefix is None:
        raise RuntimeError(f"TRL's prompt ids {tokenizer(text=rows[0]['prompt'])['input_ids']} are not rlzoo's "
                           f"{expected}")  # fmt: skip
    dataset = Dataset.from_list([{"prompt": prefix + r["prompt"], "answer": r["answer"]} for r in rows])

    precision = cfg.get("precision") or "fp32"
    lora = bool(cfg.get("lora_r"))
    # rlzoo's precisions: fp32; bf16 = autocast with fp32 trained weights and bf16 frozen ones (LoRA's base);
    # bf16_pure = bf16 weights (LoRA adapters fp32 through peft's autocast_adapter_dtype, as in rlzoo)
    dtype = {"fp32": "float32", "bf16": "bfloat16" if lora else "float32", "bf16_pure": "bfloat16"}[precision]
    token_counts: list[tuple[int, int]] = []

    def counted_exact_answer(prompts, completions, completion_ids, **kw):
        token_counts.append((len(completion_ids), sum(len(c) for c in completion_ids)))
        return exact_answer(prompts, completions, **kw)

    counted_exact_answer.__name__ = "exact_answer"
    k = cfg["grad_accum"]
    n = cfg["prompts"] * cfg["G"]
    if n % k:
        raise UnsupportedSetting(f"grad_accum={k} does not divide {n} completions")
    args = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-bench-"), use_cpu=True, seed=cfg["seed"], report_to=[],
        logging_steps=1, save_strategy="no", disable_tqdm=True, dataloader_num_workers=0,
        max_steps=cfg["warmup_steps"] + cfg["steps"],
        # 8 prompts × G completions per optimiser step: per_device_train_batch_size counts completions (per
        # micro-batch); generation happens once per optimiser step (steps_per_generation = gradient_accumulation)
        per_device_train_batch_size=n // k, gradient_accumulation_steps=k, num_generations=cfg["G"],
        max_completion_length=cfg["completion_length"], temperature=1.0, top_p=1.0, top_k=0,
        beta=0.0, loss_type="grpo", scale_rewards="group", epsilon=0.2, num_iterations=1,
        mask_truncated_completions=False, reward_weights=[1.0, cfg["digit_weight"]],
        learning_rate=cfg["learning_rate"], lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        max_grad_norm=1.0, optim="adamw_torch",  # torch.optim.AdamW with its defaults, as rlzoo's
        bf16=precision != "fp32", fp16=False, gradient_checkpointing=bool(cfg.get("gradient_checkpointing")),
        gradient_checkpointing_kwargs={"use_reentrant": False},  # transformers' default, and rlzoo's
        model_init_kwargs={"dtype": dtype},
    )  # fmt: skip
    peft_config = None
    if lora:
        targets = cfg["lora_target_modules"] if cfg["lora_target_modules"] is not None else "all-linear"
        peft_config = peft.LoraConfig(r=cfg["lora_r"], lora_alpha=cfg["lora_alpha"], lora_dropout=cfg["lora_dropout"],
                                      target_modules=targets, task_type="CAUSAL_LM")  # fmt: skip

    steps: list[dict[str, Any]] = []

    class StepMeter(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.rss_before = TRACKER.current()
            self.n_counts = len(token_counts)
            TRACKER.start_window()
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            dt = time.perf_counter() - self.t
            peak = TRACKER.end_window()
            new = token_counts[self.n_counts :]
            steps.append({"time_s": dt, "completions": sum(c for c, _ in new),
                          "completion_tokens": sum(t for _, t in new), "peak_rss_bytes": peak,
                          "rss_before_bytes": self.rss_before})  # fmt: skip

    start = time.perf_counter()
    trainer = GRPOTrainer(model=model_dir, reward_funcs=[counted_exact_answer, answer_characters], args=args,
                          train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config,
                          callbacks=[StepMeter()])  # fmt: skip
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    trainer.train()
    learn_s = time.perf_counter() - start
    total = cfg["warmup_steps"] + cfg["steps"]
    if len(steps) != total:
        raise RuntimeError(f"max_steps={total} ran {len(steps)} optimiser steps")
    rewards = [h.get("reward") for h in trainer.state.log_history if "reward" in h]
    for s, r in zip(steps, rewards, strict=False):
        s["reward_mean"] = r
    model = trainer.model
    return {"side": "trl", "settings": {"precision": precision, "model_dtype": dtype, "bf16_autocast": args.bf16,
                                        "gradient_checkpointing": args.gradient_checkpointing,
                                        "gradient_checkpointing_kwargs": args.gradient_checkpointing_kwargs,
                                        "per_device_train_batch_size": args.per_device_train_batch_size,
                                        "gradient_accumulation_steps": args.gradient_accumulation_steps,
                                        "steps_per_generation": args.steps_per_generation,
                                        "generation_batch_size": args.generation_batch_size,
                                        "prompt_prefix": prefix, "lora": peft_config is not None},
            "load_s": load_s, "learn_s": learn_s, "rss_after_imports_bytes": rss_imported, "steps": steps,
            **_steps_summary(steps, cfg["warmup_steps"]), **_param_summary(model),
            "versions": {"torch": torch.__version__, "trl": trl.__version__, "transformers": transformers.__version__,
                         "peft": peft.__version__},
            "threads": torch.get_num_threads()}  # fmt: skip


if __name__ == "__main__":
    main()
