"""Agents: one module per family; importing this package registers every algorithm."""

from rlzoo.agents import grpo  # the old import path of GRPO (rlzoo.llm.grpo)
from rlzoo.agents.a2c import A2C, Reinforce
from rlzoo.agents.base import Agent, NumericalError
from rlzoo.agents.ddpg import DDPG, TD3
from rlzoo.agents.dqn import DQN
from rlzoo.agents.monte_carlo import MCBasic, MCEpsilonGreedy, MCExploringStarts
from rlzoo.agents.off_policy import OffPolicyAgent
from rlzoo.agents.off_policy_ac import OffPolicyAC
from rlzoo.agents.on_policy import OnPolicyAgent
from rlzoo.agents.planning import PolicyEvaluation, PolicyIteration, TruncatedPolicyIteration, ValueIteration
from rlzoo.agents.ppo import PPO
from rlzoo.agents.qac import QAC
from rlzoo.agents.registry import AGENTS, agent_class, make_agent, register_agent
from rlzoo.agents.replay_actor_critic import ReplayActorCritic
from rlzoo.agents.sac import SAC
from rlzoo.agents.tabular import TabularAgent, TabularLearner
from rlzoo.agents.td import TD0, ExpectedSarsa, NStepSarsa, QLearning, Sarsa, TDLinear
from rlzoo.agents.trpo import TRPO
from rlzoo.llm.dpo import DPO
from rlzoo.llm.grpo import GRPO
from rlzoo.llm.kimi import Kimi

__all__ = [
    "A2C",
    "AGENTS",
    "DDPG",
    "DPO",
    "DQN",
    "GRPO",
    "PPO",
    "QAC",
    "SAC",
    "TD0",
    "TD3",
    "TRPO",
    "Agent",
    "ExpectedSarsa",
    "Kimi",
    "MCBasic",
    "MCEpsilonGreedy",
    "MCExploringStarts",
    "NStepSarsa",
    "NumericalError",
    "OffPolicyAC",
    "OffPolicyAgent",
    "OnPolicyAgent",
    "PolicyEvaluation",
    "PolicyIteration",
    "QLearning",
    "Reinforce",
    "ReplayActorCritic",
    "Sarsa",
    "TDLinear",
    "TabularAgent",
    "TabularLearner",
    "TruncatedPolicyIteration",
    "ValueIteration",
    "agent_class",
    "grpo",
    "make_agent",
    "register_agent",
]
