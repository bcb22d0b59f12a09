"""Small causal language models for GRPO on a CPU: ``CharTokenizer``, ``TinyGPT`` (a GPT-style decoder,
Radford et al., 2019) with its key-value cache (``prefill`` / ``extend``), gradient checkpointing
(``enable_gradient_checkpointing``), and loading a ``TinyGPT`` or any Hugging Face causal LM from a local directory
(``load_pretrained``; Hugging Face needs the ``[llm]`` extra); random-init GPT-2 and Qwen2 models for tests
(``save_tiny_hf_model``, ``save_tiny_qwen2_model``)."""

from __future__ import annotations

import functools
import inspect
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts

from rlzoo.envs.text_tasks import CHARSET as DEFAULT_ALPHABET  # every character the text tasks use


class Tokenizer(Protocol):
    """What GRPO needs from a tokenizer: text ↔ ids and the special token ids (``bos_token_id`` may be None)."""

    pad_token_id: int
    bos_token_id: int | None
    eos_token_id: int

    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: list[int] | torch.Tensor) -> str: ...


class CharTokenizer:
    """Characters of ``alphabet`` → ids 3…; 0 ``<pad>``, 1 ``<bos>``, 2 ``<eos>``."""

    pad_token_id, bos_token_id, eos_token_id = 0, 1, 2

    def __init__(self, alphabet: str = DEFAULT_ALPHABET) -> None:
        if len(set(alphabet)) != len(alphabet):
            raise ValueError("the tokenizer alphabet repeats a character")
        self.alphabet, self.vocab_size = alphabet, len(alphabet) + 3
        self._ids = {c: i + 3 for i, c in enumerate(alphabet)}

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``'s characters (no special tokens); ``ValueError`` for one outside the alphabet."""
        try:
            return [self._ids[c] for c in text]
        except KeyError as err:
            raise ValueError(f"character {err.args[0]!r} is not in the tokenizer's alphabet") from None

    def decode(self, ids: list[int] | torch.Tensor) -> str:
        """The text of ``ids`` up to the first ``<eos>``; special tokens are dropped."""
        out = []
        for i in ids.tolist() if isinstance(ids, torch.Tensor) else ids:
            if i == self.eos_token_id:
                break
            if i >= 3:
                out.append(self.alphabet[i - 3])
        return "".join(out)


@dataclass
class TinyGPTConfig:
    """Size of a ``TinyGPT``: vocabulary, context length, layers, width and heads."""

    vocab_size: int = len(DEFAULT_ALPHABET) + 3
    max_len: int = 64
    n_layer: int = 2
    d_model: int = 128
    n_head: int = 4
    dropout: float = 0.0


class KVCache:
    """The keys and values (B, H, T, d_head) of every layer for the tokens a ``TinyGPT`` has seen, so the
    next tokens attend to them without recomputing them (incremental decoding). Built with autograd on, it
    carries gradients back to the tokens that produced it (a prompt shared by G completions is run once)."""

    def __init__(self, n_layer: int) -> None:
        self.layers: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * n_layer

    def length(self, layer: int = 0) -> int:
        entry = self.layers[layer]
        return 0 if entry is None else entry[0].shape[2]

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add new keys/values to ``layer``; returns all of them."""
        entry = self.layers[layer]
        if entry is not None:
            k, v = torch.cat([entry[0], k], dim=2), torch.cat([entry[1], v], dim=2)
        self.layers[layer] = (k, v)
        return k, v

    def batch_select_indices(self, index: torch.Tensor) -> None:
        """Keep (and repeat) the batch rows at ``index``, in place."""
        self.layers = [None if e is None else (e[0][index], e[1][index]) for e in self.layers]


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t attends to positions ≤ t (Vaswani et al., 2017)."""

    def __init__(self, cfg: TinyGPTConfig) -> None:
        super().__init__()
        if cfg.d_model % cfg.n_head:
            raise ValueError(f"d_model={cfg.d_model} is not divisible by n_head={cfg.n_head}")
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0,
                attn_mask: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Attention of ``x`` (B, T, D) over itself (and the ``cache``'s tokens); an ``attn_mask`` (B, T, T) of
        booleans (True: may attend) replaces the causal mask (packed sequences; not with a cache)."""
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, D // self.n_head).permute(2, 0, 3, 1, 4)
        past = 0
        if cache is not None:
            past = cache.length(layer)
            k, v = cache.append(layer, k, v)
        dropout = self.dropout if self.training else 0.0
        if attn_mask is not None:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask[:, None], dropout_p=dropout)
        elif past == 0 or T == 1:  # no earlier tokens, or one new token that sees them all
            y = F.scaled_dot_product_attention(q, k, v, is_causal=past == 0, dropout_p=dropout)
        else:  # new token i sees the past and new tokens ≤ i (SDPA's is_causal aligns top-left)
            allowed = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)
        return self.out(y.transpose(1, 2).reshape(B, T, D))


class Block(nn.Module):
    """x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, cfg: TinyGPTConfig) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, 4 * cfg.d_model), nn.GELU(),
                                 nn.Linear(4 * cfg.d_model, cfg.d_model))  # fmt: skip

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0,
                attn_mask: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        x = x + self.attn(self.ln1(x), cache, layer, attn_mask)
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """A small GPT-style causal language model: ``input_ids`` (B, T) → logits (B, T, V). With
    ``gradient_checkpointing`` (:func:`enable_gradient_checkpointing`), a training forward with gradients and no
    cache keeps only each block's input and recomputes the block in the backward pass."""

    gradient_checkpointing = False

    def __init__(self, cfg: TinyGPTConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = cfg or TinyGPTConfig()
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln = nn.LayerNorm(cfg.d_model)
        for module in self.modules():  # GPT-2's init; the residual projections scaled by 1/√(2·n_layer)
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
        for name, p in self.named_parameters():
            if name.endswith("out.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layer))

    def forward(self, input_ids: torch.Tensor, cache: KVCache | None = None, *,
                position_ids: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Logits (B, T, V) of ``input_ids``; with a ``cache``, the ids continue the cached tokens (positions
        start after them) and their keys/values are added to it. Packed sequences (no cache) give each token's
        ``position_ids`` (B, T) and an ``attn_mask`` (B, T, T) of booleans (True where query t may attend key s)."""
        if cache is not None and (position_ids is not None or attn_mask is not None):
            raise ValueError("position_ids and attn_mask are for packed sequences, without a cache")
        if position_ids is None:
            past = 0 if cache is None else cache.length()
            end = past + input_ids.shape[1]
            position_ids = torch.arange(past, end, device=input_ids.device)
        else:
            end = int(position_ids.max()) + 1 if position_ids.numel() else 0
        if self.config.max_len < end:
            raise ValueError(f"sequence of {end} tokens is longer than the model's max_len={self.config.max_len}")
        x = self.tok(input_ids) + self.pos(position_ids)
        recompute = self.gradient_checkpointing and self.training and torch.is_grad_enabled() and cache is None
        for i, block in enumerate(self.blocks):
            if recompute and i < len(self.blocks) - 1:  # the last block: see enable_gradient_checkpointing
                x = checkpoint(block, x, None, i, attn_mask, **CHECKPOINT_KWARGS)
            else:
                x = block(x, cache, i, attn_mask)
        return self.ln(x) @ self.tok.weight.T

    def save(self, directory: str | Path, tokenizer: CharTokenizer) -> None:
        """Write ``tinygpt.json`` (the config), ``model.pt`` and ``tokenizer.json`` for :func:`load_pretrained`."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "tinygpt.json").write_text(json.dumps(asdict(self.config)))
        torch.save(self.state_dict(), d / "model.pt")
        (d / "tokenizer.json").write_text(json.dumps({"alphabet": tokenizer.alphabet}))


def logits_of(model: nn.Module, input_ids: torch.Tensor) -> torch.Tensor:
    """The (B, T, V) logits of any causal LM: a tensor output, or an output object's ``.logits``."""
    out = model(input_ids)
    return out if isinstance(out, torch.Tensor) else out.logits


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s parameters (the first one's; a sharded FSDP2 parameter's local device), where the
    tensors it is called with must be; the CPU for a model without parameters."""
    first = next(model.parameters(), None)
    return torch.device("cpu") if first is None else first.device


def context_length(model: nn.Module) -> int | None:
    """The most positions ``model`` can take: a ``TinyGPT``'s ``max_len``, a Hugging Face model's
    ``max_position_embeddings`` (or ``n_positions``); None when it declares none (e.g. relative positions)."""
    inner = base_model(model)
    if isinstance(inner, TinyGPT):
        return inner.config.max_len
    config = getattr(inner, "config", None)
    for name in ("max_position_embeddings", "n_positions"):
        if isinstance(getattr(config, name, None), int):
            return getattr(config, name)
    return None


def base_model(model: nn.Module) -> nn.Module:
    """The model inside its wrappers, unwrapped until none is left: a peft ``PeftModel``'s ``get_base_model()``
    and a wrapper's ``.module`` (``DistributedDataParallel``, ``DataParallel``, or any module that forwards its
    calls to the module it holds as ``module``, e.g. LoRA's adapters-disabled reference). Calls still go through
    the wrapper; this is the model whose kind (``TinyGPT`` or Hugging Face) and settings they reach."""
    while True:
        if type(model).__module__.split(".")[0] == "peft" and hasattr(model, "get_base_model"):
            model = model.get_base_model()
        elif isinstance(getattr(model, "module", None), nn.Module):
            model = model.module
        else:
            return model


def supports_cache(model: nn.Module) -> bool:
    """Whether ``model`` (or the model inside its wrappers, :func:`base_model`) decodes incrementally: a ``TinyGPT``
    or a Hugging Face causal LM (``config.use_cache``)."""
    inner = base_model(model)
    return isinstance(inner, TinyGPT) or hasattr(getattr(inner, "config", None), "use_cache")


# the fused attention kernels (CPU, FlashAttention, memory-efficient, cuDNN) whose outputs checkpointing keeps
FUSED_ATTENTION_OPS = ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention",
                       "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention")  # fmt: skip


@functools.cache
def _fused_attention_ops() -> dict[Any, int]:
    """Each fused attention kernel this torch has → the position of its ``dropout_p`` argument."""
    ops = (getattr(torch.ops.aten, name).default for name in FUSED_ATTENTION_OPS if hasattr(torch.ops.aten, name))
    return {op: [a.name for a in op._schema.arguments].index("dropout_p") for op in ops}


def keep_attention_outputs(ctx: Any, op: Any, *args: Any, **kwargs: Any) -> CheckpointPolicy:
    """Selective activation checkpointing's policy (``torch.utils.checkpoint.create_selective_checkpoint_contexts``):
    keep the outputs of a fused attention kernel without dropout (the attention output and its log-sum-exp, as
    much memory as a block's input) and recompute everything else. The attention is the costliest part of a block
    to recompute for the memory it holds (a 19M Qwen2's GRPO loss pass, 64 × 263 tokens: its CPU kernel's forward
    took 77 ms per block, 1.7 s of 19 s); with dropout it is recomputed, as its random mask has to be replayed."""
    if (index := _fused_attention_ops().get(op)) is not None:
        dropout = kwargs.get("dropout_p", args[index] if index < len(args) else 0.0)
        if dropout == 0:
            return CheckpointPolicy.MUST_SAVE
    return CheckpointPolicy.PREFER_RECOMPUTE


def _selective_contexts() -> tuple[Any, Any]:
    return create_selective_checkpoint_contexts(keep_attention_outputs)


# torch.utils.checkpoint's arguments for a block: non-reentrant, the attention kept (keep_attention_outputs)
CHECKPOINT_KWARGS: dict[str, Any] = {"use_reentrant": False, "context_fn": _selective_contexts}


def enable_gradient_checkpointing(model: nn.Module) -> nn.Module:
    """Turn on gradient checkpointing (activations recomputed block by block in the backward pass, non-reentrant,
    each block's attention output kept: :func:`keep_attention_outputs`) for ``model`` or the model inside its
    wrappers: a ``TinyGPT``'s flag, a Hugging Face model's ``activation_checkpointing_enable``
    (``gradient_checkpointing_enable`` before transformers 5). Every block but the last is checkpointed: the backward
    pass starts by recomputing the last block, so its activations would be rebuilt at once, at the same point of the
    memory profile (a 19M Qwen2's GRPO loss pass: 0.6 s of 19 s saved). Returns ``model``; ``ValueError`` for a
    model that has neither."""
    inner = base_model(model)
    if isinstance(inner, TinyGPT):
        inner.gradient_checkpointing = True
        return model
    if hasattr(inner, "activation_checkpointing_enable"):  # transformers ≥ 5.x's name
        inner.activation_checkpointing_enable(activation_checkpointing_kwargs=dict(CHECKPOINT_KWARGS))
    elif hasattr(inner, "gradient_checkpointing_enable"):
        inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs=dict(CHECKPOINT_KWARGS))
    else:
        raise ValueError(f"{type(inner).__name__} has no gradient checkpointing (a TinyGPT or a Hugging Face model)")
    blocks = checkpointed_blocks(inner)
    if blocks:
        blocks[-1].gradient_checkpointing = False
    return model


def checkpointed_blocks(model: nn.Module) -> list[nn.Module]:
    """The blocks of a Hugging Face ``model`` that its gradient checkpointing recomputes now (its
    ``GradientCheckpointingLayer`` modules with the flag on), in the order they run; none before transformers 4.52,
    whose models hold one flag for all of them."""
    try:
        from transformers.modeling_layers import GradientCheckpointingLayer
    except ImportError:
        return []
    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer) and m.gradient_checkpointing]


def model_uses_checkpointing(model: nn.Module) -> bool:
    """Whether ``model``'s forward checkpoints now: checkpointing enabled and the model in training mode. Its
    recomputation would append to a key-value cache a second time (Hugging Face models drop the cache), so the
    loss pass then runs without one."""
    inner = base_model(model)
    if isinstance(inner, TinyGPT):
        return inner.gradient_checkpointing and inner.training
    for flag in ("is_activation_checkpointing", "is_gradient_checkpointing"):  # the newer name first
        if hasattr(type(inner), flag):
            return bool(getattr(inner, flag)) and inner.training
    return False


def prefill(model: nn.Module, input_ids: torch.Tensor, repeats: int | torch.Tensor = 1) -> tuple[torch.Tensor, Any]:
    """Run a model that :func:`supports_cache` on ``input_ids`` (P, T): the logits of their last position and
    the key-value cache to continue them with :func:`extend`, each sequence repeated ``repeats`` times (an int,
    or (P,) counts) — a prompt shared by G completions is computed once; gradients of the copies add up."""
    inner = base_model(model)
    if isinstance(inner, TinyGPT):
        cache: Any = KVCache(inner.config.n_layer)
        logits = model(input_ids, cache)[:, -1]
    else:
        out = model(input_ids, use_cache=True)
        logits, cache = out.logits[:, -1], out[cache_argument(inner)]
    if not (isinstance(repeats, int) and repeats == 1):
        rows = torch.arange(input_ids.shape[0], device=input_ids.device).repeat_interleave(repeats)
        cache.batch_select_indices(rows)
        logits = logits[rows]
    return logits, cache


def extend(model: nn.Module, input_ids: torch.Tensor, cache: Any) -> torch.Tensor:
    """Logits (B, t, V) of ``input_ids`` continuing the sequences in ``cache`` (from :func:`prefill` or
    :func:`decoding_cache`), which takes their keys and values."""
    inner = base_model(model)
    if isinstance(inner, TinyGPT):
        return model(input_ids, cache)
    return model(input_ids, **{cache_argument(inner): cache}, use_cache=True).logits


def cache_argument(model: nn.Module) -> str:
    """The name a Hugging Face ``model``'s forward takes its key-value cache by and its output returns it under:
    ``cache`` where transformers has renamed ``past_key_values`` (deprecated there, removed in transformers 5.40),
    else ``past_key_values``."""
    return _cache_argument_of(type(model))


@functools.cache
def _cache_argument_of(model_class: type) -> str:
    """:func:`cache_argument` for a model class, read from its forward's signature once (50 µs a read: once per
    sampled token otherwise)."""
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def decoding_cache(model: nn.Module, cache: Any) -> Any:
    """For token-by-token decoding, a Hugging Face ``cache`` from :func:`prefill` copied into one that grows in blocks
    of positions (``rlzoo.llm.kv_cache``): the same numbers, without re-concatenating the cache at every token or
    attending over a static cache's every position. A ``TinyGPT``'s cache, or a model whose cache has other layers
    than plain growing ones (sliding windows, linear attention), as it is."""
    if isinstance(base_model(model), TinyGPT):
        return cache
    from transformers.cache_utils import DynamicLayer

    if not all(type(layer) is DynamicLayer for layer in getattr(cache, "layers", [None])):
        return cache
    from rlzoo.llm.kv_cache import block_growing_copy

    return block_growing_copy(cache)


class HFTokenizer:
    """A Hugging Face tokenizer behind the ``CharTokenizer`` interface (encode, decode, special ids)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tok = tokenizer
        self.eos_token_id = tokenizer.eos_token_id
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.bos_token_id = tokenizer.bos_token_id

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text, add_special_tokens=False)

    def decode(self, ids: list[int] | torch.Tensor) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        if self.eos_token_id in ids:
            ids = ids[: ids.index(self.eos_token_id)]
        return self.tok.decode(ids, skip_special_tokens=True)


def load_pretrained(path: str | Path) -> tuple[nn.Module, Tokenizer]:
    """A causal LM and its tokenizer from a local directory: a saved ``TinyGPT`` (``tinygpt.json``) or any
    Hugging Face ``AutoModelForCausalLM`` (``local_files_only``: nothing is downloaded)."""
    d = Path(path)
    if not d.is_dir():
        raise ValueError(f"model.path={str(path)!r} is not a directory")
    if (d / "tinygpt.json").exists():
        model = TinyGPT(TinyGPTConfig(**json.loads((d / "tinygpt.json").read_text())))
        # saved from any device: built on the CPU, as every policy model is before it moves to the agent's device
        model.load_state_dict(torch.load(d / "model.pt", map_location="cpu", weights_only=True))
        return model, CharTokenizer(json.loads((d / "tokenizer.json").read_text())["alphabet"])
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise ValueError(f"model.path={str(path)!r} holds a Hugging Face model: pip install -e '.[llm]'") from None
    model = AutoModelForCausalLM.from_pretrained(d, local_files_only=True)
    return model, HFTokenizer(AutoTokenizer.from_pretrained(d, local_files_only=True))


def transformer_blocks(model: nn.Module) -> list[nn.Module]:
    """The repeated layers of a causal LM (FSDP's sharding units): a ``TinyGPT``'s blocks, or the modules of a
    Hugging Face model whose classes it names in ``_no_split_modules`` (its decoder layers)."""
    inner = base_model(model)
    if isinstance(inner, TinyGPT):
        return list(inner.blocks)
    names = set(getattr(inner, "_no_split_modules", None) or ())
    return [m for m in inner.modules() if type(m).__name__ in names]


def save_model(model: nn.Module, tokenizer: Tokenizer, directory: str | Path) -> Path:
    """Write ``model`` (the one inside its wrappers, :func:`base_model`) and its ``tokenizer`` as a directory that
    :func:`load_pretrained` loads: a ``TinyGPT``'s files (``TinyGPT.save``), or a Hugging Face model's and its
    tokenizer's ``save_pretrained``. Returns the directory."""
    d, inner = Path(directory), base_model(model)
    if isinstance(inner, TinyGPT):
        if not isinstance(tokenizer, CharTokenizer):
            raise ValueError(f"a TinyGPT is saved with a CharTokenizer, not {type(tokenizer).__name__}")
        inner.save(d, tokenizer)
    else:
        inner.save_pretrained(d)
        getattr(tokenizer, "tok", tokenizer).save_pretrained(d)
    return d


def char_hf_tokenizer() -> Any:
    """A character-level Hugging Face fast tokenizer over ``CharTokenizer``'s alphabet with its ids (0 ``<pad>``,
    1 ``<bos>``, 2 ``<eos>``, characters 3…, then ``<unk>``): the tokenizer of the test models, built offline."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = CharTokenizer().alphabet
    vocab = {"<pad>": 0, "<bos>": 1, "<eos>": 2, **{c: i + 3 for i, c in enumerate(chars)}, "<unk>": len(chars) + 3}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<bos>",
                                   eos_token="<eos>", unk_token="<unk>")  # fmt: skip


def _save_random_init(directory: str | Path, build: Any, seed: int) -> Path:
    """``build(vocab_size)`` (a Hugging Face causal LM) under ``seed``, saved with :func:`char_hf_tokenizer`'s
    tokenizer into ``directory`` (``save_pretrained``); returns the directory."""
    tokenizer = char_hf_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build(len(tokenizer))
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)


def save_tiny_hf_model(directory: str | Path, n_layer: int = 2, d_model: int = 128, n_head: int = 4,
                       max_len: int = 32, seed: int = 0) -> Path:  # fmt: skip
    """Save a random-init Hugging Face GPT-2 causal LM and a character-level fast tokenizer over ``CharTokenizer``'s
    alphabet into ``directory`` (``save_pretrained``): a local model for ``algo.model.path`` in tests."""
    from transformers import GPT2Config, GPT2LMHeadModel

    def build(vocab_size: int) -> nn.Module:
        return GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_positions=max_len, n_embd=d_model,
                                          n_layer=n_layer, n_head=n_head, bos_token_id=1, eos_token_id=2,
                                          pad_token_id=0))  # fmt: skip

    return _save_random_init(directory, build, seed)


def qwen2_config(vocab_size: int, n_layer: int = 2, hidden_size: int = 32, n_head: int = 4, n_kv_head: int = 2,
                 intermediate_size: int = 64, max_len: int = 64, tie_word_embeddings: bool = True) -> Any:  # fmt: skip
    """A Hugging Face ``Qwen2Config`` of these sizes (grouped-query attention with ``n_kv_head`` key/value heads,
    rotary positions, SwiGLU MLP, RMSNorm) with :func:`char_hf_tokenizer`'s special ids."""
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
                       num_hidden_layers=n_layer, num_attention_heads=n_head, num_key_value_heads=n_kv_head,
                       max_position_embeddings=max_len, tie_word_embeddings=tie_word_embeddings, bos_token_id=1,
                       eos_token_id=2, pad_token_id=0)  # fmt: skip


def save_tiny_qwen2_model(directory: str | Path, n_layer: int = 2, hidden_size: int = 32, n_head: int = 4,
                          n_kv_head: int = 2, intermediate_size: int = 64, max_len: int = 64, seed: int = 0,
                          tie_word_embeddings: bool = True) -> Path:  # fmt: skip
    """Save a random-init Hugging Face Qwen2 causal LM (:func:`qwen2_config`) and :func:`save_tiny_hf_model`'s
    character tokenizer into ``directory``. The sizes scale: ``n_layer=14, hidden_size=768, n_head=12,
    n_kv_head=12, intermediate_size=2048`` is a ≈100M-parameter Qwen2-architecture model (the vocabulary is
    tiny; ``n_kv_head=2`` as in Qwen2.5-0.5B gives ≈85M)."""
    from transformers import Qwen2ForCausalLM

    def build(vocab_size: int) -> nn.Module:
        return Qwen2ForCausalLM(qwen2_config(vocab_size, n_layer, hidden_size, n_head, n_kv_head, intermediate_size,
                                             max_len, tie_word_embeddings))  # fmt: skip

    return _save_random_init(directory, build, seed)
