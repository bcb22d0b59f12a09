"""Model-free tabular agents: they learn, match closed forms, and are reproducible."""

from __future__ import annotations

import random

import gymnasium as gym
import numpy as np
import pytest

from rlzoo import ConfigError, make_agent
from rlzoo.agents import Agent
from rlzoo.bellman import evaluate_exact, greedy
from rlzoo.envs import make
from rlzoo.logging import RunLogger
from rlzoo.train import resolve

from .helpers import composed

TABULAR = ["td0", "sarsa", "expected_sarsa", "nstep_sarsa", "qlearning", "mc_basic", "mc_exploring_starts",
           "mc_epsilon_greedy"]  # fmt: skip
GLIE = {"epsilon": 0.2, "epsilon_final": 0.0, "epsilon_decay_steps": 40_000}


def grid(**kw):
    return gym.make("rlzoo/GridWorld-v0", **{"max_episode_steps": 100, **kw})


class Recorder(RunLogger):
    """A silent logger that keeps every scalar."""

    def __init__(self):
        super().__init__()
        self.series: dict[str, list[tuple[int, float]]] = {}

    def scalars(self, values, step):
        for tag, value in values.items():
            self.series.setdefault(tag, []).append((step, float(value)))
        super().scalars(values, step)


def book_world(**kw):
    return gym.make("rlzoo/GridWorld-v0", r_forbidden=-10.0, **kw)


def test_mc_basic_long_episodes_give_v_star():
    agent = make_agent("mc_basic", book_world(), episode_length=100).learn(10**6)
    assert agent.finished
    assert np.max(np.abs(agent.v - agent.truth.v)) < 1e-3
    assert agent.summary()["optimal_action_fraction"] == 1.0


def truncated_q(P, R, actions, gamma, length):
    """q of the deterministic policy ``actions`` over ``length``-step episodes, by dense backward induction."""
    n_s = len(actions)
    P_pi = P[np.arange(n_s), actions]
    r_pi = R[np.arange(n_s), actions]
    v = np.zeros(n_s)
    for _ in range(length - 1):
        v = r_pi + gamma * P_pi @ v
    return R + gamma * P @ v


@pytest.mark.parametrize("length", [1, 2, 3, 6, 15])
def test_mc_basic_short_episodes_give_truncated_horizon_values(length):
    env = book_world()
    agent = make_agent("mc_basic", env, episode_length=length).learn(10**6)
    assert agent.finished
    P, R = env.unwrapped.model()
    actions = np.argmax(agent.q, axis=1)
    np.testing.assert_allclose(agent.q, truncated_q(P, R, actions, 0.9, length), atol=1e-12)
    if length == 1:
        np.testing.assert_array_equal(agent.q, R)  # one step: the immediate reward only
    if length < 6:  # too short to see the target from far away: not optimal everywhere
        assert agent.summary()["optimal_action_fraction"] < 1.0


def test_qlearning_off_policy_uniform_behaviour_finds_optimal_policy_everywhere():
    agent = make_agent("qlearning", grid(), seed=0, behavior="uniform").learn(50_000)
    assert agent.summary()["optimal_action_fraction"] == 1.0
    assert agent.summary()["value_error"] < 0.5


def greedy_path(agent, env):
    base = env.unwrapped
    s, path = base.layout.start, []
    nxt = base.dynamics.tables[0]
    while s != base.layout.target and len(path) < 50:
        path.append(s)
        s = int(nxt[s, agent.act(s)])
    return path, s == base.layout.target


@pytest.mark.parametrize("algo", ["sarsa", "expected_sarsa"])
def test_sarsa_on_the_book_episodic_preset_reaches_v_star_on_its_path(algo):
    spec = resolve(composed(f"algo={algo}", "experiment=book_episodic", "algo.epsilon_final=0.0",
                            "algo.epsilon_decay_steps=20000"))  # fmt: skip
    assert (spec.env.episodic, spec.env.start, spec.env.r_forbidden, spec.env.r_other) == (True, [0, 0], -10.0, -1.0)
    assert (spec.algo.alpha, spec.algo.epsilon) == (0.1, 0.1)
    env = make(spec.env)
    agent = make_agent(algo, env, config=spec.algo, seed=0).learn(50_000)
    path, reached = greedy_path(agent, env)
    assert reached and len(path) == 11  # the shortest path that avoids every forbidden cell
    assert np.max(np.abs(agent.v[path] - agent.truth.v[path])) < 0.5


def test_td0_with_robbins_monro_steps_reaches_v_pi():
    agent = make_agent("td0", grid(), seed=0, alpha=1.0, alpha_schedule="robbins_monro", alpha_power=0.7)
    rec = Recorder()
    agent.learn(400_000, logger=rec)
    errors = [v for _, v in rec.series["truth/value_error"]]
    assert agent.summary()["value_error_target"] == "v_pi"
    assert errors[0] > 4.0 and errors[-1] < 0.1


def textbook_sarsa(env, seed: int, alpha: float, gamma: float, epsilon: float):
    """Sutton & Barto's Sarsa written out plainly; yields Q after every step."""
    rng = random.Random(seed)
    n_s, n_a = env.observation_space.n, env.action_space.n
    q = [[0.0] * n_a for _ in range(n_s)]

    def pick(s):
        return rng.randrange(n_a) if rng.random() < epsilon else q[s].index(max(q[s]))

    s = env.reset(seed=seed)[0]
    a = pick(s)
    while True:
        s2, r, term, trunc, _ = env.step(a)
        a2 = None if term else pick(s2)
        target = r if term else r + gamma * q[s2][a2]
        q[s][a] += alpha * (target - q[s][a])
        yield np.array(q)
        if term or trunc:
            s = env.reset()[0]
            a = pick(s)
        else:
            s, a = s2, a2


def test_sarsa_and_nstep_sarsa_with_n_1_match_textbook_sarsa_step_for_step():
    kw = {"seed": 3, "log_every": 1, "epsilon": 0.3, "epsilon_decay_steps": 0, "alpha": 0.2, "gamma": 0.8}
    sarsa = make_agent("sarsa", grid(episodic=True), **kw)
    nstep = make_agent("nstep_sarsa", grid(episodic=True), n=1, **kw)
    reference = textbook_sarsa(grid(episodic=True), seed=3, alpha=0.2, gamma=0.8, epsilon=0.3)
    for t in range(1, 3001):
        sarsa.learn(t)
        nstep.learn(t)
        expected = next(reference)
        np.testing.assert_array_equal(sarsa.q, expected)
        np.testing.assert_array_equal(nstep.q, expected)
    assert np.abs(expected).sum() > 0


def textbook_nstep_sarsa(env, seed: int, n: int, alpha: float, gamma: float, epsilon: float):
    """Sutton & Barto §7.2 n-step Sarsa for episodic tasks; yields Q after every env step
    (the updates owed after termination are done before yielding that step)."""
    rng = random.Random(seed)
    n_s, n_a = env.observation_space.n, env.action_space.n
    q = [[0.0] * n_a for _ in range(n_s)]

    def pick(s):
        return rng.randrange(n_a) if rng.random() < epsilon else q[s].index(max(q[s]))

    def update(tau, states, actions, rewards, T):
        g = sum(gamma ** (i - tau - 1) * rewards[i] for i in range(tau + 1, min(tau + n, T) + 1))
        if tau + n < T:
            g += gamma**n * q[states[tau + n]][actions[tau + n]]
        s, a = states[tau], actions[tau]
        q[s][a] += alpha * (g - q[s][a])

    first = True
    while True:
        s = env.reset(seed=seed)[0] if first else env.reset()[0]
        first = False
        states, actions, rewards, T, t = [s], [pick(s)], [0.0], float("inf"), 0
        while True:
            s2, r, term, trunc, _ = env.step(actions[t])
            assert not trunc
            states.append(s2)
            rewards.append(r)
            if term:
                T = t + 1
            else:
                actions.append(pick(s2))
            if t - n + 1 >= 0:
                update(t - n + 1, states, actions, rewards, T)
            if term:
                for tau in range(max(t - n + 2, 0), T):
                    update(tau, states, actions, rewards, T)
                yield np.array(q)
                break
            yield np.array(q)
            t += 1


def test_nstep_sarsa_matches_textbook_nstep_sarsa():
    env_kw = {"episodic": True, "max_episode_steps": 10**6}
    agent = make_agent("nstep_sarsa", grid(**env_kw), seed=5, n=3, log_every=1, epsilon=0.3,
                       epsilon_decay_steps=0, alpha=0.2, gamma=0.8)  # fmt: skip
    reference = textbook_nstep_sarsa(grid(**env_kw), seed=5, n=3, alpha=0.2, gamma=0.8, epsilon=0.3)
    for t in range(1, 2001):
        agent.learn(t)
        np.testing.assert_allclose(agent.q, next(reference), rtol=0, atol=1e-12)


# One fast learning test per algorithm on the default (continuing) world: ground-truth error falls
# and the greedy policy becomes mostly optimal. Thresholds leave margin below 5 measured seeds.
LEARNS = {
    "td0": ({"alpha": 1.0, "alpha_schedule": "robbins_monro", "alpha_power": 0.7}, 100_000, 0.3, None),
    "sarsa": (GLIE, 50_000, 7.5, 0.7),
    "expected_sarsa": (GLIE, 50_000, 6.0, 0.75),
    "nstep_sarsa": (GLIE, 50_000, 7.5, 0.6),
    "qlearning": ({"behavior": "uniform"}, 50_000, 0.5, 1.0),
    "mc_basic": ({}, 500_000, 1e-3, 1.0),
    "mc_exploring_starts": ({}, 100_000, 5.0, 0.6),
    "mc_epsilon_greedy": ({**GLIE, "epsilon_decay_steps": 80_000}, 100_000, 8.0, 0.6),
}


@pytest.mark.parametrize("algo", TABULAR)
def test_every_tabular_algorithm_learns(algo):
    hp, steps, max_error, min_optimal = LEARNS[algo]
    agent = make_agent(algo, grid(), seed=1, **hp)
    rec = Recorder()
    agent.learn(steps, logger=rec)
    errors = [v for _, v in rec.series["truth/value_error"]]
    assert rec.series["truth/value_error"][0][0] == 0  # the untrained error is logged at step 0
    assert errors[-1] < max_error < errors[0]
    if min_optimal is not None:
        assert rec.series["truth/optimal_action_fraction"][-1][1] >= min_optimal
    assert "charts/episodic_return" in rec.series and "charts/episodic_length" in rec.series


@pytest.mark.parametrize("algo", ["sarsa", "expected_sarsa", "nstep_sarsa", "qlearning"])
def test_td_control_defaults_reach_a_near_optimal_greedy_policy_at_the_benchmark_budget(algo):
    """The default ε schedule (1 → 0.1 over 50k steps): at 100k steps the greedy policy's exact value, averaged over
    the start cells, is within 5 % of v*'s (measured 0.96–1.0 on seeds 0–4; a constant ε 0.1, the old default,
    left 0.80–0.95 for the Sarsas and below 0.13 for Q-learning, whose greedy policy loops in rarely tried cells)."""
    agent = make_agent(algo, grid(), seed=1).learn(100_000)
    v_greedy = evaluate_exact(agent.model, greedy(agent.policy), agent.config.gamma)
    assert v_greedy.mean() >= 0.95 * agent.truth.v.mean()


@pytest.mark.parametrize("algo", [*TABULAR, "td_linear"])
def test_seeded_runs_are_reproducible(algo):
    hp = {"alpha_schedule": "robbins_monro", "alpha": 1.0, "alpha_power": 0.7} if algo.startswith("td") else {}
    runs = [make_agent(algo, grid(slip=0.1), seed=seed, **hp).learn(5_000) for seed in (7, 7, 8)]
    np.testing.assert_array_equal(runs[0].q, runs[1].q)
    np.testing.assert_array_equal(runs[0].v, runs[1].v)
    assert not np.array_equal(runs[0].v, runs[2].v)


@pytest.mark.parametrize("algo", ["qlearning", "mc_exploring_starts", "td0", "nstep_sarsa"])
def test_save_load_keeps_tables_and_actions(tmp_path, algo):
    agent = make_agent(algo, grid(), seed=0).learn(3_000)
    loaded = Agent.load(agent.save(tmp_path / "a.pt"))
    for name in ("v", "q", "policy"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(agent, name))
    assert [loaded.act(s) for s in range(25)] == [agent.act(s) for s in range(25)]


def test_exploring_starts_need_an_env_that_resets_to_a_state():
    class NoStateReset(gym.Env):
        observation_space, action_space = gym.spaces.Discrete(3), gym.spaces.Discrete(2)

    with pytest.raises(ConfigError, match="cannot be reset to a state"):
        make_agent("mc_exploring_starts", NoStateReset())
    make_agent("mc_epsilon_greedy", NoStateReset())  # on-policy MC needs no exploring starts


@pytest.mark.parametrize("env_id", ["FrozenLake-v1", "CliffWalking-v1", "Taxi-v4"])
def test_runs_on_gymnasium_toy_text_envs_with_ground_truth(env_id):
    env = gym.make(env_id, max_episode_steps=200)
    agent = make_agent("qlearning", env, seed=0, gamma=0.95).learn(30_000)
    summary = agent.summary()
    assert summary["value_error_target"] == "v*"
    rec = Recorder()
    make_agent("qlearning", gym.make(env_id, max_episode_steps=200), seed=0, gamma=0.95).learn(30_000, logger=rec)
    errors = [v for _, v in rec.series["truth/value_error"]]
    assert errors[-1] < errors[0]
