"""The loop every on-policy agent shares: collect a rollout on vector envs, compute advantages, update.

``OnPolicyAgent`` owns the policy network π_θ, an optional critic, the optimizer, the vector envs,
the rollout buffer (GAE(λ) advantages, truncation bootstrapped from the true final observation),
observation / reward normalisation and learning-rate annealing; one ``advance`` is one rollout and one
update. An algorithm supplies its ``Config`` and ``update(buffer)``; it may override how actions are
chosen (``select_actions``) and how states are valued for bootstrapping (``bootstrap_values``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch

from rlzoo import distributed
from rlzoo.agents.base import Agent
from rlzoo.approximators import ACTIVATIONS, Critic
from rlzoo.buffers import RolloutBuffer
from rlzoo.config import AlgoConfig, ConfigError, param
from rlzoo.envs import VECTOR_MODES, vectorize
from rlzoo.logging import RunLogger
from rlzoo.normalization import ObservationNormalizer, RewardScaler
from rlzoo.policy_networks import PolicyNetwork, check_action_space
from rlzoo.seeding import seeded_torch
from rlzoo.truth import optimal_truth_and_states

LR_SCHEDULES = ("constant", "linear")
OPTIMIZERS = ("adam", "rmsprop", "sgd")


@dataclass
class OnPolicyConfig(AlgoConfig):
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
    normalize_obs: bool = False
    normalize_reward: bool = False
    vector_mode: str = param("auto", choices=("auto", *VECTOR_MODES))
    log_every: int = param(2000, ge=1, help="env steps between loss / truth logs")

    def validate(self, prefix: str) -> None:
        for key in ("hidden", "critic_hidden"):
            widths = getattr(self, key)
            if widths is not None and any(w < 1 for w in widths):
                raise ConfigError(f"{prefix}.{key}={widths} is not allowed: layer widths must be positive")


@dataclass
class ActorCriticConfig(OnPolicyConfig):
    """On-policy agents whose actor and critic are trained together on one loss."""

    critic_learning_rate: float | None = param(None, gt=0.0, help="null: learning_rate")
    vf_coef: float = param(0.5, ge=0.0, help="critic loss weight")


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """Adam, RMSprop (α = 0.99, ε = 1e-5 as in A2C) or plain SGD over ``params``."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, eps=1e-5, fused=True)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=1e-5, foreach=True)
    return torch.optim.SGD(params, lr=lr, foreach=True)


def explained_variance(predictions: np.ndarray, targets: np.ndarray) -> float:
    """1 − Var[y − ŷ] / Var[y]: 1 for a perfect critic, 0 for a constant one, < 0 worse than constant."""
    var = float(np.var(targets))
    return float("nan") if var == 0 else 1.0 - float(np.var(targets - predictions)) / var


class OnPolicyAgent(Agent):
    """Base of REINFORCE, QAC, A2C, off-policy AC, TRPO and PPO (see the module docstring)."""

    family = "policy_gradient"
    Config = ActorCriticConfig
    critic_kind: ClassVar[str | None] = "v"  # "v": V(s); "q": Q(s, ·); None: no critic

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        obs = env.observation_space
        if not isinstance(obs, (gym.spaces.Discrete, gym.spaces.Box)):
            raise ConfigError(f"algo={cls.name} needs Discrete or Box observations; the env has {obs}")
        try:
            check_action_space(env.action_space, cls.name)
        except ValueError as err:
            raise ConfigError(str(err)) from None

    def __init__(self, env: gym.Env, config: Any = None, *, seed: int | None = None, **hyperparams: Any) -> None:
        super().__init__(env, config, seed=seed, **hyperparams)
        cfg = self.config
        self.discrete = isinstance(env.action_space, gym.spaces.Discrete)
        with seeded_torch(seed):
            self.policy = PolicyNetwork(env.observation_space, env.action_space, list(cfg.hidden), cfg.activation,
                                        ortho=cfg.ortho_init, log_std_init=cfg.log_std_init,
                                        state_dependent_std=cfg.state_dependent_std)  # fmt: skip
            self.critic = self.build_critic()
        self.optimizer = self.build_optimizer()
        box_obs = isinstance(env.observation_space, gym.spaces.Box)
        if distributed.is_distributed() and (cfg.normalize_obs or cfg.normalize_reward):
            raise ConfigError("algo.normalize_obs / algo.normalize_reward keep running statistics per process, so "
                              "they are not supported under torchrun; set both to false")  # fmt: skip
        self.obs_norm = ObservationNormalizer(env.observation_space.shape) if cfg.normalize_obs and box_obs else None
        self.reward_scaler = RewardScaler(cfg.n_envs, cfg.gamma) if cfg.normalize_reward else None
        self.truth, self.states = optimal_truth_and_states(env, cfg.gamma) if self.discrete else (None, None)
        if not self.discrete:
            self._low, self._high = env.action_space.low, env.action_space.high
        self.vec_env: gym.vector.VectorEnv | None = None
        self.buffer: RolloutBuffer | None = None
        self._obs: np.ndarray | None = None
        self._returns = np.zeros(cfg.n_envs)
        self._lengths = np.zeros(cfg.n_envs, dtype=np.int64)
        self.n_updates = 0
        self.progress_remaining = 1.0  # 1 → 0 over the current learn() budget (for annealed coefficients)
        self.learning_rate = cfg.learning_rate  # the actor's, as last set by the schedule

    # ---- construction hooks ------------------------------------------------------------
    def build_critic(self) -> torch.nn.Module | None:
        """V(s) or Q(s, ·) per ``critic_kind`` (override for none / several)."""
        if self.critic_kind is None:
            return None
        cfg = self.config
        hidden = list(cfg.hidden if cfg.critic_hidden is None else cfg.critic_hidden)
        n_out = int(self.env.action_space.n) if self.critic_kind == "q" else 1
        return Critic(self.env.observation_space, hidden, cfg.activation, n_out, ortho=cfg.ortho_init)

    def parameters(self) -> list[torch.nn.Parameter]:
        """Actor and critic parameters (the list is built once)."""
        if not hasattr(self, "_parameters"):
            critic = list(self.critic.parameters()) if self.critic is not None else []
            self._parameters = list(self.policy.parameters()) + critic
        return self._parameters

    def build_optimizer(self) -> torch.optim.Optimizer:
        """One optimizer over actor and critic; a second parameter group when the critic has its own step size."""
        cfg = self.config
        lr, critic_lr = cfg.learning_rate, cfg.critic_learning_rate
        if self.critic is None or critic_lr is None or critic_lr == lr:
            groups = [{"params": self.parameters(), "lr": lr, "base_lr": lr}]
        else:
            groups = [{"params": list(self.policy.parameters()), "lr": lr, "base_lr": lr},
                      {"params": list(self.critic.parameters()), "lr": critic_lr, "base_lr": critic_lr}]  # fmt: skip
        return make_optimizer(cfg.optimizer, groups, lr)

    @property
    def gae_lambda(self) -> float:
        return float(getattr(self.config, "gae_lambda", 1.0))

    # ---- acting ----------------------------------------------------------------------------
    def obs_tensor(self, obs: np.ndarray, update_stats: bool = False) -> torch.Tensor:
        """Observations as the networks see them (normalised if configured)."""
        obs = np.asarray(obs)
        if self.obs_norm is not None:
            obs = self.obs_norm(obs, update=update_stats)
        return torch.from_numpy(obs)

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        """Actions the env accepts: Gaussian samples are clipped to the Box bounds."""
        return actions if self.discrete else np.clip(actions, self._low, self._high)

    def act(self, obs: Any, deterministic: bool = True) -> Any:
        with torch.inference_mode():
            dist = self.policy(self.obs_tensor(np.asarray(obs)[None]))
            action = dist.mode() if deterministic else dist.sample(self.rng)
        action = self.to_env(action.numpy()[0])
        return int(action) if self.discrete else action

    def state_values(self, obs: torch.Tensor) -> torch.Tensor:
        """The critic's V(s) for a batch (Q critics: Σ_a π(a|s) Q(s, a))."""
        if self.critic_kind == "q":
            return (self.policy(obs).probs * self.critic(obs)).sum(dim=-1)
        return self.critic(obs)

    def select_actions(self, obs: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Actions to take in a batch of states, their log-probabilities and the critic's values."""
        dist = self.policy(obs)
        actions = dist.sample(self.rng)
        values = self.state_values(obs).numpy() if self.critic is not None else np.zeros(len(actions), np.float32)
        return actions.numpy(), dist.log_prob(actions).numpy(), values

    def bootstrap_values(self, obs: torch.Tensor, last: bool) -> np.ndarray:
        """Values to bootstrap from: of truncated episodes' final observations, or (``last``) after the rollout."""
        if self.critic is None:
            return np.zeros(obs.shape[0], dtype=np.float32)
        return self.state_values(obs).numpy()

    # ---- the loop ----------------------------------------------------------------------
    def begin(self, total_steps: int, logger: RunLogger) -> None:
        super().begin(total_steps, logger)
        cfg = self.config
        if self.vec_env is None:
            self.vec_env = vectorize(self.env, cfg.n_envs, cfg.vector_mode)
            space = self.env.observation_space
            obs_dtype = np.int64 if isinstance(space, gym.spaces.Discrete) else np.float32
            act_shape = () if self.discrete else self.env.action_space.shape
            act_dtype = np.int64 if self.discrete else np.float32
            self.buffer = RolloutBuffer(cfg.n_steps, cfg.n_envs, space.shape, act_shape,
                                        obs_dtype=obs_dtype, action_dtype=act_dtype)  # fmt: skip
        if self._obs is None:  # a fresh start, or a resumed agent (its envs restart from a reset)
            seed = None if self.seed is None else self.seed + self.num_timesteps
            self._obs = self.vec_env.reset(seed=seed)[0]
            self._returns[:], self._lengths[:] = 0.0, 0

    def collect(self, logger: RunLogger) -> np.ndarray:
        """Fill the rollout buffer with ``n_steps`` steps of every env; returns the values after the last one."""
        env, buffer = self.vec_env, self.buffer
        buffer.reset()
        obs = self._obs
        with torch.inference_mode():
            for _ in range(buffer.n_steps):
                obs_t = self.obs_tensor(obs, update_stats=True)
                actions, log_probs, values = self.select_actions(obs_t)
                obs, rewards, terminated, truncated, infos = env.step(self.to_env(actions))
                self.num_timesteps += env.num_envs
                done = terminated | truncated
                self._track_episodes(rewards, done, logger)
                if self.reward_scaler is not None:
                    rewards = self.reward_scaler(rewards, done)
                buffer.add(obs_t.numpy(), actions, log_probs, values, rewards, terminated, truncated)
                cut = np.flatnonzero(truncated & ~terminated)
                if len(cut) and self.critic is not None:
                    final = np.stack(infos["final_obs"][cut])
                    buffer.set_final_values(cut, self.bootstrap_values(self.obs_tensor(final), last=False))
            self._obs = obs
            return self.bootstrap_values(self.obs_tensor(obs), last=True)

    def _track_episodes(self, rewards: np.ndarray, done: np.ndarray, logger: RunLogger) -> None:
        self._returns += rewards
        self._lengths += 1
        for e in np.flatnonzero(done):
            logger.episode(float(self._returns[e]), int(self._lengths[e]), self.num_timesteps)
        self._returns[done] = 0.0
        self._lengths[done] = 0

    def set_learning_rate(self) -> float:
        """Constant, or annealed linearly to 0 at the end of the budget (``progress_remaining``); the actor's."""
        scale = self.progress_remaining if self.config.lr_schedule == "linear" else 1.0
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * scale
        return self.optimizer.param_groups[0]["lr"]

    def gradient_step(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        scores: torch.Tensor,
        targets: torch.Tensor | None = None,
        weights: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """One step on the actor-critic loss, averaged over the batch:

        L = −mean(w · score · log π(a|s)) − c_H · mean H[π(·|s)] + c_V · mean(w · (target − ĉ(s, a))²)

        where score is the advantage (A2C), the return (REINFORCE) or Q(s, a) (QAC), ĉ the critic's V(s)
        or Q(s, a), w optional importance weights; the global gradient norm is clipped to ``max_grad_norm``.
        """
        cfg = self.config
        dist = self.policy(obs)
        log_probs = dist.log_prob(actions)
        entropy = dist.entropy().mean()
        w = 1.0 if weights is None else weights
        policy_loss = -(w * scores * log_probs).mean()
        loss = policy_loss - cfg.ent_coef * entropy
        stats = {"policy_loss": policy_loss.item(), "entropy": entropy.item()}
        if targets is not None:
            value_loss = (w * (targets - self.critic_prediction(obs, actions)).pow(2)).mean()
            loss = loss + cfg.vf_coef * value_loss
            stats["value_loss"] = value_loss.item()
        grad_norm = self.optimize(loss)
        if grad_norm is not None:
            stats["grad_norm"] = grad_norm.item()
        return stats

    def optimize(self, loss: torch.Tensor, parameters: list[torch.nn.Parameter] | None = None) -> torch.Tensor | None:
        """Backpropagate ``loss``, clip the global gradient norm of ``parameters`` (default: all) to
        ``max_grad_norm`` and step the optimizer; returns that norm before clipping (None when not clipping)."""
        self.optimizer.zero_grad(set_to_none=True)
        params = self.parameters() if parameters is None else parameters
        loss.backward()
        distributed.average_gradients(params)  # across torchrun processes (equal batch shares); else nothing
        grad_norm = None
        if self.config.max_grad_norm > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, self.config.max_grad_norm)
        self.optimizer.step()
        return grad_norm

    def networks(self) -> list[torch.nn.Module]:
        return [m for m in (self.policy, self.critic) if m is not None]

    def critic_prediction(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """What the critic predicts for the taken actions: V(s), or Q(s, a) for a Q critic."""
        out = self.critic(obs)
        return out.gather(1, actions.long()[:, None]).squeeze(1) if self.critic_kind == "q" else out

    def advance(self, n_steps: int, logger: RunLogger) -> dict[str, float]:
        """One rollout of ``n_steps × n_envs`` env steps (whatever ``n_steps`` the trainer asks) and one update."""
        self.progress_remaining = max(0.0, 1.0 - self.num_timesteps / self.total_steps)
        self.learning_rate = self.set_learning_rate()
        last_values = self.collect(logger)
        self.buffer.compute_advantages(last_values, self.config.gamma, self.gae_lambda)
        stats = self.update(self.buffer)
        self.n_updates += 1
        return stats

    def log_point(self, step: int) -> dict[str, float]:
        """The learning rate and how well the values from before the update fit the last rollout's returns."""
        out = {"charts/learning_rate": self.learning_rate}
        if self.critic is not None and self.n_updates:
            out["explained_variance"] = explained_variance(self.buffer.flat("values"), self.buffer.flat("returns"))
        return out

    def update(self, buffer: RolloutBuffer) -> dict[str, float]:
        """One policy (and critic) update from a full rollout; returns the losses to log."""
        raise NotImplementedError

    # ---- ground truth (envs with a known model, e.g. GridWorld) -----------------------------
    def truth_tables(self) -> tuple[np.ndarray, np.ndarray | None]:
        """π(a|s) for every state (S, A) and the critic's V(s) (None without a critic)."""
        with torch.inference_mode():
            obs = self.obs_tensor(self.states)
            values = self.state_values(obs).double().numpy() if self.critic is not None else None
            return self.policy(obs).probs.double().numpy(), values

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "updates": self.n_updates}

    # ---- persistence -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = {**super().state_dict(), "policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "n_updates": self.n_updates}  # fmt: skip
        if self.critic is not None:
            state["critic"] = self.critic.state_dict()
        if self.obs_norm is not None:
            state["obs_norm"] = self.obs_norm.stats.state_dict()
        if self.reward_scaler is not None:
            state["reward_scaler"] = self.reward_scaler.stats.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.policy.load_state_dict(state["policy"])
        if self.critic is not None:
            self.critic.load_state_dict(state["critic"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.n_updates = int(state["n_updates"])
        if self.obs_norm is not None:
            self.obs_norm.stats.load_state_dict(state["obs_norm"])
        if self.reward_scaler is not None:
            self.reward_scaler.stats.load_state_dict(state["reward_scaler"])
