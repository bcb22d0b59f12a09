"""What every language-model agent shares: the policy model (a TinyGPT of a configured size, or a local model
directory), the supervised warm start on the task's demonstrations, the frozen reference model, greedy held-out
evaluation and persistence. GRPO and its family (``rlzoo.llm.grpo``, ``rlzoo.llm.kimi``) and DPO
(``rlzoo.llm.dpo``) add how they learn."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import torch
import torch.nn as nn

from rlzoo.agents.base import Agent
from rlzoo.config import AlgoConfig, ConfigError, param
from rlzoo.llm.evaluation import evaluate_greedy
from rlzoo.llm.models import CharTokenizer, TinyGPT, TinyGPTConfig, load_pretrained
from rlzoo.llm.policy import LanguagePolicy
from rlzoo.llm.prompts import PromptBuckets, Row
from rlzoo.llm.warm_start import supervised_warm_start
from rlzoo.logging import RunLogger
from rlzoo.seeding import seeded_torch


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
    """The model, its sampling temperature and completion length, the optimiser, the supervised warm start and the
    held-out evaluation."""

    model: LMConfig = field(default_factory=LMConfig)
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
    """A language-model policy on a text task env (``rlzoo/TextTask-v0``); a subclass supplies ``advance``."""

    family = "llm_policy_optimization"
    Config = LMAgentConfig
    log_every = 1  # every step's diagnostics are logged; held-out evaluation every config.log_every

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        if not hasattr(env.unwrapped, "task"):
            raise ConfigError(
                f"algo={cls.name} needs a text task env (env=arithmetic or env=gridworld_text); got {env}"
            )

    def __init__(self, env: gym.Env, config: Any = None, *, seed: int | None = None, **hyperparams: Any) -> None:
        super().__init__(env, config, seed=seed, **hyperparams)
        cfg, m, self.task = self.config, self.config.model, env.unwrapped.task
        with seeded_torch(seed):  # a local model directory, or a random-init TinyGPT of the configured size
            if m.path:
                self.model, self.tokenizer = load_pretrained(m.path)
            else:
                self.tokenizer = tok = CharTokenizer()
                self.model = TinyGPT(TinyGPTConfig(tok.vocab_size, m.max_len, m.n_layer, m.d_model, m.n_head))
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        self.generator = torch.Generator().manual_seed(int(self.rng.integers(2**62)))
        self.max_new = cfg.max_completion_length or self.task.max_completion_length
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

    # ---- the training loop's hooks ----------------------------------------------------------------------------
    def begin(self, total_steps: int, logger: RunLogger) -> None:
        """The supervised warm start (once) with held-out evaluations before and after it."""
        super().begin(total_steps, logger)
        if not self.sft_done:
            self.results["initial"] = self.evaluate_heldout()
            sft_steps = self.warm_start(logger)
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
                                     target=cfg.sft_target)  # fmt: skip

    def frozen_copy(self) -> nn.Module:
        """A frozen copy of the policy (the KL reference model, taken after the warm start)."""
        return copy.deepcopy(self.model).requires_grad_(False).eval()

    # ---- acting and evaluation --------------------------------------------------------------------------------
    def complete(self, prompts: list[str], temperature: float = 0.0) -> list[str]:
        """Completions of prompts (greedy at temperature 0)."""
        return self.policy.complete(prompts, temperature)

    def _act(self, obs: Any, deterministic: bool = True) -> str:
        """The completion of one prompt: greedy, or sampled at ``temperature``."""
        return self.complete([str(obs)], temperature=0.0 if deterministic else self.config.temperature)[0]

    def evaluate(self, rows: list[Row]) -> dict[str, float]:
        """Greedy completions of prompt rows scored by the task (:func:`evaluate_greedy`)."""
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
    def state_dict(self) -> dict[str, Any]:
        state = {**super().state_dict(), "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "generator": self.generator.get_state(), "sft_done": self.sft_done,
                 "results": self.results}  # fmt: skip
        if self.ref_model is not None:
            state["ref_model"] = self.ref_model.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.sft_done, self.results = bool(state["sft_done"]), dict(state["results"])
        if "ref_model" in state:
            self.ref_model = self.frozen_copy()
            self.ref_model.load_state_dict(state["ref_model"])
