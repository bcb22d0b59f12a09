"""Would tanh computed as 2σ(2x) − 1 make the on-policy agents faster on this CPU? (Measured, not adopted.)

torch's CPU ``tanh`` is a 1-ulp vectorised function; its ``sigmoid`` is several times cheaper per element, and
tanh x = 2σ(2x) − 1 holds exactly in real arithmetic (in float32 the two differ by up to 2e-7). This script:

1. times both forms on the hidden activations of a PPO minibatch: one seed (256 × 64) and a 16-seed batch
   (16 × 256 × 64), forward alone and forward + backward (the identity's backward is torch's ``tanh_backward`` of
   its output, as ``nn.Tanh``'s is), and prints the largest difference from float64 tanh;
2. trains PPO on CartPole at rlzoo's defaults with ``nn.Tanh`` and with the identity (on tensors of 4 096 elements
   or more; ``torch.tanh`` on the one-row acting calls below that), one seed and a 16-seed batch,
   the four agents alternating in one process on one thread (medians of ``--rounds`` rollouts and updates).

    python benchmarks/tanh_via_sigmoid.py --rounds 9
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import torch
import torch.nn as nn

from rlzoo import approximators, make_agent
from rlzoo.seed_batch import SeedBatch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compiled_ppo_speed import STEPS, median_ms

MIN_ELEMENTS = 4096


class _Identity(torch.autograd.Function):
    """y = 2σ(2x) − 1 forward; dL/dx = dL/dy (1 − y²) backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = (x * 2).sigmoid_().mul_(2).sub_(1)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (y,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(grad, y)


class SigmoidTanh(nn.Module):
    """``nn.Tanh`` computed as 2σ(2x) − 1 on tensors of ``MIN_ELEMENTS`` or more; ``torch.tanh`` below (one-row
    acting calls, where the extra operators' dispatch costs more than the arithmetic they save)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Identity.apply(x) if x.numel() >= MIN_ELEMENTS else torch.tanh(x)


def microseconds(fn, repeats: int = 200) -> float:
    """Median µs of ``fn()`` over 5 blocks of ``repeats`` calls."""
    for _ in range(10):
        fn()
    blocks = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        blocks.append((time.perf_counter() - start) / repeats * 1e6)
    return statistics.median(blocks)


def activation_timings() -> None:
    for shape in [(256, 64), (16, 256, 64)]:
        x = (torch.randn(shape) * 3).requires_grad_()
        grad, plain = torch.ones(shape), x.detach()
        for name, fn in (("nn.Tanh", torch.tanh), ("2σ(2x) − 1", _Identity.apply)):
            forward = microseconds(lambda fn=fn, plain=plain: fn(plain))
            both = microseconds(lambda fn=fn, x=x, grad=grad: fn(x).backward(grad))
            error = (fn(plain).double() - torch.tanh(plain.double())).abs().max().item()
            print(f"{shape!s:14s} {name:11s}: forward {forward:7.1f} µs, forward + backward {both:7.1f} µs, "
                  f"largest difference from float64 tanh {error:.1e}")  # fmt: skip


def build(seeds: int, activation: type[nn.Module]):
    """A PPO agent (or a seed batch) whose MLPs use ``activation`` for tanh, after its first rollout and update."""
    approximators._ACTIVATION_MODULES["tanh"] = activation
    try:
        agents = [make_agent("ppo", gym.make("CartPole-v1"), seed=k, log_every=10**9) for k in range(seeds)]
    finally:
        approximators._ACTIVATION_MODULES["tanh"] = nn.Tanh
    trainer = SeedBatch(agents) if seeds > 1 else agents[0]
    trainer.learn(STEPS)
    return trainer, trainer.stacked if seeds > 1 else trainer


def training_timings(seeds: int, rounds: int) -> None:
    cases = {(k, name): build(k, module) for k in (1, seeds) for name, module in
             (("nn.Tanh", nn.Tanh), ("2σ(2x) − 1", SigmoidTanh))}  # fmt: skip
    ms = median_ms(cases, rounds)
    for (k, name), value in ms.items():
        print(f"{k:3d} seed(s), {name:11s}: {value:7.1f} ms a rollout and update")
    for k in (1, seeds):
        print(f"{k:3d} seed(s): the identity {ms[k, 'nn.Tanh'] / ms[k, '2σ(2x) − 1']:.3f}x as fast")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(1)
    activation_timings()
    training_timings(args.seeds, args.rounds)


if __name__ == "__main__":
    main()
