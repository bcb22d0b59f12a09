"""Agents: one module per family; importing this package registers every algorithm."""

from rlzoo.agents import dqn, monte_carlo, planning, td
from rlzoo.agents.base import Agent, NumericalError
from rlzoo.agents.dqn import DQN
from rlzoo.agents.monte_carlo import MCBasic, MCEpsilonGreedy, MCExploringStarts
from rlzoo.agents.planning import PolicyEvaluation, PolicyIteration, TruncatedPolicyIteration, ValueIteration
from rlzoo.agents.registry import AGENTS, agent_class, make_agent, register_agent
from rlzoo.agents.tabular import TabularAgent, TabularLearner
from rlzoo.agents.td import TD0, ExpectedSarsa, NStepSarsa, QLearning, Sarsa, TDLinear

__all__ = [
    "AGENTS",
    "DQN",
    "TD0",
    "Agent",
    "ExpectedSarsa",
    "MCBasic",
    "MCEpsilonGreedy",
    "MCExploringStarts",
    "NStepSarsa",
    "NumericalError",
    "PolicyEvaluation",
    "PolicyIteration",
    "QLearning",
    "Sarsa",
    "TDLinear",
    "TabularAgent",
    "TabularLearner",
    "TruncatedPolicyIteration",
    "ValueIteration",
    "agent_class",
    "dqn",
    "make_agent",
    "monte_carlo",
    "planning",
    "register_agent",
    "td",
]
