"""Small causal language models for GRPO on a CPU: ``CharTokenizer``, ``TinyGPT`` (a GPT-style decoder,
Radford et al., 2019) with its key-value cache (``prefill`` / ``extend``), and loading a ``TinyGPT`` or any Hugging
Face causal LM from a local directory (``load_pretrained``; Hugging Face needs the ``[llm]`` extra)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F

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

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, D // self.n_head).permute(2, 0, 3, 1, 4)
        past = 0
        if cache is not None:
            past = cache.length(layer)
            k, v = cache.append(layer, k, v)
        dropout = self.dropout if self.training else 0.0
        if past == 0 or T == 1:  # no earlier tokens, or one new token that sees them all
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

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), cache, layer)
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """A small GPT-style causal language model: ``input_ids`` (B, T) → logits (B, T, V)."""

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

    def forward(self, input_ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Logits (B, T, V) of ``input_ids``; with a ``cache``, the ids continue the cached tokens (positions
        start after them) and their keys/values are added to it."""
        past = 0 if cache is None else cache.length()
        end = past + input_ids.shape[1]
        if self.config.max_len < end:
            raise ValueError(f"sequence of {end} tokens is longer than the model's max_len={self.config.max_len}")
        x = self.tok(input_ids) + self.pos(torch.arange(past, end, device=input_ids.device))
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
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


def supports_cache(model: nn.Module) -> bool:
    """Whether ``model`` decodes incrementally: a ``TinyGPT`` or a Hugging Face causal LM (``config.use_cache``)."""
    return isinstance(model, TinyGPT) or hasattr(getattr(model, "config", None), "use_cache")


def prefill(model: nn.Module, input_ids: torch.Tensor, repeats: int | torch.Tensor = 1) -> tuple[torch.Tensor, Any]:
    """Run a model that :func:`supports_cache` on ``input_ids`` (P, T): the logits of their last position and
    the key-value cache to continue them with :func:`extend`, each sequence repeated ``repeats`` times (an int,
    or (P,) counts) — a prompt shared by G completions is computed once; gradients of the copies add up."""
    if isinstance(model, TinyGPT):
        cache: Any = KVCache(model.config.n_layer)
        logits = model(input_ids, cache)[:, -1]
    else:
        out = model(input_ids, use_cache=True)
        logits, cache = out.logits[:, -1], out.past_key_values
    if not (isinstance(repeats, int) and repeats == 1):
        rows = torch.arange(input_ids.shape[0]).repeat_interleave(repeats)
        cache.batch_select_indices(rows)
        logits = logits[rows]
    return logits, cache


def extend(model: nn.Module, input_ids: torch.Tensor, cache: Any) -> torch.Tensor:
    """Logits (B, t, V) of ``input_ids`` continuing the sequences in ``cache`` (from :func:`prefill`), which
    takes their keys and values."""
    if isinstance(model, TinyGPT):
        return model(input_ids, cache)
    return model(input_ids, past_key_values=cache, use_cache=True).logits


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
        model.load_state_dict(torch.load(d / "model.pt", weights_only=True))
        return model, CharTokenizer(json.loads((d / "tokenizer.json").read_text())["alphabet"])
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise ValueError(f"model.path={str(path)!r} holds a Hugging Face model: pip install -e '.[llm]'") from None
    model = AutoModelForCausalLM.from_pretrained(d, local_files_only=True)
    return model, HFTokenizer(AutoTokenizer.from_pretrained(d, local_files_only=True))


def save_tiny_hf_model(directory: str | Path, n_layer: int = 2, d_model: int = 128, n_head: int = 4,
                       max_len: int = 32, seed: int = 0) -> Path:  # fmt: skip
    """Save a random-init Hugging Face GPT-2 causal LM and a character-level fast tokenizer over ``CharTokenizer``'s
    alphabet into ``directory`` (``save_pretrained``): a local model for ``algo.model.path`` in tests."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    chars = CharTokenizer().alphabet
    vocab = {"<pad>": 0, "<bos>": 1, "<eos>": 2, **{c: i + 3 for i, c in enumerate(chars)}, "<unk>": len(chars) + 3}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<bos>",
                                        eos_token="<eos>", unk_token="<unk>")  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_positions=max_len, n_embd=d_model,
                                           n_layer=n_layer, n_head=n_head, bos_token_id=1, eos_token_id=2,
                                           pad_token_id=0))  # fmt: skip
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return Path(directory)
