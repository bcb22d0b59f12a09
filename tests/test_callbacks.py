"""Callbacks for library users: ``agent.learn(total_steps, callbacks=[...])`` with hooks at each log point and each
evaluation, able to stop training (``StopOnReward``)."""

from __future__ import annotations

import gymnasium as gym

import rlzoo
from rlzoo import Callback, Evaluate, StopOnReward
from rlzoo.callbacks import Evaluation

from .helpers import RecordingLogger


def gridworld_agent():
    return rlzoo.make_agent("qlearning", gym.make(rlzoo.envs.GRIDWORLD_ID), seed=0, epsilon=0.5)


class Recorder(Callback):
    """Records every hook call; stops at the first log point at or past ``stop_at`` when given."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.logs, self.evaluations, self.stop_at = [], [], stop_at

    def on_log(self, agent, step, scalars):
        self.logs.append((step, dict(scalars)))
        return self.stop_at is not None and step >= self.stop_at

    def on_evaluation(self, agent, step, mean_return):
        self.evaluations.append((step, mean_return))


def test_stop_on_reward_ends_training_at_the_first_evaluation_that_reaches_it():
    agent, logger, recorder = gridworld_agent(), RecordingLogger(), Recorder()
    evaluate = Evaluate(gym.make(rlzoo.envs.GRIDWORLD_ID), every=1000, episodes=5)
    agent.learn(50_000, logger=logger, callbacks=[evaluate, StopOnReward(4.0), recorder])
    returns = [v for t, _, v in logger.records if t == "eval/return_mean"]
    assert (
        logger.steps("eval/return_mean")
        == [s for s, _ in recorder.evaluations]
        == list(range(1000, 1000 * len(returns) + 1, 1000))
    )
    assert returns[-1] >= 4.0 and all(r < 4.0 for r in returns[:-1])  # stopped at the first that reached it
    assert agent.num_timesteps == recorder.evaluations[-1][0] < 50_000


def test_on_log_sees_each_log_point_with_its_scalars_and_can_stop():
    agent, logger, recorder = gridworld_agent(), RecordingLogger(), Recorder(stop_at=3000)
    agent.learn(10_000, logger=logger, callbacks=[recorder])
    assert [s for s, _ in recorder.logs] == [1000, 2000, 3000] and agent.num_timesteps == 3000
    assert recorder.logs[-1][1] == {t: v for t, s, v in logger.records if s == 3000 and not t.startswith("truth/")}


def test_an_evaluation_a_callback_reports_is_logged_and_passed_on():
    class Constant(Callback):
        next_step = 500

        def __call__(self, agent, step):
            if self.next_step is not None and step >= self.next_step:
                self.next_step = None
                return Evaluation(step, 7.0)
            return None

    agent, logger, recorder = gridworld_agent(), RecordingLogger(), Recorder()
    agent.learn(2000, logger=logger, callbacks=[Constant(), recorder])
    assert recorder.evaluations == [(500, 7.0)] and ("eval/return_mean", 500, 7.0) in logger.records
    assert agent.num_timesteps == 2000  # no hook asked to stop
