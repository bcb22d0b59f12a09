"""A user's own text task (``env=text_file``): rows from files, reward functions by import path, chat templates,
the warm start from a ``completion``/``answer`` column, and one clear line for each mistake."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from rlzoo.agents import make_agent
from rlzoo.config import ConfigError, TextFileEnvConfig
from rlzoo.envs import TEXT_FILE_ID, make
from rlzoo.envs.text_file import read_rows
from rlzoo.envs.text_tasks import SOURCE_PROMPT, RewardFunctionError, TextFileEnv, text_file_task
from rlzoo.llm.models import save_tiny_hf_model
from rlzoo.train import _make_env, resolve

from .helpers import composed, readme_example, run_cli

REWARDS = '''
seen_prompts = []


def exact(prompts, completions, answer, **columns):
    """1 when the completion is the answer."""
    seen_prompts.extend(prompts)
    return [float(c.strip() == a) for c, a in zip(completions, answer)]


def shorter(prompts, completions, **columns):
    return [-0.01 * len(c) for c in completions]


def one_too_few(prompts, completions, **columns):
    return [0.0] * (len(completions) - 1)


def reads_level(prompts, completions, **columns):
    return [float(level) for level in columns["level"]]


def text_reward(prompts, completions, **columns):
    return ["high"] * len(completions)


def no_arguments():
    return []


not_a_function = 3
'''
WORDS = ("abc", "dog", "cat", "sun", "map", "pen", "cup", "hat")
ROWS = [{"prompt": f"reverse {w}:", "answer": w[::-1]} for w in WORDS]


@pytest.fixture
def task_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` with ``train.jsonl`` (ROWS) and an importable package ``user_task.rewards`` (REWARDS)."""
    (tmp_path / "user_task").mkdir()
    (tmp_path / "user_task" / "__init__.py").write_text("")
    (tmp_path / "user_task" / "rewards.py").write_text(REWARDS)
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("user_task", "user_task.rewards"):
        sys.modules.pop(name, None)


def task(task_dir: Path, funcs=("user_task.rewards:exact",), **kwargs):
    return text_file_task(str(task_dir / "train.jsonl"), list(funcs), **kwargs)


# ---- reading rows ---------------------------------------------------------------------------------------------


def test_jsonl_json_and_csv_give_the_same_rows(tmp_path):
    rows = [{"prompt": "a:", "answer": "1"}, {"prompt": "b:", "answer": "2"}]
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")  # blank lines skipped
    (tmp_path / "r.json").write_text(json.dumps(rows))
    (tmp_path / "r.csv").write_text("prompt,answer\na:,1\nb:,2\n")
    for suffix in ("jsonl", "json", "csv"):
        assert read_rows(tmp_path / f"r.{suffix}", "train") == rows


def test_a_column_missing_from_some_rows_is_none_there(tmp_path):
    (tmp_path / "r.jsonl").write_text('{"prompt": "a:", "answer": "1"}\n{"prompt": "b:"}\n')
    assert read_rows(tmp_path / "r.jsonl", "train")[1] == {"prompt": "b:", "answer": None}


@pytest.mark.parametrize(("name", "content", "message"), [
    ("r.txt", "x", r"^train='.*r\.txt': a \.txt file is not supported, give one of \.jsonl, \.json, \.csv$"),
    ("missing.jsonl", None, r"^train='.*missing\.jsonl': no such file$"),
    ("r.jsonl", "", r"holds no rows$"),
    ("r.jsonl", '{"prompt": "a"}\n{oops\n', r"line 2 is not JSON"),
    ("r.jsonl", '{"question": "a"}\n', r"line 1 has no 'prompt' string \(its columns: question\)$"),
    ("r.json", '{"prompt": "a"}', r"holds a dict, not a list of rows$"),
    ("r.csv", "question\nwhat\n", r"row 2 has no 'prompt' string"),
])  # fmt: skip
def test_a_bad_file_is_one_line_naming_it(tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        read_rows(tmp_path / name, "train")
    assert "\n" not in str(err.value)


# ---- the task ---------------------------------------------------------------------------------------------------


def test_the_held_out_share_is_split_off_with_the_seed(task_dir):
    a, b, c = task(task_dir), task(task_dir), task(task_dir, seed=1)
    assert a.test == b.test and len(a.test) == 1 and len(a.train) == 7  # round(0.1 · 8) = 1
    assert a.test != c.test
    assert {r["prompt"] for r in a.train} | {r["prompt"] for r in a.test} == {r["prompt"] for r in ROWS}
    assert len(task(task_dir, test_fraction=0.5).test) == 4


def test_a_test_file_is_the_held_out_split(task_dir):
    (task_dir / "test.csv").write_text("prompt,answer\nreverse xy:,yx\n")
    t = task(task_dir, test=str(task_dir / "test.csv"))
    assert t.train == ROWS and t.test == [{"prompt": "reverse xy:", "answer": "yx"}]


def test_rewards_are_the_weighted_sum_and_columns_arrive_as_keyword_lists(task_dir):
    t = task(task_dir, funcs=("user_task.rewards:exact", "user_task.rewards:shorter"), reward_weights=[2.0, 1.0])
    total, per = t.rewards(ROWS[:2], ["cba", "xx"])
    assert per.tolist() == [[1.0, 0.0], [-0.03, -0.02]]
    assert np.allclose(total, [2.0 - 0.03, -0.02])
    assert task(task_dir, funcs=("user_task.rewards:exact", "user_task.rewards:shorter")).reward_weights == [1.0, 1.0]


def test_the_warm_start_reads_the_completion_column_else_the_answer(task_dir):
    rng = np.random.default_rng(0)
    assert task(task_dir).demonstration(ROWS[0], rng) == "cba"  # answer
    both = [{**r, "completion": "<" + r["answer"] + ">"} for r in ROWS]
    (task_dir / "both.jsonl").write_text("".join(json.dumps(r) + "\n" for r in both))
    t = text_file_task(str(task_dir / "both.jsonl"), ["user_task.rewards:exact"])
    assert t.demonstration(both[0], rng) == "<cba>"
    (task_dir / "plain.jsonl").write_text('{"prompt": "a", "level": 1}\n{"prompt": "b", "level": 2}\n')
    assert text_file_task(str(task_dir / "plain.jsonl"), ["user_task.rewards:reads_level"]).demonstration is None


@pytest.mark.parametrize(("funcs", "kwargs", "message"), [
    (["user_task.nowhere:exact"], {}, r"^reward_funcs\[0\]='user_task.nowhere:exact': cannot import "
                                      r"'user_task.nowhere' \(No module named 'user_task.nowhere'\)$"),
    (["user_task.rewards:nothing"], {}, r"^reward_funcs\[0\]='user_task.rewards:nothing': 'user_task.rewards' has "
                                        r"no 'nothing'$"),
    (["user_task.rewards.exact"], {}, r"is not an import path: write it 'package.module:function'$"),
    (["user_task.rewards:not_a_function"], {}, r"is a int, not a function$"),
    (["user_task.rewards:no_arguments"], {}, r"cannot be called as f\(prompts, completions, \*\*columns\)$"),
    ([], {}, r"^reward_funcs is empty"),
    (["user_task.rewards:exact", "user_task.rewards:exact"], {}, r"two functions are named 'exact'"),
    (["user_task.rewards:exact"], {"reward_weights": [1.0, 2.0]}, r"has 2 values for 1 reward_funcs"),
    (["user_task.rewards:exact"], {"test_fraction": 1.0}, r"^test_fraction=1.0 is not allowed"),
])  # fmt: skip
def test_a_wrong_reward_function_or_setting_is_one_line_naming_it(task_dir, funcs, kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        task(task_dir, funcs=funcs, **kwargs)
    assert "\n" not in str(err.value)


def test_a_reward_function_needing_a_column_the_file_lacks_is_named(task_dir):
    (task_dir / "test.jsonl").write_text('{"prompt": "x:"}\n')
    with pytest.raises(ValueError, match=r"^reward_funcs\[0\]='user_task.rewards:exact' needs column 'answer', which "
                                         r"test='.*test\.jsonl' lacks \(its columns: prompt\)$"):  # fmt: skip
        task(task_dir, test=str(task_dir / "test.jsonl"))


@pytest.mark.parametrize(("func", "message"), [
    ("one_too_few", r"^reward function user_task.rewards:one_too_few returned 1 rewards for 2 completions$"),
    ("reads_level", r"^reward function user_task.rewards:reads_level reads column 'level', which the rows lack "
                    r"\(columns: prompt, answer\)$"),
    ("text_reward", r"^reward function user_task.rewards:text_reward returned 'high': give a float or None"),
])  # fmt: skip
def test_a_reward_function_that_misbehaves_while_scoring_is_named(task_dir, func, message):
    t = task(task_dir, funcs=(f"user_task.rewards:{func}",))
    with pytest.raises(RewardFunctionError, match=message):
        t.rewards(ROWS[:2], ["a", "b"])


# ---- through the config and the agent ----------------------------------------------------------------------------


def test_env_keys_are_checked_and_reach_the_task(task_dir):
    overrides = [f"env.train={task_dir / 'train.jsonl'}", "env.reward_funcs=[user_task.rewards:exact]"]
    spec = resolve(composed("algo=grpo", "env=text_file", *overrides))
    assert spec.env.id == TEXT_FILE_ID and isinstance(spec.env, TextFileEnvConfig)
    env = _make_env(spec.env)
    assert isinstance(env.unwrapped, TextFileEnv) and env.unwrapped.task.reward_funcs[0].__name__ == "exact"
    with pytest.raises(ConfigError, match=r"^env.train is required but missing$"):
        resolve(composed("algo=grpo", "env=text_file", "env.reward_funcs=[user_task.rewards:exact]"))
    with pytest.raises(ConfigError, match=r"^env.test_fraction=0.0 is out of range: allowed \(0.0, 1.0\)$"):
        resolve(composed("algo=grpo", "env=text_file", *overrides, "env.test_fraction=0"))
    bad = resolve(composed("algo=grpo", "env=text_file", *overrides[:1], "env.reward_funcs=[user_task.rewards:nope]"))
    with pytest.raises(ConfigError, match=r"^env.reward_funcs\[0\]='user_task.rewards:nope': 'user_task.rewards' has "
                                         r"no 'nope'$"):  # fmt: skip
        _make_env(bad.env)


# every key of the schema, moved to another valid value, changes the task (the option-wiring test of env keys)
def _other_values(task_dir: Path) -> dict[str, object]:
    (task_dir / "test.jsonl").write_text('{"prompt": "reverse xy:", "answer": "yx"}\n')
    return {"train": str(task_dir / "train.jsonl"), "test": str(task_dir / "test.jsonl"), "test_fraction": 0.5,
            "seed": 3, "reward_funcs": ["user_task.rewards:shorter"], "reward_weights": [2.0],
            "chat_template": True, "max_completion_length": 5}  # fmt: skip


def _fingerprint(t) -> tuple:
    return (t.train, t.test, t.rewards(ROWS[:3], ["cba", "x", "tac"])[0].tolist(), t.chat_template,
            t.max_completion_length)  # fmt: skip


def test_every_text_file_key_changes_the_task(task_dir):
    (task_dir / "other.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS[::-1]))
    base = TextFileEnvConfig(train=str(task_dir / "train.jsonl"), reward_funcs=["user_task.rewards:exact"])
    other = {**_other_values(task_dir), "train": str(task_dir / "other.jsonl")}
    keys = [f.name for f in dataclasses.fields(TextFileEnvConfig) if f.name != "id"]
    assert sorted(other) == sorted(keys), "a new TextFileEnvConfig key needs another value here"
    before = _fingerprint(make(base).unwrapped.task)
    for key in keys:
        moved = make(dataclasses.replace(base, **{key: other[key]})).unwrapped.task
        assert _fingerprint(moved) != before, f"env.{key} does not change the task"


TURNS = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
CHAT = TURNS + "{% if add_generation_prompt %}<a>{% endif %}"  # a chat template: "<user>…<a>"


def test_the_chat_template_writes_prompts_and_rewards_see_the_file_s_prompt(task_dir):
    from transformers import AutoTokenizer

    model_dir = save_tiny_hf_model(task_dir / "hf", n_layer=1, d_model=16, n_head=2, max_len=48)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.chat_template = CHAT
    tokenizer.save_pretrained(model_dir)
    env = make(TextFileEnvConfig(train=str(task_dir / "train.jsonl"), reward_funcs=["user_task.rewards:exact"],
                                 chat_template=True, max_completion_length=4))  # fmt: skip
    agent = make_agent("grpo", env, seed=0, model={"path": str(model_dir)}, sft_steps=0, prompts_per_step=2,
                       num_generations=2, eval_prompts=1)  # fmt: skip
    row = agent.task.train[0]
    assert row["prompt"] == f"<user>{row[SOURCE_PROMPT]}<a>" and row[SOURCE_PROMPT] in {r["prompt"] for r in ROWS}
    from user_task import rewards

    rewards.seen_prompts.clear()
    agent.learn(1)
    assert rewards.seen_prompts and set(rewards.seen_prompts) <= {r["prompt"] for r in ROWS}
    with pytest.raises(ConfigError, match=r"^env.chat_template=true, but the tokenizer of TinyGPT's character "
                                         r"tokenizer has no chat template"):  # fmt: skip
        make_agent("grpo", env, seed=0, sft_steps=0)


def test_prompts_the_model_cannot_hold_are_one_line(task_dir):
    env = make(TextFileEnvConfig(train=str(task_dir / "train.jsonl"), reward_funcs=["user_task.rewards:exact"]))
    with pytest.raises(ConfigError, match=r"^env: the prompt 'reverse abc:' \(13 tokens\) and 16 completion tokens "
                                         r"exceed the model's 16 positions: raise algo.model.max_len"):  # fmt: skip
        make_agent("grpo", env, seed=0, model={"max_len": 16})
    (task_dir / "odd.jsonl").write_text('{"prompt": "déjà vu:", "answer": "x"}\n{"prompt": "a:", "answer": "x"}\n')
    odd = make(TextFileEnvConfig(train=str(task_dir / "odd.jsonl"), reward_funcs=["user_task.rewards:exact"]))
    with pytest.raises(ConfigError, match=r"character 'é' is not in the tokenizer's alphabet \(algo.model.path"):
        make_agent("grpo", odd, seed=0)


# ---- through the command line ----------------------------------------------------------------------------------


def test_the_readme_s_own_task_trains_through_the_cli_and_a_bad_reward_is_one_line(tmp_path):
    """The README's "Train on your own task" as written (fewer steps): a JSONL and reward functions from the user's
    own package, run from the directory that holds it; then a function returning too few rewards."""
    files, args = readme_example("Train on your own task")
    assert set(files) == {"my_task/train.jsonl", "my_task/rewards.py"} and "env=text_file" in args
    (tmp_path / "my_task").mkdir()
    (tmp_path / "my_task" / "__init__.py").write_text("")
    for path, text in files.items():
        (tmp_path / path).write_text(text)
    args = [a for a in args if not a.startswith("total_steps=")] + ["total_steps=4", "algo.prompts_per_step=4"]
    ok = run_cli(*args, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(summary["heldout"]["final"]) >= {"reward", "exact", "letters"}
    assert summary["heldout"]["after_warm_start"]["sft_steps"] > 0  # the answer column is the demonstration
    (tmp_path / "my_task" / "rewards.py").write_text(REWARDS)
    bad = [a if not a.startswith("env.reward_funcs=") else "env.reward_funcs=[my_task.rewards:one_too_few]"
           for a in args if not a.startswith("env.reward_weights=")]  # fmt: skip
    proc = run_cli(*bad, f"hydra.run.dir={tmp_path / 'bad'}", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = re.fullmatch(r"rlzoo: reward function my_task.rewards:one_too_few returned (\d+) rewards for (\d+) "
                        r"completions", proc.stderr.strip().splitlines()[-1])  # fmt: skip
    assert line is not None and int(line[1]) + 1 == int(line[2])
