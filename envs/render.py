"""Pictures of a GridWorld: text (ansi), RGB arrays, and values + policy arrows (text and PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .layout import Layout

ARROWS = ("↑", "→", "↓", "←", "○")
_COLORS = {
    "ordinary": (255, 255, 255),
    "forbidden": (245, 166, 35),
    "target": (80, 200, 230),
    "grid": (60, 60, 60),
    "agent": (30, 60, 160),
}


def _cell_kind(layout: Layout, s: int) -> str:
    if s == layout.target:
        return "target"
    return "forbidden" if layout.forbidden[s] else "ordinary"


def render_ansi(layout: Layout, agent: int | None = None) -> str:
    """The grid as text: ``.`` ordinary, ``#`` forbidden, ``T`` target, ``A`` the agent."""
    rows = []
    for r in range(layout.n_rows):
        chars = []
        for c in range(layout.n_cols):
            s = layout.index(r, c)
            chars.append(
                "A" if s == agent else {"target": "T", "forbidden": "#", "ordinary": "."}[_cell_kind(layout, s)]
            )
        rows.append(" ".join(chars))
    return "\n".join(rows) + "\n"


def heat_colors(values: np.ndarray) -> np.ndarray:
    """(S, 3) uint8 colours of ``values`` on a blue (lowest) → white → red (highest) scale."""
    v = np.asarray(values, dtype=float)
    span = max(float(np.abs(v).max()), 1e-12)
    x = np.clip(v / span, -1.0, 1.0)[:, None]  # −1 … 1, 0 white
    white, red, blue = np.array([255.0] * 3), np.array([200.0, 40, 40]), np.array([40.0, 70, 200])
    return np.where(x >= 0, white + x * (red - white), white - x * (blue - white)).astype(np.uint8)


def render_rgb(
    layout: Layout, agent: int | None = None, cell: int = 32, values: np.ndarray | None = None
) -> np.ndarray:
    """An (H, W, 3) uint8 image of the grid with the agent as a filled disc; with ``values`` (S,) each cell is
    coloured by its value (:func:`heat_colors`) and forbidden cells and the target keep a border of their kind."""
    img = np.empty((layout.n_rows * cell, layout.n_cols * cell, 3), dtype=np.uint8)
    heat = heat_colors(values) if values is not None else None
    for s in range(layout.n_states):
        r, c = layout.cell(s)
        kind = _cell_kind(layout, s)
        block = img[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell]
        block[:] = _COLORS[kind]
        if heat is not None:  # the value's colour; a border of the kind's colour around forbidden cells and the target
            inner = 0 if kind == "ordinary" else max(cell // 6, 1)
            block[inner : cell - inner, inner : cell - inner] = heat[s]
    img[::cell, :] = _COLORS["grid"]
    img[:, ::cell] = _COLORS["grid"]
    img[-1, :] = _COLORS["grid"]
    img[:, -1] = _COLORS["grid"]
    if agent is not None:
        r, c = layout.cell(agent)
        yy, xx = np.mgrid[0:cell, 0:cell]
        disc = (yy - cell / 2) ** 2 + (xx - cell / 2) ** 2 <= (cell * 0.3) ** 2
        img[r * cell : (r + 1) * cell, c * cell : (c + 1) * cell][disc] = _COLORS["agent"]
    return img


def render_values(layout: Layout, v: np.ndarray, policy: np.ndarray) -> str:
    """State values and greedy-policy arrows side by side, like the book's figures."""
    values = [f"{x:.2f}" for x in np.asarray(v).tolist()]  # each number formatted once (a 300×300 grid: 90 000)
    width = max(len(text) for text in values) + 1
    arrows = [ARROWS[a] for a in np.argmax(policy, axis=1).tolist()]
    lines = []
    for r in range(layout.n_rows):
        row = slice(layout.index(r, 0), layout.index(r, 0) + layout.n_cols)
        vals = "".join(text.rjust(width) for text in values[row])
        lines.append(f"{vals}    {' '.join(arrows[row])}")
    return "\n".join(lines) + "\n"


def cell_colors(layout: Layout) -> np.ndarray:
    """(n_rows, n_cols, 3) uint8: each cell's colour by its kind (ordinary, forbidden, target)."""
    colors = np.empty((layout.n_states, 3), dtype=np.uint8)
    colors[:] = _COLORS["ordinary"]
    colors[layout.forbidden_mask()] = _COLORS["forbidden"]
    colors[layout.target] = _COLORS["target"]
    return colors.reshape(layout.n_rows, layout.n_cols, 3)


# above these many cells the picture draws no per-cell text and edges (values), or no arrows (policy: the
# greedy action as a colour map instead), so that large layouts are drawn in seconds
DENSE_CELLS, ARROW_CELLS = 400, 2500


def save_values_png(layout: Layout, v: np.ndarray, policy: np.ndarray, path: str | Path, title: str = "") -> Path:
    """PNG with two panels: policy arrows (length ∝ π(a|s), circle for stay) and state values."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, FancyArrow, Rectangle

    n_r, n_c = layout.n_rows, layout.n_cols
    size = min(0.6, 8.0 / max(n_r, n_c))
    fig = Figure(figsize=(2 * n_c * size + 1.0, n_r * size + 0.8), dpi=110)
    FigureCanvasAgg(fig)
    dense, arrows = layout.n_states <= DENSE_CELLS, layout.n_states <= ARROW_CELLS
    extent = (0, n_c, n_r, 0)
    for panel, name in enumerate(("policy" if arrows else f"greedy action ({' '.join(ARROWS)})", "state values")):
        ax = fig.add_subplot(1, 2, panel + 1)
        ax.set_xlim(0, n_c)
        ax.set_ylim(n_r, 0)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(name, fontsize=9)
        if not arrows and panel == 0:
            greedy = np.argmax(policy, axis=1).reshape(n_r, n_c)
            ax.imshow(greedy, extent=extent, cmap=ListedColormap(["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "0.6"]),
                      vmin=-0.5, vmax=4.5, interpolation="nearest")  # fmt: skip
        elif not dense:  # the cells' kinds as one image
            ax.imshow(cell_colors(layout), extent=extent, interpolation="nearest")
        for s in range(layout.n_states if arrows else 0):
            r, c = layout.cell(s)
            if dense:
                color = np.array(_COLORS[_cell_kind(layout, s)]) / 255
                ax.add_patch(Rectangle((c, r), 1, 1, facecolor=color, edgecolor="0.3", linewidth=0.5))
            if panel == 1 and dense:
                ax.text(c + 0.5, r + 0.5, f"{v[s]:.1f}", ha="center", va="center", fontsize=7)
            elif panel == 0:
                for a, (dr, dc) in enumerate(((-1, 0), (0, 1), (1, 0), (0, -1))):
                    p = float(policy[s, a])
                    if p > 1e-6:
                        ax.add_patch(
                            FancyArrow(
                                c + 0.5 - 0.2 * p * dc,
                                r + 0.5 - 0.2 * p * dr,
                                0.4 * p * dc,
                                0.4 * p * dr,
                                width=0.03,
                                head_width=0.15 * p + 0.02,
                                length_includes_head=True,
                                color="black",
                            )
                        )
                if policy[s, 4] > 1e-6:
                    ax.add_patch(
                        Circle((c + 0.5, r + 0.5), 0.12 * float(policy[s, 4]) + 0.03, fill=False, color="black")
                    )
        if panel == 1 and not dense:
            im = ax.imshow(np.asarray(v).reshape(n_r, n_c), extent=extent, cmap="viridis")
            fig.colorbar(im, ax=ax, fraction=0.046)
    if title:
        fig.suptitle(title, fontsize=10)
    path = Path(path)
    fig.savefig(path)
    return path
