"""GridWorld dynamics against its rules (ARCHITECTURE.md, "The GridWorld"), cell by cell, and model() against step()."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from rlzoo.envs import DEFAULT_LAYOUT, GRIDWORLD_ID, GridWorld, Layout, LayoutError, TabularModel

from .conftest import layouts

UP, RIGHT, DOWN, LEFT, STAY = range(5)


def step_from(env: GridWorld, row: int, col: int, action: int):
    env.reset(options={"state": row * env.layout.n_cols + col})
    s, r, term, trunc, _ = env.step(action)
    return divmod(s, env.layout.n_cols), r, term, trunc


def test_default_layout_is_the_books():
    lay = Layout.parse(DEFAULT_LAYOUT)
    forbidden_1based = {(2, 2), (2, 3), (3, 3), (4, 2), (4, 4), (5, 2)}
    got = {(r + 1, c + 1) for r in range(5) for c in range(5) if lay.forbidden[lay.index(r, c)]}
    assert got == forbidden_1based
    assert lay.cell(lay.target) == (3, 2)  # (4, 3) 1-based


@pytest.mark.parametrize(
    ("cell", "action", "expected_cell", "reward"),
    [
        ((0, 0), UP, (0, 0), -1.0),  # off the top: stay, r_boundary
        ((0, 0), LEFT, (0, 0), -1.0),  # off the left
        ((4, 4), DOWN, (4, 4), -1.0),  # off the bottom
        ((4, 4), RIGHT, (4, 4), -1.0),  # off the right
        ((0, 1), DOWN, (1, 1), -1.0),  # enters a forbidden cell
        ((1, 1), STAY, (1, 1), -1.0),  # staying in a forbidden cell
        ((1, 1), RIGHT, (1, 2), -1.0),  # forbidden -> forbidden
        ((1, 1), LEFT, (1, 0), 0.0),  # leaving a forbidden cell to an ordinary one
        ((4, 2), UP, (3, 2), 1.0),  # into the target
        ((3, 2), STAY, (3, 2), 1.0),  # staying at the target
        ((3, 2), DOWN, (4, 2), 0.0),  # leaving the target (continuing task)
        ((0, 0), STAY, (0, 0), 0.0),  # staying in an ordinary cell
        ((0, 0), RIGHT, (0, 1), 0.0),  # ordinary move
    ],
)
def test_dynamics_cell_by_cell(book_env, cell, action, expected_cell, reward):
    got_cell, r, term, trunc = step_from(book_env, *cell, action)
    assert (got_cell, r, term, trunc) == (expected_cell, reward, False, False)


def test_rewards_are_configurable():
    env = GridWorld(r_boundary=-3, r_forbidden=-10, r_target=5, r_other=-0.5)
    assert step_from(env, 0, 0, UP)[1] == -3
    assert step_from(env, 0, 1, DOWN)[1] == -10
    assert step_from(env, 3, 2, STAY)[1] == 5
    assert step_from(env, 0, 0, RIGHT)[1] == -0.5


def test_episodic_terminates_at_target_and_truncates():
    env = GridWorld(episodic=True, start=[4, 2], max_episode_steps=3)
    assert env.reset()[0] == 4 * 5 + 2
    _, r, term, trunc, _ = env.step(UP)
    assert (r, term, trunc) == (1.0, True, False)
    env.reset()
    for t in range(3):
        _, _, term, trunc, _ = env.step(STAY)
        assert not term and trunc == (t == 2)


def test_continuing_target_is_not_terminal():
    env = GridWorld(start=[3, 2])
    env.reset()
    for _ in range(10):
        _, r, term, trunc, _ = env.step(STAY)
        assert (r, term, trunc) == (1.0, False, False)


def test_random_start_covers_all_cells_and_excludes_terminal_target():
    env = GridWorld(episodic=True)
    starts = {env.reset(seed=i)[0] for i in range(400)}
    assert starts == set(range(25)) - {env.layout.target}
    env = GridWorld()
    assert {env.reset(seed=i)[0] for i in range(400)} == set(range(25))


@pytest.mark.parametrize("obs", ["index", "onehot", "coords"])
def test_check_env_passes_without_warnings(obs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(gym.make(GRIDWORLD_ID, obs=obs).unwrapped, skip_render_check=False)
        check_env(gym.make(GRIDWORLD_ID, obs=obs, slip=0.2, episodic=True, render_mode="rgb_array").unwrapped)


def test_observation_modes():
    s = 2 * 5 + 3
    for obs, expected in [("index", s), ("onehot", np.eye(25, dtype=np.float32)[s]), ("coords", np.array([2.0, 3.0]))]:
        env = GridWorld(obs=obs)
        o, _ = env.reset(options={"state": s})
        np.testing.assert_array_equal(o, expected)
        assert env.observation_space.contains(o)


def test_render_ansi_and_rgb():
    env = GridWorld(render_mode="ansi", start=[0, 0])
    env.reset()
    text = env.render()
    assert text.splitlines()[0].startswith("A .") and "T" in text and "#" in text
    env = GridWorld(render_mode="rgb_array", start=[0, 0])
    env.reset()
    img = env.render()
    assert img.shape == (5 * 32, 5 * 32, 3) and img.dtype == np.uint8
    assert len(np.unique(img.reshape(-1, 3), axis=0)) >= 4  # grid, ordinary, forbidden, target, agent


@pytest.mark.parametrize(
    ("layout", "start", "message"),
    [
        (["...", ".."], None, "row 1 has 2 cells"),
        (["...", "..."], None, "no target"),
        (["T..", "..T"], None, "2 target cells"),
        (["T..", ".x."], None, "unknown character 'x'"),
        (["T#."], [0, 1], "forbidden"),
        (["T..", ".#."], [5, 0], "outside the 2x3 grid"),
        (["TSS"], None, "2 start cells"),
        ([], None, "empty"),
    ],
)
def test_invalid_layouts_are_named(layout, start, message):
    with pytest.raises(LayoutError, match=message):
        GridWorld(layout=layout, start=start)


def test_invalid_action_is_named(book_env):
    book_env.reset(seed=0)
    with pytest.raises(ValueError, match="action 7 is not valid"):
        book_env.step(7)


@pytest.mark.parametrize("slip", [0.0, 0.2, 1.0])
def test_slip_model_rows_sum_to_one_and_match_the_spec(slip):
    env = GridWorld(slip=slip)
    P, R = env.model()
    assert P.shape == (25, 5, 25) and R.shape == (25, 5)
    np.testing.assert_allclose(P.sum(axis=2), 1.0)
    nxt, rew = env.dynamics.tables
    for a in range(5):
        # from the centre (2, 2) every executed action lands in a distinct cell
        s = 12
        assert P[s, a, nxt[s, a]] == pytest.approx(1 - slip)
        for other in set(range(5)) - {a}:
            assert P[s, a, nxt[s, other]] == pytest.approx(slip / 4)
        assert R[s, a] == pytest.approx((1 - slip) * rew[s, a] + slip / 4 * (rew[s].sum() - rew[s, a]))


def test_slip_sampling_matches_model():
    env = GridWorld(slip=0.4)
    P, _ = env.model()
    env.reset(seed=1)
    counts = np.zeros(25)
    n = 20_000
    for _ in range(n):
        env.reset(options={"state": 12})
        counts[env.step(RIGHT)[0]] += 1
    np.testing.assert_allclose(counts / n, P[12, RIGHT], atol=0.015)


def test_dense_and_compact_models_agree():
    env = GridWorld(slip=0.3, episodic=True)
    P, R = env.model()
    again = TabularModel.from_dense(P, R).dense()
    np.testing.assert_allclose(again[0], P)
    np.testing.assert_allclose(again[1], R)
    t = env.layout.target
    assert P[t, :, t].min() == 1.0 and np.all(R[t] == 0)  # terminal target is absorbing, reward 0


@settings(max_examples=60, deadline=None)
@given(layout=layouts(), actions=st.lists(st.integers(0, 4), min_size=1, max_size=40), seed=st.integers(0, 2**16))
def test_model_agrees_with_step(layout, actions, seed):
    env = GridWorld(layout=layout)
    P, R = env.model()
    s, _ = env.reset(seed=seed)
    for a in actions:
        s2, r, term, trunc, _ = env.step(a)
        assert P[s, a, s2] == 1.0
        assert r == R[s, a]
        assert not term and not trunc
        s = s2


@settings(max_examples=30, deadline=None)
@given(layout=layouts(max_side=4), slip=st.floats(0.05, 0.9), seed=st.integers(0, 2**16))
def test_slip_steps_only_reach_model_successors(layout, slip, seed):
    env = GridWorld(layout=layout, slip=slip)
    P, _ = env.model()
    s, _ = env.reset(seed=seed)
    for a in np.random.default_rng(seed).integers(0, 5, 30):
        s2 = env.step(int(a))[0]
        assert P[s, a, s2] > 0
        s = s2


@pytest.mark.parametrize("size", [5, 30, 120])  # per-cell text, per-cell arrows, greedy-action colour map
def test_values_picture_of_small_and_large_layouts(tmp_path, size):
    from PIL import Image

    from rlzoo.envs.layout import Layout
    from rlzoo.envs.render import save_values_png

    rows = ["." * size for _ in range(size)]
    rows[size // 2] = "." * (size - 1) + "T"
    layout = Layout.parse(rows, None)
    rng = np.random.default_rng(0)
    policy = np.eye(5)[rng.integers(0, 5, layout.n_states)]
    path = save_values_png(layout, rng.normal(size=layout.n_states), policy, tmp_path / "v.png", "title")
    with Image.open(path) as image:
        assert image.size[0] > 2 * image.size[1] // 2 and len(set(image.convert("RGB").getdata())) > 10


# ---- env.layout_file: a layout too large for the command line ------------------------------------------------------

MAZE = ["S.#.", "..#.", "#...", "..#T"]


@pytest.fixture
def maze_file(tmp_path):
    path = tmp_path / "maze.txt"
    path.write_text("\n" + "\n".join(f"  {row} " for row in MAZE) + "\n\n")  # blank edges, spaces: ignored
    return path


def test_layout_file_is_the_world_of_its_rows(maze_file):
    from rlzoo.envs import GridWorldVectorEnv

    from_file, from_rows = GridWorld(layout_file=maze_file), GridWorld(layout=MAZE)
    assert from_file.layout == from_rows.layout == Layout.parse(MAZE) and from_file.layout.n_states == 16
    for a, b in zip(from_file.model(), from_rows.model(), strict=True):
        np.testing.assert_array_equal(a, b)
    vec = GridWorldVectorEnv(2, layout_file=str(maze_file))  # make_vec's numpy copies take it too
    assert vec.layout == from_rows.layout


def test_layout_file_changes_what_a_run_does(tmp_path, maze_file):
    """A run on the file's world is the run on the same rows given as env.layout (# written F there)."""
    from rlzoo.train import resolve, train

    from .helpers import composed

    runs = {}
    rows = ",".join(row.replace("#", "F") for row in MAZE)
    for name, world in (("default", "env.start=null"), ("file", f"env.layout_file={maze_file}"),
                        ("rows", f"env.layout=[{rows}]")):  # fmt: skip
        summary = train(resolve(composed("algo=value_iteration", world)), tmp_path / name)
        tables = np.load(tmp_path / name / "tables.npz")
        timing = ("wall_seconds", "sps", "eval_seconds")
        runs[name] = ({k: v for k, v in summary.items() if k not in timing}, {k: tables[k] for k in tables.files})
    assert runs["file"][1]["v"].shape == (16,) and runs["default"][1]["v"].shape == (25,)
    assert runs["file"][0] != runs["default"][0]
    assert runs["file"][0] == runs["rows"][0]
    for key, array in runs["file"][1].items():
        np.testing.assert_array_equal(array, runs["rows"][1][key])
    assert len((tmp_path / "file" / "values_policy.txt").read_text().splitlines()) == 4


@pytest.mark.parametrize(
    ("file", "more", "message"),
    [
        ("maze.txt", ["env.layout=[T..,...]"],
         r"^env\.layout_file='.*maze\.txt' and a layout other than the default are both given: give one of them$"),
        ("nope.txt", [], r"^env\.layout_file='.*nope\.txt' cannot be read \(No such file or directory\)$"),
        ("bad.txt", [], r"^env\.layout_file='.*bad\.txt': layout row 1 has 2 cells, expected 3 like row 0"),
        ("maze.txt", ["env.start=[0,2]"], r"^env\.start: start \[0, 2\] is a forbidden cell"),
    ],
)  # fmt: skip
def test_layout_file_errors_are_one_line_naming_the_value(tmp_path, maze_file, file, more, message):
    from rlzoo.config import ConfigError
    from rlzoo.train import resolve

    from .helpers import composed

    (tmp_path / "bad.txt").write_text("T..\n..\n")
    with pytest.raises(ConfigError, match=message) as info:
        resolve(composed("algo=value_iteration", f"env.layout_file={tmp_path / file}", *more))
    assert "\n" not in str(info.value)


def test_layout_file_errors_of_the_env(tmp_path, maze_file):
    with pytest.raises(LayoutError, match=r"^layout_file='.*' and a layout other than the default are both given"):
        GridWorld(layout=["T."], layout_file=maze_file)
    with pytest.raises(LayoutError, match=r"^layout_file='.*' cannot be read \(Is a directory\)$"):
        GridWorld(layout_file=tmp_path)
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(LayoutError, match=r"^layout_file='.*empty\.txt': layout is empty"):
        GridWorld(layout_file=tmp_path / "empty.txt")


def test_envs_of_one_world_share_its_dynamics_read_only():
    """A run's training and evaluation envs build the (large) tables once; nobody can change them for the other."""
    rows = ["S..", ".#.", "..T"]
    first, second = GridWorld(layout=rows), gym.make(GRIDWORLD_ID, layout=tuple(rows)).unwrapped
    assert first.dynamics is second.dynamics
    assert GridWorld(layout=rows, slip=0.1).dynamics is not first.dynamics
    model = first.tabular_model()
    for array in (*first.dynamics.tables, model.next_states, model.probs, model.rewards):
        assert not array.flags.writeable
