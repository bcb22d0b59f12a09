"""Preference pairs for DPO: rows of ``prompt``, ``chosen`` and ``rejected`` completions, read from or written to
JSONL, or built from a model's own samples on a text task: ``num_generations`` completions of a prompt are scored
by the task, and its best- and worst-scored completions make a pair when their rewards differ (arithmetic: a
correct and a wrong answer; gridworld_text: a higher- and a lower-return path). The command that writes them:
:mod:`rlzoo.llm.preferences`."""

from __future__ import annotations

import json
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
    rewards. Only completions whose text encodes back to the tokens sampled take part (an untrained model may
    sample special tokens, which text drops); a truncated one is as long as completions may be, which tells DPO
    it has no EOS. Stops after ``max_rounds`` rounds of ``prompts_per_round`` prompts even if fewer were found."""
    pairs: list[Pair] = []
    G, tok = num_generations, policy.tokenizer
    for _ in range(max_rounds):
        rows = prompts.sample(prompts_per_round)
        comp = policy.sample([r["prompt"] for r in rows], G, temperature)
        completions = comp.ids.tolist()  # one copy to the host
        texts = [tok.decode(ids) for ids in completions]
        total, _ = task.rewards([r for r in rows for _ in range(G)], texts)
        sampled = [ids[: ids.index(tok.eos_token_id)] if tok.eos_token_id in ids else ids for ids in completions]
        scores = np.where([tok.encode(t) == ids for t, ids in zip(texts, sampled, strict=True)], total, np.nan)
        for i, row in enumerate(rows):
            group = scores[i * G : (i + 1) * G]
            if np.isnan(group).all():
                continue
            best, worst = int(np.nanargmax(group)), int(np.nanargmin(group))
            if group[best] > group[worst]:
                pairs.append({"prompt": row["prompt"], "chosen": texts[i * G + best],
                              "rejected": texts[i * G + worst], "chosen_reward": float(group[best]),
                              "rejected_reward": float(group[worst])})  # fmt: skip
                if len(pairs) == n_pairs:
                    return pairs
    return pairs
