"""rlzoo.llm.losses by hand: advantage estimators, KL estimators, every policy-loss type, reduction and ratio level,
Kimi k1.5's loss and length reward, DPO's losses, and the GRPO aliases against a copy of the old formulas."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlzoo.llm import losses
from rlzoo.llm.losses import (
    advantages,
    dpo_loss,
    dpo_rewards,
    group_advantages,
    grpo_loss,
    importance_ratio,
    kimi_loss,
    kl_penalty,
    length_reward,
    policy_loss,
)
from rlzoo.objectives import approx_kl, clipped_surrogate

# ---------------------------------------------------------------- advantages


def test_public_names_and_constants():
    import rlzoo.llm as llm

    assert losses.ADVANTAGE_ESTIMATORS == ("grpo", "rloo", "reinforce_pp")
    assert losses.KL_ESTIMATORS == ("k1", "k2", "k3")
    assert losses.IMPORTANCE_SAMPLING_LEVELS == ("token", "sequence")
    assert "cispo" in losses.LOSS_TYPES and {"grpo", "dr_grpo", "dapo"} <= set(losses.LOSS_TYPES)
    assert losses.DPO_LOSS_TYPES == ("sigmoid", "ipo", "hinge")
    for name in ("advantages", "kl_penalty", "policy_loss", "kimi_loss", "length_reward", "dpo_loss", "dpo_rewards",
                 "importance_ratio", "group_advantages", "grpo_loss"):  # fmt: skip
        assert name in llm.__all__ and getattr(llm, name) is getattr(losses, name)


REWARDS = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])  # two groups of 3


def test_grpo_estimator_by_hand_for_each_scale():
    centred = torch.tensor([2 / 3, -1 / 3, -1 / 3, 1 / 3, 1 / 3, -2 / 3])
    torch.testing.assert_close(advantages(REWARDS, 3, scale="none"), centred)
    group_std = (1 / 3) ** 0.5  # both groups: squares 4/9 + 1/9 + 1/9 = 2/3, over n − 1 = 2
    torch.testing.assert_close(advantages(REWARDS, 3), centred / (group_std + 1e-4))
    batch_std = (6 * 0.25 / 5) ** 0.5  # mean 1/2, every square 1/4, over 5
    torch.testing.assert_close(advantages(REWARDS, 3, estimator="grpo", scale="batch"), centred / (batch_std + 1e-4))


def test_rloo_by_hand():
    # r_i minus the mean of the other two rewards of its group
    expected = torch.tensor([1 - 0.0, 0 - 0.5, 0 - 0.5, 1 - 0.5, 1 - 0.5, 0 - 1.0])
    torch.testing.assert_close(advantages(REWARDS, 3, estimator="rloo"), expected)
    torch.testing.assert_close(advantages(torch.tensor([3.0, 1.0]), 2, estimator="rloo"), torch.tensor([2.0, -2.0]))
    with pytest.raises(ValueError, match=r"rloo.*group_size >= 2"):
        advantages(REWARDS, 1, estimator="rloo")


def test_reinforce_pp_by_hand():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    centred = torch.tensor([2 / 3, -1 / 3, -1 / 3, 0.0, 0.0, 0.0])
    std = ((4 / 9 + 1 / 9 + 1 / 9) / 5) ** 0.5  # unbiased std of the centred values over the whole batch
    torch.testing.assert_close(advantages(rewards, 3, estimator="reinforce_pp"), centred / (std + 1e-4))
    # differs from grpo's group scaling: group 2 is constant, and the divisor is shared by the batch
    assert not torch.allclose(advantages(REWARDS, 3, estimator="reinforce_pp"), advantages(REWARDS, 3))
    torch.testing.assert_close(advantages(torch.tensor([2.0]), 1, estimator="reinforce_pp"), torch.tensor([0.0]))


def test_advantage_arguments_are_checked():
    with pytest.raises(ValueError, match=r"^estimator='gae' is not allowed: choose one of grpo, rloo, reinforce_pp$"):
        advantages(REWARDS, 3, estimator="gae")
    with pytest.raises(ValueError, match="scale='mean' is not allowed: choose one of group, batch, none"):
        advantages(REWARDS, 3, scale="mean")
    with pytest.raises(ValueError, match="scale='batch' applies only to estimator='grpo'"):
        advantages(REWARDS, 3, estimator="rloo", scale="batch")
    with pytest.raises(ValueError, match="scale='none' applies only to estimator='grpo'"):
        advantages(REWARDS, 3, estimator="reinforce_pp", scale="none")
    with pytest.raises(ValueError, match="groups of 4"):
        advantages(REWARDS, 4)
    with pytest.raises(ValueError, match="groups of 0"):
        advantages(REWARDS, 0, estimator="rloo")
    with pytest.raises(ValueError, match="do not split"):
        advantages(torch.zeros(2, 3), 3)


_groups = st.integers(2, 5).flatmap(
    lambda g: st.tuples(st.just(g), st.lists(st.floats(-10, 10, width=32), min_size=g, max_size=4 * g).map(
        lambda xs, g=g: xs[: len(xs) - len(xs) % g]))
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(_groups)
def test_rloo_sums_to_zero_per_group_and_is_the_scaled_centred_reward(case):
    g, xs = case
    rewards = torch.tensor(xs, dtype=torch.float64).float()
    rloo = advantages(rewards, g, estimator="rloo").view(-1, g)
    torch.testing.assert_close(rloo.sum(dim=1), torch.zeros(len(xs) // g), atol=1e-4, rtol=0)
    centred = advantages(rewards, g, scale="none").view(-1, g)
    torch.testing.assert_close(rloo, centred * g / (g - 1), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("estimator", "scale"), [("grpo", "group"), ("grpo", "batch"), ("grpo", "none"),
                                                  ("rloo", "group"), ("reinforce_pp", "group")])  # fmt: skip
def test_a_group_of_equal_rewards_has_advantages_of_exactly_zero(estimator, scale):
    # 1.6418006… × 3 / 3 is not 1.6418006… in float32: a mean-centred group was off by a rounding, which the
    # division by std + 1e-4 made an advantage of −1.2e-3 for every completion (found by the test below)
    rewards = torch.tensor([1.6418006420135498] * 3 + [0.0, 1.0, 0.5])
    adv = advantages(rewards, 3, estimator=estimator, scale=scale)
    assert torch.equal(adv[:3], torch.zeros(3))


@settings(max_examples=60, deadline=None)
@given(_groups)
def test_reinforce_pp_has_zero_group_means_and_unit_batch_std(case):
    g, xs = case
    rewards = torch.tensor(xs)
    adv = advantages(rewards, g, estimator="reinforce_pp")
    torch.testing.assert_close(adv.view(-1, g).mean(dim=1), torch.zeros(len(xs) // g), atol=1e-4, rtol=0)
    spread = advantages(rewards, g, scale="none").std()
    if spread > 0.1:  # the + 1e-4 in the divisor moves the std off 1 by about 1e-4 / spread
        assert abs(float(adv.std()) - 1.0) < 2e-3


# ---------------------------------------------------------------- KL estimators


def test_kl_estimators_by_hand():
    logp, ref = torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -1.0]])  # x = ref − logp = [−0.5, 1]
    torch.testing.assert_close(kl_penalty(logp, ref, "k1"), torch.tensor([[0.5, -1.0]]))
    torch.testing.assert_close(kl_penalty(logp, ref, "k2"), torch.tensor([[0.125, 0.5]]))
    k3 = [math.exp(-0.5) + 0.5 - 1, math.e - 1 - 1]  # [0.10653066, 0.71828183]
    torch.testing.assert_close(kl_penalty(logp, ref, "k3"), torch.tensor([k3]))
    for est in ("k1", "k2", "k3"):
        assert torch.equal(kl_penalty(logp, logp, est), torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"^kl_estimator='k4' is not allowed: choose one of k1, k2, k3$"):
        kl_penalty(logp, ref, "k4")
    with pytest.raises(ValueError, match="do not align"):
        kl_penalty(logp, ref[:, :1], "k1")


@pytest.mark.parametrize("est", ["k1", "k2", "k3"])
def test_the_kl_estimator_reaches_the_policy_loss(est):
    logp, ref = torch.tensor([[-1.0, -2.0, -3.0]]), torch.tensor([[-1.5, -1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])  # the third token is masked out
    per_token = {"k1": [0.5, -1.0], "k2": [0.125, 0.5], "k3": [math.exp(-0.5) - 0.5, math.e - 2]}[est]
    loss = policy_loss(logp, logp, ref, torch.zeros(1), mask, loss_type="dapo", beta=0.1, kl_estimator=est)
    torch.testing.assert_close(loss, torch.tensor(0.1 * sum(per_token) / 2))


# ---------------------------------------------------------------- policy losses

# ratios ρ = exp(logp − old): row 0 [1.5, 0.7, (1.0 masked)], row 1 [0.9, 1.3, 2.0]; advantages [1, −2]
LOGP = torch.tensor([[-1.0, -0.5, -2.0], [-0.2, -3.0, -1.0]])
RATIOS = torch.tensor([[1.5, 0.7, 1.0], [0.9, 1.3, 2.0]])
OLD = LOGP - RATIOS.log()
ADV = torch.tensor([1.0, -2.0])
MASK = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])


def _loss(**kw):
    return policy_loss(LOGP, OLD, None, ADV, MASK, **kw)


def test_clipped_loss_types_reduce_as_computed_by_hand():
    # per token, ε = 0.2: row 0 (Â = 1): −min(1.5, 1.2) = −1.2, −min(0.7, 0.8) = −0.7;
    # row 1 (Â = −2): −min(−1.8, −1.8) = 1.8, −min(−2.6, −2.4) = 2.6, −min(−4.0, −2.4) = 4.0
    torch.testing.assert_close(_loss(loss_type="grpo"), torch.tensor(((-1.2 - 0.7) / 2 + (1.8 + 2.6 + 4.0) / 3) / 2))
    torch.testing.assert_close(_loss(loss_type="dapo"), torch.tensor(6.5 / 5))
    torch.testing.assert_close(_loss(loss_type="dr_grpo"), torch.tensor(6.5 / (2 * 3)))  # default length T = 3
    torch.testing.assert_close(_loss(loss_type="dr_grpo", max_completion_length=5), torch.tensor(6.5 / (2 * 5)))
    # clip-higher ε_high = 0.28: row 0's first token −1.28; row 1's 1.3 is below the clip for Â < 0
    torch.testing.assert_close(_loss(loss_type="dapo", epsilon_high=0.28), torch.tensor((-1.28 - 0.7 + 8.4) / 5))
    # a wider ε: nothing clipped at all
    torch.testing.assert_close(_loss(loss_type="dapo", epsilon=0.9), torch.tensor((-1.5 - 0.7 + 1.8 + 2.6 + 4.0) / 5))


def test_delta_caps_the_unclipped_ratio():
    # δ = 1.5: row 1's ρ = 2.0 becomes 1.5, so −min(−3.0, −2.4) = 3.0 instead of 4.0; ρ = 1.5 is at the cap
    torch.testing.assert_close(_loss(loss_type="dapo", delta=1.5), torch.tensor((-1.9 + 1.8 + 2.6 + 3.0) / 5))
    torch.testing.assert_close(_loss(loss_type="dapo", delta=10.0), _loss(loss_type="dapo"))  # a cap above every ρ
    # the capped ratio is constant in θ there: no gradient from that token
    leaf = LOGP.clone().requires_grad_(True)
    policy_loss(leaf, OLD, None, ADV, MASK, loss_type="dapo", delta=1.5).backward()
    assert leaf.grad[1, 2] == 0.0 and leaf.grad[1, 1] != 0.0
    with pytest.raises(ValueError, match=r"delta=1\.0 must be > 1"):
        _loss(delta=1.0)
    with pytest.raises(ValueError, match=r"delta .*cispo"):
        _loss(loss_type="cispo", delta=2.0)


def test_cispo_by_hand_and_its_gradient_flows_only_through_logp():
    # −sg(min(ρ, 1.2)) Â logp: row 0: −1.2·1·(−1.0) = 1.2, −0.7·1·(−0.5) = 0.35;
    # row 1: −0.9·(−2)·(−0.2) = −0.36, −1.2·(−2)·(−3.0) = −7.2, −1.2·(−2)·(−1.0) = −2.4; mean over the 5 tokens
    torch.testing.assert_close(_loss(loss_type="cispo"), torch.tensor((1.2 + 0.35 - 0.36 - 7.2 - 2.4) / 5))
    logp, old = LOGP.clone().requires_grad_(True), OLD.clone().requires_grad_(True)
    loss = policy_loss(logp, old, None, ADV, MASK, loss_type="cispo")
    g_logp, g_old = torch.autograd.grad(loss, [logp, old], allow_unused=True)
    assert g_old is None or torch.count_nonzero(g_old) == 0  # the ratio is stop-gradient
    # −sg(min(ρ, 1 + ε_high)) Â / N on each masked token, 0 elsewhere
    expected = torch.tensor([[-1.2, -0.7, 0.0], [0.9 * 2, 1.2 * 2, 1.2 * 2]]) / 5
    torch.testing.assert_close(g_logp, expected)
    # ε_high moves the cap: min(ρ, 1.5) keeps 1.5 and 1.3, caps 2.0
    torch.testing.assert_close(_loss(loss_type="cispo", epsilon_high=0.5),
                               torch.tensor((1.5 + 0.35 - 0.36 - 7.8 - 3.0) / 5))  # fmt: skip


def test_gspo_ratio_is_the_exp_of_the_masked_mean_log_ratio_on_every_token():
    ratio = importance_ratio(LOGP, OLD, MASK, "sequence")
    rho0, rho1 = (1.5 * 0.7) ** (1 / 2), (0.9 * 1.3 * 2.0) ** (1 / 3)  # geometric means over the masked tokens
    torch.testing.assert_close(ratio, torch.tensor([[rho0] * 3, [rho1] * 3]))
    torch.testing.assert_close(importance_ratio(LOGP, OLD, MASK, "token"), RATIOS)
    noisy = LOGP.clone()
    noisy[0, 2] = -1e4  # a masked token: no effect on the sequence ratio
    torch.testing.assert_close(importance_ratio(noisy, OLD, MASK, "sequence"), ratio)
    with pytest.raises(ValueError, match=r"^importance_sampling_level='word' is not allowed: choose one of token, seq"):
        importance_ratio(LOGP, OLD, MASK, "word")


def test_gspo_loss_and_gradient_by_hand():
    rho0, rho1 = (1.5 * 0.7) ** (1 / 2), (0.9 * 1.3 * 2.0) ** (1 / 3)  # 1.0247, 1.3275: row 1 clipped at 1.2 ...
    # ... but for Â = −2 the min keeps the unclipped −2ρ1; row 0 is inside [0.8, 1.2]
    expected = (-rho0 + 2 * rho1) / 2  # grpo reduction: each completion's per-token value is constant
    torch.testing.assert_close(_loss(importance_sampling_level="sequence"), torch.tensor(expected))
    logp = LOGP.clone().requires_grad_(True)
    policy_loss(logp, OLD, None, ADV, MASK, importance_sampling_level="sequence").backward()
    # d(−ρ_i Â_i / B)/d logp_t = −ρ_i Â_i / (B n_i) on each of the n_i masked tokens of completion i
    grad = torch.tensor([[-rho0 / (2 * 2)] * 2 + [0.0], [2 * rho1 / (2 * 3)] * 3])
    torch.testing.assert_close(logp.grad, grad)
    # with row 0's advantage positive and ε small its sequence ratio is clipped: no gradient on its tokens
    logp.grad = None
    policy_loss(logp, OLD, None, ADV, MASK, importance_sampling_level="sequence", epsilon=0.01).backward()
    assert torch.count_nonzero(logp.grad[0]) == 0 and torch.count_nonzero(logp.grad[1]) == 3


@pytest.mark.parametrize("loss_type", ["grpo", "dr_grpo", "dapo", "cispo"])
@pytest.mark.parametrize("level", ["token", "sequence"])
def test_tokens_outside_the_mask_do_not_matter(loss_type, level):
    ref = LOGP + 0.3
    noisy = LOGP.clone()
    noisy[0, 2] = -50.0
    kw = {"loss_type": loss_type, "importance_sampling_level": level, "beta": 0.1}
    torch.testing.assert_close(
        policy_loss(noisy, OLD, ref, ADV, MASK, **kw), policy_loss(LOGP, OLD, ref, ADV, MASK, **kw)
    )


def test_policy_loss_arguments_are_checked():
    with pytest.raises(ValueError, match=r"^loss_type='ppo' is not allowed: choose one of grpo, dr_grpo, dapo, cispo$"):
        _loss(loss_type="ppo")
    with pytest.raises(ValueError, match="importance_sampling_level='seq' is not allowed: choose one of token, seq"):
        _loss(importance_sampling_level="seq")
    with pytest.raises(ValueError, match="kl_estimator='kl' is not allowed"):
        _loss(kl_estimator="kl")
    with pytest.raises(ValueError, match=r"advantages has shape \(3,\), expected \(2,\)"):
        policy_loss(LOGP, OLD, None, torch.zeros(3), MASK)
    with pytest.raises(ValueError, match=r"mask has shape \(2, 2\), expected \(2, 3\)"):
        policy_loss(LOGP, OLD, None, ADV, MASK[:, :2])
    with pytest.raises(ValueError, match="old_logp has shape"):
        policy_loss(LOGP, OLD[:1], None, ADV, MASK)
    with pytest.raises(ValueError, match="ref_logp has shape"):
        policy_loss(LOGP, OLD, LOGP[:, :1], ADV, MASK, beta=0.1)
    with pytest.raises(ValueError, match=r"beta > 0 needs .*ref_logp"):
        policy_loss(LOGP, OLD, None, ADV, MASK, beta=0.1)
    assert torch.isfinite(policy_loss(LOGP, OLD, None, ADV, MASK, beta=0.0))  # ref_logp unread at beta = 0


# ---------------------------------------------------------------- Kimi k1.5


def test_kimi_loss_by_hand():
    seq_logp = torch.tensor([-3.0, -5.0, -2.0, -4.0])
    old = torch.tensor([-3.5, -4.0, -2.0, -4.5])  # log-ratios [0.5, −1, 0, 0.5]
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.0])  # group means 0.5 and 0.25
    # τ = 0.5: group 1: (1 − 0.5 − 0.25)² = 0.0625, (0 − 0.5 + 0.5)² = 0 → 0.03125;
    #          group 2: (0.5 − 0.25 − 0)² = 0.0625, (0 − 0.25 − 0.25)² = 0.25 → 0.15625
    torch.testing.assert_close(kimi_loss(seq_logp, old, rewards, 2, tau=0.5), torch.tensor((0.03125 + 0.15625) / 2))
    # the gradient: −2τ (r_j − r̄ − τ log-ratio_j) / (k · prompts)
    leaf = seq_logp.clone().requires_grad_(True)
    kimi_loss(leaf, old, rewards, 2, tau=0.5).backward()
    torch.testing.assert_close(leaf.grad, -2 * 0.5 * torch.tensor([0.25, 0.0, 0.25, -0.5]) / 4)
    with pytest.raises(ValueError, match=r"tau=0\.0 must be > 0"):
        kimi_loss(seq_logp, old, rewards, 2, tau=0.0)
    with pytest.raises(ValueError, match="groups of 3"):
        kimi_loss(seq_logp, old, rewards, 3, tau=0.5)
    with pytest.raises(ValueError, match="old_seq_logp has shape"):
        kimi_loss(seq_logp, old[:2], rewards, 2, tau=0.5)


def test_length_reward_by_hand():
    lengths = torch.tensor([10, 20, 30, 5, 5, 5, 4, 8, 6])
    correct = torch.tensor([True, False, True, True, False, False, False, True, False])
    # group 1: λ = [0.5, 0, −0.5]; group 2: max = min → λ = 0; group 3: λ = [0.5, −0.5, 0]
    # correct keeps λ, wrong gets min(0, λ)
    expected = torch.tensor([0.5, 0.0, -0.5, 0.0, 0.0, 0.0, 0.0, -0.5, 0.0])
    out = length_reward(lengths, correct, 3)
    assert out.dtype == torch.float32 and out.shape == (9,)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(length_reward(torch.tensor([10.0, 30.0]), torch.tensor([0, 0]), 2),
                               torch.tensor([0.0, -0.5]))  # fmt: skip
    with pytest.raises(ValueError, match="correct has shape"):
        length_reward(lengths, correct[:3], 3)
    with pytest.raises(ValueError, match="groups of 2"):
        length_reward(lengths, correct, 2)


# ---------------------------------------------------------------- DPO

# chosen − ref = [0.5, −1], rejected − ref = [−0.5, 1]: h = [1, −2]
DPO_ARGS = (
    torch.tensor([-5.0, -7.0]),
    torch.tensor([-6.0, -5.0]),
    torch.tensor([-5.5, -6.0]),
    torch.tensor([-5.5, -6.0]),
)


def test_dpo_losses_by_hand():
    # β = 0.5: βh = [0.5, −1]
    sigmoid = (math.log1p(math.exp(-0.5)) + math.log1p(math.exp(1.0))) / 2  # −log σ(x) = log(1 + e^(−x))
    torch.testing.assert_close(dpo_loss(*DPO_ARGS, beta=0.5), torch.tensor(sigmoid))
    torch.testing.assert_close(dpo_loss(*DPO_ARGS, beta=0.5, loss_type="ipo"), torch.tensor((0.0 + 9.0) / 2))
    torch.testing.assert_close(dpo_loss(*DPO_ARGS, beta=0.5, loss_type="hinge"), torch.tensor((0.5 + 2.0) / 2))
    big = tuple(x * 1e4 for x in DPO_ARGS)  # logsigmoid stays finite where log(sigmoid(·)) would not
    assert torch.isfinite(dpo_loss(*big, beta=1.0))
    with pytest.raises(ValueError, match=r"^loss_type='kto' is not allowed: choose one of sigmoid, ipo, hinge$"):
        dpo_loss(*DPO_ARGS, beta=0.5, loss_type="kto")
    with pytest.raises(ValueError, match="rejected_logp has shape"):
        dpo_loss(DPO_ARGS[0], DPO_ARGS[1][:1], *DPO_ARGS[2:], beta=0.5)
    with pytest.raises(ValueError, match=r"beta=0\.0 must be > 0"):
        dpo_loss(*DPO_ARGS, beta=0.0)


def test_dpo_rewards_by_hand():
    stats = dpo_rewards(*DPO_ARGS, beta=0.5)  # chosen rewards [0.25, −0.5], rejected [−0.25, 0.5]
    expected = {"rewards/chosen": -0.125, "rewards/rejected": 0.125, "rewards/accuracy": 0.5, "rewards/margin": -0.25}
    assert set(stats) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(stats[key], torch.tensor(value))


# ---------------------------------------------------------------- the GRPO aliases against the old formulas


def _old_group_advantages(rewards, group_size, scale="group"):
    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    grouped = rewards.view(-1, group_size)
    centred = (grouped - grouped.mean(dim=1, keepdim=True)).view(-1)
    if scale == "none":
        return centred
    std = grouped.std(dim=1, keepdim=True).expand_as(grouped).reshape(-1) if scale == "group" else rewards.std()
    if group_size == 1 and scale == "group":
        std = torch.zeros_like(centred)
    return centred / (std + 1e-4)


def _old_grpo_loss(logp, old_logp, ref_logp, advantages, mask, *, epsilon=0.2, epsilon_high=None, beta=0.0,
                   loss_type="grpo", max_completion_length=None):  # fmt: skip
    mask = mask.to(logp.dtype)
    objective, _ = clipped_surrogate(logp, old_logp, advantages.unsqueeze(1), epsilon, epsilon_high)
    per_token = -objective
    if beta > 0.0:
        per_token = per_token + beta * approx_kl(ref_logp, logp)
    masked = per_token * mask
    if loss_type == "grpo":
        return (masked.sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)).mean()
    if loss_type == "dapo":
        return masked.sum() / mask.sum().clamp(min=1.0)
    length = max_completion_length if max_completion_length is not None else mask.shape[1]
    return masked.sum() / (mask.shape[0] * length)


@pytest.mark.filterwarnings("ignore:std\\(\\). degrees of freedom")  # the old formula's std of a group of one
@pytest.mark.parametrize("seed", range(4))
def test_the_aliases_are_bit_identical_to_the_old_formulas(seed):
    g = torch.Generator().manual_seed(seed)
    for group_size in (1, 2, 4):
        rewards = torch.randint(0, 3, (8,), generator=g).float() + 0.1 * torch.randn(8, generator=g)
        for scale in ("group", "batch", "none"):
            expected = _old_group_advantages(rewards, group_size, scale)
            assert torch.equal(group_advantages(rewards, group_size, scale), expected)
            assert torch.equal(advantages(rewards, group_size, scale=scale), expected)
    B, T = 6, 7
    logp = -torch.rand(B, T, generator=g) - 0.1
    old, ref = logp + 0.3 * torch.randn(B, T, generator=g), logp + 0.2 * torch.randn(B, T, generator=g)
    adv, mask = torch.randn(B, generator=g), (torch.rand(B, T, generator=g) > 0.3).float()
    for loss_type in ("grpo", "dr_grpo", "dapo"):
        for kw in ({}, {"beta": 0.04}, {"epsilon_high": 0.28, "epsilon": 0.1}, {"max_completion_length": 11}):
            expected = _old_grpo_loss(logp, old, ref, adv, mask, loss_type=loss_type, **kw)
            assert torch.equal(grpo_loss(logp, old, ref, adv, mask, loss_type=loss_type, **kw), expected)
            assert torch.equal(policy_loss(logp, old, ref, adv, mask, loss_type=loss_type, **kw), expected)
    leaf_new, leaf_old = logp.clone().requires_grad_(True), logp.clone().requires_grad_(True)
    grpo_loss(leaf_new, old, ref, adv, mask, beta=0.04).backward()
    _old_grpo_loss(leaf_old, old, ref, adv, mask, beta=0.04).backward()
    assert torch.equal(leaf_new.grad, leaf_old.grad)
