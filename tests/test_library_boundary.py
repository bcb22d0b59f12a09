"""The public library calls check their arguments: a wrong env, budget, observation or checkpoint target is one
``TypeError``/``ValueError`` naming the argument and what is allowed, never a traceback from inside numpy/torch."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import rlzoo.envs
from rlzoo import make_agent
from rlzoo.agents import Agent
from rlzoo.agents.registry import agent_class
from rlzoo.checkpoint import load_checkpoint, save_checkpoint
from rlzoo.envs.text_tasks import TextTaskEnv

NET = {"hidden": [8]}
GRPO_TINY = {"model": {"n_layer": 1, "d_model": 16, "n_head": 2, "max_len": 16}, "prompts_per_step": 2,
             "num_generations": 2, "eval_prompts": 2}  # fmt: skip


def gridworld(**kwargs) -> gym.Env:
    return gym.make(rlzoo.envs.GRIDWORLD_ID, **kwargs)


# ---- make_agent / Agent(env) ---------------------------------------------------------------------------------
@pytest.mark.parametrize("env", [None, "CartPole-v1", object(), 3])
def test_make_agent_rejects_what_is_not_a_gym_env(env):
    with pytest.raises(
        TypeError, match=r"env=.*is not a gymnasium\.Env: pass a gymnasium\.Env, e\.g\. gymnasium\.make\("
    ):
        make_agent("dqn", env)


def test_a_string_env_is_told_how_to_make_it():
    with pytest.raises(TypeError, match=r"gymnasium\.make\('CartPole-v1'\)"):
        make_agent("ppo", "CartPole-v1")


def test_direct_construction_checks_the_env_too():
    with pytest.raises(TypeError, match=r"env=None"):
        agent_class("qlearning")(None)


def test_wrapped_envs_are_gym_envs():
    env = gym.wrappers.RecordEpisodeStatistics(gym.make("CartPole-v1"))
    assert make_agent("dqn", env, **NET).act(np.zeros(4, np.float32)) in (0, 1)


# ---- learn(total_steps) ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [0, -5, 2.5, "100", True, None])
def test_learn_rejects_a_budget_that_is_not_a_positive_int(steps):
    agent = make_agent("qlearning", gridworld(), seed=0)
    with pytest.raises(ValueError, match=r"total_steps=.*positive int"):
        agent.learn(steps)


def test_learn_accepts_numpy_ints():
    agent = make_agent("qlearning", gridworld(), seed=0).learn(np.int64(20))
    assert agent.num_timesteps == 20


# ---- act(obs) --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "obs, what",
    [
        (25, "out of range: 0 … 24"),
        (-1, "out of range"),
        (2.5, "must be an integer"),
        ("3", "str was given"),
        (True, "bool was given"),
        (None, "must be an integer"),
        (np.array([1, 2]), r"shape \(2,\) was given"),
        (np.zeros(25, np.float32), r"shape \(25,\) was given"),
    ],
)
def test_tabular_act_rejects_what_is_not_a_state(obs, what):
    agent = make_agent("qlearning", gridworld(), seed=0)
    with pytest.raises(ValueError, match=rf"obs=.*observation space Discrete\(25\): .*{what}"):
        agent.act(obs)


def test_tabular_act_accepts_python_and_numpy_state_indices():
    agent = make_agent("qlearning", gridworld(), seed=0).learn(200)
    expected = [agent.act(s) for s in range(25)]
    for kind in (np.int64, np.int32, np.uint8, float, np.float64, np.array):
        assert [agent.act(kind(s)) for s in range(25)] == expected, kind
    assert all(agent.act(s, deterministic=False) in range(5) for s in range(25))


@pytest.mark.parametrize(
    "obs, what",
    [
        (np.zeros(3, np.float32), r"shape \(4,\) is needed, shape \(3,\) was given"),
        (np.zeros((1, 4), np.float32), r"shape \(1, 4\) was given"),
        (0.5, r"shape \(\) was given"),
        ("0 0 0 0", "str was given"),
        (None, "dtype object"),
        ([0.0, 0.1, [1.0], 0.0], "array of shape"),
    ],
)
@pytest.mark.parametrize("algo", ["dqn", "ppo"])
def test_box_act_rejects_a_wrong_shape_or_type(algo, obs, what):
    agent = make_agent(algo, gym.make("CartPole-v1"), seed=0, **NET)
    with pytest.raises(ValueError, match=rf"obs=.*observation space Box\(.*\(4,\), float32\): .*{what}"):
        agent.act(obs)


@pytest.mark.parametrize("algo, env_id", [("dqn", "CartPole-v1"), ("ppo", "CartPole-v1"), ("ddpg", "Pendulum-v1"),
                                          ("ppo", "Pendulum-v1")])  # fmt: skip
def test_box_act_accepts_float32_float64_and_lists(algo, env_id):
    env = gym.make(env_id)
    agent = make_agent(algo, env, seed=0, **NET)
    obs = env.reset(seed=0)[0]
    expected = np.asarray(agent.act(obs))
    for given in (obs.astype(np.float64), obs.tolist(), tuple(obs.tolist())):
        np.testing.assert_array_equal(np.asarray(agent.act(given)), expected)
    assert env.action_space.contains(np.asarray(agent.act(obs, deterministic=False), env.action_space.dtype))


def test_grpo_acts_on_prompt_strings_only():
    agent = make_agent("grpo", TextTaskEnv("arithmetic", n_test=1), seed=0, **GRPO_TINY)
    assert isinstance(agent.act("3+4="), str)
    with pytest.raises(ValueError, match=r"obs=3 is not an observation .*Text\(.*a str is needed, int was given"):
        agent.act(3)
    with pytest.raises(ValueError, match=r"obs='3\+4=é' .*characters 'é' are not in the space's charset"):
        agent.act("3+4=é")


# ---- Agent.load(path, env=...) ----------------------------------------------------------------------------------
class ThreeActions(gym.Wrapper):
    """CartPole with a third (unused) action: only the action space differs."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.action_space = gym.spaces.Discrete(3)


def test_load_onto_a_grid_of_another_size_names_the_observation_space(tmp_path):
    path = make_agent("qlearning", gridworld(), seed=0).learn(50).save(tmp_path / "q.pt")
    small = gridworld(layout=["...", ".#.", "..T"])
    with pytest.raises(ValueError, match=r"env\.observation_space differs .*saved Discrete\(25\), given Discrete\(9\)"):
        Agent.load(path, env=small)


def test_load_onto_another_env_names_the_space_that_differs(tmp_path):
    path = make_agent("dqn", gym.make("CartPole-v1"), seed=0, **NET).save(tmp_path / "dqn.pt")
    with pytest.raises(ValueError, match=r"env\.observation_space differs .*saved Box\(.*\(4,\).*given Box\(.*\(6,\)"):
        Agent.load(path, env=gym.make("Acrobot-v1"))
    with pytest.raises(ValueError, match=r"env\.action_space differs .*saved Discrete\(2\), given Discrete\(3\)"):
        Agent.load(path, env=ThreeActions(gym.make("CartPole-v1")))
    with pytest.raises(TypeError, match=r"env='CartPole-v1' .*pass a gymnasium\.Env"):
        Agent.load(path, env="CartPole-v1")


def test_load_onto_the_same_spaces_still_works(tmp_path):
    agent = make_agent("qlearning", gridworld(), seed=0).learn(200)
    path = agent.save(tmp_path / "q.pt")
    for env in (None, gridworld(), gridworld(r_other=-0.5)):  # same spaces, other rewards: allowed
        loaded = Agent.load(path, env=env)
        assert [loaded.act(s) for s in range(25)] == [agent.act(s) for s in range(25)]


def test_checkpoints_without_saved_spaces_still_load_and_are_checked(tmp_path):
    path = make_agent("dqn", gym.make("CartPole-v1"), seed=0, **NET).save(tmp_path / "dqn.pt")
    payload = load_checkpoint(path)
    assert "spaces" in payload
    del payload["spaces"]
    old = save_checkpoint(tmp_path / "old.pt", payload)
    loaded = Agent.load(old, env=gym.make("CartPole-v1"))
    assert loaded.act(np.zeros(4, np.float32)) in (0, 1)
    with pytest.raises(ValueError, match=r"has shape .* on the given env: env\.observation_space or env\.action_space"):
        Agent.load(old, env=gym.make("Acrobot-v1"))
