"""Peak memory of one rlzoo GRPO step on a Qwen2-architecture model, per precision / checkpointing / LoRA setting.

Each configuration runs in a fresh process (``llm_bench_child.py rlzoo``, one torch thread, offline):
``make_agent("grpo", arithmetic task, model.path=<cached model>)`` then ``agent.learn(warmup + steps)`` — the training
loop, as a run would take it — and reports the peak RSS of the whole process (model load included: the figure the
target compares) and of the measured step alone (the kernel's high-water mark reset when the step starts), the RSS
before the step, the step's time and completions/s. The ratios are to the first configuration (``fp32_full`` by
default: fp32 full fine-tuning).

Configurations are names: a precision (``fp32``, ``bf16``, ``bf16_pure``) then flags: ``gc`` (gradient
checkpointing), ``lora`` (adapters of rank ``--lora-r``) or ``full`` (full fine-tuning), ``pack`` (packing). A
setting the installed rlzoo lacks fails that configuration with a message (``fp32_full`` still runs on an rlzoo
without the keys: it is what such an rlzoo does). Completions have a fixed length by default (``--eos never``, see
``llm_bench_common.py``).

    # the target: ≈99M-parameter Qwen2 (14 × 768, 12 heads, MLP 2048), 8 prompts × G 8, 256 completion tokens
    python benchmarks/llm_memory.py --configs fp32_full,bf16_gc_lora,bf16_pure_gc_lora
    # smoke test
    python benchmarks/llm_memory.py --n-layer 2 --hidden-size 64 --n-head 4 --n-kv-head 2 --intermediate-size 128 \\
        --completion-length 8
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_bench_common import (
    ROOT,
    add_model_args,
    ensure_model,
    machine_info,
    markdown_table,
    mib,
    run_child,
    spec_from_args,
)

PRECISIONS = ("bf16_pure", "bf16", "fp32")  # longest first: bf16_pure starts with bf16
FLAGS = {"gc", "lora", "full", "pack"}


def parse_config(name: str) -> dict[str, Any]:
    """``bf16_pure_gc_lora`` → precision bf16_pure, gradient checkpointing on, LoRA on, packing off."""
    precision = next((p for p in PRECISIONS if name == p or name.startswith(p + "_")), None)
    if precision is None:
        raise argparse.ArgumentTypeError(f"configuration {name!r} does not start with one of {PRECISIONS}")
    flags = [f for f in name[len(precision) :].split("_") if f]
    unknown = set(flags) - FLAGS
    if unknown or ("lora" in flags and "full" in flags):
        raise argparse.ArgumentTypeError(f"configuration {name!r}: flags are gc, lora | full, pack")
    return {"precision": precision, "gradient_checkpointing": "gc" in flags, "lora": "lora" in flags,
            "packing": "pack" in flags}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)  # fmt: skip
    parser.add_argument("--configs", default="fp32_full,bf16_gc_lora",
                        help="comma-separated; the first is the ratios' reference")  # fmt: skip
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--G", type=int, default=8, help="completions per prompt")
    parser.add_argument("--completion-length", type=int, default=256)
    parser.add_argument("--grad-accum", type=int, default=1, help="algo.gradient_accumulation_steps")
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--lora-alpha", type=float, default=32.0)
    parser.add_argument("--lora-dropout", type=float, default=0.0)
    parser.add_argument("--lora-targets", default=None, help="comma-separated module names; default: every linear")
    parser.add_argument("--warmup-steps", type=int, default=0, help="GRPO steps before the measured ones")
    parser.add_argument("--steps", type=int, default=1, help="measured GRPO steps (the target: one)")
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--digit-weight", type=float, default=1.0,
                        help="weight of the partial-credit reward, so that advantages are not all zero")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=None, help="seconds per configuration")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "benchmarks" / "llm_memory.json")
    add_model_args(parser)
    args = parser.parse_args()
    configs = {name: parse_config(name) for name in args.configs.split(",") if name}

    spec = spec_from_args(args)
    model_dir, meta = ensure_model(spec, args.model_root)
    print(f"model {model_dir} ({meta['parameters'] / 1e6:.1f}M parameters, built by {meta['builder']})", flush=True)
    targets = args.lora_targets.split(",") if args.lora_targets else None
    workdir = args.out.parent / (args.out.stem + "_runs")
    results: dict[str, dict[str, Any]] = {}
    for name, c in configs.items():
        cfg = {"model_dir": str(model_dir), "prompts": args.prompts, "G": args.G,
               "completion_length": args.completion_length, "grad_accum": args.grad_accum,
               "learning_rate": args.learning_rate, "digit_weight": args.digit_weight, "seed": args.seed,
               "threads": args.threads, "warmup_steps": args.warmup_steps, "steps": args.steps,
               "precision": c["precision"], "gradient_checkpointing": c["gradient_checkpointing"],
               "packing": c["packing"], "lora_r": args.lora_r if c["lora"] else 0, "lora_alpha": args.lora_alpha,
               "lora_dropout": args.lora_dropout, "lora_target_modules": targets}  # fmt: skip
        res = run_child(sys.executable, "rlzoo", cfg, workdir, name, args.timeout)
        results[name] = res
        if "error" in res:
            print(f"{name}: FAILED — {res['error']}\n{res.get('log_tail', '')[-1500:]}", flush=True)
        else:
            print(f"{name}: process peak {mib(res['process_peak_rss_bytes'])} MiB, step peak "
                  f"{mib(res['measured_step_peak_rss_bytes'])} MiB, step {res['median_step_s']:.2f} s",
                  flush=True)  # fmt: skip

    ref_name = next(iter(configs))
    ref = results[ref_name] if "error" not in results[ref_name] else None
    rows = []
    for name, res in results.items():
        if "error" in res:
            rows.append([name, "FAILED: " + res["error"].replace("|", "/")] + [""] * 9)
            continue
        ratio_p = res["process_peak_rss_bytes"] / ref["process_peak_rss_bytes"] if ref else None
        ratio_s = res["measured_step_peak_rss_bytes"] / ref["measured_step_peak_rss_bytes"] if ref else None
        res["ratio_process_peak_to_" + ref_name] = ratio_p
        res["ratio_step_peak_to_" + ref_name] = ratio_s
        rows.append([name, f"{res['trained_parameters'] / 1e6:.2f}M", f"{res['median_step_s']:.2f}",
                     f"{res['completions_per_s']:.2f}", f"{res['completion_tokens_per_s']:.0f}",
                     mib(res["steps"][args.warmup_steps]["rss_before_bytes"]),
                     mib(res["measured_step_peak_rss_bytes"]), mib(res["process_peak_rss_bytes"]),
                     "–" if ratio_s is None else f"{ratio_s:.3f}", "–" if ratio_p is None else f"{ratio_p:.3f}",
                     ", ".join(res.get("settings_absent_in_rlzoo", [])) or "–"])  # fmt: skip
    header = ["config", "trained params", "step s", "completions/s", "tokens/s", "RSS before step MiB",
              "step peak MiB", "process peak MiB", f"step peak / {ref_name}", f"process peak / {ref_name}",
              "keys absent in rlzoo (default used)"]  # fmt: skip
    table = markdown_table(header, rows)
    print(f"\nmodel: {meta['name']} ({meta['parameters'] / 1e6:.1f}M parameters); batch {args.prompts} prompts × G "
          f"{args.G}, {args.completion_length} completion tokens, gradient accumulation {args.grad_accum}, "
          f"{args.threads} thread(s)\n")  # fmt: skip
    print(table)
    report = {"benchmark": "llm_memory", "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "argv": sys.argv[1:],
              "machine": machine_info(), "model": meta, "model_dir": str(model_dir), "configs": configs,
              "reference": ref_name, "results": results, "table_markdown": table}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {args.out}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
