"""Recall@K and NDCG@K curves, one line per method and one panel per protocol."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from stream_app.evaluation.protocols import MethodResult, Protocol

#: Figure size in inches and resolution of the PNGs.
FIGURE_SIZE = (11.0, 4.4)
DPI = 130
#: Share of the figure (left, bottom, right, top) given to the panels; the
#: bottom strip holds the legend.
LAYOUT_RECT = (0.0, 0.08, 1.0, 1.0)
#: One fixed style per method, so a method looks the same in every figure.
METHOD_STYLES = {
    "TopFreq": ("#7f7f7f", ":"),
    "GP-TopFreq": ("#1f77b4", "--"),
    "SAR": ("#2ca02c", "-."),
    "TIFU-KNN": ("#d62728", "-"),
    "Product model": ("#9467bd", "-"),
    "Seed model": ("#ff7f0e", "--"),
}


def plot_curves(
    results: Sequence[MethodResult], metric: str, label: str, path: Path
) -> None:
    """Write a PNG of ``metric`` at K = 1..K_MAX, a panel per protocol.

    Args:
        results: Test results of every method and protocol.
        metric: Attribute of :class:`RankingMetrics` holding the curve.
        label: Y-axis label, e.g. ``"Recall@K"``.
        path: PNG file to write.
    """
    protocols = [p for p in Protocol if any(r.protocol is p for r in results)]
    # A bare Figure (no pyplot): no global state and no display needed.
    figure = Figure(figsize=FIGURE_SIZE)
    axes = figure.subplots(1, max(1, len(protocols)), sharey=True, squeeze=False)
    for axis, protocol in zip(axes[0], protocols, strict=False):
        for result in (r for r in results if r.protocol is protocol):
            curve = getattr(result.metrics, metric)
            ks = np.arange(1, curve.shape[0] + 1)
            color, style = METHOD_STYLES.get(result.method, (None, "-"))
            axis.plot(
                ks,
                curve,
                style,
                color=color,
                marker="o",
                markersize=2.5,
                linewidth=1.6,
                label=result.method,
            )
        users = next(r.metrics.n_users for r in results if r.protocol is protocol)
        axis.set_title(f"Protocol {protocol.label}; {users:,} users", fontsize=10)
        axis.set_xlabel("K (list length)")
        axis.set_xticks([1, 5, 10, 15, 20])
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel(label)
    axes[0][0].set_ylim(bottom=0.0)
    # One legend under the panels, where it cannot hide a curve.
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(
        handles, labels, loc="lower center", ncol=max(1, len(labels)), frameon=False
    )
    figure.suptitle(f"{label} on the test split, by method", fontsize=11)
    figure.tight_layout(rect=LAYOUT_RECT)
    figure.savefig(path, dpi=DPI)
