"""Every option of every algorithm reaches the algorithm.

For each registered algorithm (``rlzoo.agents.AGENTS``) and each key of its config schema (nested dataclasses
such as GRPO's ``model`` included), a tiny seeded run with the key moved from its baseline value to another valid
value must end differently: other weights / tables / buffers (``state_dict``), other greedy actions or other
logged scalars. Wall-clock tags and tags that merely echo a config value (``truth/*`` is computed from ``gamma``,
``charts/learning_rate``, …) are left out, and so are optimiser hyper-parameters stored in ``param_groups``: a key
must change what is learned, not only what is printed.

The other value is chosen from the field's metadata (another of its ``choices``, the flipped bool, a number
moved inside its bounds, ``None`` ↔ a value, other layer widths) unless ``ALTERNATIVES`` names one. Keys that
only act in a context (``ou_theta`` with ``noise=ou``) get a ``CONTEXT`` applied to both runs. Keys that cannot
change a run by design are listed in ``INERT`` with the reason and a check of what they do change.

A new algorithm or key is covered automatically; a key with no automatic other value fails with a message
naming the table to extend.
"""

from __future__ import annotations

import dataclasses
import json
import random
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import rlzoo
from rlzoo.agents import AGENTS, Agent
from rlzoo.config import ConfigError
from rlzoo.envs.text_tasks import TextTask, TextTaskEnv
from rlzoo.llm.models import CharTokenizer, TinyGPT, TinyGPTConfig

from .helpers import RecordingLogger

torch.set_num_threads(1)

# ---- tiny seeded runs --------------------------------------------------------------------------------------------


def digit_share(prompts: list[str], completions: list[str], **_: Any) -> list[float]:
    """Share of digits in a completion: a dense reward, so GRPO's groups almost never have equal rewards."""
    return [sum(ch.isdigit() for ch in c) / max(len(c), 1) for c in completions]


def text_env() -> gym.Env:
    """A one-step text task (prompts ``"0:"``…``"19:"``, demonstration: the prompt's number) for GRPO."""
    env = TextTaskEnv("arithmetic", n_test=1)
    rows = [{"prompt": f"{i}:", "answer": str(i)} for i in range(20)]
    env.task = TextTask("digits", rows[:16], rows[16:], [digit_share], [1.0], 3,
                        demonstration=lambda row, rng: row["answer"])  # fmt: skip
    return env


@dataclass(frozen=True)
class Setup:
    """An env for tiny runs and the observations whose greedy actions are compared."""

    make_env: Callable[[], gym.Env]
    probes: tuple[Any, ...]


SETUPS: dict[str, Setup] = {
    "gridworld": Setup(lambda: gym.make(rlzoo.envs.GRIDWORLD_ID), tuple(range(25))),
    "gridworld_slip": Setup(lambda: gym.make(rlzoo.envs.GRIDWORLD_ID, slip=0.2), tuple(range(25))),
    "cartpole": Setup(lambda: gym.make("CartPole-v1"),
                      tuple(np.array(o, np.float32) for o in ([0, 0, 0.05, 0], [0.1, -0.5, -0.05, 0.5], [0] * 4))),
    "pendulum": Setup(lambda: gym.make("Pendulum-v1"),
                      tuple(np.array(o, np.float32) for o in ([1, 0, 0], [0, 1, -2], [-1, 0, 1]))),
    "text": Setup(text_env, ("3:", "17:")),
}  # fmt: skip
ENV_ORDER = ("gridworld", "cartpole", "pendulum", "text")  # an algorithm runs on the first one it accepts


@dataclass(frozen=True)
class Family:
    """Tiny hyper-parameters (set where the schema has the key) and the ``learn`` budget of a family of agents."""

    steps: int
    tiny: dict[str, Any] = field(default_factory=dict)
    env: str | None = None  # preferred env (else the first of ENV_ORDER the algorithm accepts)


FAMILIES: dict[str, Family] = {
    "planning": Family(4),
    "tabular": Family(1000, {"log_every": 250, "episode_length": 20}),
    "policy_gradient": Family(64, {"hidden": [8, 8], "n_envs": 2, "n_steps": 8, "batch_size": 8, "n_epochs": 2,
                                   "log_every": 32, "vf_batch_size": 8, "vf_epochs": 2, "cg_iters": 3},
                              "cartpole"),
    "value_approximation": Family(160, {"hidden": [8, 8], "learning_starts": 32, "batch_size": 8,
                                        "target_update_interval": 20, "log_every": 40}),
    "deterministic_policy_gradient": Family(120, {"hidden": [8, 8], "learning_starts": 32, "batch_size": 8,
                                                  "log_every": 40}),
    "soft_actor_critic": Family(120, {"hidden": [8, 8], "learning_starts": 32, "batch_size": 8, "log_every": 40},
                                "pendulum"),
    "llm_policy_optimization": Family(2, {"model": {"n_layer": 1, "d_model": 16, "n_head": 2, "max_len": 16},
                                          "prompts_per_step": 2, "num_generations": 2, "sft_steps": 2,
                                          "sft_batch_size": 4, "eval_prompts": 2, "log_every": 1,
                                          "n_pairs": 8, "batch_size": 4}),  # DPO's pairs
}  # fmt: skip
DEFAULT_FAMILY = Family(64)

WALL_CLOCK = ("charts/SPS", "charts/generation_tokens_per_s", "charts/training_tokens_per_s")
ECHO = ("truth/", "charts/learning_rate", "charts/epsilon", "losses/clip_range")  # functions of the config itself


def _arrays(obj: Any, prefix: str = "") -> dict[str, tuple]:
    """Every array and number of a nested state dict as ``(dtype, shape, bytes)``; optimiser ``param_groups``
    (learning rates and other hyper-parameters copied from the config) are left out."""
    out: dict[str, tuple] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k != "param_groups":
                out.update(_arrays(v, f"{prefix}.{k}"))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_arrays(v, f"{prefix}[{i}]"))
    elif isinstance(obj, torch.Tensor):
        t = obj.detach().cpu()
        a = (t.float() if t.dtype == torch.bfloat16 else t).numpy()  # numpy has no bfloat16
        out[prefix] = (str(a.dtype), a.shape, a.tobytes())
    elif isinstance(obj, (np.ndarray, np.generic)):
        a = np.ascontiguousarray(obj)
        out[prefix] = (str(a.dtype), a.shape, a.tobytes())
    elif isinstance(obj, (bool, int, float, str)):
        out[prefix] = ("py", (), repr(obj))
    return out


@dataclass
class Run:
    """What a tiny run produced."""

    state: dict[str, tuple]
    actions: list[bytes]
    records: list[tuple[str, int, float]]
    agent: Agent

    @property
    def scalars(self) -> dict[str, list[tuple[int, float]]]:
        """Logged scalars by tag, without wall-clock and config-echo tags."""
        out: dict[str, list[tuple[int, float]]] = {}
        for tag, step, value in self.records:
            if tag not in WALL_CLOCK and not tag.startswith(ECHO):
                out.setdefault(tag, []).append((step, value))
        return out

    def logged_steps(self) -> set[tuple[str, int]]:
        """(tag, step) of every scalar except episode statistics and wall-clock ones."""
        return {(t, s) for t, s, _ in self.records if not t.startswith("charts/")}


def differences(a: Run, b: Run, parts: tuple[str, ...] = ("state", "actions", "scalars")) -> list[str]:
    """Which state entries, actions and scalar tags differ between two runs (NaN equals NaN)."""
    out = []
    if "state" in parts:
        out += [f"state{k}" for k in sorted(set(a.state) | set(b.state)) if a.state.get(k) != b.state.get(k)]
    if "actions" in parts and a.actions != b.actions:
        out.append("greedy actions")
    if "scalars" in parts:
        sa, sb = a.scalars, b.scalars
        out += [f"scalar {t}" for t in sorted(set(sa) | set(sb)) if repr(sa.get(t)) != repr(sb.get(t))]
    return out


def setup_of(name: str) -> str:
    """The family's env, else the first of ``ENV_ORDER`` that the algorithm accepts."""
    preferred = family_of(name).env
    for env_name in ((preferred,) if preferred else ()) + ENV_ORDER:
        try:
            AGENTS[name].check_env(SETUPS[env_name].make_env())
        except ConfigError:
            continue
        return env_name
    raise AssertionError(f"algo={name} accepts none of the test envs {ENV_ORDER}: add one to SETUPS")


def family_of(name: str) -> Family:
    return FAMILIES.get(AGENTS[name].family, DEFAULT_FAMILY)


def base_hyperparams(name: str) -> dict[str, Any]:
    """The family's tiny values of the keys this algorithm's schema has."""
    keys = {f.name for f in dataclasses.fields(AGENTS[name].Config)}
    return {k: v for k, v in family_of(name).tiny.items() if k in keys}


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``extra``, recursing into nested dicts (``model.*``)."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def nested(key: str, value: Any) -> dict[str, Any]:
    """``"model.n_layer", 3`` → ``{"model": {"n_layer": 3}}``."""
    head, _, rest = key.partition(".")
    return {head: nested(rest, value) if rest else value}


def run(name: str, env_name: str, hyperparams: dict[str, Any], before: Callable[[Agent], Any] | None = None) -> Run:
    """One seeded run of ``name`` on ``env_name`` through the library API (``before(agent)`` ahead of ``learn``)."""
    for seed in (random.seed, np.random.seed, torch.manual_seed):
        seed(0)
    setup = SETUPS[env_name]
    agent = rlzoo.make_agent(name, setup.make_env(), seed=0, **hyperparams)
    if before is not None:
        before(agent)
    logger = RecordingLogger()
    agent.learn(family_of(name).steps, logger=logger)
    actions = [np.asarray(agent.act(o, deterministic=True)).tobytes() for o in setup.probes]
    return Run(_arrays(agent.state_dict()), actions, logger.records, agent)


_BASELINES: dict[tuple[str, str, str], Run] = {}


def baseline(name: str, env_name: str, hyperparams: dict[str, Any]) -> Run:
    """``run`` cached per (algorithm, env, hyper-parameters) within the module (the seed-batch test below reuses the
    variants' runs)."""
    key = (name, env_name, repr(hyperparams))
    if key not in _BASELINES:
        _BASELINES[key] = run(name, env_name, hyperparams)
    return _BASELINES[key]


# ---- which other value, in which context ------------------------------------------------------------------------

# keys whose other value the metadata does not give (or gives one too weak to act in a tiny run)
ALTERNATIVES: dict[str, Any] = {
    "policy": "optimal",  # evaluation targets: uniform | optimal | tables.npz
    "tol": 10.0,  # planners: converged after the first iteration
    "eval_max_sweeps": 2,
    "max_grad_norm": 0.01,  # clips every gradient
    "buffer_size": 20,  # smaller than the run: the ring buffer wraps
    "critic_learning_rate": 0.01,  # differs from every learning_rate
    "critic_hidden": [12],  # differs from hidden
    "clip_range_vf": 0.05,
    "target_kl": 1e-4,  # stops the epochs early
    "line_search_steps": 1,
    "epsilon_high": 0.5,
    "max_completion_length": 2,
    "delta": 1.01,  # caps ratios that later passes move past it
    "overlong_buffer": 1,
    "model.path": lambda tmp: save_tiny_gpt(tmp / "tiny_gpt"),
    "lora.target_modules": ["qkv"],
    "data": lambda tmp: str(write_pairs(tmp / "prefs.jsonl", DIGIT_PAIRS)),
    "sde_sample_freq": 2,  # new exploration matrices within the rollout
}

# keys that act only in a context, applied to both runs (the key's own baseline is the context's value)
FAST_PPO = {"learning_rate": 0.03, "max_grad_norm": 0.0, "n_epochs": 4}  # ratios and values move far enough to clip
FAST_GRPO = {"num_iterations": 3, "learning_rate": 0.03}  # later passes see ratios ≠ 1
CONTEXT: dict[str, dict[str, Any]] = {
    "approximator": {"features": "fourier"},  # linear on one-hot features is the table itself
    ("mc_basic", "log_every"): {"episode_length": 2},  # one sweep (every pair once) = 250 steps: several per run
    "ou_theta": {"noise": "ou"},
    "ou_dt": {"noise": "ou"},
    "target_noise_clip": {"target_policy_noise": 0.5},
    "spg_std": {"spg_samples": 4},  # the candidates' spread acts when there are candidates
    "features": {"approximator": "linear"},
    "feature_order": {"approximator": "linear", "features": "fourier"},
    "tilings": {"approximator": "linear", "features": "tile"},
    "tiles": {"approximator": "linear", "features": "tile"},
    "alpha_power": {"alpha_schedule": "robbins_monro"},
    "epsilon_final": {"epsilon_decay_steps": 200},
    "epsilon_decay_steps": {"epsilon_final": 0.0},
    # QAC's and off_policy_ac's plain steps of 0.3 are far too large for Adam, whose 0.3-sized steps blow float rounding
    # up past the batch's 1e-5: compare their optimizers at step sizes Adam takes
    ("qac", "optimizer"): {"learning_rate": 1e-3, "critic_learning_rate": 3e-3},
    ("off_policy_ac", "optimizer"): {"learning_rate": 1e-3, "critic_learning_rate": 3e-3},
    "temperature": {"behavior": "softmax"},  # tabular learners; GRPO's temperature acts on its own
    "eval_tol": {"eval_method": "iterative"},
    "eval_max_sweeps": {"eval_method": "iterative"},
    "line_search_steps": {"max_kl": 1.0},  # large steps: the line search backtracks
    "line_search_decay": {"max_kl": 1.0},
    "behavior_epsilon": {"behavior": "mixture"},
    "gamma": {"behavior": "uniform"},  # greedy Q-learning keeps max q(s', ·) = 0 (stay) until it finds the target
    "tol": {"method": "iterative"},  # exact policy evaluation is done after one solve
    "double": {"target_update_interval": 1000, "learning_rate": 0.03, "batch_size": 64},  # nets apart, argmaxes differ
    "clip_range": FAST_PPO,
    "clip_schedule": FAST_PPO,
    "clip_range_vf": FAST_PPO,
    "target_kl": FAST_PPO,
    "epsilon": FAST_GRPO,
    "epsilon_high": FAST_GRPO,
    "loss_type": {"sft_steps": 20, "sft_learning_rate": 0.01},  # completions of several lengths
    "importance_sampling_level": FAST_GRPO,
    "delta": FAST_GRPO,
    "kl_estimator": {"beta": 0.5, **FAST_GRPO},  # the policy moves away from the reference
    "kl_in_reward": {"beta": 0.5},
    "overlong_buffer": {"sft_steps": 20, "sft_learning_rate": 0.01},  # completions of several lengths
    "length_reward_weight": {"sft_steps": 20, "sft_learning_rate": 0.01},
    "overlong_penalty": {"overlong_buffer": 1, "sft_steps": 20, "sft_learning_rate": 0.01},
    "packing": {"sft_steps": 20, "sft_learning_rate": 0.01},  # completions of several lengths: padding to remove
    "lora.alpha": {"lora": {"r": 2}},  # the adapters' keys act when there are adapters
    "lora.dropout": {"lora": {"r": 2}},
    "lora.target_modules": {"lora": {"r": 2}},
    "sde_sample_freq": {"use_sde": True},  # gSDE's resampling acts with gSDE on
}
# keys that act only on another env
CONTEXT_ENV: dict[str, str] = {
    "log_std_init": "pendulum",  # Gaussian policies need continuous actions
    "state_dependent_std": "pendulum",
    "use_sde": "pendulum",
    "sde_sample_freq": "pendulum",
    "vector_mode": "gridworld",  # auto is numpy on CartPole, which gives the same episodes as sync
    "episodes_per_pair": "gridworld_slip",  # in a deterministic world every episode from (s, a) returns the same
    "target_entropy_scale": "gridworld",  # SAC's target entropy for a Discrete action space
}


DIGIT_PAIRS = [{"prompt": f"{i}:", "chosen": str(i), "rejected": "x"} for i in range(16)]  # for DPO's algo.data


def write_pairs(path: Path, pairs: list[dict[str, str]]) -> Path:
    """A preference file (``algo.data``) of ``pairs``."""
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return path


def save_tiny_gpt(directory: Path) -> str:
    """A saved TinyGPT (other init than the tiny baseline's) for ``model.path``."""
    torch.manual_seed(1)
    tok = CharTokenizer()
    TinyGPT(TinyGPTConfig(tok.vocab_size, 16, 1, 16, 2)).save(directory, tok)
    return str(directory)


def _bounds(f: dataclasses.Field) -> Callable[[Any], bool]:
    m = f.metadata or {}
    checks = [(m.get("ge"), lambda v, b: v >= b), (m.get("gt"), lambda v, b: v > b),
              (m.get("le"), lambda v, b: v <= b), (m.get("lt"), lambda v, b: v < b)]  # fmt: skip
    return lambda v: all(b is None or ok(v, b) for b, ok in checks)


def automatic_alternative(f: dataclasses.Field, hint: Any, value: Any) -> Any:
    """Another valid value from the field's metadata and type, or raise ``LookupError``."""
    m, ok = f.metadata or {}, _bounds(f)
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) else ()
    if m.get("choices"):
        return next(c for c in m["choices"] if c != value)
    if isinstance(value, bool):
        return not value
    if value is not None and type(None) in args:
        return None
    if value is None:  # an optional field at None: a value of its other type
        inner = next((a for a in args if a is not type(None)), None)
        if typing.get_origin(inner) is list:
            return [16]
        if inner in (int, float):
            lower = m["ge"] if m.get("ge") is not None else m["gt"] + 1 if m.get("gt") is not None else 1
            return inner(lower)
        raise LookupError(f"no automatic value for None of type {hint}")
    if isinstance(value, list):
        return [w + 4 for w in value] if value else [8]
    if isinstance(value, int):
        for candidate in (value * 2 if value else 1, value + 1, value - 1, value // 2):
            if candidate != value and ok(candidate):
                return candidate
    if isinstance(value, float):
        lo = next((m[k] for k in ("ge", "gt") if m.get(k) is not None), None)
        hi = next((m[k] for k in ("le", "lt") if m.get(k) is not None), None)
        mid = (lo + hi) / 2 if lo is not None and hi is not None else None
        for candidate in (value * 2 if value else 0.5, value / 2, mid):
            if candidate is not None and candidate != value and ok(candidate):
                return candidate
    raise LookupError(f"no automatic other value for {value!r} (type {hint}, metadata {dict(m)})")


# ---- keys that cannot change a run, each with a check of what it does change ---------------------------------------


@dataclass
class Case:
    """One (algorithm, key) case."""

    algo: str
    key: str
    field: dataclasses.Field
    hint: Any
    default: Any


def check_log_every(case: Case, env_name: str, base: dict[str, Any], variant: dict[str, Any]) -> None:
    a, b = baseline(case.algo, env_name, base), run(case.algo, env_name, variant)
    assert not differences(a, b, ("state", "actions")), f"{case.key} changed the run: {differences(a, b)}"
    assert a.logged_steps() != b.logged_steps(), f"{case.key} did not change when anything is logged"


def check_same_learning_other_passes(case: Case, env_name: str, base: dict[str, Any], variant: dict[str, Any]) -> None:
    """The key changes how the forward passes are cut (their number or the shapes of their inputs), not what is
    learned: the weights agree to float rounding."""
    calls: list[list[tuple[int, ...]]] = [[], []]

    def recorder(i: int) -> Callable[[Agent], None]:
        def hook(module: torch.nn.Module, args: tuple, output: Any) -> None:
            calls[i].append(tuple(args[0].shape))

        return lambda agent: agent.model.blocks[0].register_forward_hook(hook)

    a, b = run(case.algo, env_name, base, before=recorder(0)), run(case.algo, env_name, variant, before=recorder(1))
    assert calls[0] != calls[1], f"{case.key} did not change the number or shapes of the forward passes"
    for k, (dtype, _, data) in a.state.items():
        if dtype.startswith("float"):
            np.testing.assert_allclose(np.frombuffer(b.state[k][2], dtype), np.frombuffer(data, dtype), rtol=1e-3,
                                       atol=1e-5, err_msg=k)  # fmt: skip


def check_single_process_unchanged(case: Case, env_name: str, base: dict[str, Any], variant: dict[str, Any]) -> None:
    a, b = baseline(case.algo, env_name, base), run(case.algo, env_name, variant)
    assert not differences(a, b), f"{case.key} changed a single-process run: {differences(a, b)}"
    assert b.agent.train_model is b.agent.model  # no wrapper outside torchrun


def check_inapplicable(case: Case, env_name: str, base: dict[str, Any], variant: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        rlzoo.make_agent(case.algo, SETUPS[CONTEXT_ENV[case.key]].make_env())


Check = Callable[[Case, str, dict[str, Any], dict[str, Any]], None]
# key → (reason, check); (algo, key) entries take precedence over key-only ones
INERT: dict[str | tuple[str, str], tuple[str, Check]] = {
    "log_every": ("only the logging cadence: same weights, other log steps", check_log_every),
    "gradient_accumulation_steps": ("splits the batch into micro-batches with the same summed gradient",
                                    check_same_learning_other_passes),
    "gradient_checkpointing": ("recomputes activations in backward: the same gradient, more forward passes",
                               check_same_learning_other_passes),
    "packing": ("the loss passes without padding: the same log-probs, other input shapes",
                check_same_learning_other_passes),
    "data_parallel": ("acts under torchrun only (tests/test_distributed.py: 2 processes step as 1, ddp and fsdp)",
                      check_single_process_unchanged),
    ("qac", "log_std_init"): ("Gaussian policies only; qac needs Discrete actions", check_inapplicable),
    ("qac", "state_dependent_std"): ("Gaussian policies only; qac needs Discrete actions", check_inapplicable),
    ("off_policy_ac", "log_std_init"): ("Gaussian policies only; needs Discrete actions", check_inapplicable),
    ("off_policy_ac", "state_dependent_std"): ("Gaussian policies only; needs Discrete actions", check_inapplicable),
    **{(algo, key): ("gSDE perturbs Box actions; needs Discrete actions", check_inapplicable)
       for algo in ("qac", "off_policy_ac") for key in ("use_sde", "sde_sample_freq")},
}  # fmt: skip


def cases() -> list[Case]:
    """Every (algorithm, key), nested dataclass keys as ``outer.inner``."""

    def walk(algo: str, schema: type, prefix: str, defaults: Any) -> list[Case]:
        out, hints = [], typing.get_type_hints(schema)
        for f in dataclasses.fields(schema):
            value = getattr(defaults, f.name)
            if dataclasses.is_dataclass(value):
                out += walk(algo, type(value), f"{prefix}{f.name}.", value)
            else:
                out.append(Case(algo, prefix + f.name, f, hints[f.name], value))
        return out

    return [c for name, cls in sorted(AGENTS.items()) for c in walk(name, cls.Config, "", cls.Config())]


CASES = cases()


@pytest.fixture(scope="module")
def tmp_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("options")


def lookup(table: dict, case: Case) -> Any:
    return table.get((case.algo, case.key), table.get(case.key))


def current_value(hyperparams: dict[str, Any], case: Case) -> Any:
    node: Any = hyperparams
    for part in case.key.split("."):
        if not isinstance(node, dict) or part not in node:
            return case.default
        node = node[part]
    return node


def case_runs(case: Case, tmp_dir: Path) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The env, the baseline hyper-parameters and the variant (the key moved to another valid value) of ``case``."""
    env_name = CONTEXT_ENV.get(case.key, setup_of(case.algo))
    keys = {f.name for f in dataclasses.fields(AGENTS[case.algo].Config)}
    context = {k: v for k, v in (lookup(CONTEXT, case) or {}).items() if k in keys}  # e.g. only tabular "behavior"
    base = merge(base_hyperparams(case.algo), context)
    value = current_value(base, case)
    explicit = lookup(ALTERNATIVES, case)
    if explicit is not None:
        other = explicit(tmp_dir) if callable(explicit) else explicit
    else:
        try:
            other = automatic_alternative(case.field, case.hint, value)
        except LookupError as err:
            pytest.fail(f"algo.{case.key} of {case.algo}: {err}; add an entry to ALTERNATIVES (and to CONTEXT if it "
                        "acts only together with another key) in tests/test_options_wired.py")  # fmt: skip
    assert other != value, f"the other value of {case.key} equals its baseline {value!r}"
    return env_name, base, merge(base, nested(case.key, other))


@pytest.mark.parametrize("case", CASES, ids=[f"{c.algo}-{c.key}" for c in CASES])
def test_option_changes_the_run(case: Case, tmp_dir: Path) -> None:
    """Moving the key to another valid value changes what a tiny seeded run learns, or it is INERT and checked."""
    env_name, base, variant = case_runs(case, tmp_dir)
    other, value = current_value(variant, case), current_value(base, case)
    inert = lookup(INERT, case)
    if inert is not None:
        inert[1](case, env_name, base, variant)
        return
    a, b = baseline(case.algo, env_name, base), baseline(case.algo, env_name, variant)
    assert differences(a, b), (
        f"algo.{case.key}={other!r} (baseline {value!r}) left a tiny seeded run of {case.algo} on {env_name} "
        f"unchanged: weights, greedy actions and logged scalars are identical. Wire it into the algorithm, or, if "
        f"it acts only in a context, add that to CONTEXT; if it cannot act by design, list it in INERT with a check."
    )


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_tiny_runs_are_reproducible(name: str) -> None:
    """Two runs with the same config are identical, so a difference above is the key's doing."""
    env_name = setup_of(name)
    a, b = baseline(name, env_name, base_hyperparams(name)), run(name, env_name, base_hyperparams(name))
    assert not differences(a, b), differences(a, b)


def test_tables_name_known_keys() -> None:
    """Every key in the tables exists in some algorithm's schema."""
    known = {c.key for c in CASES} | {(c.algo, c.key) for c in CASES}
    for table in (ALTERNATIVES, CONTEXT, CONTEXT_ENV, INERT):
        stale = [k for k in table if k not in known]
        assert not stale, f"no algorithm has the keys {stale}: remove them from the tables"


# ---- seed batches (n_seeds > 1): every option reaches the batched path ---------------------------------------------

BATCH_CASES = [c for c in CASES if AGENTS[c.algo].seed_batchable]
# keys whose variant a seed batch refuses with one ConfigError line (rlzoo.agents.on_policy / ppo check_seed_batch)
BATCH_REFUSED = {
    "target_kl": "each seed would stop its epochs at its own time",
}


def batch_run(name: str, env_name: str, hyperparams: dict[str, Any], n_seeds: int = 2) -> list[Run]:
    """Seeds 0 … n_seeds − 1 of ``run`` trained as one seed batch (``rlzoo.seed_batch``): each seed's ``Run``."""
    from rlzoo.seed_batch import SeedBatch

    for seed in (random.seed, np.random.seed, torch.manual_seed):
        seed(0)
    setup = SETUPS[env_name]
    lanes = [rlzoo.make_agent(name, setup.make_env(), seed=s, **hyperparams) for s in range(n_seeds)]
    loggers = [RecordingLogger() for _ in lanes]
    SeedBatch(lanes).learn(family_of(name).steps, loggers)
    return [Run(_arrays(agent.state_dict()), [np.asarray(agent.act(o, deterministic=True)).tobytes()
                                              for o in setup.probes], logger.records, agent)
            for agent, logger in zip(lanes, loggers, strict=True)]  # fmt: skip


# how far a seed of a batch may be from its single run after the tiny run: float rounding (batched matrix products sum
# in another order), 1e-5; TRPO's conjugate-gradient step amplifies rounding (a 1e-7 relative change of a single run's
# weights moves them by 3e-5 within two updates on Pendulum), so its line-search variants end 1.5e-5 apart
BATCH_TOLERANCE = {"trpo": 1e-4}


def assert_same_run(single: Run, lane: Run, probes: tuple[Any, ...], tol: float = 1e-5) -> None:
    """The same state (floats to ``tol``, everything else exactly), greedy actions in ``probes`` (continuous ones to
    ``tol``) and logged scalars."""
    assert single.state.keys() == lane.state.keys()
    for key, (dtype, shape, data) in single.state.items():
        other = lane.state[key]
        assert (dtype, shape) == other[:2], key
        if dtype.startswith("float"):
            np.testing.assert_allclose(np.frombuffer(other[2], dtype), np.frombuffer(data, dtype), rtol=tol, atol=tol,
                                       err_msg=key)  # fmt: skip
        else:
            assert other[2] == data, key
    for obs in probes:
        np.testing.assert_allclose(lane.agent.act(obs), single.agent.act(obs), rtol=tol, atol=tol, err_msg=f"{obs}")
    a, b = single.scalars, lane.scalars
    assert a.keys() == b.keys()
    for tag in a:
        assert [s for s, _ in a[tag]] == [s for s, _ in b[tag]], tag
        np.testing.assert_allclose([v for _, v in b[tag]], [v for _, v in a[tag]], rtol=1e-4, atol=tol,
                                   equal_nan=True, err_msg=tag)  # fmt: skip


@pytest.mark.parametrize("case", BATCH_CASES, ids=[f"{c.algo}-{c.key}" for c in BATCH_CASES])
def test_option_reaches_the_seed_batch(case: Case, tmp_dir: Path) -> None:
    """Seed 0 of a 2-seed batch with the key moved trains exactly as a single run with the key moved (to float
    rounding): since the key changes the single run (above), it reaches the batched path too — or the batch
    refuses the setting in one line."""
    env_name, _, variant = case_runs(case, tmp_dir)
    inert = lookup(INERT, case)
    if inert is not None and inert[1] is check_inapplicable:  # a single run refuses it: so must the batch's seeds
        with pytest.raises(ConfigError):
            batch_run(case.algo, env_name, variant)
        return
    if case.key in BATCH_REFUSED:  # a job of seeds trains them one after another instead (tests/test_seed_batch.py)
        with pytest.raises(ConfigError, match="cannot train as a seed batch"):
            batch_run(case.algo, env_name, variant)
        return
    single, lane = baseline(case.algo, env_name, variant), batch_run(case.algo, env_name, variant)[0]
    assert_same_run(single, lane, SETUPS[env_name].probes, BATCH_TOLERANCE.get(case.algo, 1e-5))


@pytest.mark.parametrize("name", sorted(n for n, cls in AGENTS.items() if cls.seed_batchable))
def test_seed_batches_are_reproducible_and_each_seed_is_its_single_run(name: str) -> None:
    """Two batches with the same config are identical, and every seed of one trains as its single run."""
    env_name, hyperparams = setup_of(name), base_hyperparams(name)
    first, second = batch_run(name, env_name, hyperparams, 3), batch_run(name, env_name, hyperparams, 3)
    for a, b in zip(first, second, strict=True):
        assert not differences(a, b), differences(a, b)
    for seed, lane in enumerate(first):
        single = rlzoo.make_agent(name, SETUPS[env_name].make_env(), seed=seed, **hyperparams)
        logger = RecordingLogger()
        single.learn(family_of(name).steps, logger=logger)
        probes = SETUPS[env_name].probes
        assert_same_run(
            Run(_arrays(single.state_dict()), [], logger.records, single), lane, probes, BATCH_TOLERANCE.get(name, 1e-5)
        )
