"""GRPO step throughput side by side: rlzoo vs TRL's ``GRPOTrainer`` on the same tiny model, on CPU.

Both load one Hugging Face GPT-2-architecture model (2 layers, d 128, 4 heads, random init, a character-level
tokenizer) from a local directory made once under ``.venvs/grpo-tiny-model``; the task is rlzoo's
two-digit arithmetic with the exact-answer reward. Same batch (16 prompts × G = 8 completions = 128),
completion length ≤ 4 tokens, temperature 1, μ = 1, β = 0, loss ``grpo``, AdamW lr 1e-4, one torch thread.
TRL runs in ``.venvs/trl`` (made on first use); rlzoo never imports it. Reported: completions (samples) per
second of GRPO steps after one warm-up step, median over ``--repeats`` alternating runs, and the ratio.

    python benchmarks/peers/trl_grpo.py --steps 20 --repeats 3
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, compare, peer_python

MODEL_DIR = ROOT / ".venvs" / "grpo-tiny-model"
PRESETS = {"tiny": {"prompts": 16, "G": 8, "max_completion_length": 4, "learning_rate": 1e-4, "model": str(MODEL_DIR)}}


TRL_RUN = textwrap.dedent(
    """
    import json, sys, time, tempfile
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer
    hp, steps, seed = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    rows = [{"prompt": f"{a:02d}{op}{b:02d}=", "answer": str(a + b if op == "+" else a - b)}
            for a in range(100) for b in range(100) for op in "+-"]
    def exact_answer(prompts, completions, answer, **kw):
        return [float(c.strip() == a) for c, a in zip(completions, answer)]
    n = hp["prompts"] * hp["G"]
    args = GRPOConfig(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=n, num_generations=hp["G"],
                      max_completion_length=hp["max_completion_length"], learning_rate=hp["learning_rate"],
                      max_steps=steps + 1, logging_steps=10**6, report_to="none", use_cpu=True, save_strategy="no",
                      beta=0.0, loss_type="grpo", num_iterations=1, temperature=1.0, seed=seed,
                      dataloader_num_workers=0, disable_tqdm=True)
    times = []
    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t = time.perf_counter()
        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t)
    tokenizer = AutoTokenizer.from_pretrained(hp["model"])
    trainer = GRPOTrainer(model=hp["model"], reward_funcs=exact_answer, args=args,
                          train_dataset=Dataset.from_list(rows), processing_class=tokenizer, callbacks=[StepTimer()])
    trainer.train()
    wall = sum(times[1:])  # the first step warms up
    print(json.dumps({"sps": n * (len(times) - 1) / wall, "wall": wall, "eval": float("nan")}))
    """
)

RLZOO_RUN = textwrap.dedent(
    """
    import json, sys, time
    import gymnasium as gym, torch
    from rlzoo import make_agent
    from rlzoo.logging import RunLogger
    hp, steps, seed = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    agent = make_agent("grpo", gym.make("rlzoo/TextTask-v0", task="arithmetic"), seed=seed, sft_steps=0,
                       dynamic_sampling=False,  # TRL has none: one sampling round per step on both sides
                       prompts_per_step=hp["prompts"], num_generations=hp["G"],
                       max_completion_length=hp["max_completion_length"], learning_rate=hp["learning_rate"],
                       model={"path": hp["model"]})
    logger, times = RunLogger(), []
    for _ in range(steps + 1):
        start = time.perf_counter()
        stats = agent.advance(1, logger)  # the step's scalars (the trainer would log them)
        times.append(time.perf_counter() - start)
    wall = sum(times[1:])  # the first step warms up
    n = hp["prompts"] * hp["G"]
    print(json.dumps({"sps": n * steps / wall, "wall": wall, "eval": float(stats["reward/mean"])}))
    """
)

if __name__ == "__main__":
    if not (MODEL_DIR / "config.json").exists():
        from rlzoo.llm import save_tiny_hf_model

        save_tiny_hf_model(MODEL_DIR, n_layer=2, d_model=128, n_head=4, max_len=32)
    trl_python = peer_python("trl", ["trl", "transformers", "datasets", "accelerate"])
    compare(__doc__.splitlines()[0], {"rlzoo": (sys.executable, RLZOO_RUN), "trl": (trl_python, TRL_RUN)}, PRESETS, 20)
