"""Feature maps φ(x) for linear value functions v̂(s) = φ(s)ᵀw (Sutton & Barto, §9.5).

Inputs are observations scaled into [0, 1]^d with the box ``low``/``high``:
- ``onehot``: indicator of a discrete state (linear = tabular);
- ``polynomial``: all monomials Π x_i^{c_i} with Σ c_i ≤ order (bias included);
- ``fourier``: cos(π c·x) for every c ∈ {0, …, order}^d;
- ``tile``: ``tilings`` offset grids of ``tiles`` tiles per dimension, one active tile each.
"""

from __future__ import annotations

import itertools

import numpy as np

FEATURES = ("onehot", "polynomial", "fourier", "tile")


class FeatureMap:
    """φ: (..., d) observations in the box [low, high] → (..., dim) features of them scaled into [0, 1]^d."""

    dim: int

    def __init__(self, low: np.ndarray, high: np.ndarray) -> None:
        self.low = np.asarray(low, dtype=float)
        self.span = np.where(np.asarray(high) > self.low, np.asarray(high, dtype=float) - self.low, 1.0)

    def scale(self, x: np.ndarray) -> np.ndarray:
        return np.clip((np.asarray(x, dtype=float) - self.low) / self.span, 0.0, 1.0)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Polynomial(FeatureMap):
    def __init__(self, low: np.ndarray, high: np.ndarray, order: int) -> None:
        super().__init__(low, high)
        d = len(self.low)
        self.powers = np.array([c for c in itertools.product(range(order + 1), repeat=d) if sum(c) <= order])
        self.dim = len(self.powers)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.prod(self.scale(x)[..., None, :] ** self.powers, axis=-1)


class Fourier(FeatureMap):
    def __init__(self, low: np.ndarray, high: np.ndarray, order: int) -> None:
        super().__init__(low, high)
        self.coefficients = np.array(list(itertools.product(range(order + 1), repeat=len(self.low))), dtype=float)
        self.dim = len(self.coefficients)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.cos(np.pi * self.scale(x) @ self.coefficients.T)


class TileCoding(FeatureMap):
    def __init__(self, low: np.ndarray, high: np.ndarray, tilings: int, tiles: int) -> None:
        super().__init__(low, high)
        self.tilings, self.tiles, self.d = int(tilings), int(tiles), len(self.low)
        self.per_tiling = (tiles + 1) ** self.d
        self.dim = self.tilings * self.per_tiling
        self.offsets = np.arange(self.tilings)[:, None] / (self.tilings * tiles) * np.ones(self.d)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        u = self.scale(x)[..., None, :] + self.offsets  # (..., tilings, d)
        cells = np.minimum((u * self.tiles).astype(np.int64), self.tiles)
        flat = (cells * (self.tiles + 1) ** np.arange(self.d)).sum(axis=-1) + np.arange(self.tilings) * self.per_tiling
        out = np.zeros((*flat.shape[:-1], self.dim))
        np.put_along_axis(out, flat, 1.0, axis=-1)
        return out


def make_features(name: str, low: np.ndarray, high: np.ndarray, *, order: int, tilings: int, tiles: int) -> FeatureMap:
    """The feature map ``name`` (``polynomial``, ``fourier`` or ``tile``) over the box [low, high]."""
    if name == "polynomial":
        return Polynomial(low, high, order)
    if name == "fourier":
        return Fourier(low, high, order)
    if name == "tile":
        return TileCoding(low, high, tilings, tiles)
    raise ValueError(f"features={name!r} is not a feature map: choose one of {', '.join(FEATURES)}")


def state_feature_table(env, name: str, *, order: int, tilings: int, tiles: int) -> np.ndarray:
    """φ of every state of a discrete env (S, k): one-hot, or a map of the state's (row, col) on a grid env."""
    n_states = int(env.observation_space.n)
    if name == "onehot":
        return np.eye(n_states)
    layout = getattr(env.unwrapped, "layout", None)
    if layout is None:
        raise ValueError(f"features={name!r} need state coordinates (a GridWorld); use features=onehot here")
    coords = np.array([layout.cell(s) for s in range(n_states)], dtype=float)
    high = np.array([layout.n_rows - 1, layout.n_cols - 1], dtype=float)
    return make_features(name, np.zeros(2), high, order=order, tilings=tilings, tiles=tiles)(coords)
