"""Memory-saving model options and the test models: gradient checkpointing (the same gradients, fewer saved
activations; the loss pass leaves the key-value cache), wrapped models (peft, ``.module`` wrappers) still seen as
cache-capable, and the random-init Qwen2 model (saved, loaded, sampled, scored, sized up to ≈100M parameters)."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.checkpoint import CheckpointPolicy

from rlzoo.llm.decoding import completion_log_probs, sample_completions
from rlzoo.llm.models import (
    CharTokenizer,
    HFTokenizer,
    TinyGPT,
    TinyGPTConfig,
    base_model,
    enable_gradient_checkpointing,
    keep_attention_outputs,
    load_pretrained,
    model_uses_checkpointing,
    qwen2_config,
    save_model,
    save_tiny_hf_model,
    save_tiny_qwen2_model,
    supports_cache,
)

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")  # transformers' renamed arguments

KINDS = ["tinygpt", "gpt2", "qwen2"]


def make_model(kind: str, tmp_path) -> torch.nn.Module:
    """A small model of ``kind``, without dropout: TinyGPT, or a random-init GPT-2 / Qwen2 loaded through
    ``load_pretrained``."""
    if kind == "tinygpt":
        torch.manual_seed(0)
        return TinyGPT(TinyGPTConfig(vocab_size=12, max_len=24, n_layer=3, d_model=16, n_head=2))
    if kind == "gpt2":  # its dropouts off: the passes compared in training mode would draw different masks
        model = load_pretrained(save_tiny_hf_model(tmp_path / kind, n_layer=3, d_model=16, n_head=2, max_len=24))[0]
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        return model
    return load_pretrained(save_tiny_qwen2_model(tmp_path / kind, n_layer=3, hidden_size=16, n_head=4, n_kv_head=2,
                                                 intermediate_size=32, max_len=24))[0]  # fmt: skip


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Three groups of prompts (G = 3, the last group cut to two) and completions of 5 tokens."""
    prompts = torch.tensor([[1, 5, 6, 7], [1, 7, 3, 3], [1, 4, 4, 9]]).repeat_interleave(3, dim=0)[:8]
    return prompts, torch.randint(3, 12, (8, 5), generator=torch.Generator().manual_seed(2))


def loss_pass(model: torch.nn.Module, prompts: torch.Tensor, ids: torch.Tensor, **kwargs) -> tuple:
    """The log-probs, entropies and parameter gradients of a weighted sum of both."""
    model.zero_grad(set_to_none=True)
    logp, entropy = completion_log_probs(model, prompts, ids, temperature=0.7, **kwargs)
    weights = torch.linspace(-1, 1, ids.numel()).view(ids.shape)
    (logp * weights + 0.1 * entropy).sum().backward()
    return logp.detach(), entropy.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]


def assert_same(a: tuple, b: tuple, atol: float = 1e-5) -> None:
    for x, y in zip(a[:2], b[:2], strict=True):
        torch.testing.assert_close(x, y, atol=atol, rtol=1e-5)
    for x, y in zip(a[2], b[2], strict=True):
        torch.testing.assert_close(x, y, atol=atol, rtol=1e-4)


# ---- gradient checkpointing ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_checkpointing_gives_the_gradients_of_the_cached_loss_pass(tmp_path, kind):
    model = make_model(kind, tmp_path).train()
    prompts, ids = batch()
    plain = loss_pass(model, prompts, ids)  # the key-value cache path
    enable_gradient_checkpointing(model)
    assert model_uses_checkpointing(model) and not model_uses_checkpointing(model.eval())
    assert_same(loss_pass(model.train(), prompts, ids), plain)  # whole sequences, each block recomputed


def saved_activation_bytes(model: torch.nn.Module, prompts: torch.Tensor, ids: torch.Tensor) -> int:
    """The bytes of the tensors autograd keeps for the backward pass of one loss pass."""
    total = 0

    def keep(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        logp, _ = completion_log_probs(model, prompts, ids)
    logp.sum().backward()
    return total


def blocks_of(model: torch.nn.Module) -> list[torch.nn.Module]:
    inner = base_model(model)
    return list(inner.blocks if isinstance(inner, TinyGPT) else getattr(inner, "transformer", inner).h
                if hasattr(getattr(inner, "transformer", None), "h") else inner.model.layers)  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_checkpointing_keeps_a_fraction_of_the_activations(tmp_path, kind):
    model = make_model(kind, tmp_path).train()
    prompts, ids = batch()
    before = saved_activation_bytes(model, prompts, ids)
    after = saved_activation_bytes(enable_gradient_checkpointing(model), prompts, ids)
    # the last of the 3 blocks keeps its activations (its recomputation would run at once), the others their inputs:
    # about a third of the activations, and the inputs of two blocks
    assert after < 0.6 * before, (before, after)  # without: all of them


@pytest.mark.parametrize("kind", KINDS)
def test_checkpointing_recomputes_every_block_but_the_last(tmp_path, kind):
    model = enable_gradient_checkpointing(make_model(kind, tmp_path)).train()
    calls = [0] * len(blocks_of(model))
    for i, block in enumerate(blocks_of(model)):  # a submodule: transformers checkpoints inside a block's hooks
        next(block.children()).register_forward_pre_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
    prompts, ids = batch()
    logp, _ = completion_log_probs(model, prompts, ids)
    assert calls == [1, 1, 1]
    logp.sum().backward()
    assert calls == [2, 2, 1]  # the backward pass reran the first two


class FusedAttentionCalls(TorchDispatchMode):
    """Inside, counts the calls of torch's fused CPU attention kernel (forward)."""

    count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("kind", KINDS)
def test_checkpointing_keeps_each_blocks_attention_output(tmp_path, kind):
    model = enable_gradient_checkpointing(make_model(kind, tmp_path)).train()
    prompts, ids = batch()
    with FusedAttentionCalls() as attention:
        logp, _ = completion_log_probs(model, prompts, ids)
        assert attention.count == 3
        logp.sum().backward()
    assert attention.count == 3  # blocks 1 and 2 were recomputed around their kept attention outputs


def test_checkpointing_recomputes_an_attention_kernel_with_dropout():
    # on a GPU the fused kernels draw their dropout masks themselves: kept, the recomputation would skip the draw and
    # the ops after it would draw other masks than the forward pass did (the CPU kernel has no dropout)
    efficient, cpu = (getattr(torch.ops.aten, f"_scaled_dot_product_{name}").default
                      for name in ("efficient_attention", "flash_attention_for_cpu"))  # fmt: skip
    q = torch.zeros(1, 1, 2, 4)
    assert keep_attention_outputs(None, efficient, q, q, q, None, True, 0.0) == CheckpointPolicy.MUST_SAVE
    assert keep_attention_outputs(None, efficient, q, q, q, None, True, 0.1) == CheckpointPolicy.PREFER_RECOMPUTE
    assert keep_attention_outputs(None, cpu, q, q, q, dropout_p=0.1) == CheckpointPolicy.PREFER_RECOMPUTE
    assert keep_attention_outputs(None, cpu, q, q, q) == CheckpointPolicy.MUST_SAVE
    assert keep_attention_outputs(None, torch.ops.aten.mm.default, q, q) == CheckpointPolicy.PREFER_RECOMPUTE


def test_checkpointing_replays_tinygpt_dropout_with_the_same_masks():
    model = TinyGPT(TinyGPTConfig(vocab_size=12, max_len=24, n_layer=2, d_model=16, n_head=2, dropout=0.3)).train()
    tokens = torch.cat(batch(), dim=1)
    grads = []
    for checkpointing in (False, True):
        model.gradient_checkpointing = checkpointing
        model.zero_grad(set_to_none=True)
        torch.manual_seed(7)
        (model(tokens).log_softmax(-1)[..., 3] * torch.linspace(-1, 1, 9)).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_checkpointing_is_only_for_training_with_gradients_and_leaves_sampling_alone():
    model = enable_gradient_checkpointing(TinyGPT(TinyGPTConfig(vocab_size=12, max_len=24, d_model=16, n_head=2)))
    assert model.gradient_checkpointing and not model_uses_checkpointing(model.eval())
    draws = []
    for training in (False, True):
        model.train(training)
        draws.append(sample_completions(model, torch.tensor([[1, 5, 6]]), 3, 6, eos_id=2, pad_id=0,
                                        generator=torch.Generator().manual_seed(5)))  # fmt: skip
    assert model_uses_checkpointing(model) and torch.equal(draws[0].ids, draws[1].ids)  # no_grad: the cache works
    with pytest.raises(ValueError, match="no gradient checkpointing"):
        enable_gradient_checkpointing(torch.nn.Linear(2, 2))


# ---- wrapped models -------------------------------------------------------------------------------------------
class Forwarding(torch.nn.Module):
    """A wrapper that forwards every call to the model it holds as ``module`` (as DDP, or LoRA's reference)."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


@pytest.mark.parametrize("kind", ["tinygpt", "gpt2"])
def test_wrapped_models_keep_the_cache_and_checkpointing(tmp_path, kind):
    peft = pytest.importorskip("peft")
    model = make_model(kind, tmp_path).train()
    prompts, ids = batch()
    target = ["qkv"] if kind == "tinygpt" else ["c_attn"]
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=target))
    for outer in (wrapped, Forwarding(wrapped), torch.nn.DataParallel(model)):
        assert base_model(outer) is model and supports_cache(outer)
    plain = loss_pass(Forwarding(wrapped), prompts, ids)
    assert len(plain[2]) == 2 * 3  # LoRA's A and B on each of the 3 layers' attention: the base is frozen
    enable_gradient_checkpointing(wrapped)
    assert model_uses_checkpointing(Forwarding(wrapped))
    assert_same(loss_pass(Forwarding(wrapped), prompts, ids), plain)


# ---- the Qwen2 test model ---------------------------------------------------------------------------------------
def test_tiny_qwen2_model_loads_samples_with_its_cache_and_scores_what_it_sampled(tmp_path):
    directory = save_tiny_qwen2_model(tmp_path / "qwen2", n_layer=2, max_len=32, seed=3)
    model, tokenizer = load_pretrained(directory)
    assert type(model).__name__ == "Qwen2ForCausalLM" and isinstance(tokenizer, HFTokenizer)
    assert model.config.num_key_value_heads == 2 and tokenizer.eos_token_id == 2 and tokenizer.pad_token_id == 0
    assert tokenizer.decode(tokenizer.encode("12+3=")) == "12+3=" and supports_cache(model)
    again, _ = load_pretrained(save_tiny_qwen2_model(tmp_path / "again", n_layer=2, max_len=32, seed=3))
    assert all(torch.equal(a, again.state_dict()[k]) for k, a in model.state_dict().items())  # seeded

    prompts = torch.tensor([[1, *tokenizer.encode("12+3=")], [1, *tokenizer.encode("40-7=")]])
    comp, whole = (sample_completions(m, prompts, 3, 6, eos_id=2, pad_id=0, generator=torch.Generator().manual_seed(0))
                   for m in (model.eval(), uncached(model)))  # fmt: skip
    assert torch.equal(comp.ids, whole.ids)  # the cache's draws are those of re-running every prefix
    logp, _ = completion_log_probs(model, comp.prompt_ids, comp.ids)
    torch.testing.assert_close(logp * comp.mask, comp.old_logp, atol=1e-5, rtol=1e-5)


def uncached(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` as a plain ``input_ids → logits`` module (no cache: every step re-runs the whole sequence)."""

    class Uncached(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            return self.inner(input_ids).logits

    return Uncached()


def test_qwen2_config_scales_to_a_100m_parameter_model():
    from transformers import Qwen2ForCausalLM

    with torch.device("meta"):  # sizes only: no memory, no initialisation
        model = Qwen2ForCausalLM(qwen2_config(44, n_layer=14, hidden_size=768, n_head=12, n_kv_head=12,
                                              intermediate_size=2048, max_len=512))  # fmt: skip
    assert 95e6 < sum(p.numel() for p in model.parameters()) < 105e6


@pytest.mark.parametrize("kind", ["tinygpt", "qwen2"])
def test_save_model_writes_what_load_pretrained_loads(tmp_path, kind):
    if kind == "tinygpt":
        model, tokenizer = make_model(kind, tmp_path), CharTokenizer("0123456789")
    else:
        model, tokenizer = load_pretrained(save_tiny_qwen2_model(tmp_path / "made", n_layer=1, max_len=16))
    loaded, loaded_tokenizer = load_pretrained(save_model(Forwarding(model), tokenizer, tmp_path / "saved"))
    assert type(loaded) is type(model) and loaded_tokenizer.encode("12") == tokenizer.encode("12")
    assert all(torch.equal(p, loaded.state_dict()[k]) for k, p in model.state_dict().items())
    with pytest.raises(ValueError, match="a TinyGPT is saved with a CharTokenizer"):
        save_model(make_model("tinygpt", tmp_path), loaded_tokenizer if kind == "qwen2" else object(), tmp_path / "x")
