"""What every language-model agent shares: the policy model (a TinyGPT of a configured size, or a local model
directory), the supervised warm start on the task's demonstrations, the frozen reference model, greedy held-out
evaluation and persistence. GRPO and its family (``rlzoo.llm.grpo``, ``rlzoo.llm.kimi``) and DPO
(``rlzoo.llm.dpo``) add how they learn."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
import torch.nn as nn

from rlzoo import distributed
from rlzoo.agents.base import Agent
from rlzoo.config import AlgoConfig, ConfigError, param
from rlzoo.devices import restore_generator
from rlzoo.host_memory import release_after_pass
from rlzoo.llm.decoding import completion_log_probs
from rlzoo.llm.evaluation import evaluate_greedy
from rlzoo.llm.lora import AdaptersDisabled, LoRAConfig, add_adapters, merged, save_adapter
from rlzoo.llm.models import (
    CharTokenizer,
    TinyGPT,
    TinyGPTConfig,
    Tokenizer,
    context_length,
    enable_gradient_checkpointing,
    load_pretrained,
    save_model,
    transformer_blocks,
)
from rlzoo.llm.policy import LanguagePolicy
from rlzoo.llm.precision import PRECISIONS, autocast, cast_parameters, slow_bf16_reason
from rlzoo.llm.prompts import PromptBuckets, Row, chat_template_of, check_prompts_fit
from rlzoo.llm.warm_start import supervised_warm_start
from rlzoo.logging import RunLogger
from rlzoo.seeding import seeded_torch

log = logging.getLogger("rlzoo")


@dataclass
class LMConfig:
    """The policy model: a local directory (``path``: a saved TinyGPT or any Hugging Face causal LM) or a
    ``TinyGPT`` of this size built with random init."""

    path: str | None = None
    n_layer: int = param(2, ge=1)
    d_model: int = param(128, ge=8)
    n_head: int = param(4, ge=1)
    max_len: int = param(32, ge=4)


@dataclass
class LMAgentConfig(AlgoConfig):
    """The model, how it is held in memory (precision, gradient checkpointing, LoRA, packing), its sampling
    temperature and completion length, the optimiser, the supervised warm start and the held-out evaluation."""

    model: LMConfig = field(default_factory=LMConfig)
    precision: str = param("fp32", choices=PRECISIONS,
                           help="bf16: autocast, fp32 master weights; bf16_pure: bf16 weights")  # fmt: skip
    gradient_checkpointing: bool = param(False, help="recompute each block's activations in backward: less memory")
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    packing: bool = param(False, help="loss passes without padding: a batch's sequences packed into rows")
    temperature: float = param(1.0, gt=0.0)
    max_completion_length: int | None = param(None, ge=1, help="null: the task's")
    learning_rate: float = param(1e-4, gt=0.0)
    weight_decay: float = param(0.0, ge=0.0)
    max_grad_norm: float = param(1.0, gt=0.0)
    sft_steps: int = param(4000, ge=0, help="most supervised warm-start steps on the task's demonstrations")
    sft_batch_size: int = param(64, ge=1)
    sft_learning_rate: float = param(1e-3, gt=0.0)
    sft_target: float | None = param(0.25, gt=0.0, help="stop the warm start at this validation first-reward mean")
    eval_prompts: int = param(200, ge=1, help="held-out prompts for greedy evaluation")
    log_every: int = param(50, ge=1, help="steps between held-out evaluations")


class LMAgent(Agent):
    """A language-model policy on a text task env (``rlzoo/TextTask-v0``); a subclass supplies ``advance``. The
    policy model (and a reference copy) lives on ``device``: built on the CPU under the seed, then moved, so its
    initial weights are the same on any device."""

    family = "llm_policy_optimization"
    Config = LMAgentConfig
    runs_on_device = True
    log_every = 1  # every step's diagnostics are logged; held-out evaluation every config.log_every

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        if not hasattr(env.unwrapped, "task"):
            raise ConfigError(
                f"algo={cls.name} needs a text task env (env=arithmetic, countdown, gridworld_text or text_file); "
                f"got {env}"
            )

    def __init__(self, env: gym.Env, config: Any = None, *, seed: int | None = None, **hyperparams: Any) -> None:
        super().__init__(env, config, seed=seed, **hyperparams)
        cfg, self.task = self.config, env.unwrapped.task
        with seeded_torch(seed):  # a local model directory, or a random-init TinyGPT of the configured size
            self.model, self.tokenizer = self.build_model()
            self.peft_model = add_adapters(self.model, cfg.lora) if cfg.lora.r else None
        if self.task.chat_template:
            self.task = self.task.with_chat_template(chat_template_of(self.tokenizer, cfg.model.path))
        if cfg.gradient_checkpointing:
            enable_gradient_checkpointing(self.model)
        cast_parameters(self.model, cfg.precision)
        if (reason := slow_bf16_reason(cfg.precision, self.device)) is not None:
            log.warning(reason)
        self.model.to(self.device)  # (in place: the peft wrapper holds the same modules) before any wrapper shards it
        strategy = self.parallel_strategy()
        if strategy == "fsdp" and self.peft_model is not None:
            raise ConfigError(f"algo.data_parallel=fsdp with algo.lora.r={cfg.lora.r} is not supported: the adapters "
                              "are folded into sharded weights after the warm start; use data_parallel=ddp with "
                              "LoRA")  # fmt: skip
        # the module the training losses call: under torchrun DDP's wrapper, or the model sharded in place by FSDP2
        self.train_model = self.model
        if strategy is not None:
            self.train_model = distributed.wrap(self.model, strategy, transformer_blocks(self.model))
        self.optimizer = self.make_optimizer()
        self.generator = torch.Generator(self.device).manual_seed(int(self.rng.integers(2**62)))  # the sampler's
        self.max_new = cfg.max_completion_length or self.task.max_completion_length
        check_prompts_fit(self.task, self.tokenizer, self.max_new, context_length(self.model))
        self.policy = LanguagePolicy(self.model, self.tokenizer, self.max_new, self.generator, self.task.feedback)
        self.ref_model: nn.Module | None = None
        # with a target-stopped warm start, eval_prompts training rows drawn at random are set aside (never trained
        # on) to measure it: training rows memorised by the warm start would overstate its accuracy
        train, order = self.task.train, self.rng.permutation(len(self.task.train))
        held = cfg.eval_prompts if cfg.sft_target is not None and len(train) > 2 * cfg.eval_prompts else 0
        self.validation = [train[i] for i in order[:held]]
        self.prompts = PromptBuckets([train[i] for i in sorted(order[held:])], self.tokenizer, self.rng)
        self.sft_done = False
        self.results: dict[str, dict[str, float]] = {}

    def networks(self) -> list[nn.Module]:
        return [self.model]

    def build_model(self) -> tuple[nn.Module, Tokenizer]:
        """A new policy model and its tokenizer: the local directory ``model.path`` (a saved TinyGPT or a Hugging
        Face causal LM), or a ``TinyGPT`` of the configured size with random init (from torch's global RNG)."""
        m = self.config.model
        if m.path:
            return load_pretrained(m.path)
        tok = CharTokenizer()
        return TinyGPT(TinyGPTConfig(tok.vocab_size, m.max_len, m.n_layer, m.d_model, m.n_head)), tok

    def parallel_strategy(self) -> str | None:
        """How the model trains across torchrun processes (:func:`rlzoo.distributed.wrap`); None: it does not."""
        return None

    def make_optimizer(self) -> torch.optim.Optimizer:
        """AdamW over the trained parameters (LoRA's adapters only, when it is on)."""
        cfg = self.config
        trained = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.AdamW(trained, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

    def learn(self, *args: Any, **kwargs: Any) -> LMAgent:
        """The training loop (``Agent.learn``) with every forward pass at the configured precision."""
        with autocast(self.config.precision, self.model):
            return super().learn(*args, **kwargs)

    def log_probs(self, model: nn.Module, prompt_ids: torch.Tensor,
                  ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """Per-token log-probs and entropies of completions ``ids`` of ``prompt_ids`` under ``model`` (the policy or
        the reference) at the sampling temperature, packed without padding when ``packing`` is set. The memory a
        large forward pass freed goes back to the operating system before a backward pass allocates its own."""
        out = completion_log_probs(model, prompt_ids, ids, self.config.temperature, packing=self.config.packing,
                                   eos_id=self.tokenizer.eos_token_id)  # fmt: skip
        release_after_pass(ids.numel(), ids.device.type)
        return out

    # ---- the training loop's hooks ----------------------------------------------------------------------------
    def begin(self, total_steps: int, logger: RunLogger) -> None:
        """The supervised warm start (once) with held-out evaluations before and after it."""
        super().begin(total_steps, logger)
        if not self.sft_done:
            self.results["initial"] = self.evaluate_heldout()
            sft_steps = self.warm_start(logger)
            if self.peft_model is not None:  # fold the warm start's adapters into the base: it is the reference
                self.fold_adapters()
            self.sft_done = True
            after = self.evaluate_heldout()
            for key, value in after.items():
                logger.scalar(f"heldout/{key}", value, 0)
            self.results["after_warm_start"] = {**after, "sft_steps": float(sft_steps)}
            if self.uses_reference:
                self.ref_model = self.frozen_copy()

    @property
    def uses_reference(self) -> bool:
        """Whether the warm start ends by freezing a copy of the model as the reference (``ref_model``)."""
        return False

    def log_point(self, step: int) -> dict[str, float]:
        """Held-out evaluation every ``config.log_every`` steps and at the end."""
        if step % self.config.log_every and step != self.total_steps:
            return {}
        self.results["final"] = self.evaluate_heldout()
        return {f"heldout/{key}": value for key, value in self.results["final"].items()}

    def warm_start(self, logger: RunLogger) -> int:
        """The supervised warm start (:func:`supervised_warm_start`), checked on the validation prompts set aside
        from the training rows (the first ``eval_prompts`` training rows when none are) — never on the held-out
        test prompts. Returns the number of steps taken."""
        cfg = self.config
        return supervised_warm_start(self.policy, self.task, self.prompts,
                                     self.validation or self.task.train[: cfg.eval_prompts], logger, self.rng,
                                     steps=cfg.sft_steps, batch_size=cfg.sft_batch_size,
                                     learning_rate=cfg.sft_learning_rate, max_grad_norm=cfg.max_grad_norm,
                                     target=cfg.sft_target, packing=cfg.packing,
                                     train_model=self.train_model)  # fmt: skip

    def fold_adapters(self) -> None:
        """Merge the adapters into the base weights and start fresh ones (B = 0: the same policy), with a new
        optimiser over them: the base alone is then the current policy."""
        with seeded_torch(int(self.rng.integers(2**31))):
            self.peft_model = add_adapters(merged(self.peft_model), self.config.lora)
        cast_parameters(self.model, self.config.precision)
        self.optimizer = self.make_optimizer()

    def frozen_copy(self) -> nn.Module:
        """The policy as it is now, frozen (the KL reference model, taken after the warm start): with LoRA the
        base model with its adapters disabled (no second copy of the weights), else a copy of the model, stored
        as ``precision`` stores frozen weights."""
        if self.peft_model is not None:
            return AdaptersDisabled(self.peft_model)
        if not self.sharded:
            return cast_parameters(copy.deepcopy(self.model).requires_grad_(False).eval(), self.config.precision)
        ref = cast_parameters(self.whole_copy().requires_grad_(False).eval(), self.config.precision).to(self.device)
        return distributed.wrap(ref, "fsdp", transformer_blocks(ref))  # with its own shards

    @property
    def sharded(self) -> bool:
        """Whether FSDP2 shards the model over the torchrun ranks."""
        return distributed.is_sharded(next(self.model.parameters()))

    def whole_copy(self) -> nn.Module:
        """A new, unsharded model of the same kind holding the sharded model's full weights, on the CPU (FSDP2 modules
        cannot be deep-copied; gathering the weights is a collective every rank must call)."""
        whole, _ = self.build_model()
        whole.load_state_dict(distributed.full_state_dict(self.model))
        return whole

    # ---- acting and evaluation --------------------------------------------------------------------------------
    def complete(self, prompts: list[str], temperature: float = 0.0) -> list[str]:
        """Completions of prompts (greedy at temperature 0)."""
        with autocast(self.config.precision, self.model), distributed.gathered(self.model):
            return self.policy.complete(prompts, temperature)

    def _act(self, obs: Any, deterministic: bool = True) -> str:
        """The completion of one prompt: greedy, or sampled at ``temperature``."""
        return self.complete([str(obs)], temperature=0.0 if deterministic else self.config.temperature)[0]

    def evaluate(self, rows: list[Row]) -> dict[str, float]:
        """Greedy completions of prompt rows scored by the task (:func:`evaluate_greedy`)."""
        with distributed.gathered(self.model):
            return evaluate_greedy(self.policy, self.task, rows)

    def evaluate_heldout(self) -> dict[str, float]:
        """Greedy evaluation on the first ``eval_prompts`` held-out test prompts."""
        return self.evaluate(self.task.test[: self.config.eval_prompts])

    def summary(self) -> dict[str, Any]:
        """The held-out evaluations (initial, after the warm start, final) and the first reward's two figures."""
        out: dict[str, Any] = {"heldout": self.results}
        final = self.results.get("final") or self.results.get("after_warm_start") or {}
        first = self.results.get("after_warm_start", {})
        key = self.task.reward_funcs[0].__name__
        if key in final and key in first:
            out[f"heldout_{key}_after_warm_start"] = first[key]
            out[f"heldout_{key}_final"] = final[key]
        return out

    # ---- persistence ------------------------------------------------------------------------------------------
    def export_model(self, directory: str | Path) -> Path:
        """Write the policy as a model directory that ``algo.model.path`` loads: with LoRA its adapter in
        ``adapter/`` and the model with the adapters merged into the base weights (a copy: training goes on)."""
        directory = Path(directory)
        if self.peft_model is None:
            return save_model(self.whole_copy() if self.sharded else self.model, self.tokenizer, directory)
        save_adapter(self.peft_model, directory / "adapter")
        return save_model(merged(copy.deepcopy(self.peft_model)), self.tokenizer, directory)

    def state_dict(self) -> dict[str, Any]:
        # plain, whole tensors also under FSDP2 (gathered from the shards): a checkpoint loads on any setup
        state = {**super().state_dict(), "model": distributed.full_state_dict(self.model),
                 "optimizer": distributed.full_optimizer_state_dict(self.model, self.optimizer),
                 "generator": self.generator.get_state(), "generator_device": self.device.type,
                 "sft_done": self.sft_done, "results": self.results}  # fmt: skip
        if self.ref_model is not None:
            state["ref_model"] = distributed.full_state_dict(self.ref_model)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a ``state_dict`` saved on any device: the weights and optimiser moments are copied into this
        agent's own (on its device); the sampler's generator state belongs to the device it was saved on, so on
        another one it is re-seeded from the restored rng (``state_inexact`` says so)."""
        super().load_state_dict(state)
        distributed.load_full_state_dict(self.model, state["model"])
        distributed.load_full_optimizer_state_dict(self.model, self.optimizer, state["optimizer"])
        self.state_inexact = restore_generator(self.generator, state["generator"], state.get("generator_device", "cpu"),
                                               self.rng, "sampling")  # fmt: skip
        self.sft_done, self.results = bool(state["sft_done"]), dict(state["results"])
        if "ref_model" in state:
            self.ref_model = self.frozen_copy()
            distributed.load_full_state_dict(self.ref_model, state["ref_model"])
