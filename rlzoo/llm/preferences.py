"""The command that writes DPO's preference pairs (:mod:`rlzoo.llm.preference_data`) built from a model's own samples:

    python -m rlzoo.llm.preferences prefs.jsonl [env=gridworld_text] [algo.n_pairs=4000] [seed=1] [...]

warm-starts the model of ``algo=dpo`` (the same overrides as ``rlzoo.train``, ``device`` too), builds its pairs and
writes them; ``python -m rlzoo.train algo=dpo algo.data=prefs.jsonl`` then trains on them (or on any JSONL of these
columns).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from rlzoo.config import ConfigError
from rlzoo.llm.preference_data import write_pairs


def main(argv: list[str]) -> None:
    """``python -m rlzoo.llm.preferences OUT.jsonl [overrides]``: warm-start ``algo=dpo``'s model, build its pairs
    (``algo.n_pairs``, ``algo.num_generations``, ``algo.temperature``) and write them to OUT.jsonl."""
    if not argv or argv[0].startswith("-") or "=" in argv[0]:
        print("usage: python -m rlzoo.llm.preferences OUT.jsonl [overrides, as for rlzoo.train]", file=sys.stderr)
        sys.exit(2)
    from hydra import compose, initialize_config_module

    from rlzoo.agents import make_agent
    from rlzoo.envs import make as make_env
    from rlzoo.logging import RunLogger
    from rlzoo.train import resolve

    out = Path(argv[0])
    if out.exists():
        print(f"rlzoo: config error: {out} exists; choose another file", file=sys.stderr)
        sys.exit(2)
    try:
        with initialize_config_module("rlzoo.conf", version_base="1.3"):
            spec = resolve(compose("config", overrides=["algo=dpo", *argv[1:], "algo.data=null"]))
        agent = make_agent("dpo", make_env(spec.env), config=spec.algo, seed=spec.run.seed, device=spec.run.device)
        agent.begin(spec.run.total_steps, RunLogger())
    except ConfigError as err:
        print(f"rlzoo: config error: {err}", file=sys.stderr)
        sys.exit(2)
    write_pairs(out, agent.pairs)
    chosen = np.mean([p["chosen_reward"] for p in agent.pairs])
    rejected = np.mean([p["rejected_reward"] for p in agent.pairs])
    print(f"{out}: {len(agent.pairs)} pairs (mean reward chosen {chosen:.3f}, rejected {rejected:.3f})")


if __name__ == "__main__":
    main(sys.argv[1:])
