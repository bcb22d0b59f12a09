"""Policy heads: log-probabilities, entropies and KLs against torch.distributions; sampling frequencies."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlzoo.distributions import Categorical, DiagGaussian
from rlzoo.policy_networks import PolicyNetwork


def test_categorical_matches_torch():
    logits, other = torch.randn(5, 4), torch.randn(5, 4)
    ours, ref = Categorical(logits), torch.distributions.Categorical(logits=logits)
    actions = torch.tensor([0, 1, 2, 3, 1])
    torch.testing.assert_close(ours.log_prob(actions), ref.log_prob(actions))
    torch.testing.assert_close(ours.entropy(), ref.entropy())
    kl = torch.distributions.kl_divergence(ref, torch.distributions.Categorical(logits=other))
    torch.testing.assert_close(ours.kl(Categorical(other)), kl)


def test_gaussian_matches_torch():
    mean, log_std = torch.randn(6, 3), torch.randn(6, 3) * 0.3
    mean2, log_std2 = torch.randn(6, 3), torch.randn(6, 3) * 0.3
    ours = DiagGaussian(mean, log_std)
    ref = torch.distributions.Independent(torch.distributions.Normal(mean, log_std.exp()), 1)
    a = torch.randn(6, 3)
    torch.testing.assert_close(ours.log_prob(a), ref.log_prob(a))
    torch.testing.assert_close(ours.entropy(), ref.entropy())
    ref2 = torch.distributions.Independent(torch.distributions.Normal(mean2, log_std2.exp()), 1)
    torch.testing.assert_close(ours.kl(DiagGaussian(mean2, log_std2)), torch.distributions.kl_divergence(ref, ref2))


def test_categorical_samples_follow_the_probabilities():
    probs = torch.tensor([[0.1, 0.6, 0.3]]).expand(40_000, 3)
    samples = Categorical(probs.log()).sample(np.random.default_rng(0))
    freq = np.bincount(samples.numpy(), minlength=3) / len(samples)
    np.testing.assert_allclose(freq, [0.1, 0.6, 0.3], atol=0.01)


def test_gaussian_samples_have_the_mean_and_std():
    dist = DiagGaussian(torch.tensor([[1.0, -2.0]]).expand(40_000, 2), torch.tensor([0.0, np.log(0.5)]))
    x = dist.sample(np.random.default_rng(0)).numpy()
    np.testing.assert_allclose(x.mean(0), [1.0, -2.0], atol=0.02)
    np.testing.assert_allclose(x.std(0), [1.0, 0.5], atol=0.02)


@pytest.mark.parametrize("state_dependent", [False, True])
def test_gaussian_policy_head_log_std_options(state_dependent):
    obs_space = gym.spaces.Box(-1, 1, (3,))
    net = PolicyNetwork(obs_space, gym.spaces.Box(-2, 2, (2,)), [16], "tanh", ortho=True,
                        log_std_init=-0.5, state_dependent_std=state_dependent,
                        state_dependent_exploration=False)  # fmt: skip
    dist = net(torch.randn(4, 3))
    torch.testing.assert_close(dist.log_std, torch.full((4, 2), -0.5))  # initialised to log_std_init
    assert isinstance(net.head.log_std, torch.nn.Linear) == state_dependent


def test_softmax_table_policy_on_discrete_observations():
    net = PolicyNetwork(
        gym.spaces.Discrete(7),
        gym.spaces.Discrete(3),
        [],
        "tanh",
        ortho=True,
        log_std_init=0.0,
        state_dependent_std=False,
        state_dependent_exploration=False,
    )
    assert [p.shape for p in net.parameters()] == [torch.Size([3, 7]), torch.Size([3])]  # θ(s, a) and a bias
    assert net(torch.arange(7)).probs.shape == (7, 3)


def test_categorical_never_samples_an_impossible_action():
    # a deterministic policy whose cdf rounds to just under 1, and zero-probability first and last actions
    logits = torch.tensor([[-1e4, 0.0, 30.0, -1e4]]).expand(20_000, 4)
    samples = Categorical(logits).sample(np.random.default_rng(1))
    assert set(samples.unique().tolist()) <= {1, 2}
    assert torch.isfinite(Categorical(logits).log_prob(samples)).all()


def gsde_policy(log_std_init: float = -0.5) -> PolicyNetwork:
    return PolicyNetwork(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-2, 2, (2,)), [16], "tanh", ortho=True,
                         log_std_init=log_std_init, state_dependent_std=False,
                         state_dependent_exploration=True)  # fmt: skip


def test_gsde_noise_is_a_fixed_function_of_the_state_until_it_is_redrawn():
    torch.manual_seed(0)
    net, rng = gsde_policy(), np.random.default_rng(0)
    obs = torch.randn(4, 3)
    net.reset_noise(4, rng)
    first, again = net(obs).sample(rng), net(obs).sample(rng)
    torch.testing.assert_close(first, again)  # the same θ_ε: the same action in the same state
    nearby = net(obs + 1e-4).sample(rng)
    assert 0 < (nearby - first).abs().max() < 1e-3  # and a nearby action in a nearby state
    net.reset_noise(4, rng)
    assert not torch.allclose(net(obs).sample(rng), first)  # a new θ_ε: other actions


def test_gsde_actions_have_the_state_dependent_variance_its_log_prob_uses():
    torch.manual_seed(0)
    net, rng = gsde_policy(), np.random.default_rng(1)
    obs = torch.randn(1, 3)
    dist = net(obs)
    draws = []
    for _ in range(4000):  # one state, many exploration matrices: a ~ N(μ(s), Σ_i z_i² σ_ij²)
        net.reset_noise(1, rng)
        draws.append(net(obs).sample(rng)[0])
    draws = torch.stack(draws)
    torch.testing.assert_close(draws.mean(0), dist.mean[0], atol=0.03, rtol=0)
    torch.testing.assert_close(draws.std(0), dist.log_std[0].exp(), atol=0, rtol=0.05)
    # log π(a|s) is that Gaussian's density, and its gradient reaches log σ but not the features
    a = draws[:1]
    logp = net(obs).log_prob(a)
    expected = torch.distributions.Normal(dist.mean, dist.log_std.exp()).log_prob(a).sum(-1)
    torch.testing.assert_close(logp, expected)
    logp.sum().backward()
    assert net.head.log_std.grad.abs().sum() > 0
