"""rlzoo's GRPO against TRL's ``GRPOTrainer``: completions/s, completion tokens/s and peak RSS of the same GRPO steps.

Both sides load one cached model directory (a random-init Qwen2-architecture model with a character tokenizer,
``llm_bench_common.py``) and train on rlzoo's two-digit arithmetic prompts (every prompt is ``<bos>`` + 6
characters: no padding on either side) with the same rewards (exact answer + ``--digit-weight`` × answer
characters). Each run is a fresh process (``llm_bench_child.py``), one torch thread (``torch.set_num_threads`` and
``OMP_NUM_THREADS``), offline; runs alternate rlzoo, TRL, TRL, rlzoo, … (ABBA) so machine load hits both alike.
TRL runs in its own virtual environment (``--trl-python``, default ``/work/trl-venv/bin/python``); rlzoo never
imports it.

What is held equal (TRL's defaults differ in several places, so each is set explicitly):
- batch: ``--prompts`` × ``--G`` completions per optimiser step. TRL's ``per_device_train_batch_size`` counts
  completions per micro-batch, so it is prompts × G / ``--grad-accum`` with ``gradient_accumulation_steps`` =
  ``--grad-accum`` (``steps_per_generation`` then defaults to the same: one generation per optimiser step, no
  old-log-prob pass); rlzoo: ``prompts_per_step``, ``num_generations``, ``gradient_accumulation_steps``,
  ``dynamic_sampling=false`` (TRL has none).
- completion length: ``--eos never`` (default) gives both the same model directory whose end-of-sequence id the
  model cannot emit, so every completion is exactly ``--completion-length`` tokens on both sides (checked: both
  report tokens per step).
- objective: loss ``grpo`` (TRL's default is ``dapo``), β 0 (no reference model), ε 0.2, μ 1, group-std scaled
  advantages, no truncation masking, temperature 1, top-p 1, top-k 0.
- optimiser: ``torch.optim.AdamW`` (TRL ``optim="adamw_torch"``; its default is the fused kernel), constant learning
  rate ``--learning-rate``, no weight decay, gradient clipping at 1.
- precision (rlzoo's ``algo.precision`` meanings): ``bf16`` = bf16 autocast (TRL ``bf16=True``; note TRL defaults to
  bf16=True and gradient_checkpointing=True, so fp32 / no checkpointing are set explicitly) with fp32 trained weights
  and, under LoRA, the frozen base loaded in bf16 (TRL ``model_init_kwargs.dtype``); ``bf16_pure`` = bf16 weights;
  ``fp32``. Gradient checkpointing non-reentrant on both. LoRA: peft ``LoraConfig`` rank/alpha/dropout on every
  linear layer but the head (``all-linear``) on both, adapters kept fp32 (peft's default).
- prompt ids: TRL tokenizes plain prompts without ``<bos>``, so its dataset's prompts are written ``<bos>…``; the TRL
  child checks its prompt ids equal rlzoo's before it runs.
What stays different, by design: each library's own sampler and loss pass (rlzoo computes a group's shared prompt
once where it can; TRL generates with ``model.generate`` and recomputes prompts), and TRL imports more (datasets,
accelerate): the RSS right after imports is reported for both.

Timing: ``--warmup-steps`` steps are run and excluded on both sides, then ``--steps`` measured: rlzoo times each
``agent.advance`` (one GRPO step: sample, score, optimise) inside ``agent.learn``; TRL times each optimiser step from
``on_step_begin`` to ``on_step_end`` (generation, rewards, loss, backward, clipping, AdamW). Model loading is outside
both and reported apart. Peak RSS: the whole process's (load included) and the measured steps' (kernel high-water
mark reset at each step's start), medians over repeats.

    # the target: ≈99M Qwen2, 8 prompts × G 8, 256 tokens, bf16 + checkpointing + LoRA on both
    python benchmarks/trl_grpo_compare.py --repeats 3
    # smoke test
    python benchmarks/trl_grpo_compare.py --n-layer 2 --hidden-size 64 --n-head 4 --n-kv-head 2 \\
        --intermediate-size 128 --completion-length 8 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_bench_common import (
    DEFAULT_TRL_PYTHON,
    ROOT,
    add_model_args,
    ensure_model,
    machine_info,
    markdown_table,
    mib,
    run_child,
    spec_from_args,
)

METRICS = ("completions_per_s", "completion_tokens_per_s", "median_step_s", "process_peak_rss_bytes",
           "measured_step_peak_rss_bytes", "rss_after_imports_bytes", "load_s")  # fmt: skip


def prompt_rows_and_ids(model_dir: Path) -> tuple[list[dict[str, str]], list[int]]:
    """rlzoo's arithmetic training rows (what its agent samples from) and the token ids rlzoo gives the first."""
    from transformers import AutoTokenizer

    from rlzoo.envs.text_tasks import arithmetic_task
    from rlzoo.llm.models import HFTokenizer
    from rlzoo.llm.prompts import encode_prompt

    rows = [{"prompt": r["prompt"], "answer": r["answer"]} for r in arithmetic_task().train]
    tokenizer = HFTokenizer(AutoTokenizer.from_pretrained(model_dir, local_files_only=True))
    return rows, encode_prompt(tokenizer, rows[0]["prompt"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side, alternating")
    parser.add_argument("--warmup-steps", type=int, default=1, help="GRPO steps run and not measured, each run")
    parser.add_argument("--steps", type=int, default=2, help="measured GRPO steps, each run")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--G", type=int, default=8, help="completions per prompt")
    parser.add_argument("--completion-length", type=int, default=256)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--precision", choices=["fp32", "bf16", "bf16_pure"], default="bf16")
    parser.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--lora-r", type=int, default=16, help="0: full fine-tuning")
    parser.add_argument("--lora-alpha", type=float, default=32.0)
    parser.add_argument("--lora-dropout", type=float, default=0.0)
    parser.add_argument("--lora-targets", default=None, help="comma-separated module names; default: every linear")
    parser.add_argument("--packing", action=argparse.BooleanOptionalAction, default=None,
                        help="rlzoo's algo.packing (TRL's GRPO has none); default: rlzoo's default")  # fmt: skip
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--digit-weight", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--trl-python", type=Path, default=DEFAULT_TRL_PYTHON)
    parser.add_argument("--sides", default="rlzoo,trl", help="run only some sides (e.g. trl) to check a setup")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per run")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "benchmarks" / "trl_grpo_compare.json")
    add_model_args(parser)
    args = parser.parse_args()
    if not args.trl_python.exists():
        parser.error(f"--trl-python {args.trl_python} does not exist (see the recipe in the report)")

    spec = spec_from_args(args)
    model_dir, meta = ensure_model(spec, args.model_root)
    print(f"model {model_dir} ({meta['parameters'] / 1e6:.1f}M parameters, built by {meta['builder']})", flush=True)
    workdir = args.out.parent / (args.out.stem + "_runs")
    workdir.mkdir(parents=True, exist_ok=True)
    rows, expected_ids = prompt_rows_and_ids(model_dir)
    rows_file = workdir / "prompt_rows.json"
    rows_file.write_text(json.dumps(rows))
    cfg = {"model_dir": str(model_dir), "prompts": args.prompts, "G": args.G,
           "completion_length": args.completion_length, "grad_accum": args.grad_accum,
           "learning_rate": args.learning_rate, "digit_weight": args.digit_weight, "seed": args.seed,
           "threads": args.threads, "warmup_steps": args.warmup_steps, "steps": args.steps,
           "precision": args.precision, "gradient_checkpointing": args.gradient_checkpointing,
           "packing": args.packing, "lora_r": args.lora_r, "lora_alpha": args.lora_alpha,
           "lora_dropout": args.lora_dropout,
           "lora_target_modules": args.lora_targets.split(",") if args.lora_targets else None,
           "prompt_rows_file": str(rows_file), "expected_prompt_ids": expected_ids}  # fmt: skip
    pythons = {"rlzoo": Path(sys.executable), "trl": args.trl_python}
    sides = [s for s in ("rlzoo", "trl") if s in args.sides.split(",")]
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in sides}
    failed = False
    for rep in range(args.repeats):
        for side in sides if rep % 2 == 0 else sides[::-1]:
            res = run_child(pythons[side], side, {**cfg, "seed": args.seed + rep}, workdir, f"{side}-{rep}",
                            args.timeout)  # fmt: skip
            runs[side].append(res)
            if "error" in res:
                failed = True
                print(f"repeat {rep} {side:5s}: FAILED — {res['error']}\n{res.get('log_tail', '')[-1500:]}", flush=True)
                break
            print(f"repeat {rep} {side:5s}: {res['completions_per_s']:8.2f} completions/s "
                  f"{res['completion_tokens_per_s']:9.0f} tokens/s  step {res['median_step_s']:.2f} s  "
                  f"peak {mib(res['process_peak_rss_bytes'])} MiB (steps {mib(res['measured_step_peak_rss_bytes'])})"
                  f"  load {res['load_s']:.1f} s", flush=True)  # fmt: skip
        if failed:
            break

    medians = {s: {m: statistics.median(r[m] for r in rs) for m in METRICS} for s, rs in runs.items()
               if rs and not any("error" in r for r in rs)}  # fmt: skip
    ratios: dict[str, float] = {}
    if {"rlzoo", "trl"} <= set(medians):
        a, b = medians["rlzoo"], medians["trl"]
        ratios = {"completions_per_s rlzoo/trl": a["completions_per_s"] / b["completions_per_s"],
                  "completion_tokens_per_s rlzoo/trl": a["completion_tokens_per_s"] / b["completion_tokens_per_s"],
                  "process_peak_rss rlzoo/trl": a["process_peak_rss_bytes"] / b["process_peak_rss_bytes"],
                  "measured_step_peak_rss rlzoo/trl": a["measured_step_peak_rss_bytes"]
                  / b["measured_step_peak_rss_bytes"]}  # fmt: skip
    header = ["side", "completions/s", "completion tokens/s", "step s", "process peak MiB", "steps' peak MiB",
              "RSS after imports MiB", "load s"]  # fmt: skip
    table_rows = [[s, f"{m['completions_per_s']:.2f}", f"{m['completion_tokens_per_s']:.0f}",
                   f"{m['median_step_s']:.2f}", mib(m["process_peak_rss_bytes"]),
                   mib(m["measured_step_peak_rss_bytes"]), mib(m["rss_after_imports_bytes"]), f"{m['load_s']:.1f}"]
                  for s, m in medians.items()]  # fmt: skip
    if ratios:
        table_rows.append(["rlzoo / trl", f"{ratios['completions_per_s rlzoo/trl']:.2f}×",
                           f"{ratios['completion_tokens_per_s rlzoo/trl']:.2f}×", "",
                           f"{ratios['process_peak_rss rlzoo/trl']:.3f}×",
                           f"{ratios['measured_step_peak_rss rlzoo/trl']:.3f}×", "", ""])  # fmt: skip
    table = markdown_table(header, table_rows)
    lora = f"LoRA r {args.lora_r} α {args.lora_alpha:g}" if args.lora_r else "full fine-tuning"
    checkpointing = "on" if args.gradient_checkpointing else "off"
    print(f"\nmodel: {meta['name']} ({meta['parameters'] / 1e6:.1f}M parameters); batch {args.prompts} prompts × G "
          f"{args.G}, {args.completion_length} completion tokens (eos {spec.eos}), gradient accumulation "
          f"{args.grad_accum}; {args.precision}, gradient checkpointing {checkpointing}"
          f", {lora}; {args.threads} thread(s); medians of {args.repeats} alternating runs × {args.steps} steps after "
          f"{args.warmup_steps} warm-up\n")  # fmt: skip
    print(table)
    targets = {}
    if ratios:
        targets = {"peak_rss_rlzoo_le_trl": ratios["process_peak_rss rlzoo/trl"] <= 1.0,
                   "completions_per_s_rlzoo_ge_1.5x_trl": ratios["completions_per_s rlzoo/trl"] >= 1.5}  # fmt: skip
        print("\ntargets (measured): " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in targets.items()))
    report = {"benchmark": "trl_grpo_compare", "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "argv": sys.argv[1:],
              "machine": machine_info(), "model": meta, "model_dir": str(model_dir),
              "config": {k: v for k, v in cfg.items() if k != "expected_prompt_ids"}, "medians": medians,
              "ratios": ratios, "targets": targets, "runs": runs, "table_markdown": table}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
