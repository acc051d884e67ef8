"""Matplotlib set-up shared by the report's plots (Agg backend, atomic PNG writes)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["legend_outside", "plt", "save"]


def legend_outside(ax: plt.Axes, **kwargs: object) -> None:
    """The legend to the right of the axes, never over the data."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kwargs)


def save(fig: plt.Figure, path: Path) -> Path:
    """Write ``fig`` to ``path`` (written to a temp file, then renamed) and close it; returns ``path``."""
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    tmp.replace(path)
    return path
