"""Agents: one module per family; importing this package registers every algorithm."""

from rlzoo.agents import planning
from rlzoo.agents.base import Agent
from rlzoo.agents.planning import PolicyEvaluation, PolicyIteration, TruncatedPolicyIteration, ValueIteration
from rlzoo.agents.registry import AGENTS, agent_class, make_agent, register_agent
from rlzoo.agents.tabular import TabularAgent

__all__ = [
    "AGENTS",
    "Agent",
    "PolicyEvaluation",
    "PolicyIteration",
    "TabularAgent",
    "TruncatedPolicyIteration",
    "ValueIteration",
    "agent_class",
    "make_agent",
    "planning",
    "register_agent",
]
