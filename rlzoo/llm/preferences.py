"""Preference pairs for DPO: rows of ``prompt``, ``chosen`` and ``rejected`` completions, read from or written to
JSONL, or built from a model's own samples on a text task: ``num_generations`` completions of a prompt are scored
by the task, and its best- and worst-scored completions make a pair when their rewards differ (arithmetic: a
correct and a wrong answer; gridworld_text: a higher- and a lower-return path).

    python -m rlzoo.llm.preferences prefs.jsonl [env=gridworld_text] [algo.n_pairs=4000] [seed=1] [...]

warm-starts the model of ``algo=dpo`` (the same overrides as ``rlzoo.train``), builds its pairs and writes them;
``python -m rlzoo.train algo=dpo algo.data=prefs.jsonl`` then trains on them (or on any JSONL of these columns).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from rlzoo.config import ConfigError
from rlzoo.envs.text_tasks import TextTask
from rlzoo.llm.policy import LanguagePolicy
from rlzoo.llm.prompts import PromptBuckets

PAIR_COLUMNS = ("prompt", "chosen", "rejected")
Pair = dict[str, Any]


def read_pairs(path: str | Path) -> list[Pair]:
    """The pairs of a JSONL file; ``ConfigError`` naming the file and line of a row without the three string
    columns, or of a file that is missing or holds no pair."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise ConfigError(f"algo.data={str(path)!r} cannot be read ({err.strerror or err})") from None
    pairs = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ConfigError(f"algo.data={str(path)!r} line {number} is not JSON ({err.msg})") from None
        if not isinstance(row, dict) or not all(isinstance(row.get(c), str) for c in PAIR_COLUMNS):
            raise ConfigError(f"algo.data={str(path)!r} line {number} needs string columns {', '.join(PAIR_COLUMNS)}")
        pairs.append(row)
    if not pairs:
        raise ConfigError(f"algo.data={str(path)!r} holds no preference pair")
    return pairs


def write_pairs(path: str | Path, pairs: list[Pair]) -> Path:
    """Write ``pairs`` as JSONL (one object a line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return path


def build_pairs(policy: LanguagePolicy, task: TextTask, prompts: PromptBuckets, *, n_pairs: int,
                num_generations: int, temperature: float, prompts_per_round: int = 64,
                max_rounds: int = 1000) -> list[Pair]:  # fmt: skip
    """Up to ``n_pairs`` pairs from ``num_generations`` samples of training prompts at ``temperature``: the best and
    the worst completion of each prompt whose samples' rewards differ (ties: the first sampled), with their
    rewards. Stops after ``max_rounds`` rounds of ``prompts_per_round`` prompts even if fewer were found."""
    pairs: list[Pair] = []
    G = num_generations
    for _ in range(max_rounds):
        rows = prompts.sample(prompts_per_round)
        comp = policy.sample([r["prompt"] for r in rows], G, temperature)
        texts = [policy.tokenizer.decode(ids) for ids in comp.ids]
        total, _ = task.rewards([r for r in rows for _ in range(G)], texts)
        for i, row in enumerate(rows):
            scores = total[i * G : (i + 1) * G]
            best, worst = int(np.argmax(scores)), int(np.argmin(scores))
            if scores[best] > scores[worst]:
                pairs.append({"prompt": row["prompt"], "chosen": texts[i * G + best],
                              "rejected": texts[i * G + worst], "chosen_reward": float(scores[best]),
                              "rejected_reward": float(scores[worst])})  # fmt: skip
                if len(pairs) == n_pairs:
                    return pairs
    return pairs


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
        agent = make_agent("dpo", make_env(spec.env), config=spec.algo, seed=spec.run.seed)
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
