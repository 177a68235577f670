"""The loss plot ``rtnst train`` writes at the end of a run (NAME.loss.png)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

log = logging.getLogger("rtnst")

TITLES = {"content": "content distance C", "style": "style distance S", "tv": "total variation",
          "pixel": "L1 to the teacher", "edges": "L1 of edges to the teacher's",
          "teacher": "distance to the teacher's outputs"}


def plot_history(history: list[list[float]], terms: list[str], path: Path) -> Path | None:
    """One panel per loss term but the total; ``history`` rows are [step, *terms]."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("rtnst: matplotlib is not installed; no loss plot (pip install 'realtime_nst[train]')")
        return None
    if not history:
        return None
    h = torch.tensor(history)
    names = terms[1:]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2))
    for ax, col, name in zip(axes, range(2, 2 + len(names)), (TITLES.get(k, k) for k in names)):
        k = max(1, len(h) // 200)  # moving average over ~0.5% of the run
        v = torch.nn.functional.avg_pool1d(h[:, col].view(1, 1, -1), k, 1).flatten() if len(h) > k else h[:, col]
        ax.plot(h[: len(v), 0] + k - 1, v)
        ax.set_title(name)
        ax.set_xlabel("step")
        if bool((v > 0).all()):  # a term that is 0 (e.g. crops too small for it) cannot be log-scaled
            ax.set_yscale("log")
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.16, top=0.9, wspace=0.25)  # tight_layout costs seconds
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
