"""PPO — proximal policy optimisation with the clipped surrogate (Schulman et al., 2017).

Each rollout (``n_steps × n_envs``, GAE(λ) advantages) is used for ``n_epochs`` passes of
minibatches of ``batch_size``. Loss per minibatch:
  −mean min(ρ Â, clip(ρ, 1 ± ε) Â) + c_V · mean (V − R)² (optionally clipped around the old value)
  − c_H · mean H[π],  ρ = π_θ(a|s)/π_old(a|s), Â normalised per minibatch,
with the global gradient norm clipped, learning rate and ε optionally annealed linearly to 0, and an
optional early stop of the epochs once the approximate KL (k3) exceeds ``target_kl``. The diagnostics
follow CleanRL's names: ``approx_kl``, ``clipfrac``, ``explained_variance``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from rlzoo import distributed
from rlzoo.agents.base import compiled
from rlzoo.agents.on_policy import (
    LR_SCHEDULES,
    ActorCriticConfig,
    GAEConfig,
    OnPolicyAgent,
    normalized_advantages,
    rollout_tensors,
)
from rlzoo.agents.registry import register_agent
from rlzoo.buffers import RolloutBuffer
from rlzoo.config import ConfigError, param
from rlzoo.objectives import approx_kl, clipped_surrogate
from rlzoo.seed_stack import take_rows

MINIBATCH_STATS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac", "max_ratio_deviation", "grad_norm")


@dataclass
class PPOConfig(GAEConfig, ActorCriticConfig):
    gamma: float = param(0.98, ge=0.0, le=1.0)
    n_steps: int = param(32, ge=1)
    learning_rate: float = param(1e-3, gt=0.0)
    lr_schedule: str = param("linear", choices=LR_SCHEDULES)
    gae_lambda: float = param(0.8, ge=0.0, le=1.0)
    batch_size: int = param(256, ge=1, help="minibatch size")
    n_epochs: int = param(20, ge=1, help="passes over each rollout")
    clip_range: float = param(0.2, gt=0.0, help="ε of the clipped surrogate")
    clip_schedule: str = param("linear", choices=LR_SCHEDULES, help="linear: anneal ε to 0 at total_steps")
    clip_range_vf: float | None = param(None, gt=0.0, help="clip V around its old value; null: no clipping")
    normalize_advantage: bool = True
    target_kl: float | None = param(None, gt=0.0, help="stop the epochs once approx_kl exceeds it; null: never")


@register_agent
class PPO(OnPolicyAgent):
    """Proximal policy optimisation (clipped) on vector envs; categorical or Gaussian policies."""

    name = "ppo"
    Config = PPOConfig
    data_parallel = True
    seed_batchable = True
    has_compiled_update = True
    seed_batch_compiles = True
    compiled_minibatch_loss: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None  # set by ``compile``

    @classmethod
    def check_seed_batch(cls, config: PPOConfig) -> None:
        super().check_seed_batch(config)
        if config.target_kl is not None:
            raise ConfigError(f"algo.target_kl={config.target_kl} cannot train as a seed batch (each seed would stop "
                              "its epochs at its own time)")  # fmt: skip

    def update(self, buffer: RolloutBuffer) -> dict[str, float]:
        cfg = self.config
        data = rollout_tensors(buffer, "obs", "actions", "log_probs", "values", "advantages", "returns",
                               device=self.device)  # fmt: skip
        eps = cfg.clip_range * (self.progress_remaining if cfg.clip_schedule == "linear" else 1.0)
        eps_tensor = torch.tensor(eps, dtype=torch.float64, device=self.device)
        n = data[4].shape[-1]  # samples (per seed, in a seed batch)
        rows: list[torch.Tensor] = []
        self.first_minibatch: dict[str, float] = {}
        stopped_early = 0.0
        for epoch in range(cfg.n_epochs):
            if cfg.batch_size >= n:  # one minibatch holds the whole rollout: its order does not matter
                epoch_rows = [self._minibatch_step(*data, eps_tensor)]
            else:
                shuffled = torch.from_numpy(self.rng.permutation(n)).to(self.device)
                epoch_rows = [self._minibatch_step(*(take_rows(d, shuffled[..., i : i + cfg.batch_size]) for d in data),
                                                   eps_tensor) for i in range(0, n, cfg.batch_size)]  # fmt: skip
            self.first_minibatch = {"epoch": epoch, **dict(zip(MINIBATCH_STATS, epoch_rows[0].tolist(), strict=True))}
            rows += epoch_rows
            if cfg.target_kl is not None and self.epoch_kl(epoch_rows) > cfg.target_kl:
                stopped_early = 1.0
                break
        means = torch.stack(rows).mean(dim=0).tolist()
        out = {k: v for k, v in zip(MINIBATCH_STATS, means, strict=True) if k != "max_ratio_deviation"}
        if cfg.max_grad_norm <= 0:
            out.pop("grad_norm")
        out.update(clip_range=eps, epochs=epoch + 1, early_stop=stopped_early)
        return out

    @staticmethod
    def epoch_kl(epoch_rows: list[torch.Tensor]) -> float:
        """The epoch's mean approx_kl, averaged over torchrun ranks so every rank stops at the same epoch."""
        return distributed.all_reduce_mean(torch.stack(epoch_rows)[:, 3].mean()).item()

    def compile(self, backend: str = "inductor") -> PPO:
        """The minibatch loss, forward and backward, and the acting step (``act_and_evaluate``, its noise drawn
        before it; not with gSDE) through ``torch.compile`` as whole graphs: TorchInductor fuses the elementwise work
        around the matrix products, which at the small minibatches of the MuJoCo presets (64 samples) and at one
        env's step is much of the time. Advantage normalisation, the gradient clip and the optimiser step stay eager.
        Same draws, same numbers up to float rounding."""
        self.compiled_minibatch_loss = compiled(self.minibatch_loss, self.device, backend)
        if not self.config.use_sde:
            self.compiled_acting = compiled(self.act_and_evaluate, self.device, backend)
        return self

    def _minibatch_step(self, obs, actions, old_log_probs, old_values, advantages, returns, eps) -> torch.Tensor:
        """One gradient step; returns the ``MINIBATCH_STATS`` as one tensor (no per-step host syncs)."""
        if self.config.normalize_advantage and advantages.shape[-1] * distributed.world_size() > 1:
            advantages = normalized_advantages(advantages)  # the global minibatch's, across torchrun ranks
        loss_function = self.compiled_minibatch_loss or self.minibatch_loss
        loss, stats = loss_function(obs, actions, old_log_probs, old_values, advantages, returns, eps)
        grad_norm = self.optimize(loss)
        if grad_norm is None:
            grad_norm = torch.zeros_like(loss)
        return torch.cat([stats, grad_norm.unsqueeze(0)])

    def minibatch_loss(self, obs: torch.Tensor, actions: torch.Tensor, old_log_probs: torch.Tensor,
                       old_values: torch.Tensor, advantages: torch.Tensor, returns: torch.Tensor, eps: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """The minibatch's loss (per seed) and its detached stats (``MINIBATCH_STATS`` but the gradient norm);
        ``eps`` is a 0-d tensor, so that an annealed ε does not retrace a compiled loss."""
        cfg = self.config
        dist = self.policy(obs)
        log_probs = dist.log_prob(actions)
        objective, info = clipped_surrogate(log_probs, old_log_probs, advantages, eps)
        policy_loss = -objective.mean(dim=-1)
        values = self.critic(obs)
        value_loss = (values - returns).pow(2)
        if cfg.clip_range_vf is not None:
            clipped_values = old_values + (values - old_values).clamp(-cfg.clip_range_vf, cfg.clip_range_vf)
            value_loss = torch.maximum(value_loss, (clipped_values - returns).pow(2))
        value_loss = value_loss.mean(dim=-1)
        loss = policy_loss + cfg.vf_coef * value_loss
        if cfg.ent_coef > 0:
            entropy = dist.entropy().mean(dim=-1)
            loss = loss - cfg.ent_coef * entropy
        else:  # only logged: no backward pass through it
            with torch.no_grad():
                entropy = dist.entropy().mean(dim=-1)
        with torch.no_grad():
            kl = approx_kl(log_probs.detach(), old_log_probs).mean(dim=-1)
            deviation = (info["ratio"] - 1.0).abs()
            stats = torch.stack([policy_loss.detach(), value_loss.detach(), entropy.detach(), kl,
                                 (deviation > eps).float().mean(dim=-1), deviation.amax(dim=-1)])  # fmt: skip
        return loss, stats
