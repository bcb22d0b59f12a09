"""Padding-free packing of the loss pass (rlzoo.llm.packing): the layout by hand, the rows' balance, what
transformers makes of packed ``position_ids``, and packed log-probs, entropies and gradients equal to the padded
pass for TinyGPT, GPT-2 and Qwen2 (with checkpointing too), with a padding share under 5 %."""

from __future__ import annotations

import pytest
import torch

from rlzoo.llm import decoding
from rlzoo.llm.decoding import completion_log_probs, padding_share, token_log_probs
from rlzoo.llm.models import (
    TinyGPT,
    TinyGPTConfig,
    enable_gradient_checkpointing,
    extend,
    load_pretrained,
    prefill,
    save_tiny_hf_model,
    save_tiny_qwen2_model,
)
from rlzoo.llm.packing import assign_rows, completion_lengths, fit_segments, pack

EOS, PAD = 2, 0


def make_model(kind: str, tmp_path) -> torch.nn.Module:
    """A small model of ``kind`` without dropout: TinyGPT, a random-init GPT-2 (sdpa or eager attention) or Qwen2."""
    if kind == "tinygpt":
        torch.manual_seed(0)
        return TinyGPT(TinyGPTConfig(vocab_size=12, max_len=32, n_layer=2, d_model=16, n_head=2))
    if kind == "qwen2":
        directory = save_tiny_qwen2_model(tmp_path / kind, n_layer=2, hidden_size=16, n_head=4, n_kv_head=2,
                                          intermediate_size=32, max_len=32)  # fmt: skip
        return load_pretrained(directory)[0]
    from transformers import AutoModelForCausalLM

    directory = save_tiny_hf_model(tmp_path / kind, n_layer=2, d_model=16, n_head=2, max_len=32)
    attention = "eager" if kind == "gpt2-eager" else "sdpa"
    model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, attn_implementation=attention)
    for module in model.modules():  # training mode below: no dropout masks to tell the passes apart
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


def completions_of(lengths: list[int], width: int, seed: int, eos: list[bool] | None = None) -> torch.Tensor:
    """Random completions (len(lengths), width) of tokens 3…11, each ``lengths[n]`` long: its last token EOS
    (unless ``eos[n]`` is False: truncated at ``width``), then padding."""
    ids = torch.randint(3, 12, (len(lengths), width), generator=torch.Generator().manual_seed(seed))
    for n, length in enumerate(lengths):
        if eos is None or eos[n]:
            ids[n, length - 1] = EOS
        ids[n, length:] = PAD
    return ids


def mixed_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Groups of 3, 1, 4 and 2 completions of four 4-token prompts; lengths 1 (EOS first) to 6, two truncated."""
    prompts = torch.tensor([[1, 5, 6, 7], [1, 7, 3, 3], [1, 4, 4, 9], [1, 8, 3, 5]])
    prompts = prompts.repeat_interleave(torch.tensor([3, 1, 4, 2]), dim=0)
    lengths = [3, 1, 6, 4, 6, 2, 5, 1, 4, 3]
    eos = [True, True, False, True, True, True, True, True, True, True]
    return prompts, completions_of(lengths, 6, seed=2, eos=eos)


def arithmetic_batch(prompts: int = 16, group: int = 8, prompt_len: int = 10, width: int = 8) -> tuple:
    """The arithmetic defaults' shapes: 16 prompts × 8 completions, 10-token prompts, completions of 2–8 tokens."""
    gen = torch.Generator().manual_seed(1)
    prompt_ids = torch.randint(3, 12, (prompts, prompt_len), generator=gen).repeat_interleave(group, dim=0)
    lengths = torch.randint(2, width + 1, (prompts * group,), generator=gen).tolist()
    return prompt_ids, completions_of(lengths, width, seed=3)


def loss_pass(model: torch.nn.Module, prompts: torch.Tensor, ids: torch.Tensor, **kwargs) -> tuple:
    """Log-probs and entropies on each completion's tokens through EOS (0 after), and the gradients of a
    weighted sum of both over those tokens."""
    model.zero_grad(set_to_none=True)
    logp, entropy = completion_log_probs(model, prompts, ids, temperature=0.7, **kwargs)
    scored = torch.arange(ids.shape[1]) < completion_lengths(ids, EOS)[:, None]
    logp, entropy = logp * scored, entropy * scored
    weights = torch.linspace(-1, 1, ids.numel()).view(ids.shape)
    (logp * weights + 0.1 * entropy).sum().backward()
    return logp.detach(), entropy.detach(), [p.grad.clone() for p in model.parameters()]


def assert_same(a: tuple, b: tuple) -> None:
    for x, y in zip(a[:2], b[:2], strict=True):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)
    for x, y in zip(a[2], b[2], strict=True):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-4)


# ---- the layout -----------------------------------------------------------------------------------------------
def test_completion_lengths_run_through_the_first_eos_or_the_whole_row():
    ids = torch.tensor([[5, EOS, PAD, PAD], [EOS, PAD, PAD, PAD], [5, 6, 7, 8], [5, 6, 7, EOS], [5, EOS, 6, EOS]])
    assert completion_lengths(ids, EOS).tolist() == [2, 1, 4, 4, 2]


def test_a_shared_prompt_layout_by_hand():
    prompts = torch.tensor([[1, 5], [1, 5], [1, 6]])  # a group of two, a group of one
    ids = torch.tensor([[7, EOS, PAD], [8, 9, EOS], [EOS, PAD, PAD]])
    batch = pack(prompts, ids, completion_lengths(ids, EOS), share_prompts=True, capacity=100)
    # the group: its prompt once, completion 1's input 7, completion 2's inputs 8 9; then the second prompt alone
    assert batch.input_ids.tolist() == [[1, 5, 7, 8, 9, 1, 6]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 2, 3, 0, 1]]
    assert batch.branch_ids.tolist() == [[0, 0, 1, 2, 2, 0, 0]]
    # token (n, j) is predicted at: (0, 0) ← the prompt's last, (0, 1) ← 7; (1, ·) ← 5, 8, 9; (2, 0) ← 6
    assert batch.source.tolist() == [1, 2, 1, 3, 4, 6] and batch.target.tolist() == [0, 1, 3, 4, 5, 6]
    allowed = batch.attention_mask()[0]
    assert [allowed[3].nonzero()[:, 0].tolist(), allowed[4].nonzero()[:, 0].tolist()] == [[0, 1, 3], [0, 1, 3, 4]]
    assert allowed[2].nonzero()[:, 0].tolist() == [0, 1, 2] and allowed[6].nonzero()[:, 0].tolist() == [5, 6]
    assert batch.real == batch.computed == 7 and batch.padding_share == 0.0


def test_a_group_longer_than_the_capacity_is_split_each_part_with_its_prompt():
    prompts = torch.tensor([[1, 5]] * 4)  # one run of four completions sharing a prompt (e.g. two adjacent groups)
    ids = torch.tensor([[7, 8, EOS], [8, 9, EOS], [9, 7, EOS], [EOS, PAD, PAD]])
    batch = pack(prompts, ids, completion_lengths(ids, EOS), share_prompts=True, capacity=6)
    # 2 + 2 + 2 = 6 tokens fit; the third completion starts a new part, which repeats the prompt
    assert sorted(map(tuple, batch.input_ids.tolist())) == [(1, 5, 7, 8, 8, 9), (1, 5, 9, 7, 1, 1)]
    assert batch.real == 10 and batch.computed == 12
    assert fit_segments([4], [3, 3, 3, 1], prompt_len=2, capacity=6) == [2, 2]
    assert fit_segments([2, 1], [9, 1, 1], prompt_len=2, capacity=6) == [1, 1, 1]  # a long completion alone


def test_whole_sequence_layout_restarts_positions_and_pads_rows_with_single_token_segments():
    prompts = torch.tensor([[1, 5], [1, 5], [1, 6]])
    ids = torch.tensor([[7, EOS, PAD], [8, 9, EOS], [EOS, PAD, PAD]])
    batch = pack(prompts, ids, completion_lengths(ids, EOS), share_prompts=False, capacity=4)
    assert sorted(map(tuple, batch.input_ids.tolist())) == [(1, 5, 7, 1), (1, 5, 8, 9), (1, 6, 1, 1)]
    row = batch.input_ids.tolist().index([1, 6, 1, 1])  # padded with the first prompt token, each at position 0
    assert batch.position_ids[row].tolist() == [0, 1, 0, 0]
    assert batch.attention_mask()[row].int().tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    assert batch.real == 9 and batch.computed == 12


@pytest.mark.parametrize("capacity", [5, 40, 100, 1000])
def test_rows_hold_every_segment_once_and_are_balanced(capacity):
    sizes = torch.randint(5, 40, (37,), generator=torch.Generator().manual_seed(0)).tolist()
    rows = assign_rows(sizes, capacity)
    assert sorted(i for row in rows for i in row) == list(range(37)) and all(row == sorted(row) for row in rows)
    fills = [sum(sizes[i] for i in row) for row in rows]
    assert len(rows) >= min(-(-sum(sizes) // capacity), 37)
    assert max(fills) - min(fills) <= max(sizes)


# ---- transformers and packed position ids -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["gpt2", "gpt2-eager", "qwen2"])
def test_transformers_confines_attention_to_the_segments_of_packed_position_ids(tmp_path, kind):
    """transformers (5.x masking_utils) starts a new segment wherever a position does not follow its left
    neighbour, per row (batch size > 1 is fine), and builds the block-diagonal causal mask — only without a
    cache: with ``use_cache`` on (the models' default) the packed rows attend across segments."""
    model = make_model(kind, tmp_path).eval()
    seqs = [torch.randint(3, 12, (n,), generator=torch.Generator().manual_seed(n)) for n in (5, 3, 7, 4, 6)]
    rows = [[0, 1, 2], [3, 4]]  # two rows: 15 and 10 tokens, the second padded to 16 with zeros at position 0
    ids, positions, spans = torch.zeros(2, 16, dtype=torch.long), torch.zeros(2, 16, dtype=torch.long), []
    for r, members in enumerate(rows):
        start = 0
        for i in members:
            span = slice(start, start + len(seqs[i]))
            ids[r, span], positions[r, span] = seqs[i], torch.arange(len(seqs[i]))
            spans.append((r, span, i))
            start = span.stop
    with torch.no_grad():
        alone = [model(s[None]).logits[0] for s in seqs]
        for use_cache, close in ((False, True), (True, False)):
            logits = model(ids, position_ids=positions, use_cache=use_cache).logits
            worst = max(float((logits[r, span] - alone[i]).abs().max()) for r, span, i in spans)
            assert (worst < 1e-5) == close, (use_cache, worst)


# ---- packed log-probs -------------------------------------------------------------------------------------------
LAYOUTS = ["tinygpt", "gpt2", "gpt2-eager", "qwen2", "gpt2-whole", "qwen2-whole"]


def packing_model(kind: str, tmp_path, monkeypatch) -> torch.nn.Module:
    """``make_model``'s model; for ``…-whole``, Hugging Face packing with whole sequences and ``position_ids``
    alone (what it does for attention implementations that take no explicit mask, e.g. flash attention)."""
    if kind.endswith("-whole"):
        monkeypatch.setattr(decoding, "MASKED_ATTENTION", ())
        kind = kind.removesuffix("-whole")
    return make_model(kind, tmp_path)


@pytest.mark.parametrize("kind", LAYOUTS)
def test_hugging_face_models_share_prompts_when_their_attention_takes_a_mask(tmp_path, monkeypatch, kind):
    model = packing_model(kind, tmp_path, monkeypatch)
    assert decoding.shares_prompts(model) == (not kind.endswith("-whole"))


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("capacity", [8, 128])
def test_packed_log_probs_and_gradients_equal_the_padded_pass(tmp_path, monkeypatch, kind, capacity):
    model = packing_model(kind, tmp_path, monkeypatch).train()
    monkeypatch.setattr(decoding, "packing_layout", decoding.packed_batch)  # pack even where it computes more
    prompts, ids = mixed_batch()
    padded = loss_pass(model, prompts, ids)
    packed = loss_pass(model, prompts, ids, packing=True, eos_id=EOS, capacity=capacity)
    assert_same(packed, padded)
    lengths = completion_lengths(ids, EOS)
    given = loss_pass(model, prompts, ids, packing=True, lengths=lengths, capacity=capacity)
    assert_same(given, padded)
    logp, entropy = completion_log_probs(model, prompts, ids, packing=True, eos_id=EOS, capacity=capacity)
    after = torch.arange(ids.shape[1]) >= lengths[:, None]
    assert not logp[after].any() and not entropy[after].any()  # 0 after each completion's EOS
    assert logp[~after].lt(0).all() and entropy[~after].gt(0).all()


@pytest.mark.parametrize("kind", ["tinygpt", "gpt2", "qwen2", "qwen2-whole"])
def test_packing_with_checkpointing_gives_the_padded_gradients(tmp_path, monkeypatch, kind):
    model = packing_model(kind, tmp_path, monkeypatch).train()
    monkeypatch.setattr(decoding, "packing_layout", decoding.packed_batch)
    prompts, ids = mixed_batch()
    padded = loss_pass(model, prompts, ids)
    enable_gradient_checkpointing(model)
    assert_same(loss_pass(model, prompts, ids, packing=True, eos_id=EOS, capacity=16), padded)


def test_without_lengths_or_eos_packing_scores_every_position(tmp_path):
    model = make_model("tinygpt", tmp_path)
    prompts, ids = mixed_batch()
    padded = completion_log_probs(model, prompts, ids)
    packed = completion_log_probs(model, prompts, ids, packing=True)
    for a, b in zip(packed, padded, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def old_completion_log_probs(model, prompt_ids, ids, temperature=1.0):
    """``completion_log_probs`` before packing and checkpointing (the key-value cache path)."""
    unique, counts = torch.unique_consecutive(prompt_ids, dim=0, return_counts=True)
    first, cache = prefill(model, unique, counts)
    logits = torch.cat([first[:, None], extend(model, ids[:, :-1], cache)], dim=1).float()
    return token_log_probs(logits, ids, temperature)


@pytest.mark.parametrize("kind", ["tinygpt", "gpt2"])
def test_the_default_pass_is_bit_for_bit_the_padded_one(tmp_path, kind):
    model = make_model(kind, tmp_path)
    prompts, ids = mixed_batch()
    new, old = completion_log_probs(model, prompts, ids, 0.7), old_completion_log_probs(model, prompts, ids, 0.7)
    assert torch.equal(new[0], old[0]) and torch.equal(new[1], old[1])


def test_packing_needs_a_model_that_takes_positions():
    class Plain(torch.nn.Module):
        def forward(self, input_ids):
            return torch.zeros(*input_ids.shape, 12)

    prompts, ids = mixed_batch()
    with pytest.raises(ValueError, match="packing needs a TinyGPT or a Hugging Face causal LM"):
        completion_log_probs(Plain(), prompts, ids, packing=True)


# ---- padding shares ---------------------------------------------------------------------------------------------
def test_padding_share_of_the_padded_and_packed_passes_by_hand(tmp_path):
    model = make_model("tinygpt", tmp_path)
    prompts = torch.tensor([[1, 5], [1, 5], [1, 6]])
    ids = torch.tensor([[7, EOS, PAD], [8, 9, EOS], [EOS, PAD, PAD]])
    # the cache: 2 prompts × 2 + 3 rows × 2 inputs computed, of which 4 + (1 + 2 + 0) are real
    assert padding_share(model, prompts, ids, eos_id=EOS) == pytest.approx(1 - 7 / 10)
    assert padding_share(model, prompts, ids) == 0.0  # without lengths every position counts
    enable_gradient_checkpointing(model).train()  # whole sequences: 3 × (2 + 2) computed, 3 × 2 + 3 real
    assert padding_share(model, prompts, ids, eos_id=EOS) == pytest.approx(1 - 9 / 12)
    assert padding_share(model, prompts, ids, packing=True, eos_id=EOS) == 0.0


@pytest.mark.parametrize("share_prompts", [True, False])
def test_packing_the_arithmetic_batch_pads_under_5_percent_and_computes_fewer_positions(share_prompts):
    prompts, ids = arithmetic_batch()
    lengths = completion_lengths(ids, EOS)
    inputs = int((lengths - 1).sum())
    packed = pack(prompts, ids, lengths, share_prompts=share_prompts)  # the default capacity
    assert packed.padding_share < 0.05 and packed.real == inputs + 10 * (16 if share_prompts else 128)
    if share_prompts:  # fewer positions than the padded pass with the cache: 16 prompts + 128 × 7 inputs
        assert packed.computed < 0.75 * (16 * 10 + 128 * 7)


def test_sixteen_groups_of_mixed_lengths_pad_under_5_percent():
    g = torch.Generator().manual_seed(0)
    shares = []
    for _ in range(20):  # 16 groups of 8 completions of 2-24 tokens after an 11-token prompt
        prompts = torch.randint(3, 12, (16, 11), generator=g).repeat_interleave(8, dim=0)
        lengths = torch.randint(2, 25, (128,), generator=g)
        shares.append(pack(prompts, torch.zeros(128, 24, dtype=torch.long), lengths, share_prompts=True).padding_share)
    assert sorted(shares)[10] < 0.03 and max(shares) < 0.08, shares


def test_packing_falls_back_to_the_padded_pass_where_it_would_compute_more(tmp_path):
    model = TinyGPT(TinyGPTConfig(vocab_size=12, max_len=32, n_layer=1, d_model=16, n_head=2))
    prompts = torch.tensor([[1, 5, 6]]).repeat_interleave(4, dim=0)
    full = torch.randint(3, 12, (4, 6), generator=torch.Generator().manual_seed(0))  # no EOS: no padding to remove
    assert decoding.packing_layout(model, prompts, full, completion_lengths(full, EOS)) is None
    assert padding_share(model, prompts, full, packing=True, eos_id=EOS) == 0.0
    torch.testing.assert_close(completion_log_probs(model, prompts, full, packing=True, eos_id=EOS),
                               completion_log_probs(model, prompts, full))  # fmt: skip
    mixed = full.clone()
    mixed[1:, 1] = EOS  # three completions end after 2 tokens: packing removes their padding
    assert decoding.packing_layout(model, prompts, mixed, completion_lengths(mixed, EOS)) is not None
    assert padding_share(model, prompts, mixed, packing=True, eos_id=EOS) < padding_share(model, prompts, mixed,
                                                                                          eos_id=EOS)  # fmt: skip
