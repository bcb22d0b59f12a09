"""TRPO and PPO: conjugate gradient, Fisher-vector products, the trust region, PPO's first minibatch, learning."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.nn.utils import parameters_to_vector

from rlzoo import make_agent
from rlzoo.agents.ppo import MINIBATCH_STATS
from rlzoo.agents.trpo import detached
from rlzoo.evaluate import evaluate
from rlzoo.objectives import approx_kl, clipped_surrogate, conjugate_gradient


def test_conjugate_gradient_solves_an_spd_system():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(12, 12))
    a = torch.tensor(m @ m.T + 12 * np.eye(12))
    b = torch.tensor(rng.normal(size=12))
    x = conjugate_gradient(lambda v: a @ v, b, iters=12)
    torch.testing.assert_close(x, torch.linalg.solve(a, b))


def test_conjugate_gradient_solves_each_row_of_a_seed_batch_as_alone():
    """Rows of b (K, P) are K systems (one matrix per row): each ends where it would alone — a row at b = 0 at once,
    the others after their own iterations — at every iteration budget."""
    rng = np.random.default_rng(1)
    mats = [m @ m.T + 6 * np.eye(6) for m in rng.normal(size=(3, 6, 6))]
    a = torch.tensor(np.stack(mats))
    b = torch.tensor(rng.normal(size=(3, 6)))
    b[1] = 0.0
    for iters in (2, 6):
        rows = conjugate_gradient(lambda v: torch.einsum("kij,kj->ki", a, v), b, iters=iters)
        for k in range(3):
            alone = conjugate_gradient(lambda v, k=k: a[k] @ v, b[k], iters=iters)
            torch.testing.assert_close(rows[k], alone)
    torch.testing.assert_close(rows, torch.linalg.solve(a, b))
    assert not rows[1].any()


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_fisher_vector_product_equals_the_explicit_fisher_matrix(env_id):
    """F = ∇²_θ mean KL(π_old ‖ π_θ) at θ_old, built explicitly on a tiny policy, times random vectors."""
    agent = make_agent("trpo", gym.make(env_id), seed=0, hidden=[3])
    obs = torch.randn(16, agent.env.observation_space.shape[0])
    old = detached(agent.policy(obs))
    names, shapes = zip(*[(n, p.shape) for n, p in agent.policy.named_parameters()], strict=True)
    theta0 = parameters_to_vector(agent.policy.parameters()).detach()

    def kl_at(theta):  # the policy as a pure function of its flat parameter vector
        chunks = torch.split(theta, [s.numel() for s in shapes])
        weights = {n: c.view(s) for n, c, s in zip(names, chunks, shapes, strict=True)}
        return old.kl(torch.func.functional_call(agent.policy, weights, (obs,))).mean()

    fisher = torch.autograd.functional.hessian(kl_at, theta0)
    assert fisher.abs().max() > 1e-3  # a real curvature to compare against
    fvp = agent.fisher_vector_product(obs, old, damping=0.0)
    for _ in range(3):
        v = torch.randn_like(theta0)
        torch.testing.assert_close(fvp(v), fisher @ v, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_every_accepted_trpo_step_stays_inside_the_trust_region(env_id):
    agent = make_agent("trpo", gym.make(env_id), seed=0, n_envs=2, n_steps=128, max_kl=0.005)
    seen = []
    original = agent.update

    def recording_update(buffer):
        stats = original(buffer)
        seen.append(stats)
        return stats

    agent.update = recording_update
    agent.learn(2 * 128 * 12)
    accepted = [s["kl"] for s in seen if s["line_search_success"]]
    assert len(accepted) >= 6
    assert all(0.0 < kl <= 0.005 for kl in accepted)
    assert all(s["kl"] == 0.0 for s in seen if not s["line_search_success"])


def test_clipped_surrogate_and_k3_by_hand():
    logp_old = torch.zeros(4)
    logp = torch.log(torch.tensor([1.5, 0.5, 1.1, 0.7]))
    adv = torch.tensor([1.0, -1.0, 2.0, 1.0])
    objective, info = clipped_surrogate(logp, logp_old, adv, epsilon=0.2, masks=True)
    # ratios 1.5 (A>0: clipped to 1.2), 0.5 (A<0: clipped to 0.8 → min picks −0.8), 1.1, 0.7 (A>0: unclipped 0.7)
    torch.testing.assert_close(objective, torch.tensor([1.2, -0.8, 2.2, 0.7]))
    assert info["clipped_high"].tolist() == [True, False, False, False]
    assert info["clipped_low"].tolist() == [False, True, False, False]
    k3 = approx_kl(logp, logp_old)
    assert (k3 >= 0).all() and approx_kl(logp_old, logp_old).abs().max() == 0


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_ppo_ratio_is_one_and_nothing_clipped_on_the_first_minibatch(env_id):
    agent = make_agent("ppo", gym.make(env_id), seed=0, n_envs=2, n_steps=64, batch_size=32, n_epochs=3)
    steps = []
    original = agent._minibatch_step

    def recording(*args):
        stats = original(*args)
        steps.append(dict(zip(MINIBATCH_STATS, stats.tolist(), strict=True)))
        return stats

    agent._minibatch_step = recording
    agent.learn(2 * 128)  # two rollouts, each 3 epochs × 4 minibatches
    assert len(steps) == 24
    for update in (steps[:12], steps[12:]):
        assert update[0]["max_ratio_deviation"] < 1e-5 and update[0]["clipfrac"] == 0.0
        assert max(s["max_ratio_deviation"] for s in update[1:]) > 1e-4  # later minibatches see a moved policy
    assert agent.first_minibatch["epoch"] == 2


@pytest.mark.parametrize("algo", ["ppo", "trpo"])
def test_trust_region_methods_learn_cartpole_quickly(algo):
    env = gym.make("CartPole-v1")
    agent = make_agent(algo, env, seed=0)
    before = evaluate(agent, env, 5, seed=100).mean
    agent.learn(30_000)
    after = evaluate(agent, env, 5, seed=100).mean
    assert after > max(250.0, before + 150.0)


def _run(tmp_path, name, *overrides):
    from rlzoo.train import resolve, train

    from .helpers import composed, scalars

    train(resolve(composed(*overrides, "algo.log_every=1000")), tmp_path / name)
    return scalars(tmp_path / name)


def test_trainer_logs_the_trust_region_diagnostics_and_is_reproducible(tmp_path):
    trpo = _run(tmp_path, "trpo", "algo=trpo", "total_steps=4096", "seed=2")
    for tag in ("losses/policy_objective", "losses/kl", "losses/line_search_success", "losses/value_loss",
                "losses/explained_variance", "charts/episodic_return", "eval/return_mean"):  # fmt: skip
        assert tag in trpo, tag
    ppo = _run(tmp_path, "ppo_a", "algo=ppo", "total_steps=2048", "seed=2")
    for tag in ("losses/approx_kl", "losses/clipfrac", "losses/policy_loss", "losses/entropy", "charts/learning_rate"):
        assert tag in ppo, tag
    again = _run(tmp_path, "ppo_b", "algo=ppo", "total_steps=2048", "seed=2")
    assert {k: v for k, v in ppo.items() if k != "charts/SPS"} == {k: v for k, v in again.items() if k != "charts/SPS"}


def test_gridworld_runs_report_the_exact_value_of_the_policy(tmp_path):
    import json

    tags = _run(tmp_path, "qac", "algo=qac", "env=gridworld", "total_steps=3000")
    for tag in ("truth/policy_value_gap", "truth/critic_error", "truth/value_error", "truth/optimal_action_fraction"):
        assert next(s for s, _ in tags[tag]) == 0, tag  # from step 0
    summary = json.loads((tmp_path / "qac" / "summary.json").read_text())
    assert {"policy_value_gap", "critic_error", "optimal_action_fraction"} <= set(summary)
