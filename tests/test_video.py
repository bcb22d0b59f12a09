"""Videos: ``eval.video=true`` writes an MP4 of one episode per evaluation (and on the GridWorld a GIF of the greedy
policy walking over its value heat-map); ``rlzoo.evaluate --video`` does the same for a finished run; a missing
extra is one line."""

from __future__ import annotations

import sys

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest

import rlzoo
from rlzoo.config import ConfigError
from rlzoo.evaluate import main as evaluate_main
from rlzoo.train import resolve, train
from rlzoo.video import VideoUnavailable, episode_frames, record_episode, require_video

from .helpers import composed


def read_mp4(path) -> list[np.ndarray]:
    """The frames of an MP4 (a comprehension: ``list()`` would ask the stream's length, which is unknown)."""
    return [frame for frame in imageio.get_reader(str(path), "ffmpeg")]


@pytest.fixture(scope="module")
def gridworld_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "run"
    train(resolve(composed("algo=qlearning", "total_steps=20000", "eval.every=10000", "eval.video=true",
                           "checkpoint.every=0")), path)  # fmt: skip
    return path


def test_each_evaluation_leaves_a_playable_mp4_and_a_policy_walk_gif(gridworld_run):
    videos = gridworld_run / "videos"
    steps = [0, 10000, 20000]  # the initial, periodic and final evaluations
    assert sorted(p.name for p in videos.iterdir()) == sorted(
        f"eval_step{s:010d}.{ext}" for s in steps for ext in ("gif", "mp4"))  # fmt: skip
    agent = rlzoo.Agent.load(gridworld_run)
    env = gym.make(rlzoo.envs.GRIDWORLD_ID, max_episode_steps=100, render_mode="rgb_array")
    expected, _ = episode_frames(agent, env, seed=1_000_000)  # the episode the final video shows
    frames = read_mp4(videos / "eval_step0000020000.mp4")
    assert len(frames) == len(expected) == 101 and frames[0].shape == expected[0].shape == (160, 160, 3)
    assert np.abs(frames[-1].astype(int) - expected[-1]).mean() < 8  # the same picture, up to H.264's loss
    walk = imageio.mimread(videos / "eval_step0000020000.gif")
    assert walk[0].shape[:2] == (160, 160)
    centres = np.asarray(walk[0])[16::32, 16::32, :3].reshape(-1, 3)  # each cell's colour: its value's
    assert len({tuple(c) for c in centres}) > 5  # a heat-map, not the layout's three kinds


def test_tensorboard_shows_each_evaluation_video(gridworld_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(gridworld_run), size_guidance={"images": 0})
    acc.Reload()
    shown = acc.Images("eval/video")
    assert [e.step for e in shown] == [0, 10000, 20000]
    first = imageio.mimread(shown[-1].encoded_image_string, format="GIF")  # half size: 80 × 80
    assert (shown[-1].width, shown[-1].height) == (80, 80) and np.asarray(first[0]).shape[:2] == (80, 80)


def test_without_eval_video_no_videos_are_written(tmp_path):
    train(resolve(composed("algo=qlearning", "total_steps=500", "checkpoint.every=0")), tmp_path / "run")
    assert not (tmp_path / "run" / "videos").exists()


def test_classic_control_episodes_are_drawn(tmp_path):
    agent = rlzoo.make_agent("ppo", gym.make("CartPole-v1"), seed=0)
    path, total = record_episode(agent, gym.make("CartPole-v1"), tmp_path / "cartpole.mp4", seed=3)
    frames = read_mp4(path)
    assert len(frames) == int(total) + 1 and frames[0].shape == (400, 600, 3)  # reward 1 a step, + the reset frame


def test_the_evaluate_command_records_the_episodes_it_evaluates(gridworld_run, capsys):
    assert evaluate_main([str(gridworld_run), "--checkpoint", "last", "--episodes", "2", "--video"]) == 0
    out = capsys.readouterr().out
    assert (gridworld_run / "videos" / "evaluate_last_ep1.mp4").is_file() and "evaluate_last_ep0.mp4: return" in out


def test_a_missing_extra_is_one_line_naming_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if not installed
    with pytest.raises(VideoUnavailable, match=r"^eval.video=true needs imageio and its ffmpeg plugin: pip install"):
        require_video()
    with pytest.raises(ConfigError, match=r"^eval.video=true needs imageio and its ffmpeg plugin: pip install -e "
                                         r"'\.\[video\]'$"):  # fmt: skip
        resolve(composed("algo=qlearning", "eval.video=true"))
