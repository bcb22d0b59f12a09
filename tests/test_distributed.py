"""Data-parallel training across processes (torch.distributed, gloo on CPU): GRPO and PPO.

Two kinds of check: ``torchrun`` runs of the real CLI with 2 processes, whose ranks must end with identical
weights while sampling different data; and a 2-process update on two halves of a batch, which must give
the weights a single process gets from the whole batch.
"""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rlzoo import distributed, make_agent
from rlzoo.checkpoint import load_checkpoint

from .helpers import run_cli, scalars
from .test_grpo import task_env

GRPO_TINY = {"model": {"n_layer": 1, "d_model": 32, "n_head": 2, "max_len": 16}, "prompts_per_step": 4,
             "num_generations": 4, "eval_prompts": 10, "sft_steps": 0, "dynamic_sampling": False,
             "learning_rate": 1e-3}  # fmt: skip


def torchrun(*args: str):
    return run_cli("--nproc_per_node", "2", "-m", "rlzoo.train", *args, module="torch.distributed.run", timeout=280)


def tensors(state: dict) -> dict[str, torch.Tensor]:
    """Every tensor of a nested state dict, by dotted key."""
    out = {}
    for key, value in state.items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in tensors(value).items()})
        elif isinstance(value, torch.Tensor):
            out[key] = value
    return out


@pytest.mark.parametrize(
    ("algo", "networks", "overrides"),
    [
        ("grpo", ["model"], ["total_steps=6", "algo.sft_steps=40", "algo.sft_target=null", "algo.eval_prompts=20",
                             "algo.prompts_per_step=4", "algo.log_every=1", "algo.model.n_layer=1",
                             "algo.model.d_model=32", "algo.model.n_head=2"]),
        ("grpo", ["model"], ["total_steps=4", "algo.sft_steps=40", "algo.sft_target=null", "algo.eval_prompts=20",
                             "algo.prompts_per_step=4", "algo.log_every=2", "algo.model.n_layer=1",
                             "algo.model.d_model=32", "algo.model.n_head=2", "algo.data_parallel=fsdp",
                             "algo.beta=0.05", "algo.packing=true"]),
        ("ppo", ["policy", "critic"], ["env=cartpole", "total_steps=1024", "algo.n_envs=4", "algo.n_steps=64",
                                       "algo.batch_size=64", "algo.n_epochs=2", "algo.log_every=256"]),
    ],
)  # fmt: skip
def test_torchrun_ranks_sample_different_data_and_keep_identical_weights(tmp_path, algo, networks, overrides):
    r = torchrun(f"algo={algo}", *overrides, f"hydra.run.dir={tmp_path}")
    assert r.returncode == 0, r.stderr[-3000:]
    states = [load_checkpoint(d / "checkpoints" / "final.pt")["state"] for d in (tmp_path, tmp_path / "rank1")]
    for name in networks:
        a, b = tensors(states[0][name]), tensors(states[1][name])
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    tag = "losses/entropy"
    curves = [dict(scalars(d)[tag]) for d in (tmp_path, tmp_path / "rank1")]
    assert curves[0] != curves[1]  # each rank saw its own share of the data
    fresh = make_agent(algo, gym.make("rlzoo/TextTask-v0") if algo == "grpo" else gym.make("CartPole-v1"), seed=0,
                       **({"model": GRPO_TINY["model"]} if algo == "grpo" else {}))  # fmt: skip
    before = tensors(fresh.state_dict()[networks[0]])
    assert any(not torch.equal(before[k], v) for k, v in tensors(states[0][networks[0]]).items())  # it trained


def test_an_algorithm_without_data_parallel_training_is_refused_under_torchrun(tmp_path):
    r = torchrun("algo=dqn", "total_steps=100", f"hydra.run.dir={tmp_path}")
    assert r.returncode != 0
    assert (
        "rlzoo: config error: algo=dqn does not train across processes (torchrun); algorithms that do: grpo, ppo"
        in r.stderr
    )
    assert not (tmp_path / "summary.json").exists()


# ---- a 2-process update equals the single-process update on the global batch ---------------------------------


def even_code(prompts, completions, **_):
    """1 when the completion's first character has an even code: about half of the samples, so groups vary."""
    return [float(c[:1] != "" and ord(c[0]) % 2 == 0) for c in completions]


def grpo_case(loss_type: str, scale: str, **options):
    """(agent, rows, update(lo, hi)): one GRPO optimisation (μ = 2, 2 accumulation chunks) on a fixed batch."""
    env = task_env(even_code, [f"{d}:" for d in range(10)], max_len=4)
    agent = make_agent("grpo", env, seed=0, loss_type=loss_type, scale_rewards=scale, num_iterations=2,
                       gradient_accumulation_steps=2, beta=0.05 if loss_type == "dr_grpo" else 0.0,
                       **{**GRPO_TINY, "prompts_per_step": 8, **options})  # fmt: skip
    if agent.config.beta > 0:
        agent.ref_model = agent.frozen_copy()
    batch = agent.sample_batch()  # the same global batch in every process (same seed)

    def update(lo: int, hi: int):
        agent.optimize(batch.completions.select(slice(lo, hi)), agent.advantages(batch.rewards[lo:hi]))

    return agent, len(batch.rewards), update


def ppo_case():
    """(agent, rows, update(lo, hi)): two PPO minibatch steps on a fixed synthetic batch."""
    agent = make_agent("ppo", gym.make("CartPole-v1"), seed=0, normalize_advantage=True, ent_coef=0.01)
    g = torch.Generator().manual_seed(1)
    obs = torch.randn(64, 4, generator=g)
    actions = torch.randint(0, 2, (64,), generator=g)
    with torch.no_grad():
        old = agent.policy(obs).log_prob(actions)
    data = (obs, actions, old, torch.randn(64, generator=g), 3 * torch.randn(64, generator=g) + 1,
            torch.randn(64, generator=g))  # fmt: skip

    def update(lo: int, hi: int):
        for _ in range(2):
            agent._minibatch_step(*(d[lo:hi] for d in data), 0.2)

    return agent, 64, update


CASES = {"grpo-grpo-group": lambda: grpo_case("grpo", "group"), "grpo-dapo-batch": lambda: grpo_case("dapo", "batch"),
         "grpo-dr_grpo-none-kl": lambda: grpo_case("dr_grpo", "none"),
         "grpo-fsdp-dr_grpo-kl": lambda: grpo_case("dr_grpo", "none", data_parallel="fsdp"),
         "grpo-fsdp-dapo-packed": lambda: grpo_case("dapo", "batch", data_parallel="fsdp", packing=True),
         "ppo": ppo_case}  # fmt: skip


def weights(agent) -> dict[str, torch.Tensor]:
    """The agent's network weights as whole tensors (an FSDP2-sharded model's gathered from its shards)."""
    if hasattr(agent, "train_model"):
        return {k: v.detach().clone() for k, v in distributed.full_state_dict(agent.model).items()}
    return {k: v.detach().clone() for net in agent.networks() for k, v in net.state_dict().items()}


def _worker(rank: int, case: str, out: str) -> None:
    torch.set_num_threads(1)
    # rendezvous through a file of this test's own directory: no TCP port that another process may hold or take
    dist.init_process_group("gloo", init_method=f"file://{out}/rendezvous", rank=rank, world_size=2)
    try:
        agent, n, update = CASES[case]()
        update(rank * n // 2, (rank + 1) * n // 2)
        if "fsdp" in case:  # the model is sharded: each rank holds a slice of every parameter
            assert all(distributed.is_sharded(p) for p in agent.model.parameters())
        torch.save(weights(agent), f"{out}/rank{rank}.pt")
        dist.barrier()  # neither rank tears gloo down while the other still talks to it (it aborts otherwise)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("case", list(CASES))
def test_two_processes_on_two_halves_step_like_one_process_on_the_whole_batch(tmp_path, case):
    mp.spawn(_worker, args=(case, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert not distributed.is_distributed()
    agent, n, update = CASES[case]()
    before = weights(agent)
    update(0, n)
    single = weights(agent)
    assert any(not torch.equal(before[k], single[k]) for k in single)
    for k in single:
        assert torch.equal(ranks[0][k], ranks[1][k]), k
        torch.testing.assert_close(ranks[0][k], single[k], rtol=1e-5, atol=1e-6, msg=k)
