"""The sampling cache of Hugging Face models (``rlzoo.llm.kv_cache``): storage that grows in blocks, attention over
it with the unwritten positions masked, the same logits as running every prefix whole."""

from __future__ import annotations

import inspect

import pytest
import torch

from rlzoo.llm.decoding import sample_completions
from rlzoo.llm.models import (
    cache_argument,
    decoding_cache,
    extend,
    load_pretrained,
    prefill,
    save_tiny_hf_model,
    save_tiny_qwen2_model,
)

from .test_llm_models_memory import uncached


def hf_model(kind: str, tmp_path) -> torch.nn.Module:
    if kind == "gpt2":
        directory = save_tiny_hf_model(tmp_path / kind, n_layer=2, d_model=16, n_head=2, max_len=48)
    else:
        directory = save_tiny_qwen2_model(tmp_path / kind, n_layer=2, hidden_size=16, n_head=4, n_kv_head=2,
                                          intermediate_size=32, max_len=48)  # fmt: skip
    model = load_pretrained(directory)[0].eval()
    model.set_attn_implementation("eager")  # what sampling on the CPU decodes with
    return model


@pytest.mark.parametrize("kind", ["gpt2", "qwen2"])
@pytest.mark.filterwarnings("error")
def test_the_cache_is_passed_under_the_name_the_installed_transformers_takes(tmp_path, kind):
    """``prefill`` and ``extend`` use the model's own name for the cache (``cache``, or ``past_key_values`` before
    transformers renamed it): no deprecation warning now, no break when the old name is removed (transformers 5.40)."""
    model = hf_model(kind, tmp_path)
    name = cache_argument(model)
    assert name in inspect.signature(type(model).forward).parameters
    with torch.no_grad():
        logits, cache = prefill(model, torch.tensor([[1, 5, 6]]), 2)
        step = extend(model, logits.argmax(-1, keepdim=True), cache)
    assert step.shape == (2, 1, logits.shape[-1]) and cache.get_seq_length() == 4


@pytest.mark.parametrize("kind", ["gpt2", "qwen2"])
def test_block_growing_cache_gives_the_logits_of_the_whole_prefix_across_blocks(tmp_path, kind):
    from rlzoo.llm.kv_cache import BlockGrowingLayer, block_growing_copy

    model = hf_model(kind, tmp_path)
    prompts = torch.tensor([[1, 5, 6], [1, 7, 3]])
    ids = prompts.repeat_interleave(2, dim=0)
    with torch.no_grad():
        logits, cache = prefill(model, prompts, 2)
        cache = block_growing_copy(cache, block=4)
        layer = cache.layers[0]
        assert isinstance(layer, BlockGrowingLayer) and layer.keys.shape[-2] == 4 and cache.get_seq_length() == 3
        for _ in range(10):  # 3 + 10 positions: the storage grows from 4 to 16
            token = logits.argmax(-1, keepdim=True)
            ids = torch.cat([ids, token], dim=1)
            logits = extend(model, token, cache)[:, -1]
            whole = model(ids).logits[:, -1]
            torch.testing.assert_close(logits, whole, atol=1e-5, rtol=1e-5)
            assert cache.get_seq_length() == ids.shape[1] and layer.keys.shape[-2] == -(-ids.shape[1] // 4) * 4
    assert (layer.keys[:, :, ids.shape[1] :] == 0).all()  # the unwritten positions: zeros, masked


@pytest.mark.parametrize("kind", ["gpt2", "qwen2"])
def test_sampling_past_a_block_draws_what_rerunning_every_prefix_draws(tmp_path, kind):
    model = hf_model(kind, tmp_path)
    prompts = torch.tensor([[1, 5, 6, 7], [1, 7, 3, 3]])
    assert type(decoding_cache(model, prefill(model, prompts)[1]).layers[0]).__name__ == "BlockGrowingLayer"
    draws = [sample_completions(m, prompts, 3, 40, eos_id=2, pad_id=0, generator=torch.Generator().manual_seed(0))
             for m in (model, uncached(model))]  # fmt: skip
    assert draws[0].ids.shape[1] > 28  # past the first block of 32 positions
    assert torch.equal(draws[0].ids, draws[1].ids)
    torch.testing.assert_close(draws[0].old_logp, draws[1].old_logp, atol=1e-5, rtol=1e-5)
