"""GRPO's padding-free packing (``algo.packing``): padding share, loss-pass time and step time, padded vs packed.

    python benchmarks/llm_packing.py                 # the full run: 20 paired repeats, 4 batches a setting
    python benchmarks/llm_packing.py --quick         # smoke test: 3 repeats, 2 batches, 100-step warm starts
    python benchmarks/llm_packing.py --repeats 40 --settings arithmetic

Settings, each on one torch thread (``torch.set_num_threads(1)``):

* ``arithmetic`` — ``python -m rlzoo.train algo=grpo env=arithmetic`` as composed (TinyGPT 2 × 128, 16 prompts ×
  G 8, completions of at most 4 tokens), after its warm start (``agent.begin``: the preset's SFT, up to 4 000 steps,
  stopped at validation accuracy 0.25).
* ``gridworld_text`` — ``algo=grpo env=gridworld_text`` (the ``grpo_gridworld_text`` preset: 300 SFT steps,
  ``model.max_len`` 48, β 0.1 so a reference model runs too; 24-token completions), after its warm start.
* ``mixed_lengths`` — a toy on the warmed-up gridworld_text agent: its sampled batches with each completion cut to a
  length drawn uniformly from 2 … 24 tokens (its last token EOS, padding after it, every kept token scored; old
  log-probs recomputed under the policy), so the lengths in one batch vary widely.

What is measured, the same batches for both variants:

* padding share — :func:`rlzoo.llm.decoding.padding_share` of the loss pass (the share of computed positions that
  are padding, as GRPO logs ``tokens/padding_share``), padded (today's path: each group's prompt once in the
  key-value cache, completions right-padded to the batch's longest) and packed, averaged over ``--batches`` batches
  sampled from the warmed-up policy (``agent.sample_batch``);
* loss pass — what ``GRPO.accumulate_gradients`` computes, timed: the reference model's log-probs (no grad; only
  where β > 0), the policy's ``completion_log_probs`` (``agent.log_probs``, padded or packed: packing's ``pack`` is
  inside the timing), the objective and ``backward``; gradients cleared between passes, no optimiser step (the
  policy never changes). Per repeat every batch runs padded then packed (A B A B …); a variant's figure for a
  repeat is its mean over the batches;
* GRPO step — ``agent.advance`` (sample, score, advantages, optimise) with ``algo.packing`` off then on, each from
  the same snapshot (weights, optimiser, step count) and the same seeds (the sampler's generator, the prompt RNG,
  torch's RNG: seed ``--seed`` + repeat), so both variants of a repeat sample the same batch (checked by a digest
  of the sampled ids). For ``mixed_lengths`` ``sample_batch`` returns the toy batch instead (its step has no
  sampling).

Figures: milliseconds are medians over the repeats; a ratio is the median over repeats of packed / padded (on /
off) time, so below 1 means packing is faster. The machine (CPU model, threads, torch version) is printed with a
markdown table, and everything, per-repeat times included, is written to
``runs/benchmarks/llm_packing-<time>.json`` (``--out`` to choose).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra import compose, initialize_config_module

from rlzoo import make_agent
from rlzoo.envs import make as make_env
from rlzoo.llm.batches import GroupBatch
from rlzoo.llm.decoding import Completions, completion_log_probs, padding_share
from rlzoo.llm.packing import completion_lengths
from rlzoo.logging import RunLogger
from rlzoo.train import resolve

sys.path.insert(0, str(Path(__file__).resolve().parent))
from llm_bench_common import ROOT, machine_info, markdown_table

PRESETS = {"arithmetic": ["algo=grpo", "env=arithmetic"], "gridworld_text": ["algo=grpo", "env=gridworld_text"]}
SETTINGS = ("arithmetic", "gridworld_text", "mixed_lengths")
MIXED_BASE = "gridworld_text"  # the agent and batches the mixed-lengths toy is cut from
MIN_LENGTH = 2


# ---- building and warming up the agents ----------------------------------------------------------------------


def warmed_agent(preset: str, seed: int, sft_steps: int | None) -> tuple[Any, dict[str, Any]]:
    """The GRPO agent ``python -m rlzoo.train <preset's overrides>`` builds, after its warm start
    (``agent.begin``: the preset's SFT, its steps capped at ``sft_steps`` when given), packing off."""
    overrides = [*PRESETS[preset], f"seed={seed}"]
    if sft_steps is not None:
        overrides.append(f"algo.sft_steps={sft_steps}")
    with initialize_config_module("rlzoo.conf", version_base="1.3"):
        spec = resolve(compose("config", overrides=overrides))
    spec.algo.packing = False
    agent = make_agent(spec.algo_name, make_env(spec.env), config=spec.algo, seed=seed)
    start = time.perf_counter()
    agent.begin(spec.run.total_steps, RunLogger())
    cfg = agent.config
    info = {"overrides": overrides, "warm_start_s": time.perf_counter() - start,
            "sft_steps_taken": int(agent.results["after_warm_start"]["sft_steps"]),
            "heldout_after_warm_start": agent.results["after_warm_start"],
            "model": {"n_layer": cfg.model.n_layer, "d_model": cfg.model.d_model, "n_head": cfg.model.n_head,
                      "max_len": cfg.model.max_len},
            "prompts_per_step": cfg.prompts_per_step, "num_generations": cfg.num_generations,
            "max_completion_length": agent.max_new, "beta": cfg.beta, "dynamic_sampling": cfg.dynamic_sampling,
            "num_minibatches": cfg.num_minibatches,
            "gradient_accumulation_steps": cfg.gradient_accumulation_steps}  # fmt: skip
    return agent, info


def mixed_lengths_batch(agent: Any, batch: GroupBatch, rng: np.random.Generator) -> GroupBatch:
    """``batch`` with completion ``n`` cut to a length drawn from 2 … max: its first tokens (the sampled ones,
    repeated when the sample is shorter), then EOS, then padding; every kept token scored (mask 1), none truncated,
    old log-probs those of the policy now (ratios 1, as in a step's first pass)."""
    comp, tok = batch.completions, agent.tokenizer
    n, width = comp.ids.shape[0], agent.max_new
    lengths = rng.integers(MIN_LENGTH, width + 1, size=n)
    sampled = completion_lengths(comp.ids, tok.eos_token_id)
    ids = torch.full((n, width), tok.pad_token_id, dtype=comp.ids.dtype)
    mask = torch.zeros(n, width)
    for i, length in enumerate(lengths.tolist()):
        body = comp.ids[i, : int(sampled[i]) - 1]  # the sampled tokens before EOS (the prompt's if none)
        body = body if len(body) else comp.prompt_ids[i]
        body = body.repeat(-(-(length - 1) // len(body)))[: length - 1]
        ids[i, : length - 1], ids[i, length - 1], mask[i, :length] = body, tok.eos_token_id, 1.0
    with torch.no_grad():
        old_logp, _ = completion_log_probs(agent.model, comp.prompt_ids, ids, agent.config.temperature)
    toy = Completions(comp.prompt_ids.clone(), ids, mask, old_logp * mask, torch.zeros(n, dtype=torch.bool))
    return GroupBatch(batch.rows, toy, batch.rewards, batch.function_rewards, batch.info)


def advantages_of(agent: Any, batch: GroupBatch) -> torch.Tensor:
    """The batch's advantages as the step computes them (GRPO's shaping and estimator)."""
    rewards, _ = agent.shaped_rewards(batch)
    return agent.advantages(rewards)


# ---- the measurements ----------------------------------------------------------------------------------------


def chunks(agent: Any, n: int) -> list[slice]:
    """The row slices ``optimize`` backpropagates one at a time (minibatches × accumulation chunks)."""
    cfg = agent.config
    size = n // (cfg.num_minibatches * cfg.gradient_accumulation_steps)
    return [slice(s, s + size) for s in range(0, n, size)]


def batch_padding_share(agent: Any, batch: GroupBatch, packing: bool) -> float:
    """The padding share GRPO logs for this batch (the mean over its loss-pass chunks)."""
    comp = batch.completions
    return statistics.fmean(padding_share(agent.model, comp.prompt_ids[sl], comp.ids[sl], packing=packing,
                                          eos_id=agent.tokenizer.eos_token_id)
                            for sl in chunks(agent, comp.ids.shape[0]))  # fmt: skip


def loss_pass_seconds(agent: Any, batch: GroupBatch, advantages: torch.Tensor, packing: bool) -> float:
    """Seconds of one loss pass over the batch as ``accumulate_gradients`` runs it (reference log-probs when the
    KL is in the loss, the policy's log-probs, objective, backward), chunk by chunk; gradients cleared first."""
    cfg, comp = agent.config, batch.completions
    cfg.packing = packing
    mask = agent.completion_mask(comp)
    agent.model.train()
    agent.optimizer.zero_grad(set_to_none=True)
    start = time.perf_counter()
    for sl in chunks(agent, mask.shape[0]):
        m, ref = mask[sl], None
        if cfg.beta > 0.0 and not cfg.kl_in_reward:
            with torch.no_grad():
                ref, _ = agent.log_probs(agent.ref_model, comp.prompt_ids[sl], comp.ids[sl])
        logp, entropy = agent.log_probs(agent.train_model, comp.prompt_ids[sl], comp.ids[sl])
        loss = agent.objective(logp, comp.old_logp[sl], ref, advantages[sl], m)
        token_entropy = (entropy * m).sum() / m.sum().clamp(min=1.0)
        (loss - cfg.ent_coef * token_entropy).backward()
    elapsed = time.perf_counter() - start
    agent.optimizer.zero_grad(set_to_none=True)
    return elapsed


class StepRunner:
    """``agent.advance`` from one snapshot of the agent (weights, optimiser state, step count) with the seeds of a
    repeat, so that a repeat's two variants sample the same batch; ``batches``, when given, replace sampling
    (repeat ``r`` gets ``batches[r % len]``)."""

    def __init__(self, agent: Any, batches: list[GroupBatch] | None = None) -> None:
        self.agent, self.batches, self.logger = agent, batches, RunLogger()
        self.model_state = copy.deepcopy(agent.model.state_dict())
        self.optimizer_state = copy.deepcopy(agent.optimizer.state_dict())
        self.num_timesteps = agent.num_timesteps
        self.sample = agent.sample_batch
        self.digests: list[str] = []

    def restore(self, seed: int) -> None:
        agent = self.agent
        agent.model.load_state_dict(self.model_state)
        agent.optimizer.load_state_dict(copy.deepcopy(self.optimizer_state))
        agent.num_timesteps = self.num_timesteps
        agent.generator.manual_seed(seed)
        agent.rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state
        torch.manual_seed(seed)

    def sampled(self, repeat: int) -> Callable[[], GroupBatch]:
        def sample_batch() -> GroupBatch:
            batch = self.batches[repeat % len(self.batches)] if self.batches else self.sample()
            self.digests.append(hashlib.sha256(batch.completions.ids.numpy().tobytes()).hexdigest()[:16])
            return batch

        return sample_batch

    def __call__(self, repeat: int, seed: int, packing: bool) -> tuple[float, dict[str, float]]:
        """Seconds of one ``advance`` with ``algo.packing`` = ``packing``, and its diagnostics."""
        self.restore(seed)
        self.agent.config.packing = packing
        self.agent.sample_batch = self.sampled(repeat)
        try:
            start = time.perf_counter()
            scalars = self.agent.advance(1, self.logger)
            return time.perf_counter() - start, scalars
        finally:
            del self.agent.sample_batch  # the class's method again

    def finish(self) -> None:
        self.restore(0)
        self.agent.config.packing = False


def paired(times: dict[bool, list[float]]) -> dict[str, Any]:
    """Medians (ms) of each variant and the median of the per-repeat ratios packed / padded."""
    off, on = times[False], times[True]
    return {"padded_ms": 1e3 * statistics.median(off), "packed_ms": 1e3 * statistics.median(on),
            "ratio": statistics.median(b / a for a, b in zip(off, on, strict=True)),
            "padded_ms_all": [1e3 * t for t in off], "packed_ms_all": [1e3 * t for t in on]}  # fmt: skip


def measure(name: str, agent: Any, batches: list[GroupBatch], repeats: int, seed: int,
            step_batches: list[GroupBatch] | None = None) -> dict[str, Any]:  # fmt: skip
    """Padding shares, loss-pass and step times of one setting."""
    comp_lengths = torch.cat([completion_lengths(b.completions.ids, agent.tokenizer.eos_token_id) for b in batches])
    result: dict[str, Any] = {
        "batches": len(batches), "rows_per_batch": [int(b.completions.ids.shape[0]) for b in batches],
        "prompt_tokens": sorted({int(b.completions.prompt_ids.shape[1]) for b in batches}),
        "completion_width": [int(b.completions.ids.shape[1]) for b in batches],
        "completion_length": {"mean": float(comp_lengths.float().mean()), "min": int(comp_lengths.min()),
                              "max": int(comp_lengths.max())},
        "padding_share": {"padded": statistics.fmean(batch_padding_share(agent, b, False) for b in batches),
                          "packed": statistics.fmean(batch_padding_share(agent, b, True) for b in batches)},
    }  # fmt: skip
    advantages = [advantages_of(agent, b) for b in batches]
    for batch, adv in zip(batches, advantages, strict=True):  # warm-up: first calls, allocator
        for packing in (False, True):
            loss_pass_seconds(agent, batch, adv, packing)
    loss: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats):
        per = {False: [], True: []}
        for batch, adv in zip(batches, advantages, strict=True):
            for packing in (False, True):
                per[packing].append(loss_pass_seconds(agent, batch, adv, packing))
        for packing in (False, True):
            loss[packing].append(statistics.fmean(per[packing]))
    result["loss_pass"] = paired(loss)
    print(f"  {name}: loss pass {result['loss_pass']['padded_ms']:.1f} → {result['loss_pass']['packed_ms']:.1f} ms",
          flush=True)  # fmt: skip

    runner = StepRunner(agent, step_batches)
    for packing in (False, True):  # warm-up
        runner(0, seed + 10**6, packing)
    runner.digests.clear()
    steps: dict[bool, list[float]] = {False: [], True: []}
    logged: dict[bool, list[float]] = {False: [], True: []}
    for r in range(repeats):
        for packing in (False, True):
            seconds, scalars = runner(r, seed + r, packing)
            steps[packing].append(seconds)
            logged[packing].append(scalars["tokens/padding_share"])
    runner.finish()
    same = all(a == b for a, b in zip(runner.digests[::2], runner.digests[1::2], strict=True))
    if not same:
        raise RuntimeError(f"{name}: a repeat's two steps sampled different batches")
    result["step"] = {**paired(steps), "same_batches": same, "sampling": step_batches is None,
                      "logged_padding_share": {"padded": statistics.fmean(logged[False]),
                                               "packed": statistics.fmean(logged[True])}}  # fmt: skip
    print(f"  {name}: step {result['step']['padded_ms']:.1f} → {result['step']['packed_ms']:.1f} ms", flush=True)
    return result


# ---- the report ----------------------------------------------------------------------------------------------


def table(results: dict[str, dict[str, Any]]) -> str:
    rows = []
    for name, r in results.items():
        share, loss, step = r["padding_share"], r["loss_pass"], r["step"]
        label = name if step["sampling"] else f"{name} (step without sampling)"
        rows.append([label, f"{share['padded']:.1%} → {share['packed']:.1%}",
                     f"{loss['padded_ms']:.1f} → {loss['packed_ms']:.1f} ({loss['ratio']:.2f}×)",
                     f"{step['padded_ms']:.1f} → {step['packed_ms']:.1f} ({step['ratio']:.2f}×)"])  # fmt: skip
    header = ["setting", "padding share padded → packed", "loss pass ms padded → packed (ratio)",
              "GRPO step ms off → on (ratio)"]  # fmt: skip
    return markdown_table(header, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)  # fmt: skip
    parser.add_argument("--repeats", type=int, default=None, help="paired repeats (default 20; --quick: 3)")
    parser.add_argument("--batches", type=int, default=None,
                        help="sampled batches a setting for the loss pass (default 4; --quick: 2)")  # fmt: skip
    parser.add_argument("--sft-steps", type=int, default=None,
                        help="cap on the warm start's SFT steps (default: the preset's; --quick: 100)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a smoke test: few repeats, short warm starts")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"comma-separated subset of {SETTINGS}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default runs/benchmarks/llm_packing-…)")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 20)
    n_batches = args.batches or (2 if args.quick else 4)
    sft_steps = args.sft_steps if args.sft_steps is not None else (100 if args.quick else None)
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        parser.error(f"unknown settings {sorted(unknown)}: choose from {SETTINGS}")

    torch.set_num_threads(1)
    machine = {**machine_info(), "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    print(f"machine: {machine.get('cpu_model')} ({machine['cpus']} CPUs), torch {machine['torch']}, "
          f"{machine['torch_threads']} torch thread; {repeats} repeats, {n_batches} batches a setting")  # fmt: skip
    start = time.perf_counter()
    needed = sorted({MIXED_BASE if s == "mixed_lengths" else s for s in settings})
    results: dict[str, dict[str, Any]] = {}
    for preset in needed:
        agent, info = warmed_agent(preset, args.seed, sft_steps)
        print(f"{preset}: warm start {info['sft_steps_taken']} SFT steps in {info['warm_start_s']:.0f} s", flush=True)
        torch.manual_seed(args.seed)
        batches = [agent.sample_batch() for _ in range(n_batches)]
        if preset in settings:
            results[preset] = {"config": info, **measure(preset, agent, batches, repeats, args.seed)}
        if preset == MIXED_BASE and "mixed_lengths" in settings:
            rng = np.random.default_rng(args.seed)
            toys = [mixed_lengths_batch(agent, b, rng) for b in batches]
            info = {**info, "toy": f"{MIXED_BASE} batches, completions cut to U{{{MIN_LENGTH}..{agent.max_new}}}"}
            results["mixed_lengths"] = {"config": info,
                                        **measure("mixed_lengths", agent, toys, repeats, args.seed, toys)}  # fmt: skip
    results = {s: results[s] for s in SETTINGS if s in results}
    wall = time.perf_counter() - start

    print()
    print(f"machine: {machine.get('cpu_model')}, {machine['cpus']} CPUs, torch {machine['torch']}, "
          f"{machine['torch_threads']} torch thread")  # fmt: skip
    print(f"medians of {repeats} paired repeats (padded/off then packed/on); ratio = median of packed / padded")
    print()
    print(table(results))
    print()
    out = args.out or ROOT / "runs" / "benchmarks" / f"llm_packing-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"command": " ".join(sys.argv), "machine": machine, "repeats": repeats, "batches": n_batches,
              "sft_steps_cap": sft_steps, "seed": args.seed, "wall_s": wall, "results": results}  # fmt: skip
    out.write_text(json.dumps(report, indent=1))
    print(f"wrote {out} ({wall:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
