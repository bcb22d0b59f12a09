"""GRPO's pieces by hand: group advantages, token log-probs and every loss normalisation."""

from __future__ import annotations

import pytest
import torch

from rlzoo.llm.losses import group_advantages, grpo_loss, token_log_probs


def test_group_advantages_by_hand_for_each_scale():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])  # two groups of 3
    # group 1: mean 1/3, unbiased std sqrt(1/3); group 2: identical rewards -> 0
    centred = torch.tensor([2 / 3, -1 / 3, -1 / 3, 0.0, 0.0, 0.0])
    torch.testing.assert_close(group_advantages(rewards, 3, "none"), centred)
    std1 = (1 / 3) ** 0.5
    torch.testing.assert_close(
        group_advantages(rewards, 3, "group"), centred / torch.tensor([std1] * 3 + [0.0] * 3).add(1e-4)
    )
    batch_std = rewards.std()  # unbiased over the 6 rewards
    torch.testing.assert_close(group_advantages(rewards, 3, "batch"), centred / (batch_std + 1e-4))


def test_group_advantages_reject_bad_shapes_and_scales():
    with pytest.raises(ValueError, match="groups of 4"):
        group_advantages(torch.zeros(6), 4)
    with pytest.raises(ValueError, match="choose one of group, batch, none"):
        group_advantages(torch.zeros(4), 2, "mean")


def test_token_log_probs_equal_log_softmax_gather():
    g = torch.Generator().manual_seed(0)
    logits, tokens = torch.randn(3, 5, 11, generator=g), torch.randint(0, 11, (3, 5), generator=g)
    expected = torch.log_softmax(logits, -1).gather(-1, tokens[..., None])[..., 0]
    torch.testing.assert_close(token_log_probs(logits, tokens), expected)


def _inputs(seed=0, B=4, T=6):
    g = torch.Generator().manual_seed(seed)
    logp = -torch.rand(B, T, generator=g) - 0.1
    old = logp + 0.3 * torch.randn(B, T, generator=g)
    ref = logp + 0.2 * torch.randn(B, T, generator=g)
    adv = torch.tensor([1.0, -0.5, 2.0, -1.0])[:B]
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0]])[:B]
    return logp, old, ref, adv, mask.float()


def _per_token(logp, old, ref, adv, eps=0.2, eps_high=None, beta=0.0):
    eps_high = eps if eps_high is None else eps_high
    ratio = torch.exp(logp - old)
    a = adv[:, None]
    loss = -torch.minimum(ratio * a, ratio.clamp(1 - eps, 1 + eps_high) * a)
    if beta:
        loss = loss + beta * (torch.exp(ref - logp) - (ref - logp) - 1)
    return loss


@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_each_loss_type_normalises_as_computed_by_hand(beta):
    logp, old, ref, adv, mask = _inputs()
    per_token = _per_token(logp, old, ref, adv, beta=beta)
    grpo = sum((per_token[i] * mask[i]).sum() / mask[i].sum() for i in range(4)) / 4
    dapo = (per_token * mask).sum() / mask.sum()
    dr = (per_token * mask).sum() / (4 * 10)
    kw = {"beta": beta}
    torch.testing.assert_close(grpo_loss(logp, old, ref, adv, mask, loss_type="grpo", **kw), grpo)
    torch.testing.assert_close(grpo_loss(logp, old, ref, adv, mask, loss_type="dapo", **kw), dapo)
    torch.testing.assert_close(
        grpo_loss(logp, old, ref, adv, mask, loss_type="dr_grpo", max_completion_length=10, **kw), dr
    )


def test_asymmetric_clip_and_clip_masks_on_synthetic_ratios():
    log_ratio = torch.log(torch.tensor([[0.5, 0.9, 1.1, 1.5]]))
    logp, old = log_ratio, torch.zeros(1, 4)
    mask = torch.ones(1, 4)
    for adv, eps_high, expected in [
        (1.0, None, [-0.5, -0.9, -1.1, -1.2]),  # A > 0: the ratio is capped at 1 + ε above
        (1.0, 0.28, [-0.5, -0.9, -1.1, -1.28]),  # DAPO clip-higher
        (-1.0, None, [0.8, 0.9, 1.1, 1.5]),  # A < 0: capped at 1 − ε below
    ]:
        per_token = grpo_loss(logp, old, None, torch.tensor([adv]), mask, epsilon_high=eps_high, loss_type="dapo") * 4
        torch.testing.assert_close(per_token, torch.tensor(sum(expected)))


def test_at_mu_1_the_gradient_is_the_reinforce_gradient():
    logits = torch.randn(3, 4, 7, requires_grad=True)
    tokens = torch.randint(0, 7, (3, 4))
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]).float()
    adv = torch.tensor([0.5, -1.0, 2.0])
    logp = token_log_probs(logits, tokens)
    loss = grpo_loss(logp, logp.detach(), None, adv, mask, loss_type="dapo")  # ratio 1 everywhere
    (g,) = torch.autograd.grad(loss, logits, retain_graph=True)
    reinforce = -(adv[:, None] * logp * mask).sum() / mask.sum()
    (g_ref,) = torch.autograd.grad(reinforce, logits)
    torch.testing.assert_close(g, g_ref)
    assert torch.allclose(torch.exp(logp - logp.detach()), torch.ones(3, 4))


def test_k3_is_non_negative_and_zero_for_equal_policies():
    logp, old, ref, _, mask = _inputs(seed=3)
    zero_adv = torch.zeros(4)
    kl_term = grpo_loss(logp, old, ref, zero_adv, mask, beta=1.0, loss_type="dapo")
    assert kl_term > 0
    assert grpo_loss(logp, old, logp, zero_adv, mask, beta=1.0, loss_type="dapo") == 0.0


def test_tokens_outside_the_mask_do_not_affect_the_loss_and_fully_masked_gives_zero_gradient():
    logp, old, ref, adv, mask = _inputs(seed=1)
    noisy = logp.clone()
    noisy[mask == 0] = -50.0  # e.g. tokens after EOS
    for lt in ("grpo", "dapo", "dr_grpo"):
        torch.testing.assert_close(grpo_loss(noisy, old, ref, adv, mask, loss_type=lt),
                                   grpo_loss(logp, old, ref, adv, mask, loss_type=lt))  # fmt: skip
    leaf = logp.clone().requires_grad_(True)
    grpo_loss(leaf, old, ref, adv, torch.zeros_like(mask), beta=0.1).backward()
    assert torch.count_nonzero(leaf.grad) == 0


def test_the_old_import_path_still_gives_the_loss_functions_and_registers_the_agent():
    from rlzoo.agents import AGENTS, grpo
    from rlzoo.llm import GRPO

    assert grpo.group_advantages is group_advantages and grpo.grpo_loss is grpo_loss
    assert AGENTS["grpo"] is GRPO is grpo.GRPO
