"""Many seeds in one process: K agents of one algorithm and config, trained in lockstep as one batched computation.

``SeedBatch(lanes)`` takes K agents built exactly as single runs of their seeds would be (each its own networks,
optimizer, random generator, envs and normalisers: its *lane*) and asks their family for the *stacked agent*
(``Agent.stacked``): an agent of the same class whose networks hold the lanes' parameters stacked along a seed axis
(``rlzoo.seed_stack``; the lanes' parameters become views of them), whose generator draws each lane's numbers from
that lane's own generator, and whose rollouts step every lane's envs. One ``advance`` of the batch is one
``advance`` of the stacked agent: every seed's experience and update at once, each seed's arithmetic that of a single
run of it (up to the rounding of batched matrix products). ``sync`` writes the counters and optimizer state back
into the lanes, so each lane logs, evaluates, checkpoints and resumes as the single run it stands for.

The training loop drives a batch through ``rlzoo.trainer.Trainer.batched``; ``rlzoo.train`` with ``n_seeds=K``
builds one and writes each seed's run directory (or, for an algorithm or config a batch cannot train, trains the seeds
one after another, saying why in one line).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rlzoo.agents.base import Agent
from rlzoo.callbacks import Callback
from rlzoo.config import ConfigError, to_dict
from rlzoo.logging import RunLogger
from rlzoo.trainer import Driver, Lane, Trainer


class SeedBatch(Driver):
    """K agents of one class, config and env (different seeds), trained as one batched computation (module
    docstring); ``ConfigError`` naming the algorithms that can when the lanes' cannot."""

    def __init__(self, lanes: Sequence[Agent]) -> None:
        lanes = list(lanes)
        if len(lanes) < 2:
            raise ValueError(f"a seed batch needs at least 2 agents, not {len(lanes)}")
        cls = type(lanes[0])
        check_batchable(cls.name, lanes[0].config)
        for lane in lanes[1:]:
            if type(lane) is not cls or to_dict(lane.config) != to_dict(lanes[0].config):
                raise ValueError("a seed batch trains one algorithm and config: its agents differ in class or config")
            if lane.num_timesteps != lanes[0].num_timesteps:
                raise ValueError(f"a seed batch steps its seeds together: its agents are at steps "
                                 f"{[a.num_timesteps for a in lanes]}")  # fmt: skip
        self.lanes = lanes
        self.stacked = self.drives = cls.stacked(lanes)

    def begin(self, total_steps: int, loggers: Sequence[RunLogger]) -> None:
        for lane, logger in zip(self.lanes, loggers, strict=True):
            lane.begin(total_steps, logger)
        self.stacked.begin_stacked(total_steps)

    def advance(self, n_steps: int, loggers: Sequence[RunLogger]) -> list[dict[str, Any]]:
        """One ``advance`` of every seed; each seed's statistics."""
        stats = self.stacked.advance(n_steps, loggers)
        return [{key: value[k] if isinstance(value, list) else value for key, value in stats.items()}
                for k in range(len(self.lanes))]  # fmt: skip

    def sync(self) -> None:
        """Bring every lane's counters and optimizer state up to the stacked agent's (``Agent.sync_lane``)."""
        for k, lane in enumerate(self.lanes):
            self.stacked.sync_lane(lane, k)

    def learn(self, total_steps: int, loggers: Sequence[RunLogger] | None = None,
              callbacks: Sequence[Sequence[Callback]] | None = None) -> list[Agent]:  # fmt: skip
        """Train every seed to ``total_steps`` on the one training loop, seed k logging to ``loggers[k]`` with
        ``callbacks[k]``; returns the lanes, synced."""
        n = len(self.lanes)
        loggers = list(loggers) if loggers is not None else [RunLogger() for _ in range(n)]
        callbacks = list(callbacks) if callbacks is not None else [[] for _ in range(n)]
        lanes = [Lane(agent, logger, list(cbs))
                 for agent, logger, cbs in zip(self.lanes, loggers, callbacks, strict=True)]  # fmt: skip
        Trainer.batched(self, total_steps, lanes).run()
        self.sync()
        return self.lanes


def batchable_algorithms() -> list[str]:
    """The algorithms a seed batch can train."""
    from rlzoo.agents import AGENTS

    return sorted(name for name, cls in AGENTS.items() if cls.seed_batchable)


def seed_batch_obstacle(name: str, config: Any) -> str | None:
    """Why algorithm ``name`` with ``config`` cannot train as a seed batch (one line), or None when it can."""
    from rlzoo.agents import agent_class

    cls = agent_class(name)
    if not cls.seed_batchable:
        return f"algo={name} has no seed batch (algorithms with one: {', '.join(batchable_algorithms())})"
    try:
        cls.check_seed_batch(config)
    except ConfigError as err:
        return str(err)
    return None


def check_batchable(name: str, config: Any) -> None:
    """``ConfigError`` (``seed_batch_obstacle``'s line) unless algorithm ``name`` with ``config`` can train as a seed
    batch."""
    obstacle = seed_batch_obstacle(name, config)
    if obstacle is not None:
        raise ConfigError(obstacle)
