"""Shared by ``benchmarks/llm_memory.py`` and ``benchmarks/trl_grpo_compare.py``: the benchmark model (a random-init
Qwen2-architecture causal LM with a character tokenizer, built once into a cache directory), the peak-RSS tracker
and the runner of one measured child process.

Everything at module level is standard library only: the child script (``llm_bench_child.py``) imports this module in
rlzoo's interpreter and in TRL's virtual environment alike.

Fixed-length completions (``eos="never"``, the default): the model directory's tokenizer gets a new end-of-sequence
token whose id is past the model's vocabulary (``config.vocab_size``), and ``config.json`` / ``generation_config.json``
name that id. The model cannot emit it, so every completion runs ``max_completion_length`` tokens in rlzoo's sampler
and in TRL's ``generate`` alike, with no sampler option on either side (the old ``<eos>`` id is then an ordinary
token). With ``eos="model"`` the directory is left as built and completions may stop early: compare tokens/s then.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
CHILD = BENCH_DIR / "llm_bench_child.py"
DEFAULT_MODEL_ROOT = ROOT / ".venvs" / "llm-bench-models"  # .venvs/ is git-ignored
DEFAULT_TRL_PYTHON = Path("/work/trl-venv/bin/python")
NEVER_EOS_TOKEN = "<never-eos>"

# one thread everywhere, nothing fetched from a hub, no telemetry or experiment trackers
CHILD_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DISABLE_MLFLOW_INTEGRATION": "TRUE",
    "WANDB_MODE": "disabled",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "PYTHONUNBUFFERED": "1",
}


# ---- the model --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """A Qwen2-architecture model's sizes. The defaults are ≈99M parameters (the vocabulary is ~90 characters, so
    nearly all of them are in the 14 blocks)."""

    n_layer: int = 14
    hidden_size: int = 768
    n_head: int = 12
    n_kv_head: int = 12
    intermediate_size: int = 2048
    max_len: int = 320
    seed: int = 0
    eos: str = "never"  # never: fixed-length completions (see the module docstring); model: as built

    def name(self) -> str:
        return (f"qwen2-L{self.n_layer}-H{self.hidden_size}-A{self.n_head}-KV{self.n_kv_head}"
                f"-I{self.intermediate_size}-T{self.max_len}-s{self.seed}-eos_{self.eos}")  # fmt: skip


def add_model_args(parser: Any) -> None:
    """The model's size and cache options on an ``argparse`` parser."""
    d = ModelSpec()
    g = parser.add_argument_group("model (random-init Qwen2 architecture, built once and cached)")
    g.add_argument("--n-layer", type=int, default=d.n_layer)
    g.add_argument("--hidden-size", type=int, default=d.hidden_size)
    g.add_argument("--n-head", type=int, default=d.n_head)
    g.add_argument("--n-kv-head", type=int, default=d.n_kv_head)
    g.add_argument("--intermediate-size", type=int, default=d.intermediate_size)
    g.add_argument("--max-len", type=int, default=None, help="positions; default: completion length + 64")
    g.add_argument("--model-seed", type=int, default=d.seed)
    g.add_argument("--eos", choices=["never", "model"], default=d.eos,
                   help="never: the model cannot end a completion, every one is --completion-length tokens; "
                        "model: completions end at the model's <eos> (lengths vary: compare tokens/s)")  # fmt: skip
    g.add_argument("--model-root", type=Path, default=DEFAULT_MODEL_ROOT, help="cache of built model directories")


def spec_from_args(args: Any) -> ModelSpec:
    max_len = args.max_len if args.max_len is not None else args.completion_length + 64
    return ModelSpec(args.n_layer, args.hidden_size, args.n_head, args.n_kv_head, args.intermediate_size, max_len,
                     args.model_seed, args.eos)  # fmt: skip


def ensure_model(spec: ModelSpec, root: Path = DEFAULT_MODEL_ROOT) -> tuple[Path, dict[str, Any]]:
    """The directory of ``spec``'s model under ``root``, built on first use (in a temporary directory, renamed when
    complete), and its description (``bench_model.json``: sizes, parameter count, builder, special token ids)."""
    directory = root / spec.name()
    meta_file = directory / "bench_model.json"
    if meta_file.exists():
        return directory, json.loads(meta_file.read_text())
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{spec.name()}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    builder = _build_qwen2(tmp, spec)
    eos_id = _never_eos(tmp) if spec.eos == "never" else None
    config = json.loads((tmp / "config.json").read_text())
    params = safetensors_parameter_count(tmp)
    meta = {"spec": asdict(spec), "name": spec.name(), "parameters": params, "builder": builder,
            "vocab_size": config["vocab_size"], "eos_token_id": config.get("eos_token_id"),
            "never_eos_token_id": eos_id, "tie_word_embeddings": config.get("tie_word_embeddings")}  # fmt: skip
    (tmp / "bench_model.json").write_text(json.dumps(meta, indent=1))
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)
    return directory, meta


def _build_qwen2(directory: Path, spec: ModelSpec) -> str:
    """Save the random-init model and its character tokenizer: rlzoo's ``save_tiny_qwen2_model`` when rlzoo has it,
    else the same model built here (Qwen2Config + the character tokenizer of ``save_tiny_hf_model``)."""
    kwargs = dict(n_layer=spec.n_layer, hidden_size=spec.hidden_size, n_head=spec.n_head, n_kv_head=spec.n_kv_head,
                  intermediate_size=spec.intermediate_size, max_len=spec.max_len, seed=spec.seed)  # fmt: skip
    try:
        from rlzoo.llm.models import save_tiny_qwen2_model
    except ImportError:
        save_tiny_qwen2_model = None
    if save_tiny_qwen2_model is not None:
        save_tiny_qwen2_model(directory, **kwargs)
        return "rlzoo.llm.models.save_tiny_qwen2_model"
    _save_qwen2_here(directory, **kwargs)
    return "benchmarks/llm_bench_common.py (rlzoo has no save_tiny_qwen2_model)"


def _save_qwen2_here(directory: Path, *, n_layer: int, hidden_size: int, n_head: int, n_kv_head: int,
                     intermediate_size: int, max_len: int, seed: int) -> None:  # fmt: skip
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    chars = "0123456789+-=*/()<>.,:;!? abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ\n"  # rlzoo's CHARSET
    vocab = {"<pad>": 0, "<bos>": 1, "<eos>": 2, **{c: i + 3 for i, c in enumerate(chars)}, "<unk>": len(chars) + 3}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<bos>",
                                        eos_token="<eos>", unk_token="<unk>")  # fmt: skip
    config = Qwen2Config(vocab_size=len(vocab), hidden_size=hidden_size, intermediate_size=intermediate_size,
                         num_hidden_layers=n_layer, num_attention_heads=n_head, num_key_value_heads=n_kv_head,
                         max_position_embeddings=max_len, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
                         pad_token_id=0)  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def _never_eos(directory: Path) -> int:
    """Give the tokenizer in ``directory`` an end-of-sequence token the model cannot emit (id ≥ its vocab size,
    after filler tokens if the tokenizer is shorter) and name it in the model's configs; returns its id."""
    from transformers import AutoTokenizer

    vocab_size = json.loads((directory / "config.json").read_text())["vocab_size"]
    tok = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    if len(tok) < vocab_size:
        tok.add_tokens([f"<filler-{i}>" for i in range(vocab_size - len(tok))], special_tokens=True)
    tok.add_special_tokens({"eos_token": NEVER_EOS_TOKEN})
    eos_id = tok.convert_tokens_to_ids(NEVER_EOS_TOKEN)
    if eos_id < vocab_size:
        raise RuntimeError(f"{NEVER_EOS_TOKEN} got id {eos_id} < vocab_size {vocab_size}: the model could emit it")
    tok.save_pretrained(directory)
    for name in ("config.json", "generation_config.json"):
        path = directory / name
        if path.exists():
            cfg = json.loads(path.read_text())
            cfg["eos_token_id"] = eos_id
            path.write_text(json.dumps(cfg, indent=2))
    return eos_id


def safetensors_parameter_count(directory: Path) -> int:
    """Parameters stored in ``directory``'s ``*.safetensors`` files, read from their headers (tied weights once)."""
    total = 0
    for path in sorted(directory.glob("*.safetensors")):
        with path.open("rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
        for key, info in header.items():
            if key != "__metadata__":
                n = 1
                for dim in info["shape"]:
                    n *= dim
                total += n
    return total


# ---- peak memory ------------------------------------------------------------------------------------------------


class PeakRSS:
    """The process's peak resident set size, over its whole life and over windows (a step). On Linux a window
    starts by resetting the kernel's high-water mark (``/proc/self/clear_refs`` ← 5, which resets ``ru_maxrss``
    too); the whole-life peak is the largest mark read before each reset and at the end."""

    def __init__(self) -> None:
        self.process_peak = 0
        self.resettable = os.access("/proc/self/clear_refs", os.W_OK)

    @staticmethod
    def _status(field: str) -> int | None:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return None

    def high_water(self) -> int:
        """Bytes: the peak RSS since the last reset (VmHWM), or ``ru_maxrss`` where there is no /proc."""
        hwm = self._status("VmHWM")
        if hwm is None:
            scale = 1 if sys.platform == "darwin" else 1024
            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
        return hwm

    def current(self) -> int:
        """Bytes resident now (VmRSS), 0 where unknown."""
        return self._status("VmRSS") or 0

    def start_window(self) -> None:
        self.process_peak = max(self.process_peak, self.high_water())
        if self.resettable:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")

    def end_window(self) -> int:
        """The peak since ``start_window`` (since the process started where it could not reset)."""
        peak = self.high_water()
        self.process_peak = max(self.process_peak, peak)
        return peak

    def whole_life(self) -> int:
        return max(self.process_peak, self.high_water())


# ---- one measured child ------------------------------------------------------------------------------------------


def run_child(python: str | Path, side: str, config: dict[str, Any], workdir: Path, tag: str,
              timeout: float | None = None) -> dict[str, Any]:  # fmt: skip
    """Run ``llm_bench_child.py side`` under ``python`` in a fresh process (one thread, offline) on ``config``;
    returns its result JSON plus ``rc``, ``wall_s`` (whole process), ``ru_maxrss_bytes`` of that child alone (from
    ``wait4``: after the child's own window resets, only its last window) and the tails of its output on failure."""
    workdir.mkdir(parents=True, exist_ok=True)
    cfg_file, out_file = workdir / f"{tag}.config.json", workdir / f"{tag}.result.json"
    log_file = workdir / f"{tag}.log"
    cfg_file.write_text(json.dumps(config, indent=1))
    out_file.unlink(missing_ok=True)
    env = {**os.environ, **CHILD_ENV}
    start = time.perf_counter()
    with log_file.open("w") as log:
        proc = subprocess.Popen([str(python), str(CHILD), side, str(cfg_file), str(out_file)], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        status, usage = _wait(proc, timeout)
    wall = time.perf_counter() - start
    rc = os.waitstatus_to_exitcode(status) if status is not None else 124
    result: dict[str, Any] = json.loads(out_file.read_text()) if out_file.exists() else {}
    scale = 1 if sys.platform == "darwin" else 1024
    result.update(rc=rc, wall_s=wall, ru_maxrss_bytes=usage.ru_maxrss * scale if usage else None, log=str(log_file))
    if rc != 0 and "error" not in result:
        result["error"] = f"exit status {rc}" + (" (timed out)" if status is None else "")
    if rc != 0:
        result["log_tail"] = log_file.read_text()[-3000:]
    return result


def _wait(proc: subprocess.Popen, timeout: float | None) -> tuple[int | None, Any]:
    """``os.wait4`` on ``proc`` (its own rusage, not all children's), killing its process group after ``timeout``."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG if deadline else 0)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return status, usage
        if deadline and time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = 124
            return None, usage
        time.sleep(0.2)


# ---- reporting ---------------------------------------------------------------------------------------------------


def mib(n: float | None) -> str:
    return "–" if n is None else f"{n / 2**20:,.0f}"


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        models = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        info["cpu_model"] = models[0] if models else None
    with contextlib.suppress(OSError):
        info["loadavg_start"] = os.getloadavg()
    return info
