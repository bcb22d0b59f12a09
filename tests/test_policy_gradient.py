"""Policy-gradient and actor-critic agents: gradient signs, importance sampling, learning, persistence."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlzoo import ConfigError, make_agent
from rlzoo.agents import Agent
from rlzoo.agents.off_policy_ac import behaviour_distribution
from rlzoo.distributions import Categorical
from rlzoo.evaluate import evaluate
from rlzoo.logging import RunLogger

from .helpers import RecordingLogger

ARM_REWARDS = np.array([0.2, 1.0, 0.5])
CORRIDOR = {"layout": ["S...T"], "episodic": True, "max_episode_steps": 30}


class Bandit(gym.Env):
    """One-step bandit: a constant observation, three arms with fixed rewards, then the episode ends."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), float(ARM_REWARDS[int(action)]), True, False, {}


class ContinuousBandit(gym.Env):
    """One-step continuous bandit: reward −(a − 0.7)², a ∈ [−2, 2]."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), -float((action[0] - 0.7) ** 2), True, False, {}


def best_arm_probability(agent) -> float:
    with torch.no_grad():
        return float(agent.policy(torch.zeros(1, 1)).probs[0, 1])


def test_policy_gradient_step_raises_the_probability_of_the_best_arm():
    agent = make_agent("reinforce", Bandit(), seed=0, baseline=False, n_envs=64, n_steps=1, optimizer="sgd",
                       learning_rate=0.5, lr_schedule="constant", hidden=[])  # fmt: skip
    before = best_arm_probability(agent)
    agent.learn(64)  # exactly one rollout and one update
    assert agent.n_updates == 1
    after_one = best_arm_probability(agent)
    agent.learn(64 * 30)
    assert before < after_one < best_arm_probability(agent)
    assert best_arm_probability(agent) > 0.8


def test_importance_sampling_is_unbiased_for_value_and_gradient():
    """E_β[ρ r] = E_π[r] and E_β[ρ r ∇log π] = ∇ E_π[r] (the off-policy policy-gradient estimator)."""
    agent = make_agent("off_policy_ac", Bandit(), seed=0, hidden=[], behavior="uniform")
    with torch.no_grad():
        agent.policy.head.logits.bias.copy_(torch.tensor([1.0, -0.5, 0.3]))
    n = 200_000
    obs = torch.zeros(n, 1)
    with torch.no_grad():
        actions, behaviour_logp, _ = agent.select_actions(obs)
    actions, behaviour_logp = torch.from_numpy(actions), torch.from_numpy(behaviour_logp)
    np.testing.assert_allclose(np.bincount(actions.numpy()) / n, [1 / 3] * 3, atol=0.01)  # β is uniform
    rho = agent.importance_ratios(obs, actions, behaviour_logp)
    r = torch.from_numpy(ARM_REWARDS)[actions].float()
    pi = agent.policy(obs[:1]).probs[0].detach()
    exact_value = float((pi.double() * torch.from_numpy(ARM_REWARDS)).sum())
    estimate = rho * r
    assert abs(float(estimate.mean()) - exact_value) < 4 * float(estimate.std()) / np.sqrt(n)
    # gradient with respect to the logits
    logits = agent.policy.head.logits.bias.detach().clone().requires_grad_(True)
    (torch.softmax(logits, 0) @ torch.from_numpy(ARM_REWARDS).float()).backward()
    logp = Categorical(logits.expand(n, 3)).log_prob(actions)
    (grad_estimate,) = torch.autograd.grad((rho * r * logp).mean(), logits)
    torch.testing.assert_close(grad_estimate, logits.grad, atol=0.01, rtol=0)


def test_uniform_and_mixture_behaviour_policies():
    pi = Categorical(torch.log(torch.tensor([[0.7, 0.2, 0.1]])))
    torch.testing.assert_close(behaviour_distribution(pi, "uniform", 0.0).probs, torch.full((1, 3), 1 / 3))
    mix = behaviour_distribution(pi, "mixture", 0.3).probs
    torch.testing.assert_close(mix, 0.7 * pi.probs + 0.1)


def test_the_mixture_s_epsilon_decays_linearly_over_its_steps_and_each_rollout_samples_at_its_own():
    """β_t = (1 − ε_t) π + ε_t/|A| with ε_t linear from behavior_epsilon to behavior_epsilon_final over
    behavior_epsilon_decay_steps, read at the rollout's first step: every stored log β(a|s) is that mixture's."""
    agent = make_agent("off_policy_ac", Bandit(), seed=0, hidden=[], n_envs=1, n_steps=8, behavior_epsilon=0.9,
                       behavior_epsilon_final=0.1, behavior_epsilon_decay_steps=32)  # fmt: skip
    with torch.no_grad():
        agent.policy.head.logits.bias.copy_(torch.tensor([2.0, -1.0, 0.0]))  # π far from uniform: ε shows in β
    for start, epsilon in [(0, 0.9), (8, 0.7), (16, 0.5), (24, 0.3), (32, 0.1), (40, 0.1)]:
        assert agent.num_timesteps == start and agent.behaviour_epsilon(start) == pytest.approx(epsilon)
        with torch.no_grad():
            pi = agent.policy(torch.zeros(1, 1)).probs[0].double()  # β of this rollout: π before its update
        agent.learn(start + 8)
        actions = torch.from_numpy(agent.buffer.flat("actions")).long()
        expected = torch.log((1 - epsilon) * pi[actions] + epsilon / 3)
        torch.testing.assert_close(torch.from_numpy(agent.buffer.flat("log_probs")).double(), expected, atol=1e-6,
                                   rtol=0)  # fmt: skip
    constant = make_agent("off_policy_ac", Bandit(), seed=0, behavior_epsilon=0.9, behavior_epsilon_final=None)
    assert constant.behaviour_epsilon(0) == constant.behaviour_epsilon(10**6) == 0.9


def test_ratio_clip_truncates_importance_weights():
    agent = make_agent("off_policy_ac", Bandit(), seed=0, hidden=[], behavior="uniform", ratio_clip=1.2)
    with torch.no_grad():
        agent.policy.head.logits.bias.copy_(torch.tensor([3.0, 0.0, 0.0]))  # π(0) ≈ 0.91 → ρ ≈ 2.7
    obs, actions = torch.zeros(3, 1), torch.tensor([0, 1, 2])
    rho = agent.importance_ratios(obs, actions, torch.full((3,), float(np.log(1 / 3))))
    assert rho[0] == pytest.approx(1.2) and rho[1] < 1.0


def test_a2c_learns_cartpole_quickly():
    env = gym.make("CartPole-v1")
    agent = make_agent("a2c", env, seed=0)
    before = evaluate(agent, env, 5, seed=100).mean
    agent.learn(30_000)
    after = evaluate(agent, env, 5, seed=100).mean
    assert after > max(250.0, before + 150.0)


def test_reinforce_with_baseline_improves_on_cartpole():
    env = gym.make("CartPole-v1")
    agent = make_agent("reinforce", env, seed=0, n_envs=2, n_steps=200, learning_rate=0.01)
    before = evaluate(agent, env, 5, seed=100).mean
    logger = RunLogger()
    agent.learn(10_000, logger)
    after = evaluate(agent, env, 5, seed=100).mean
    assert after > max(150.0, before + 80.0)
    assert "losses/value_loss" in logger.last  # the baseline is trained


@pytest.mark.parametrize("algo,options", [("qac", {}), ("off_policy_ac", {"behavior": "uniform"})])
def test_tabular_actor_critics_learn_the_corridor(algo, options):
    env = gym.make("rlzoo/GridWorld-v0", **CORRIDOR)
    # the book's tabular setting: softmax table, Q/V table, plain SGD
    agent = make_agent(algo, env, seed=0, gamma=0.9, hidden=[], optimizer="sgd", learning_rate=1.0,
                       critic_learning_rate=0.8, max_grad_norm=0.0, **options)  # fmt: skip
    assert agent.summary()["optimal_action_fraction"] < 1.0
    agent.learn(12_000)
    summary = agent.summary()
    assert summary["optimal_action_fraction"] == 1.0  # "right" in every cell
    assert summary["critic_error"] < 0.05  # the critic tracks v_π of its actor (solved exactly)
    assert summary["policy_value_gap"] < 0.05


def test_gaussian_policy_learns_a_continuous_bandit():
    agent = make_agent("a2c", ContinuousBandit(), seed=0, n_envs=16, n_steps=1, learning_rate=1e-2,
                       lr_schedule="constant", hidden=[16], log_std_init=-0.5)  # fmt: skip
    assert abs(float(agent.act(np.zeros(1, np.float32))[0]) - 0.7) > 0.5
    agent.learn(16 * 400)
    assert abs(float(agent.act(np.zeros(1, np.float32))[0]) - 0.7) < 0.1
    samples = [agent.act(np.zeros(1, np.float32), deterministic=False) for _ in range(300)]
    assert all(-2.0 <= float(a[0]) <= 2.0 for a in samples)  # clipped into the Box


@pytest.mark.parametrize("algo", ["a2c", "reinforce", "qac", "off_policy_ac"])
def test_save_load_and_seeded_reproducibility(tmp_path, algo):
    def trained():
        return make_agent(algo, gym.make("CartPole-v1"), seed=3, n_envs=2, n_steps=8).learn(800)

    a, b = trained(), trained()
    obs = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    for p, q in zip(a.policy.parameters(), b.policy.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    loaded = Agent.load(a.save(tmp_path / "agent.pt"))
    assert [loaded.act(o) for o in obs] == [a.act(o) for o in obs]
    assert loaded.n_updates == a.n_updates > 0 and loaded.num_timesteps == a.num_timesteps


def test_incompatible_envs_are_named():
    with pytest.raises(ConfigError, match=r"algo=qac needs a Discrete action space; the env has Box"):
        make_agent("qac", gym.make("Pendulum-v1"))
    with pytest.raises(ConfigError, match=r"algo.hidden=\[0\] is not allowed"):
        make_agent("a2c", gym.make("CartPole-v1"), hidden=[0])


@pytest.mark.parametrize("algo", ["a2c", "reinforce", "qac", "off_policy_ac", "ppo", "trpo"])
@pytest.mark.parametrize("env_id", ["Acrobot-v1", "rlzoo/GridWorld-v0", "Pendulum-v1"])
def test_every_on_policy_agent_runs_on_its_envs(algo, env_id):
    env = gym.make(env_id)
    if env_id == "Pendulum-v1" and algo in ("qac", "off_policy_ac"):
        with pytest.raises(ConfigError, match="needs a Discrete action space"):
            make_agent(algo, env)
        return
    logger = RunLogger()
    agent = make_agent(algo, env, seed=0, n_envs=2, n_steps=16).learn(256, logger)
    assert agent.num_timesteps >= 256 and agent.n_updates > 0
    assert np.isfinite(logger.last["losses/entropy"])
    action = agent.act(env.reset(seed=0)[0], deterministic=False)
    assert env.action_space.contains(np.asarray(action, dtype=env.action_space.dtype))
    if env_id == "rlzoo/GridWorld-v0":
        assert 0.0 <= logger.last["truth/optimal_action_fraction"] <= 1.0


def test_a_budget_smaller_than_one_rollout_is_refused_not_multiplied():
    agent = make_agent("a2c", gym.make("CartPole-v1"), seed=0, n_envs=8, n_steps=100_000)
    with pytest.raises(ConfigError, match=r"algo\.n_steps × algo\.n_envs = 100000 × 8 = 800000 env steps per rollout "
                       r"is more than total_steps=1000"):  # fmt: skip
        agent.learn(1000)
    assert agent.num_timesteps == 0


@pytest.mark.parametrize(("budget", "steps"), [(1000, 1000), (1001, 1002), (1024, 1024)])
def test_the_last_rollout_is_trimmed_to_the_budget(budget, steps):
    logger = RecordingLogger()
    agent = make_agent("ppo", gym.make("CartPole-v1"), seed=0, n_envs=2, n_steps=64, batch_size=32)
    agent.learn(budget, logger)
    assert agent.num_timesteps == steps  # 7 rollouts of 128, then 52 (or 53) steps of both envs, not 128 more
    assert agent.n_updates == 8 and agent.buffer.t == (steps - 7 * 128) // 2
    assert logger.steps("losses/approx_kl")[-1] == steps


def test_gsde_keys_are_checked_in_one_line():
    with pytest.raises(ConfigError, match=r"algo.use_sde=true needs a Box action space .* the env has Discrete\(2\)"):
        make_agent("ppo", gym.make("CartPole-v1"), use_sde=True)
    with pytest.raises(ConfigError, match="sde_sample_freq=0 is not allowed"):
        make_agent("a2c", gym.make("Pendulum-v1"), use_sde=True, sde_sample_freq=0)
    with pytest.raises(ConfigError, match="choose one"):
        make_agent("trpo", gym.make("Pendulum-v1"), use_sde=True, state_dependent_std=True)


def test_gsde_holds_one_exploration_matrix_per_env_for_sde_sample_freq_steps():
    agent = make_agent("ppo", gym.make("Pendulum-v1"), seed=0, use_sde=True, sde_sample_freq=4, n_envs=3, n_steps=8,
                       batch_size=24, n_epochs=1)  # fmt: skip
    draws = []
    original = agent.policy.reset_noise
    agent.policy.reset_noise = lambda n, rng: draws.append((n, agent.sde_step)) or original(n, rng)
    agent.learn(48)  # two rollouts of 8 steps: new matrices for the 3 envs at steps 0 and 4 of each
    assert draws == [(3, 0), (3, 4)] * 2
    assert agent.policy.head.exploration.shape == (3, 64, 1)
