"""Holding a bigger model: precision (fp32 / bf16 autocast with fp32 master weights / pure bf16), LoRA adapters
through peft (the reference is the base with its adapters disabled; save, load and merge), gradient
checkpointing and packing wired into the language-model agents."""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import pytest
import torch

from rlzoo import ConfigError, make_agent
from rlzoo.agents import Agent
from rlzoo.llm import CharTokenizer, TinyGPT, TinyGPTConfig, load_pretrained, save_tiny_hf_model
from rlzoo.llm.lora import AdaptersDisabled, load_adapter
from rlzoo.llm.models import logits_of, save_tiny_qwen2_model
from rlzoo.logging import RunLogger

from .helpers import RecordingLogger
from .test_grpo import TINY, starts_with_a_digit, task_env

DIGITS = [f"{d}:" for d in range(10)]
FAST = {**TINY, "prompts_per_step": 16, "learning_rate": 3e-3, "dynamic_sampling": False}


def reward_curve(agent, steps: int) -> list[float]:
    """The mean sampled reward of each of ``steps`` GRPO steps, trained in one ``learn`` call (one precision
    context for the whole run, as a real run has)."""
    logger = RecordingLogger()
    agent.learn(steps, logger)
    return [value for tag, _, value in logger.records if tag == "reward/mean"]


def trained(agent) -> list[torch.nn.Parameter]:
    return [p for p in agent.model.parameters() if p.requires_grad]


def test_bf16_autocast_keeps_float32_master_weights_and_optimizer_state():
    env = task_env(starts_with_a_digit, DIGITS, max_len=2)
    agent = make_agent("grpo", env, seed=0, precision="bf16", beta=0.05, **FAST)
    agent.learn(2)
    assert all(p.dtype == torch.float32 for p in agent.model.parameters())  # full fine-tuning: all trained
    state = agent.optimizer.state_dict()["state"]
    assert state and all(s["exp_avg"].dtype == torch.float32 for s in state.values())
    # the frozen reference stores its weight matrices in bf16 (no master copy to keep), norms in fp32
    ref = dict(agent.ref_model.named_parameters())
    assert ref["blocks.0.attn.qkv.weight"].dtype == torch.bfloat16 and ref["ln.weight"].dtype == torch.float32
    # forward passes run in bf16: the policy's log-probs differ from fp32's, by a bf16 rounding only
    comp = agent.sample_batch().completions
    with torch.no_grad():
        fp32, _ = agent.log_probs(agent.model, comp.prompt_ids, comp.ids)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16, _ = agent.log_probs(agent.model, comp.prompt_ids, comp.ids)
    assert bf16.dtype == torch.float32 and not torch.equal(fp32, bf16)
    torch.testing.assert_close(bf16, fp32, atol=0.1, rtol=0.05)


def test_cached_weight_casts_reuse_one_bf16_copy_inside_and_drop_it_on_exit():
    from rlzoo.llm.precision import autocast, cached_weight_casts

    layer = torch.nn.Linear(4, 3, bias=False)
    x = torch.randn(2, 4)
    with torch.no_grad(), autocast("bf16", layer):
        assert not torch.is_autocast_cache_enabled()  # a training run's context: no cache across optimiser steps
        with cached_weight_casts(layer):
            assert torch.is_autocast_cache_enabled()
            first = layer(x)
            layer.weight.add_(1.0)  # inside, the cached bf16 copy of the old weight is what the forward reads
            assert torch.equal(layer(x), first)
        assert not torch.is_autocast_cache_enabled()
        torch.testing.assert_close(layer(x), x @ layer.weight.T, atol=0.1, rtol=0.05)  # the new weight, not the cache
    with cached_weight_casts(layer):  # no autocast: none is entered
        assert not torch.is_autocast_enabled("cpu") and layer(x).dtype == torch.float32


def test_bf16_autocast_skips_peft_casting_lora_inputs_to_float32():
    from rlzoo.llm.lora import LoRAConfig, add_adapters
    from rlzoo.llm.precision import autocast

    torch.manual_seed(0)
    model = TinyGPT(TinyGPTConfig(vocab_size=12, max_len=8, n_layer=1, d_model=16, n_head=2))
    add_adapters(model, LoRAConfig(r=4, alpha=8.0))
    layers = [m for m in model.modules() if hasattr(m, "cast_input_dtype_enabled")]
    assert layers and all(m.cast_input_dtype_enabled for m in layers)
    with autocast("bf16", model):
        assert not any(m.cast_input_dtype_enabled for m in layers)  # autocast casts for the adapters
    assert all(m.cast_input_dtype_enabled for m in layers)
    with autocast("fp32", model):
        assert all(m.cast_input_dtype_enabled for m in layers)


def test_pure_bf16_stores_weights_and_adam_state_in_bf16_and_still_learns():
    env = task_env(starts_with_a_digit, DIGITS, max_len=2)
    agent = make_agent("grpo", env, seed=0, precision="bf16_pure", **FAST)
    assert all(p.dtype == torch.bfloat16 for p in agent.model.parameters())
    rewards = reward_curve(agent, 60)
    assert all(s["exp_avg"].dtype == torch.bfloat16 for s in agent.optimizer.state_dict()["state"].values())
    assert np.mean(rewards[:10]) < 0.3 and np.mean(rewards[-10:]) > 0.8, (rewards[:10], rewards[-10:])


def test_bf16_learns_the_toy_task():
    env = task_env(starts_with_a_digit, DIGITS, max_len=2)
    rewards = reward_curve(make_agent("grpo", env, seed=0, precision="bf16", **FAST), 60)
    assert np.mean(rewards[:10]) < 0.3 and np.mean(rewards[-10:]) > 0.8, (rewards[:10], rewards[-10:])


def pretrained_like(directory) -> str:
    """A saved TinyGPT whose token embeddings have a trained model's scale. With random-init embeddings (std 0.02,
    tied to the output head) the logits stay within about ±0.6 whatever the adapted layers do, as LoRA freezes
    the embeddings and the final norm: LoRA adapts a pretrained model, it cannot grow a random one's logits."""
    torch.manual_seed(0)
    tok = CharTokenizer()
    model = TinyGPT(TinyGPTConfig(tok.vocab_size, 16, 1, 32, 2))
    with torch.no_grad():
        model.tok.weight.mul_(10.0)
    model.save(directory, tok)
    return str(directory)


def test_lora_trains_only_the_adapters_and_learns(tmp_path):
    env = task_env(starts_with_a_digit, DIGITS, max_len=2)
    options = {**FAST, "model": {"path": pretrained_like(tmp_path / "m")}, "learning_rate": 1e-2, "sft_steps": 0}
    agent = make_agent("grpo", env, seed=0, lora={"r": 8, "alpha": 16.0}, **options)
    names = [n for n, p in agent.model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert sum(len(g["params"]) for g in agent.optimizer.param_groups) == len(names)
    base = {n: p.clone() for n, p in agent.model.named_parameters() if not p.requires_grad}
    rewards = reward_curve(agent, 60)
    assert all(torch.equal(p, base[n]) for n, p in agent.model.named_parameters() if not p.requires_grad)
    assert np.mean(rewards[:10]) < 0.45 and np.mean(rewards[-10:]) > 0.7, (rewards[:10], rewards[-10:])


def test_lora_reference_is_the_base_with_adapters_disabled_and_shares_its_weights():
    env = task_env(starts_with_a_digit, DIGITS, max_len=2)
    agent = make_agent("grpo", env, seed=0, beta=0.1, lora={"r": 4}, sft_steps=20,
                       **{**FAST, "learning_rate": 1e-2})  # fmt: skip
    agent.begin(3, RunLogger())  # the warm start, then its adapters folded into the base: the reference
    assert isinstance(agent.ref_model, AdaptersDisabled) and not list(agent.ref_model.parameters())
    x = torch.tensor([[3, 4, 5]])
    with torch.no_grad():
        torch.testing.assert_close(agent.ref_model(x), agent.model(x))  # fresh adapters: B = 0
    agent.learn(3)
    with torch.no_grad():
        policy, ref = agent.model(x), agent.ref_model(x)
        with agent.peft_model.disable_adapter():
            base = agent.model(x)
    assert not torch.allclose(policy, ref) and torch.equal(ref, base)
    logged = RunLogger()
    agent.learn(4, logged)
    assert logged.last["losses/kl"] > 0


def test_lora_adapter_saves_loads_and_merges_on_export(tmp_path):
    env = task_env(starts_with_a_digit, DIGITS, max_len=2)
    agent = make_agent("grpo", env, seed=0, lora={"r": 4}, **{**FAST, "learning_rate": 1e-2})
    agent.learn(3)
    out = agent.export_model(tmp_path / "model")
    x = torch.tensor([[3, 4, 5, 6]])
    with torch.no_grad():
        expected = agent.model(x)
        merged, _ = load_pretrained(out)  # the adapters folded into plain weights, loadable by algo.model.path
        assert not any("lora_" in n for n, _ in merged.named_parameters())
        torch.testing.assert_close(merged(x), expected, atol=1e-5, rtol=1e-5)
        base = copy.deepcopy(agent.peft_model).unload()  # the base alone, adapters removed unmerged
        adapted = load_adapter(base, out / "adapter")
        torch.testing.assert_close(adapted(x), expected)
        with adapted.disable_adapter():
            assert not torch.allclose(adapted(x), expected)
    agent.learn(4)  # exporting left the live policy training
    assert any("lora_" in n for n, _ in agent.model.named_parameters())


def test_a_lora_agent_resumes_from_its_checkpoint(tmp_path):
    env = task_env(starts_with_a_digit, DIGITS, max_len=2)
    agent = make_agent("grpo", env, seed=0, lora={"r": 4}, beta=0.05, **FAST).learn(3)
    loaded = Agent.load(agent.save(tmp_path / "g.pt"), env=env)
    assert [loaded.act(d) for d in DIGITS] == [agent.act(d) for d in DIGITS]
    agent.learn(5)
    loaded.learn(5)
    for (n, a), b in zip(agent.model.state_dict().items(), loaded.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), n


def test_bad_lora_and_precision_values_are_one_line_errors():
    env = task_env(starts_with_a_digit, DIGITS, max_len=2)
    layers = r"linear layers: \['mlp.0', 'mlp.2', 'out', 'qkv'\]"
    with pytest.raises(ConfigError, match=r"target_modules=\['nope'\].*" + layers):
        make_agent("grpo", env, lora={"r": 2, "target_modules": ["nope"]}, **TINY)
    with pytest.raises(ConfigError, match="precision"):
        make_agent("grpo", env, precision="fp16", **TINY)


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_without_native_bf16_products_says_so_in_one_line(monkeypatch, caplog, native):
    """An x86 CPU without AVX512-BF16 or AMX computes bfloat16 matrix products in a slow fallback (measured: 70×
    float32's time): a bf16 agent there logs one warning naming the precision and the alternative; fp32 logs none,
    nor does a CPU with native bf16."""
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    env = task_env(starts_with_a_digit, DIGITS, max_len=2)
    for precision in ("fp32", "bf16", "bf16_pure"):
        caplog.clear()
        with caplog.at_level("WARNING", logger="rlzoo"):
            make_agent("grpo", env, precision=precision, **TINY)
        lines = [r.getMessage() for r in caplog.records if "bfloat16" in r.getMessage()]
        if precision == "fp32" or native:
            assert lines == []
        else:
            assert len(lines) == 1 and "\n" not in lines[0]
            assert lines[0].startswith(f"precision={precision} on a CPU without native bfloat16") and "fp32" in lines[0]


@pytest.mark.parametrize("kind", ["qwen2", "gpt2"])
def test_a_hugging_face_model_trains_in_bf16_with_checkpointing_lora_and_packing(tmp_path, kind):
    if kind == "qwen2":
        path = save_tiny_qwen2_model(tmp_path / "m", n_layer=2, hidden_size=32, n_head=4, n_kv_head=2, max_len=16)
    else:
        path = save_tiny_hf_model(tmp_path / "m", n_layer=2, d_model=32, n_head=2, max_len=16)
    env = task_env(starts_with_a_digit, DIGITS, max_len=3)
    options = {**FAST, "model": {"path": str(path)}, "sft_steps": 0, "beta": 0.05, "learning_rate": 3e-2}
    shares = {}
    for packing in (False, True):
        agent = make_agent("grpo", env, seed=0, precision="bf16", gradient_checkpointing=True, packing=packing,
                           lora={"r": 4}, **options)  # fmt: skip
        frozen = {n: p.clone() for n, p in agent.model.named_parameters() if not p.requires_grad}
        adapters = {n: p.clone() for n, p in agent.model.named_parameters() if p.requires_grad}
        assert all(p.dtype == torch.bfloat16 for p in frozen.values() if p.ndim >= 2)
        assert all(p.dtype == torch.float32 for p in adapters.values())
        logger = RunLogger()
        agent.learn(2, logger)
        assert all(torch.equal(p, frozen[n]) for n, p in agent.model.named_parameters() if n in frozen)
        assert any(not torch.equal(p, adapters[n]) for n, p in agent.model.named_parameters() if n in adapters)
        assert logger.last["losses/kl"] > 0  # the reference (adapters disabled) differs from the policy
        shares[packing] = logger.last["tokens/padding_share"]
    assert shares[True] <= shares[False] and shares[True] < 0.05, shares  # logged; random models rarely stop early


def adapted_model(kind: str, tmp_path) -> tuple[torch.nn.Module, object]:
    """A 2-layer TinyGPT, GPT-2 (Conv1D base layers) or Qwen2 with LoRA adapters of rank 4 (``add_adapters``: fused)
    whose B is random, as trained adapters' are (it is zero at the start); the model and its peft wrapper."""
    from rlzoo.llm.lora import LoRAConfig, add_adapters

    torch.manual_seed(0)
    if kind == "tinygpt":
        model = TinyGPT(TinyGPTConfig(vocab_size=12, max_len=16, n_layer=2, d_model=16, n_head=2))
    elif kind == "gpt2":
        model = load_pretrained(save_tiny_hf_model(tmp_path / kind, n_layer=2, d_model=16, n_head=2, max_len=16))[0]
    else:
        model = load_pretrained(save_tiny_qwen2_model(tmp_path / kind, n_layer=2, hidden_size=16, n_head=4,
                                                      n_kv_head=2, intermediate_size=32, max_len=16))[0]  # fmt: skip
    peft_model = add_adapters(model, LoRAConfig(r=4, alpha=12.0))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5)
    return model, peft_model


@pytest.mark.parametrize("kind", ["tinygpt", "qwen2"])
def test_fused_sampling_adapters_compute_what_peft_computes(tmp_path, kind):
    from rlzoo.llm.decoding import completion_log_probs, sample_completions
    from rlzoo.llm.lora import fused_for_sampling

    model, peft_model = adapted_model(kind, tmp_path)
    model.eval()
    ids = torch.randint(3, 12, (3, 7))

    def logits() -> torch.Tensor:
        return logits_of(model, ids)

    fused = {m: vars(m)["forward"] for m in model.modules() if "forward" in vars(m)}  # add_adapters': training's
    assert fused
    with torch.no_grad():
        with peft_forwards(model):
            peft_logits = logits()
        with fused_for_sampling(model):
            assert all(vars(m)["forward"] is not f for m, f in fused.items())
            torch.testing.assert_close(logits(), peft_logits, atol=1e-5, rtol=1e-5)
            with peft_model.disable_adapter():  # the base alone, as peft runs it
                assert not torch.allclose(logits(), peft_logits, atol=1e-3)
        assert all(vars(m)["forward"] is f for m, f in fused.items())  # the training forward back
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = logits()
            with fused_for_sampling(model):  # a rounding of bf16 apart
                torch.testing.assert_close(logits(), bf16, atol=0.05, rtol=0.05)
    # sampling (fused) scores its draws as the loss pass (peft's forward) does
    comp = sample_completions(model, torch.tensor([[1, 5, 6], [1, 7, 3]]), 2, 6, eos_id=2, pad_id=0,
                              generator=torch.Generator().manual_seed(0))  # fmt: skip
    with torch.no_grad():
        logp, _ = completion_log_probs(model, comp.prompt_ids, comp.ids)
    torch.testing.assert_close(logp * comp.mask, comp.old_logp, atol=1e-5, rtol=1e-5)
    with pytest.raises(RuntimeError, match="without gradients"), fused_for_sampling(model):
        pass


@contextlib.contextmanager
def peft_forwards(model: torch.nn.Module):
    """Inside, every layer of ``model`` runs its class's forward (peft's, for its LoRA layers)."""
    replaced = {m: vars(m).pop("forward") for m in model.modules() if "forward" in vars(m)}
    try:
        yield
    finally:
        for module, forward in replaced.items():
            module.forward = forward


class RankUpdateCount(torch.overrides.TorchFunctionMode):
    """Inside, counts the in-place ``addmm_`` calls that add a rank-4 update (the fused adapters' products)."""

    count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.Tensor.addmm_ and args[1].shape[-1] == 4:
            self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("kind", ["tinygpt", "gpt2", "qwen2"])
def test_fused_training_adapters_give_peft_outputs_and_gradients(tmp_path, kind):
    model, _ = adapted_model(kind, tmp_path)
    assert any("forward" in vars(m) for m in model.modules())  # fused by add_adapters
    model.eval()  # no dropout: the two passes compared must compute the same function
    ids = torch.randint(3, 12, (3, 7))
    weights = torch.randn(3, 7, generator=torch.Generator().manual_seed(1))

    def loss_and_grads() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        loss = (logits_of(model, ids).float().log_softmax(-1)[..., 3] * weights).sum()
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    with peft_forwards(model):
        peft_loss, peft_grads = loss_and_grads()
    with RankUpdateCount() as fused:
        loss, grads = loss_and_grads()
    assert fused.count == sum(1 for name, _ in model.named_modules() if name.endswith("lora_A"))
    torch.testing.assert_close(loss, peft_loss, atol=1e-5, rtol=1e-5)
    for g, want in zip(grads, peft_grads, strict=True):
        torch.testing.assert_close(g, want, atol=1e-5, rtol=1e-4)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # a rounding of bf16 apart
        torch.testing.assert_close(loss_and_grads()[0], peft_loss, atol=0.5, rtol=0.05)


def test_fused_training_adapters_leave_a_bf16_base_with_float32_adapters_to_peft():
    from rlzoo.llm.lora import LoRAConfig, add_adapters

    torch.manual_seed(0)
    model = TinyGPT(TinyGPTConfig(vocab_size=12, max_len=16, n_layer=2, d_model=16, n_head=2))
    add_adapters(model, LoRAConfig(r=4, alpha=12.0))  # fused
    for name, p in model.named_parameters():
        if "lora_" not in name:
            p.data = p.data.to(torch.bfloat16)  # bf16_pure: the adapters stay float32
        else:
            p.data.normal_(0.0, 0.5)
    ids = torch.randint(3, 12, (3, 7))
    with torch.no_grad():
        with peft_forwards(model):
            peft_logits = model(ids)
        assert torch.equal(model(ids), peft_logits)  # peft's own forward: its float32 adapter products
