"""The loop every on-policy agent shares: collect a rollout on vector envs, compute advantages, update.

``OnPolicyAgent`` owns the policy network π_θ, an optional critic, the optimizer, the vector envs,
the rollout buffer (GAE(λ) advantages, truncation bootstrapped from the true final observation),
observation / reward normalisation and learning-rate annealing; one ``advance`` is one rollout and one
update. An algorithm supplies its ``Config`` and ``update(buffer)``; it may override how actions are
chosen (``select_actions``) and how states are valued for bootstrapping (``bootstrap_values``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from rlzoo import distributed
from rlzoo.agents.base import Agent, require_discrete_actions
from rlzoo.approximators import ACTIVATIONS
from rlzoo.buffers import RolloutBuffer
from rlzoo.config import ConfigError, DiscountedConfig, param
from rlzoo.critics import NoCritic, StateValueCritic
from rlzoo.devices import to_host
from rlzoo.envs import VECTOR_MODES
from rlzoo.logging import RunLogger
from rlzoo.policy_networks import PolicyNetwork
from rlzoo.rollouts import RolloutCollector, SeedBatchRollouts
from rlzoo.seed_stack import (
    clip_gradients,
    copy_optimizer_state,
    load_optimizer_state,
    per_seed,
    stack_modules,
)
from rlzoo.seeding import seeded_torch
from rlzoo.truth import optimal_truth_and_states

LR_SCHEDULES = ("constant", "linear")
OPTIMIZERS = ("adam", "rmsprop", "sgd")


@dataclass
class OnPolicyConfig(DiscountedConfig):
    """Hyper-parameters every on-policy agent has (each algorithm sets its own defaults)."""

    gamma: float = param(0.99, ge=0.0, le=1.0)
    n_envs: int = param(8, ge=1, help="parallel envs (vector env)")
    n_steps: int = param(5, ge=1, help="steps per env in one rollout")
    learning_rate: float = param(7e-4, gt=0.0)
    lr_schedule: str = param("constant", choices=LR_SCHEDULES, help="linear: anneal to 0 at total_steps")
    optimizer: str = param("adam", choices=OPTIMIZERS)
    ent_coef: float = param(0.0, ge=0.0, help="entropy bonus weight")
    max_grad_norm: float = param(0.5, ge=0.0, help="global gradient-norm clip; 0: none")
    hidden: list[int] = param([64, 64], help="policy MLP widths ([] with a Discrete obs: a softmax table)")
    critic_hidden: list[int] | None = param(None, help="critic MLP widths; null: same as hidden")
    activation: str = param("tanh", choices=ACTIVATIONS)
    ortho_init: bool = True
    log_std_init: float = param(0.0, help="Gaussian policies: initial log standard deviation")
    state_dependent_std: bool = False
    use_sde: bool = param(False, help="gSDE: exploration noise z(s)ᵀθ_ε, smooth in the state (Box actions)")
    sde_sample_freq: int = param(-1, ge=-1, help="gSDE: env steps between new θ_ε; -1: once per rollout")
    normalize_obs: bool = False
    normalize_reward: bool = False
    vector_mode: str = param("auto", choices=("auto", *VECTOR_MODES))
    log_every: int = param(2000, ge=1, help="env steps between loss / truth logs")

    def validate(self, prefix: str) -> None:
        for key in ("hidden", "critic_hidden"):
            widths = getattr(self, key)
            if widths is not None and any(w < 1 for w in widths):
                raise ConfigError(f"{prefix}.{key}={widths} is not allowed: layer widths must be positive")
        if self.sde_sample_freq == 0:
            raise ConfigError(f"{prefix}.sde_sample_freq=0 is not allowed: give -1 (once per rollout) or a step count")
        if self.use_sde and self.state_dependent_std:
            raise ConfigError(f"{prefix}.use_sde=true and {prefix}.state_dependent_std=true are two ways of making the "
                              "noise depend on the state: choose one")  # fmt: skip


@dataclass
class ActorCriticConfig(OnPolicyConfig):
    """On-policy agents whose actor and critic are trained together on one loss."""

    critic_learning_rate: float | None = param(None, gt=0.0, help="null: learning_rate")
    vf_coef: float = param(0.5, ge=0.0, help="critic loss weight")


@dataclass
class GAEConfig:
    """Agents whose advantages are GAE(λ) (Schulman et al., 2016): λ = 0 the TD error, λ = 1 the n-step return
    minus V(s). Agents without this key use λ = 1 (or fix their own)."""

    gae_lambda: float = param(0.95, ge=0.0, le=1.0, help="GAE λ: 0 = TD-error advantages, 1 = n-step returns")


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """Adam, RMSprop (α = 0.99, ε = 1e-5 as in A2C) or plain SGD over ``params``."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, eps=1e-5, fused=True)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=1e-5, foreach=True)
    return torch.optim.SGD(params, lr=lr, foreach=True)


def rollout_tensors(buffer: RolloutBuffer, *names: str, device: torch.device) -> list[torch.Tensor]:
    """The buffer's arrays ``names`` as tensors on ``device``, envs merged (``RolloutBuffer.flat``): one host→device
    copy per array and update."""
    return [torch.from_numpy(buffer.flat(name)).to(device) for name in names]


def normalized_advantages(advantages: torch.Tensor) -> torch.Tensor:
    """(Â − mean Â) / (std Â + 1e-8) over the batch (the last axis: each seed's own in a seed batch; a torchrun
    minibatch's over every rank)."""
    if advantages.dim() == 1:
        mean, std = distributed.mean_std(advantages)
    else:
        mean, std = advantages.mean(dim=-1, keepdim=True), advantages.std(dim=-1, keepdim=True)
    return (advantages - mean) / (std + 1e-8)


def explained_variance(predictions: np.ndarray, targets: np.ndarray) -> float:
    """1 − Var[y − ŷ] / Var[y]: 1 for a perfect critic, 0 for a constant one, < 0 worse than constant."""
    var = float(np.var(targets))
    return float("nan") if var == 0 else 1.0 - float(np.var(targets - predictions)) / var


class OnPolicyAgent(Agent):
    """Base of REINFORCE, QAC, A2C, off-policy AC, TRPO and PPO (see the module docstring)."""

    family = "policy_gradient"
    solves_policy_truth = True
    Config = ActorCriticConfig
    critic_class: ClassVar[type[torch.nn.Module]] = StateValueCritic  # NoCritic, or ActionValueTableCritic
    discrete_actions_only: ClassVar[bool] = False
    saved_parts = ("policy", "critic", "optimizer")
    runs_on_device = True
    acts_in_batches = True
    live_parts = tuple(f"rollouts.{name}" for name in RolloutCollector.live_parts)
    compiled_acting: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]] | None = None  # ``compile``

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        obs, act = env.observation_space, env.action_space
        if not isinstance(obs, (gym.spaces.Discrete, gym.spaces.Box)):
            raise ConfigError(f"algo={cls.name} needs Discrete or Box observations; the env has {obs}")
        if not (isinstance(act, gym.spaces.Discrete) or (isinstance(act, gym.spaces.Box) and len(act.shape) == 1)):
            raise ConfigError(f"algo={cls.name} needs a Discrete or 1-D Box action space; the env has {act}")
        if cls.discrete_actions_only:
            require_discrete_actions(cls, env)

    def setup(self) -> None:
        env, cfg = self.env, self.config
        if distributed.is_distributed() and (cfg.normalize_obs or cfg.normalize_reward):
            raise ConfigError("algo.normalize_obs / algo.normalize_reward keep running statistics per process, so "
                              "they are not supported under torchrun; set both to false")  # fmt: skip
        self.discrete = isinstance(env.action_space, gym.spaces.Discrete)
        if cfg.use_sde and self.discrete:
            raise ConfigError(f"algo.use_sde=true needs a Box action space (gSDE perturbs continuous actions); "
                              f"the env has {env.action_space}")  # fmt: skip
        with seeded_torch(self.seed):  # built on the CPU, then moved: the same initial weights on any device
            self.policy = PolicyNetwork(env.observation_space, env.action_space, list(cfg.hidden), cfg.activation,
                                        ortho=cfg.ortho_init, log_std_init=cfg.log_std_init,
                                        state_dependent_std=cfg.state_dependent_std,
                                        state_dependent_exploration=cfg.use_sde)  # fmt: skip
            hidden = list(cfg.hidden if cfg.critic_hidden is None else cfg.critic_hidden)
            self.critic = (self.critic_class(env.observation_space, env.action_space, hidden, cfg.activation,
                                             cfg.ortho_init)
                           if self.wants_critic() else NoCritic(env.observation_space))  # fmt: skip
        self.policy, self.critic = self.policy.to(self.device), self.critic.to(self.device)
        self.parameters = [*self.policy.parameters(), *self.critic.parameters()]
        self.optimizer = self.build_optimizer()
        self.rollouts = RolloutCollector(env, cfg.n_envs, cfg.n_steps, cfg.vector_mode, normalize_obs=cfg.normalize_obs,
                                         normalize_reward=cfg.normalize_reward, gamma=cfg.gamma,
                                         device=self.device)  # fmt: skip
        self.truth, self.states = optimal_truth_and_states(env, cfg.gamma) if self.discrete else (None, None)
        self.n_updates = 0
        self.progress_remaining = 1.0  # 1 → 0 over the current learn() budget (for annealed coefficients)
        self.learning_rate = cfg.learning_rate  # the actor's, as last set by the schedule
        self.sde_step = 0  # gSDE: env steps since the exploration matrices were drawn (0: draw before acting)

    # ---- construction hooks ------------------------------------------------------------
    def wants_critic(self) -> bool:
        """Whether to build ``critic_class`` (REINFORCE: only with a baseline); else ``NoCritic``."""
        return True

    def build_optimizer(self) -> torch.optim.Optimizer:
        """One optimizer over actor and critic; a second parameter group when the critic has its own step size."""
        cfg = self.config
        lr, critic_lr = cfg.learning_rate, cfg.critic_learning_rate
        critic_params = list(self.critic.parameters())
        if not critic_params or critic_lr is None or critic_lr == lr:
            groups = [{"params": self.parameters, "lr": lr, "base_lr": lr}]
        else:
            groups = [{"params": list(self.policy.parameters()), "lr": lr, "base_lr": lr},
                      {"params": critic_params, "lr": critic_lr, "base_lr": critic_lr}]  # fmt: skip
        return make_optimizer(cfg.optimizer, groups, lr)

    @property
    def gae_lambda(self) -> float:
        """GAE λ of the advantages: ``algo.gae_lambda`` where the config has it (``GAEConfig``), else 1."""
        return self.config.gae_lambda if isinstance(self.config, GAEConfig) else 1.0

    @property
    def buffer(self) -> RolloutBuffer:
        """The latest rollout."""
        return self.rollouts.buffer

    # ---- acting ----------------------------------------------------------------------------
    def _act(self, obs: Any, deterministic: bool = True) -> Any:
        action = self._act_batch(np.asarray(obs)[None], deterministic)[0]
        return int(action) if self.discrete else action

    def _act_batch(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """The policy's modes (or, not ``deterministic``, samples) for a batch of observations, in one call."""
        with torch.inference_mode():
            dist = self.policy(self.rollouts.obs_tensor(obs).to(self.device))
            actions = dist.mode() if deterministic else dist.sample(self.rng)
        return self.rollouts.to_env(actions.cpu().numpy())

    def select_actions(self, obs: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Actions to take in a batch of states (on the agent's device), their log-probabilities and the critic's
        values, as host arrays."""
        if self.config.use_sde:
            self.resample_exploration()
        if self.compiled_acting is not None:  # the noise drawn first, the rest one compiled function (``compile``)
            return to_host(*self.compiled_acting(obs, self.policy.sampling_noise(obs, self.rng)))
        dist = self.policy(obs)
        actions = dist.sample(self.rng)
        return to_host(actions, dist.log_prob(actions), self.critic.state_values(obs, self.policy))

    def act_and_evaluate(self, obs: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``select_actions`` as a function of tensors only: actions sampled with ``noise``
        (``PolicyNetwork.sampling_noise``), their log-probabilities and the critic's values."""
        dist = self.policy(obs)
        actions = dist.sample_with(noise)
        return actions, dist.log_prob(actions), self.critic.state_values(obs, self.policy)

    def resample_exploration(self) -> None:
        """gSDE: new exploration matrices (one per env) at a rollout's first step and every ``sde_sample_freq``."""
        freq = self.config.sde_sample_freq
        if self.sde_step == 0 or (freq > 0 and self.sde_step % freq == 0):
            self.policy.reset_noise(self.config.n_envs, self.rng)
        self.sde_step += 1

    def bootstrap_values(self, obs: torch.Tensor, last: bool) -> np.ndarray:
        """Values to bootstrap from: of truncated episodes' final observations, or (``last``) after the rollout."""
        return self.critic.state_values(obs, self.policy).cpu().numpy()

    # ---- the loop ----------------------------------------------------------------------
    def begin(self, total_steps: int, logger: RunLogger) -> None:
        """Refuses a budget smaller than one rollout (the rollout length is part of the algorithm: only the budget's
        last rollout is trimmed); resets the envs (unless a resumed run restored them)."""
        cfg = self.config
        if self.num_timesteps == 0 and cfg.n_steps * cfg.n_envs > total_steps:
            raise ConfigError(f"algo.n_steps × algo.n_envs = {cfg.n_steps} × {cfg.n_envs} = {cfg.n_steps * cfg.n_envs} "
                              f"env steps per rollout is more than total_steps={total_steps}: lower n_steps or n_envs, "
                              "or raise total_steps")  # fmt: skip
        super().begin(total_steps, logger)
        if self.rollouts.obs is None:  # a fresh start, or a resume that could not restore the envs
            self.rollouts.reset(self.env_seed())

    def advance(self, n_steps: int, logger: RunLogger) -> dict[str, float]:
        """One rollout of ``algo.n_steps × n_envs`` env steps (whatever ``n_steps`` the trainer asks) and one update;
        the last rollout of the budget is trimmed to the steps left (rounded up to a step of every env)."""
        cfg = self.config
        self.progress_remaining = max(0.0, 1.0 - self.num_timesteps / self.total_steps)
        self.learning_rate = self.set_learning_rate()
        self.sde_step = 0
        steps_left = -(-(self.total_steps - self.num_timesteps) // cfg.n_envs)  # ceil: every env steps together
        last_values, self.num_timesteps = self.rollouts.collect(
            self.select_actions, self.bootstrap_values, logger, self.num_timesteps, min(cfg.n_steps, steps_left)
        )
        self.buffer.compute_advantages(last_values, self.config.gamma, self.gae_lambda)
        stats = self.update(self.buffer)
        self.n_updates += 1
        return stats

    def update(self, buffer: RolloutBuffer) -> dict[str, float]:
        """One policy (and critic) update from a full rollout; returns the losses to log."""
        raise NotImplementedError

    def log_point(self, step: int) -> dict[str, float]:
        """The learning rate and how well the values from before the update fit the last rollout's returns."""
        out = {"charts/learning_rate": self.learning_rate}
        if self.critic.estimates_values and self.n_updates:
            out["explained_variance"] = explained_variance(self.buffer.flat("values"), self.buffer.flat("returns"))
        return out

    def set_learning_rate(self) -> float:
        """Constant, or annealed linearly to 0 at the end of the budget (``progress_remaining``); the actor's."""
        scale = self.progress_remaining if self.config.lr_schedule == "linear" else 1.0
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * scale
        return self.optimizer.param_groups[0]["lr"]

    def gradient_step(self, obs: torch.Tensor, actions: torch.Tensor, scores: torch.Tensor, targets: torch.Tensor,
                      weights: torch.Tensor | None = None, all_actions: bool = False) -> dict[str, float]:  # fmt: skip
        """One step on the actor-critic loss, averaged over the batch:

        L = −mean(w · score · log π(a|s)) − c_H · mean H[π(·|s)] + c_V · mean(w · (target − ĉ(s, a))²)

        where score is the advantage (A2C), the return (REINFORCE) or Q(s, a) (QAC), ĉ the critic's V(s)
        or Q(s, a) (no term without a critic), w optional importance weights; the global gradient norm is
        clipped to ``max_grad_norm``. With ``all_actions`` ``scores`` holds a score for every action (B, |A|) and the
        policy term is −mean(w · Σ_a π(a|s) score(s, a)): the same expected gradient as the sampled action's, without
        the variance of sampling it (mean actor-critic, Allen et al., 2017).
        """
        cfg = self.config
        dist = self.policy(obs)
        log_probs = dist.log_prob(actions)
        entropy = dist.entropy().mean(dim=-1)
        w = 1.0 if weights is None else weights
        if all_actions:
            policy_loss = -(w * (dist.probs * scores).sum(dim=-1)).mean(dim=-1)
        else:
            policy_loss = -(w * scores * log_probs).mean(dim=-1)
        loss = policy_loss - cfg.ent_coef * entropy
        stats = {"policy_loss": policy_loss, "entropy": entropy}
        value_loss = self.critic.value_loss(obs, actions, targets, w)
        if value_loss is not None:
            loss = loss + cfg.vf_coef * value_loss
            stats["value_loss"] = value_loss
        grad_norm = self.optimize(loss)
        if grad_norm is not None:
            stats["grad_norm"] = grad_norm
        return {key: per_seed(value) for key, value in stats.items()}

    def optimize(self, loss: torch.Tensor, parameters: list[torch.nn.Parameter] | None = None) -> torch.Tensor | None:
        """Backpropagate ``loss`` (a seed batch's: one per seed, summed), clip the global gradient norm of
        ``parameters`` (default: all; each seed's own) to ``max_grad_norm`` and step the optimizer; returns that norm
        before clipping (None when not clipping)."""
        self.optimizer.zero_grad(set_to_none=True)
        params = self.parameters if parameters is None else parameters
        loss.sum().backward()
        distributed.average_gradients(params)  # across torchrun processes (equal batch shares); else nothing
        grad_norm = None
        if self.config.max_grad_norm > 0:
            grad_norm = clip_gradients(params, self.config.max_grad_norm, self.n_seeds)
        self.optimizer.step()
        return grad_norm

    def networks(self) -> list[torch.nn.Module]:
        return [self.policy, self.critic]

    # ---- seed batches (rlzoo.seed_batch) -----------------------------------------------------
    @classmethod
    def check_seed_batch(cls, config: OnPolicyConfig) -> None:
        if distributed.is_distributed():
            raise ConfigError("a seed batch trains in one process, not under torchrun")

    @classmethod
    def stacked(cls, lanes: Sequence[OnPolicyAgent]) -> OnPolicyAgent:
        """A copy of the first lane whose policy and critic hold every lane's parameters (``stack_modules``), whose
        optimizer steps them all (the lanes' optimizer states stacked), whose generator draws each lane's numbers
        and whose rollouts step each lane's own collector (``SeedBatchRollouts``)."""
        stacked = super().stacked(lanes)
        stacked.policy = stack_modules([lane.policy for lane in lanes])
        stacked.critic = stack_modules([lane.critic for lane in lanes])
        stacked.parameters = [*stacked.policy.parameters(), *stacked.critic.parameters()]
        stacked.optimizer = stacked.build_optimizer()
        load_optimizer_state(stacked.optimizer, [lane.optimizer for lane in lanes])
        stacked.rollouts = SeedBatchRollouts([lane.rollouts for lane in lanes], stacked.device)
        return stacked

    def sync_lane(self, lane: Agent, k: int) -> None:
        super().sync_lane(lane, k)
        lane.n_updates, lane.progress_remaining = self.n_updates, self.progress_remaining
        lane.learning_rate, lane.total_steps = self.learning_rate, self.total_steps
        copy_optimizer_state(self.optimizer, lane.optimizer, k)

    # ---- ground truth (envs with a known model, e.g. GridWorld) -----------------------------
    def truth_tables(self) -> tuple[np.ndarray, np.ndarray | None]:
        """π(a|s) for every state (S, A) and the critic's V(s) (None without a critic)."""
        with torch.inference_mode():
            obs = self.rollouts.obs_tensor(self.states).to(self.device)
            values = self.critic.state_values(obs, self.policy).double().cpu().numpy()
            probs = self.policy(obs).probs.double().cpu().numpy()
            return probs, values if self.critic.estimates_values else None

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "updates": self.n_updates}

    # ---- persistence -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "n_updates": self.n_updates, **self.rollouts.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.n_updates = int(state["n_updates"])
        self.rollouts.load_state_dict(state)
