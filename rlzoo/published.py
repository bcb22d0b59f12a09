"""Published MuJoCo results that a benchmark report sets beside rlzoo's (``rlzoo.benchmark``).

- rl-baselines3-zoo, ``benchmark.md`` (DLR-RM/rl-baselines3-zoo@22e3ff2): one trained agent per cell on the **v3**
  envs, mean ± std over ~150 deterministic evaluation episodes. SAC, PPO and TRPO were trained with the settings
  ``conf/experiment/<algo>_<env>.yaml`` copy from ``hyperparams/*.yml``; TD3 with the v3-era entry (before commit
  8cecab4: SB3's older TD3 defaults, no 400×300 / lr 1e-3 / batch 256 block). It lists no DDPG MuJoCo results and no
  PPO or TRPO Humanoid result.
- CleanRL, ``docs/benchmark/*.md`` (vwxyzjn/cleanrl@fe8d8a0, tag pr-424): the **v4** envs, 3 seeds, mean ± std over
  seeds of the training episodic return at 1M steps, with CleanRL's own defaults (not rl-baselines3-zoo's); Ant was
  not benchmarked.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    """One published figure: its source, the env version it was measured on, mean ± std and the training budget."""

    source: str
    version: str
    mean: float
    std: float
    steps: int


ZOO, CLEANRL = "rl-baselines3-zoo", "CleanRL"
M = 1_000_000
_ZOO = {  # (env, algo): (mean, std, steps)
    ("HalfCheetah", "sac"): (9535.451, 100.470, M), ("Hopper", "sac"): (2325.547, 1129.676, M),
    ("Walker2d", "sac"): (3863.203, 254.347, M), ("Ant", "sac"): (4615.791, 1354.111, M),
    ("Humanoid", "sac"): (6232.287, 279.885, 2 * M),
    ("HalfCheetah", "td3"): (9655.666, 969.916, M), ("Hopper", "td3"): (3606.390, 4.027, M),
    ("Walker2d", "td3"): (4717.823, 46.303, M), ("Ant", "td3"): (5813.274, 589.773, M),
    ("Humanoid", "td3"): (5566.687, 14.544, 2 * M),
    ("HalfCheetah", "ppo"): (5819.099, 663.530, M), ("Hopper", "ppo"): (2410.435, 10.026, M),
    ("Walker2d", "ppo"): (3478.798, 821.708, M), ("Ant", "ppo"): (1327.158, 451.577, M),
    ("HalfCheetah", "trpo"): (1785.476, 68.672, M), ("Hopper", "trpo"): (3618.386, 356.768, M),
    ("Walker2d", "trpo"): (4933.148, 1452.538, M), ("Ant", "trpo"): (4982.301, 663.761, M),
}  # fmt: skip
_CLEANRL = {  # (env, algo): (mean, std), all at 1M steps
    ("HalfCheetah", "sac"): (9634.89, 1423.73), ("Hopper", "sac"): (2310.46, 342.82),
    ("Walker2d", "sac"): (3591.45, 911.33), ("Humanoid", "sac"): (4996.29, 686.40),
    ("HalfCheetah", "td3"): (9583.22, 126.09), ("Hopper", "td3"): (3134.61, 360.18),
    ("Walker2d", "td3"): (4057.59, 658.78), ("Humanoid", "td3"): (5035.36, 21.67),
    ("HalfCheetah", "ddpg"): (10374.07, 157.37), ("Hopper", "ddpg"): (1576.78, 818.98),
    ("Walker2d", "ddpg"): (1240.16, 390.10), ("Humanoid", "ddpg"): (1699.56, 694.22),
    ("HalfCheetah", "ppo"): (1442.64, 46.03), ("Hopper", "ppo"): (2382.86, 271.74),
    ("Walker2d", "ppo"): (2287.95, 571.78), ("Humanoid", "ppo"): (716.11, 49.08),
}  # fmt: skip
PUBLISHED: dict[tuple[str, str], list[Published]] = {}
for (env, algo), (mean, std, steps) in _ZOO.items():
    PUBLISHED.setdefault((env, algo), []).append(Published(ZOO, "v3", mean, std, steps))
for (env, algo), (mean, std) in _CLEANRL.items():
    PUBLISHED.setdefault((env, algo), []).append(Published(CLEANRL, "v4", mean, std, M))
SOURCES = (ZOO, CLEANRL)


def published(env_id: str, algo: str) -> dict[str, Published]:
    """The published figures for an env id of any version (``HalfCheetah-v5`` → ``HalfCheetah``), by source."""
    return {p.source: p for p in PUBLISHED.get((env_id.split("-v")[0], algo), [])}
