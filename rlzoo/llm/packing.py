"""Padding-free packing of the loss pass: the sequences of a batch of completions laid end to end in a few rows,
each token at its own position and attending only to its own sequence, so no position is computed for padding.

Two layouts. With ``share_prompts`` (a model that takes an explicit attention mask: a ``TinyGPT``, a Hugging Face
model with sdpa or eager attention) each group of adjacent rows with one prompt is a *segment*: its prompt once,
then each completion's tokens at positions continuing after the prompt, attending to the prompt and to its own
earlier tokens — the prompt is computed once for the G completions. Without it (e.g. flash attention) each
completion is a segment of its own, prompt + completion, at positions 0, 1, … restarting per segment;
transformers finds the segments from the ``position_ids`` (a position that does not follow its left neighbour
starts one) and confines attention to them.

A completion's length is its tokens through the first EOS (all L without one); only those are scored, and the
last of them is never an input (nothing after it is predicted). Segments go into about Σ tokens / ``capacity``
rows, balanced (:func:`assign_rows`); the rows are right-padded to the longest, each padding token a segment of one
at position 0."""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass

import torch

# Tokens per packed row: shorter rows attend over fewer keys, longer ones hold more segments and so balance (and pad)
# better. For the arithmetic defaults (TinyGPT d_model 128, 2 layers, 16 prompts × 8 completions, 10-token prompts,
# completions of 2-8 tokens) the loss pass (forward + backward, one CPU thread, 3 batches) took 31-35 ms at 128
# (2.6-6.1 % padding), 33-36 ms at 192-256 (0.6-1.9 %), 38-40 ms at 512, 54-57 ms in one row, and 46-50 ms padded
# with the key-value cache. Sixteen groups of 8 completions of 2-24 tokens after an 11-token prompt (200 random
# batches) pad a median 3.6 % (90th percentile 6.5 %) at 256, 1.2 % (3.7 %) at 384, 0.7 % (0.9 %) at 512.
DEFAULT_CAPACITY = 384


@dataclass
class PackedBatch:
    """Packed rows (R, S) — ``input_ids``, ``position_ids``, ``segment_ids`` (the attention block of each token,
    unique in its row) and ``branch_ids`` (0: the segment's shared prompt, k > 0: its k-th completion) — and where
    the completion tokens' log-probs come from: the logits at flat position ``source[k]`` of the (R·S) rows predict
    the token at flat position ``target[k]`` of the (N·L) completions. ``real`` counts the positions holding a
    sequence's token (the rest are padding)."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    segment_ids: torch.Tensor
    branch_ids: torch.Tensor
    source: torch.Tensor
    target: torch.Tensor
    real: int

    @property
    def computed(self) -> int:
        """The positions the model computes: rows × row length."""
        return self.input_ids.numel()

    @property
    def padding_share(self) -> float:
        """The share of computed positions that are padding."""
        return 1.0 - self.real / max(self.computed, 1)

    def attention_mask(self) -> torch.Tensor:
        """(R, S, S) booleans, True where query position t may attend key position s: the same segment, s not
        later than t, and s in the shared prompt or in t's own branch. Every position attends at least itself."""
        seg, branch, pos = self.segment_ids, self.branch_ids, self.position_ids
        same = seg[:, :, None] == seg[:, None, :]
        causal = pos[:, None, :] <= pos[:, :, None]
        visible = (branch[:, None, :] == 0) | (branch[:, None, :] == branch[:, :, None])
        return same & causal & visible


def completion_lengths(ids: torch.Tensor, eos_id: int) -> torch.Tensor:
    """The length (N,) of each completion in ``ids`` (N, L): its tokens through the first ``eos_id``, L if none."""
    is_eos = ids == eos_id
    first = is_eos.int().argmax(dim=1) + 1
    return torch.where(is_eos.any(dim=1), first, torch.full_like(first, ids.shape[1]))


def group_sizes(prompt_ids: torch.Tensor, share_prompts: bool) -> list[int]:
    """The sizes of the runs of identical adjacent rows of ``prompt_ids`` (N, T) with ``share_prompts``, else
    N ones: the completions each segment holds."""
    if not share_prompts:
        return [1] * prompt_ids.shape[0]
    return torch.unique_consecutive(prompt_ids, dim=0, return_counts=True)[1].tolist()


def fit_segments(sizes: list[int], lengths: list[int], prompt_len: int, capacity: int) -> list[int]:
    """``sizes`` with each run of completions sharing a prompt split into consecutive parts of at most ``capacity``
    tokens (prompt + completion inputs), each part with its own copy of the prompt, so no segment stretches every
    row past the capacity (adjacent groups with the same prompt form one run); a part holds at least one
    completion."""
    out, start = [], 0
    for size in sizes:
        count, tokens = 0, prompt_len
        for n in lengths[start : start + size]:
            inputs = max(n - 1, 0)
            if count and tokens + inputs > capacity:
                out.append(count)
                count, tokens = 0, prompt_len
            count, tokens = count + 1, tokens + inputs
        out.append(count)
        start += size
    return out


def segment_lengths(prompt_len: int, lengths: list[int], sizes: list[int], share_prompts: bool) -> list[int]:
    """The tokens of each segment: its prompt(s) and each completion's inputs (its length − 1)."""
    out, start = [], 0
    for size in sizes:
        inputs = sum(max(n - 1, 0) for n in lengths[start : start + size])
        out.append(prompt_len * (1 if share_prompts else size) + inputs)
        start += size
    return out


def balanced_rows(sizes: list[int], count: int) -> tuple[list[list[int]], int]:
    """Segments (by index) in ``count`` rows, longest first, each into the row holding the fewest tokens so far,
    then evened out (:func:`even_out`); and the longest row's tokens."""
    rows: list[list[int]] = [[] for _ in range(count)]
    heap = [(0, r) for r in range(count)]
    for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        fill, r = heapq.heappop(heap)
        rows[r].append(i)
        heapq.heappush(heap, (fill + sizes[i], r))
    return even_out(rows, sizes)


def even_out(rows: list[list[int]], sizes: list[int], tolerance: float = 0.01) -> tuple[list[list[int]], int]:
    """Shorten the longest row while one of its segments can move to, or swap with a shorter one of, another row
    that stays shorter than it was, until the padding is at most ``tolerance`` of rows × longest row; returns the
    rows (changed in place) and the longest row's tokens."""
    fills, total = [sum(sizes[i] for i in row) for row in rows], sum(sizes)
    while True:
        top = max(range(len(rows)), key=fills.__getitem__)
        move = next(((a, r, b) for a in rows[top] for r in range(len(rows)) if r != top for b in [None, *rows[r]]
                     if 0 < sizes[a] - (0 if b is None else sizes[b]) < fills[top] - fills[r]), None)  # fmt: skip
        if move is None or len(rows) * fills[top] - total <= tolerance * len(rows) * fills[top]:
            return rows, fills[top]
        a, r, b = move
        delta = sizes[a] - (0 if b is None else sizes[b])
        rows[top].remove(a)
        rows[r].append(a)
        if b is not None:
            rows[r].remove(b)
            rows[top].append(b)
        fills[top], fills[r] = fills[top] - delta, fills[r] + delta


def assign_rows(sizes: list[int], capacity: int) -> list[list[int]]:
    """Segments (by index) in rows of about ``capacity`` tokens: :func:`balanced_rows` for each row count from
    ⌈Σ sizes / capacity⌉ to 3 more (at most one segment a row), keeping the one with the fewest computed positions
    (rows × longest row; ties: more, shorter rows). Each row keeps its segments in batch order."""
    if not sizes:
        return []
    least = min(max(1, math.ceil(sum(sizes) / capacity)), len(sizes))
    best, best_cost = [], None
    for count in range(least, min(least + 3, len(sizes)) + 1):
        rows, longest = balanced_rows(sizes, count)
        if best_cost is None or count * longest <= best_cost:
            best, best_cost = rows, count * longest
    return [sorted(row) for row in best]


class _Row:
    """The token lists of one packed row while it is built (see :class:`PackedBatch` for their meaning)."""

    def __init__(self) -> None:
        self.tokens: list[int] = []
        self.positions: list[int] = []
        self.segments: list[int] = []
        self.branches: list[int] = []

    def add(self, tokens: list[int], first_position: int, segment: int, branch: int) -> int:
        """Append ``tokens`` at positions from ``first_position`` on; returns the row index of the first."""
        start = len(self.tokens)
        self.tokens += tokens
        self.positions += range(first_position, first_position + len(tokens))
        self.segments += [segment] * len(tokens)
        self.branches += [branch] * len(tokens)
        return start

    def pad(self, width: int, token: int) -> None:
        """Right-pad to ``width`` with ``token``, each padding token a segment of its own at position 0."""
        extra = width - len(self.tokens)
        self.segments += range(-1, -extra - 1, -1)  # real segments are ≥ 0
        self.tokens += [token] * extra
        self.positions += [0] * extra
        self.branches += [0] * extra


def pack(prompt_ids: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor, *, share_prompts: bool,
         capacity: int = DEFAULT_CAPACITY) -> PackedBatch:  # fmt: skip
    """The :class:`PackedBatch` of completions ``ids`` (N, L) after ``prompt_ids`` (N, T), completion ``n`` scored
    on its first ``lengths[n]`` tokens; segments per group of identical adjacent prompts (``share_prompts``) or
    per completion, in rows of about ``capacity`` tokens."""
    width, prompt_len = ids.shape[1], prompt_ids.shape[1]
    if prompt_len == 0:
        raise ValueError("packing needs prompts of at least one token (they predict the first completion token)")
    lens = lengths.clamp(0, width).tolist()
    sizes = group_sizes(prompt_ids, share_prompts)
    if share_prompts:
        sizes = fit_segments(sizes, lens, prompt_len, capacity)
    seg_len = segment_lengths(prompt_len, lens, sizes, share_prompts)
    firsts = [0, *itertools.accumulate(sizes)]
    assignment = assign_rows(seg_len, capacity)
    row_len = max((sum(seg_len[s] for s in row) for row in assignment), default=0)
    prompts, completions = prompt_ids.tolist(), ids.tolist()
    rows, source, target = [], [], []
    for r, segments in enumerate(assignment):
        row = _Row()
        for s in segments:
            for k, i in enumerate(range(firsts[s], firsts[s + 1])):
                if k == 0 or not share_prompts:  # the prompt: once per segment, or before each completion
                    last_prompt = row.add(prompts[i], 0, s, 0) + prompt_len - 1
                inputs = completions[i][: max(lens[i] - 1, 0)]
                start = row.add(inputs, prompt_len, s, k + 1 if share_prompts else 0)
                source += [r * row_len + j for j in [last_prompt, *range(start, start + len(inputs))][: lens[i]]]
                target += range(i * width, i * width + lens[i])
        row.pad(row_len, prompts[0][0])
        rows.append(row)
    real = sum(seg_len)

    def tensor(values: list[int] | list[list[int]]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long, device=ids.device)

    def stack(name: str) -> torch.Tensor:
        return tensor([getattr(row, name) for row in rows]).view(len(rows), row_len)

    return PackedBatch(stack("tokens"), stack("positions"), stack("segments"), stack("branches"), tensor(source),
                       tensor(target), real)  # fmt: skip
