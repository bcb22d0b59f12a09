"""compile=true: the replay actor-critics' losses, PPO's minibatch loss and its acting step traced whole by
torch.compile give the eager run's numbers (same seed, 1e-5); an algorithm without a compiled update is one line
before anything is written."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

from rlzoo import ConfigError, make_agent
from rlzoo.agents.ppo import PPO
from rlzoo.seed_batch import SeedBatch
from rlzoo.train import resolve, train, train_seeds

from .helpers import composed
from .test_ddpg import PointReach

TINY = {"hidden": [16, 16], "learning_starts": 50, "batch_size": 32, "log_every": 10**9}


def grid() -> gym.Env:
    return gym.make("rlzoo/GridWorld-v0", max_episode_steps=50)


def assert_same_run(algo: str, make_env, backend: str, **config) -> None:
    eager = make_agent(algo, make_env(), seed=0, **TINY, **config).learn(150)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = make_agent(algo, make_env(), seed=0, **TINY, **config).compile(backend).learn(150)
    # the critic's and the actor's loss, whole, and the actor's forward pass that acts
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 3
    assert compiled.n_critic_updates == eager.n_critic_updates == 100
    for part in ("actor", "critic", "critic_target"):
        for a, b in zip(getattr(eager, part).parameters(), getattr(compiled, part).parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert compiled.stats.keys() == eager.stats.keys()
    for key, value in eager.stats.items():
        assert compiled.stats[key] == pytest.approx(value, rel=1e-5, abs=1e-5), key


@pytest.mark.parametrize(("algo", "env", "config"),
                         [("sac", PointReach, {}), ("sac", grid, {}), ("td3", PointReach, {}),
                          ("ddpg", PointReach, {"spg_samples": 4})],
                         ids=["sac-box", "sac-discrete", "td3", "ddpg-sampled-policy-gradient"])  # fmt: skip
def test_losses_trace_as_whole_graphs_and_match_eager(algo, env, config):
    # AOTAutograd without code generation: the same graphs (fullgraph=True: no break), in a second
    assert_same_run(algo, env, "aot_eager", **config)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_inductor_updates_match_eager(algo):
    assert_same_run(algo, PointReach, "inductor")  # C++ kernels generated and compiled: 10-20 s each


PPO_TINY = {
    "hidden": [16, 16],
    "n_envs": 2,
    "n_steps": 32,
    "batch_size": 32,
    "n_epochs": 2,
    "clip_range_vf": 0.2,
    "ent_coef": 0.01,
    "log_every": 10**9,
}


def assert_same_ppo_run(make_env, backend: str) -> None:
    eager = make_agent("ppo", make_env(), seed=0, **PPO_TINY).learn(256)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = make_agent("ppo", make_env(), seed=0, **PPO_TINY).compile(backend).learn(256)
    # the acting step, and one graph for every minibatch of every update: the annealed clip range (a 0-d tensor)
    # does not retrace it
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 2
    assert compiled.n_updates == eager.n_updates == 4
    for a, b in zip(eager.parameters, compiled.parameters, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for key, value in eager.first_minibatch.items():
        assert compiled.first_minibatch[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


@pytest.mark.parametrize("env", ["Pendulum-v1", "CartPole-v1"])
def test_ppo_loss_and_acting_trace_as_whole_graphs_and_match_eager(env):
    assert_same_ppo_run(lambda: gym.make(env), "aot_eager")


@pytest.mark.parametrize("n_seeds", [1, 2], ids=["one-run", "seed-batch"])
def test_compile_true_compiles_ppos_run(tmp_path, monkeypatch, n_seeds):
    backends: list[str] = []
    eager_compile = PPO.compile

    def compile_with_aot_eager(self, backend="inductor"):  # the CLI's backend noted; traced without code generation
        backends.append(backend)
        return eager_compile(self, "aot_eager")

    monkeypatch.setattr(PPO, "compile", compile_with_aot_eager)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    overrides = ("algo=ppo", "compile=true", "total_steps=64", "algo.n_envs=2", "algo.n_steps=32",
                 "algo.batch_size=32", "algo.n_epochs=1", "eval.episodes=1", f"n_seeds={n_seeds}")  # fmt: skip
    (train if n_seeds == 1 else train_seeds)(resolve(composed(*overrides)), tmp_path / "run")
    assert backends == ["inductor"]  # the run's agent, or the seed batch's stacked agent (not each seed's)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 2  # the acting step and the minibatch loss


@pytest.mark.parametrize("env", ["Pendulum-v1", "CartPole-v1"])
def test_a_compiled_ppo_seed_batch_gives_each_seed_the_eager_batch_s_numbers(env):
    def batch_run(backend: str | None) -> SeedBatch:
        batch = SeedBatch([make_agent("ppo", gym.make(env), seed=k, **PPO_TINY) for k in range(3)])
        if backend is not None:
            batch.stacked.compile(backend)
        batch.learn(256)
        return batch

    eager = batch_run(None)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    compiled = batch_run("aot_eager")
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 2  # the stacked acting step and loss
    for eager_lane, compiled_lane in zip(eager.lanes, compiled.lanes, strict=True):
        for a, b in zip(eager_lane.parameters, compiled_lane.parameters, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_inductor_ppo_update_matches_eager():
    assert_same_ppo_run(lambda: gym.make("Pendulum-v1"), "inductor")


def test_compile_for_an_algorithm_without_a_compiled_update_is_one_line():
    with pytest.raises(ConfigError) as err:
        resolve(composed("algo=sarsa", "compile=true"))
    assert str(err.value) == "compile=true is not available for algo=sarsa: the update of ddpg, ppo, sac, td3 compiles"
    with pytest.raises(ConfigError, match="algo=dqn"):
        make_agent("dqn", gym.make("CartPole-v1")).compile()
