"""DDPG / TD3: Polyak averaging, action scaling, TD3's target, exploration noise, a fast learning test,
the continuous GridWorld, persistence and guards."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlzoo import ConfigError, approximators, make_agent
from rlzoo.action_scaling import ActionScaler
from rlzoo.agents import Agent, NumericalError
from rlzoo.agents.ddpg import smoothed_target_actions
from rlzoo.approximators import polyak_update
from rlzoo.envs import move_of
from rlzoo.evaluate import evaluate
from rlzoo.noise import GaussianNoise, OrnsteinUhlenbeckNoise
from rlzoo.seed_stack import stack_modules

SMALL = {"hidden": [32, 32], "learning_starts": 100, "batch_size": 64, "log_every": 200}


class PointReach(gym.Env):
    """1-D toy task: move a point x ∈ [−1, 1] to 0.5 in 10 steps; the action is a displacement in [−0.25, 0.25].

    Reward −|x' − 0.5| per step; the optimal policy moves at full speed toward the target and stops there.
    """

    target = 0.5

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = gym.spaces.Box(-0.25, 0.25, (1,), np.float32)
        self.x, self.t = 0.0, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.t = float(self.np_random.uniform(-1.0, 1.0)), 0
        return np.array([self.x], np.float32), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, np.float32)), action  # scaled inside the bounds
        self.x = float(np.clip(self.x + float(action[0]), -1.0, 1.0))
        self.t += 1
        return np.array([self.x], np.float32), -abs(self.x - self.target), False, self.t >= 10, {}


def greedy(agent, obs) -> np.ndarray:
    """The actor's actions μ(s) ∈ [−1, 1]^d for a batch of observations."""
    with torch.inference_mode():
        return agent.greedy_actions(torch.as_tensor(np.asarray(obs, np.float32))).numpy()


def final_distances(agent, episodes: int = 20) -> np.ndarray:
    env, out = PointReach(), []
    for i in range(episodes):
        obs, _ = env.reset(seed=1000 + i)
        for _ in range(10):
            obs, *_ = env.step(agent.act(obs))
        out.append(abs(env.x - PointReach.target))
    return np.array(out)


# ---- shared pieces ------------------------------------------------------------------------------


@pytest.mark.parametrize("tau", [1.0, 0.3, 0.005])
def test_polyak_update_is_the_convex_combination(tau):
    rng = torch.Generator().manual_seed(0)
    target = [torch.randn(5, 3, generator=rng, dtype=torch.float64), torch.randn(7, generator=rng, dtype=torch.float64)]
    source = [torch.randn_like(t) for t in target]
    expected = [(1 - tau) * t + tau * s for t, s in zip(target, source, strict=True)]
    polyak_update(target, source, tau)
    for got, want in zip(target, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-15, atol=1e-15)


def test_ddpg_targets_move_by_polyak_after_each_actor_step():
    agent = make_agent("ddpg", PointReach(), seed=0, tau=0.1, **SMALL).learn(150)
    old = [p.clone() for p in agent.target_params]
    agent.train_step()
    for before, p_t, p in zip(old, agent.target_params, agent.online_params, strict=True):
        torch.testing.assert_close(p_t, 0.9 * before + 0.1 * p)


def test_td3_updates_actor_and_targets_every_policy_delay_critic_steps():
    agent = make_agent("td3", PointReach(), seed=0, policy_delay=3, **SMALL)
    agent.learn(101)  # one critic step so far
    actor, targets = [p.clone() for p in agent.actor_params], [p.clone() for p in agent.target_params]
    agent.train_step()  # critic step 2: actor and targets untouched
    assert all(torch.equal(a, b) for a, b in zip(actor, agent.actor_params, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(targets, agent.target_params, strict=True))
    agent.train_step()  # critic step 3: the delayed actor step and the target update
    assert not torch.equal(actor[0], agent.actor_params[0]) and not torch.equal(targets[0], agent.target_params[0])
    assert (agent.n_critic_updates, agent.n_updates) == (3, 1)


bounds = st.floats(-100.0, 100.0, allow_nan=False).flatmap(
    lambda low: st.tuples(st.just(low), st.floats(low + 1e-3, low + 200.0, allow_nan=False))
)


@settings(max_examples=200, deadline=None)
@given(bounds, st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=8))
def test_action_scaling_stays_inside_any_bounds(lo_hi, us):
    low, high = lo_hi
    scaler = ActionScaler(gym.spaces.Box(low, high, (1,), np.float64))
    actions = scaler.to_env(np.array(us)[:, None])
    assert np.all(actions >= low) and np.all(actions <= high)
    inside = np.clip(np.array(us), -1.0, 1.0)[:, None]
    np.testing.assert_allclose(scaler.from_env(scaler.to_env(inside)), inside, atol=1e-9 * (1 + abs(high) + abs(low)))
    np.testing.assert_allclose(scaler.to_env(np.array([[-1.0], [1.0]]))[:, 0], [low, high], rtol=1e-12, atol=1e-12)


def test_exploring_agent_sends_only_actions_inside_the_box():
    # a huge noise makes every clip matter; PointReach asserts each action lies in its Box
    agent = make_agent("ddpg", PointReach(), seed=0, noise_std=50.0, **SMALL).learn(400)
    assert agent.buffer.actions[: agent.buffer.size].min() >= -1.0 and agent.buffer.actions.max() <= 1.0
    assert np.isclose(np.abs(agent.buffer.actions[100:400]).mean(), 1.0, atol=0.05)  # noise saturates the clip


def test_target_smoothing_noise_is_clipped_and_actions_stay_in_range():
    actions = torch.linspace(-1.0, 1.0, 1001)[:, None]
    noise = torch.randn(actions.shape, generator=torch.Generator().manual_seed(0))
    smoothed = smoothed_target_actions(actions, noise, sigma=10.0, clip=0.3)
    assert torch.all((smoothed - actions).abs() <= 0.3 + 1e-6) and torch.all(smoothed.abs() <= 1.0)
    interior = actions.abs()[:, 0] < 0.7  # away from the bounds σ = 10 noise is almost always clipped to ±0.3
    at_clip = torch.isclose((smoothed - actions)[interior].abs(), torch.tensor(0.3)).float().mean()
    assert at_clip > 0.95  # P(|N(0, 10²)| < 0.3) = 0.024
    assert torch.equal(smoothed_target_actions(actions, None, 0.0, 0.3), actions)  # σ = 0: no noise (DDPG)
    mild = smoothed_target_actions(torch.zeros(20000, 1), torch.randn(20000, 1), 0.2, 0.5)
    assert abs(float(mild.std()) - 0.2) < 0.01  # an unclipped N(0, 0.2²) mostly


@pytest.mark.parametrize("algo", ["ddpg", "td3"])
def test_critic_target_is_reward_plus_discounted_min_over_target_critics(algo):
    agent = make_agent(algo, PointReach(), seed=0, target_policy_noise=0.0, **SMALL).learn(150)
    batch = agent.buffer.sample(32, np.random.default_rng(0))
    next_obs = torch.from_numpy(batch.next_obs)
    with torch.no_grad():
        qs = [q(torch.cat([next_obs, agent.actor_target(next_obs)], 1)).squeeze(1) for q in agent.critic_target.qs]
    assert len(qs) == (2 if algo == "td3" else 1)
    expected = torch.from_numpy(batch.rewards) + torch.from_numpy(batch.discounts) * torch.stack(qs).min(0).values
    with torch.no_grad():
        target = agent.td_target(next_obs, torch.from_numpy(batch.rewards), torch.from_numpy(batch.discounts), None)
    torch.testing.assert_close(target, expected)
    assert not torch.equal(qs[0], qs[-1]) or algo == "ddpg"  # the twins are initialised independently


def test_ou_noise_reverts_to_zero_with_its_stationary_variance():
    sigma, theta, dt = 0.3, 0.15, 0.01
    noise = OrnsteinUhlenbeckNoise(1, sigma, np.random.default_rng(0), theta, dt)
    xs = np.array([noise.sample()[0] for _ in range(400_000)])
    decay = 1 - theta * dt
    stationary = sigma**2 * dt / (1 - decay**2)  # Var of x ← (1 − θdt) x + σ√dt ξ
    assert abs(xs[50_000:].var() / stationary - 1) < 0.15
    lag = 50  # autocorrelation (1 − θdt)^lag: temporally correlated, unlike Gaussian noise
    corr = np.corrcoef(xs[50_000:-lag], xs[50_000 + lag :])[0, 1]
    assert abs(corr - decay**lag) < 0.05
    noise.reset()
    assert np.all(noise.x == 0.0)
    g = np.array([GaussianNoise(2, 0.5, np.random.default_rng(1)).sample() for _ in range(1)])
    assert g.shape == (1, 2)


# ---- learning -----------------------------------------------------------------------------------


def step_critic(obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Q(s, a) = 1 where a > 0.6, else 0: flat on both sides, so its action gradient is zero everywhere."""
    return (actions[..., 0] > 0.6).to(actions.dtype) + 0.0 * actions[..., 0]


@pytest.mark.parametrize("space", [gym.spaces.Discrete(25), gym.spaces.Box(-1.0, 1.0, (3,))])
@pytest.mark.parametrize("chunk", [1 << 18, 64 * 8])  # all 16 candidates at once; 1 candidate a chunk
def test_candidate_scores_are_the_critic_on_each_candidate(monkeypatch, space, chunk):
    """``first_candidates`` (the state block of the first layer once per state, candidates in chunks) gives Q_1 of
    every (state, candidate) pair, for one critic and for a seed batch's stacked critics (each lane its own)."""
    monkeypatch.setattr(approximators, "CANDIDATE_CHUNK_ELEMENTS", chunk)
    critics = []
    for k in range(3):
        torch.manual_seed(k)
        critics.append(approximators.ActionValueCritic(space, 2, [64, 64], "relu", n_critics=2))
    stacked = stack_modules(critics)
    g = torch.Generator().manual_seed(0)
    space.seed(0)
    obs = torch.stack([torch.as_tensor(np.stack([space.sample() for _ in range(8)])) for _ in range(3)])  # (K, B, …)
    candidates = torch.rand(3, 16, 8, 2, generator=g) * 2 - 1  # (K, M, B, d)
    with torch.no_grad():
        batched = stacked.first_candidates(obs, candidates)
        for k, critic in enumerate(critics):
            each = torch.stack([critic.first(obs[k], candidates[k, j]) for j in range(16)])
            torch.testing.assert_close(critic.first_candidates(obs[k], candidates[k]), each, rtol=0, atol=1e-5)
            torch.testing.assert_close(batched[k], each, rtol=0, atol=1e-5)


@pytest.mark.parametrize("spg_samples", [0, 16])
def test_sampled_policy_gradient_leaves_a_flat_region_the_deterministic_gradient_cannot(spg_samples):
    agent = make_agent("ddpg", PointReach(), seed=0, spg_samples=spg_samples, **SMALL)
    agent.critic.first = agent.critic.first_candidates = step_critic
    obs = torch.linspace(-1.0, 1.0, 64)[:, None]
    before = greedy(agent, obs)
    for _ in range(300):
        agent.actor_step(obs, len(obs))
    after = greedy(agent, obs)
    assert (before < 0.6).all()
    if spg_samples:  # the sampled actions found the better region and pulled μ into it
        assert (after > 0.6).all(), after.min()
    else:  # the deterministic policy gradient of a flat critic is zero: μ stays where it was
        np.testing.assert_array_equal(after, before)


@pytest.mark.parametrize("algo", ["ddpg", "td3"])
def test_learns_to_reach_a_point_on_a_line(algo):
    agent = make_agent(algo, PointReach(), seed=0, gamma=0.9, learning_starts=300, hidden=[64, 64], batch_size=64)
    before = final_distances(agent)
    agent.learn(2500)
    after = final_distances(agent)
    # from any start in [-1, 1] the target 0.5 is at most 6 full-speed steps away
    assert after.max() < 0.1 and after.mean() < 0.05 < before.mean()


def test_ddpg_on_the_continuous_gridworld_reports_ground_truth():
    env = gym.make("rlzoo/GridWorldContinuous-v0", max_episode_steps=100)
    agent = make_agent("ddpg", env, seed=0, gamma=0.9, **SMALL).learn(300)
    summary = agent.summary()
    assert {"optimal_action_fraction", "policy_value_gap", "value_error", "critic_error"} <= set(summary)
    policy, values = agent.truth_tables()
    moves = move_of(greedy(agent, agent.states))
    np.testing.assert_array_equal(policy.argmax(1), moves)
    assert policy.shape == (25, 5) and values.shape == (25,)


# ---- the continuous GridWorld -------------------------------------------------------------------


def test_continuous_gridworld_moves_like_the_discrete_one():
    cont = gym.make("rlzoo/GridWorldContinuous-v0").unwrapped
    disc = gym.make("rlzoo/GridWorld-v0").unwrapped
    points = {(0.0, 1.0): 0, (0.9, -0.2): 1, (0.3, -0.8): 2, (-1.0, 0.99): 3, (0.1, -0.2): 4, (0.0, 0.0): 4}
    for point, move in points.items():
        assert int(move_of(np.array(point))) == move
        for s in range(25):
            cont.reset(options={"state": s})
            disc.reset(options={"state": s})
            assert cont.step(np.array(point, np.float32))[:2] == disc.step(move)[:2]
    np.testing.assert_array_equal(cont.tabular_model().next_states, disc.tabular_model().next_states)
    with pytest.raises(ValueError, match="point"):
        cont.step(np.array([np.nan, 0.0]))


# ---- persistence and guards ---------------------------------------------------------------------


@pytest.mark.parametrize("algo", ["ddpg", "td3"])
def test_save_load_gives_identical_agent(tmp_path, algo):
    agent = make_agent(algo, gym.make("Pendulum-v1"), seed=0, noise="ou", **SMALL).learn(300)
    loaded = Agent.load(agent.save(tmp_path / "a.pt"))
    obs = np.random.default_rng(0).uniform(-1, 1, size=(32, 3)).astype(np.float32)
    np.testing.assert_array_equal(greedy(loaded, obs), greedy(agent, obs))
    for a, b in zip(agent.target_params, loaded.target_params, strict=True):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(loaded.noise.x, agent.noise.x)
    assert (loaded.n_critic_updates, loaded.n_updates, loaded.buffer.size) == (200, agent.n_updates, 300)
    # the same next minibatch, smoothing noise and optimizer state: the next update is identical too
    agent.train_step(), loaded.train_step()
    np.testing.assert_array_equal(greedy(loaded, obs), greedy(agent, obs))


def test_seeded_runs_are_reproducible():
    def run(seed):
        return make_agent("td3", gym.make("Pendulum-v1"), seed=seed, **SMALL).learn(400)

    obs = np.random.default_rng(0).uniform(-1, 1, size=(16, 3)).astype(np.float32)
    a, b, c = run(3), run(3), run(4)
    np.testing.assert_array_equal(greedy(a, obs), greedy(b, obs))
    assert not np.array_equal(greedy(a, obs), greedy(c, obs))


@pytest.mark.parametrize("env_id", ["CartPole-v1", "rlzoo/GridWorld-v0"])
def test_discrete_action_space_is_one_clear_error(env_id):
    needle = r"algo=ddpg needs a continuous \(1-D Box\) action space; the env has Discrete"
    with pytest.raises(ConfigError, match=needle):
        make_agent("ddpg", gym.make(env_id))


def test_evaluation_through_the_shared_evaluator():
    agent = make_agent("ddpg", gym.make("Pendulum-v1"), seed=0, **SMALL)
    result = evaluate(agent, gym.make("Pendulum-v1"), 2, seed=0)
    assert len(result.returns) == 2 and all(r < 0 for r in result.returns)


class NaNReward(gym.Wrapper):
    def step(self, action):
        obs, _, term, trunc, info = self.env.step(action)
        return obs, float("nan"), term, trunc, info


def test_nan_reward_stops_training_naming_the_loss_and_step():
    agent = make_agent("ddpg", NaNReward(PointReach()), seed=0, **SMALL)
    with pytest.raises(NumericalError, match=r"losses/critic_loss is nan at step 101"):
        agent.learn(300)


@pytest.mark.parametrize("algo", ["ddpg", "td3"])
@pytest.mark.parametrize("gamma", [0.5, 0.9])
def test_the_configured_gamma_discounts_the_stored_transitions(algo, gamma):
    """algo.gamma reaches the replay buffer's discounts (it once kept the buffer's own default 0.99)."""
    agent = make_agent(algo, PointReach(), seed=0, gamma=gamma, **SMALL).learn(50)
    stored = agent.buffer.discounts[: len(agent.buffer)]
    assert set(np.unique(stored)) <= {0.0, np.float32(gamma)} and np.any(stored == np.float32(gamma))
