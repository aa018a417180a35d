"""The report's figures (PNG, matplotlib's Agg backend), one function per figure: data in, Figure out.

Every figure uses constrained layout with its title above and its legend below the axes, so no
label, tick or legend is cut or covered (``tests/test_analysis_report.py`` checks every text lies inside the canvas). A task keeps
its colour (shade of its domain's colour) and marker in every figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

__all__ = [
    "DOMAIN_COLOURMAPS",
    "DOMAIN_COLOURS",
    "MARKERS",
    "MIN_TICK_RATIO",
    "across_tasks",
    "by_domain",
    "height_for",
    "learning_curves",
    "loss_vs_dimension",
    "new_figure",
    "outside_legend",
    "penalty_vs_sharpness",
    "plain_log_ticks",
    "repr_vs_data",
    "save",
    "task_styles",
]

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from lightning_dims.analysis.health import ReprBound  # noqa: E402
from lightning_dims.analysis.laws import AcrossTasks, DimensionSlope  # noqa: E402
from lightning_dims.analysis.rows import RunRow  # noqa: E402
from lightning_dims.analysis.tasks import TaskExponent, TaskProperties  # noqa: E402

DOMAIN_COLOURMAPS = {"medical": "Reds", "natural": "Blues", "synthetic": "Greens"}
DOMAIN_COLOURS = {"medical": "tab:red", "natural": "tab:blue", "synthetic": "tab:green"}
MARKERS = "osD^vP*Xh<>p"


def task_styles(rows: Sequence[RunRow]) -> dict[str, dict]:
    """task -> {"color", "marker"}: shades of the domain's colour map, markers cycling within the domain."""
    styles: dict[str, dict] = {}
    for domain in sorted({r.domain for r in rows}):
        tasks = sorted({r.task for r in rows if r.domain == domain})
        cmap = plt.get_cmap(DOMAIN_COLOURMAPS.get(domain, "Greys"))
        for i, task in enumerate(tasks):
            shade = 0.45 + 0.5 * (i / max(1, len(tasks) - 1)) if len(tasks) > 1 else 0.75
            styles[task] = {"color": cmap(shade), "marker": MARKERS[i % len(MARKERS)]}
    return styles


def new_figure(title: str, width: float = 7.5, height: float = 4.2, **subplots) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure with a figure-level title (placed above axes and legends alike)."""
    fig = plt.figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(squeeze=False, **subplots)
    fig.suptitle(title, fontsize=10)
    return fig, axes


def height_for(entries: int, axes_height: float = 3.4) -> float:
    """Figure height (inches) that keeps the axes ``axes_height`` tall above a 3-column legend of ``entries``."""
    return axes_height + 0.6 + 0.17 * math.ceil(entries / 3)


MIN_TICK_RATIO = 1.2
"""Neighbouring ticks on a log axis closer than this ratio would print over each other: the later is dropped."""


def plain_log_ticks(axis, values: Sequence[float]) -> None:
    """Log axis ticks at ``values`` (thinned so labels do not collide), written as plain numbers (200, not 2 x 10^2)."""
    ticks: list[float] = []
    for value in sorted(set(values)):
        if not ticks or value >= MIN_TICK_RATIO * ticks[-1]:
            ticks.append(value)
    axis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    axis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    axis.set_minor_locator(matplotlib.ticker.NullLocator())


def by_domain(tasks: Sequence[RunRow]) -> list[str]:
    """Distinct tasks ordered by domain, then name (the legend order of every figure)."""
    return [t for _, t in sorted({(r.domain, r.task) for r in tasks})]


def outside_legend(fig: Figure, ax) -> None:
    """The axes' legend below the axes, outside them (constrained layout makes room; it cannot meet the title)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(handles)), fontsize=7, frameon=False)


def save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _errors(values: Sequence[float], intervals: Sequence[tuple]) -> np.ndarray:
    """Asymmetric error bars (2, n) from intervals; missing ends draw no bar."""
    low = [v - i[0] if i[0] is not None else 0.0 for v, i in zip(values, intervals)]
    high = [i[1] - v if i[1] is not None else 0.0 for v, i in zip(values, intervals)]
    return np.array([low, high])


def learning_curves(rows: Sequence[RunRow], exponents: Mapping[tuple[str, str], TaskExponent], arch: str) -> Figure:
    """Test loss against N per task (log-log) with each task's fitted ``L = e^c N^-alpha``."""
    mine = [r for r in rows if r.arch == arch and r.test_loss and r.test_loss > 0]
    fig, axes = new_figure(f"{arch}: learning curve of each task, log L = c - alpha log N",
                           height=height_for(len(by_domain(mine))))
    ax = axes[0, 0]
    styles = task_styles(mine)
    for task in by_domain(mine):
        runs = [r for r in mine if r.task == task]
        fit = exponents.get((arch, task))
        label = task if fit is None else f"{task}: alpha {fit.alpha:.2f}"
        ax.scatter([r.n_train for r in runs], [r.test_loss for r in runs], s=22, label=label, **styles[task])
        if fit is not None:
            grid = np.geomspace(fit.sizes[0], fit.sizes[-1], 30)
            ax.plot(grid, np.exp(fit.c) * grid ** (-fit.alpha), color=styles[task]["color"], linewidth=1)
    ax.set(xscale="log", yscale="log", xlabel="training images N", ylabel="test loss (cross-entropy, nats)")
    plain_log_ticks(ax.xaxis, [r.n_train for r in mine])
    outside_legend(fig, ax)
    return fig


def across_tasks(fit: AcrossTasks, rows: Sequence[RunRow], points: Mapping[str, tuple[float, float, tuple]],
                 law: tuple[float, float] | None, xlabel: str, ylabel: str, title: str) -> Figure:
    """One point per task (``points``: task -> (x, y, y interval)) with the random-effects line (primary), the 1/SE^2
    sensitivity line and the law's line."""
    members = [r for r in rows if r.task in points]
    fig, axes = new_figure(title, width=7.0, height=height_for(len(points) + 2))
    ax = axes[0, 0]
    styles = task_styles(members)
    for task in by_domain(members):
        x, y, interval = points[task]
        ax.errorbar([x], [y], yerr=_errors([y], [interval]), fmt=styles[task]["marker"], color=styles[task]["color"],
                    capsize=3, label=task)
    xs = np.array([p[0] for p in points.values()])
    grid = np.linspace(xs.min(), xs.max(), 30)
    re = fit.verdict.primary
    low, high = re.slope_interval()
    ax.plot(grid, re.intercept + re.slope * grid, color="black", linewidth=1,
            label=f"random effects: slope {re.slope:.2f} [{low:.2f}, {high:.2f}], {fit.verdict.state}")
    low, high = fit.fit.slope_ci
    ci = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
    ax.plot(grid, fit.fit.predict(grid), color="black", linestyle=":", linewidth=1,
            label=f"sensitivity, 1/SE^2: slope {fit.fit.slope:.2f}{ci}")
    if law is not None:
        ax.plot(grid, law[0] + law[1] * grid, color="grey", linestyle="--", linewidth=1, label="the law")
    ax.set(xlabel=xlabel, ylabel=ylabel)
    outside_legend(fig, ax)
    return fig


def loss_vs_dimension(rows: Sequence[RunRow], properties: Mapping[tuple[str, str], TaskProperties],
                      slopes: Sequence[DimensionSlope], arch: str) -> Figure:
    """The paper's Fig. 2: test loss against d_data, one panel per N, colour by domain, random-effects slopes."""
    mine = [r for r in rows if r.arch == arch and r.test_loss and r.test_loss > 0 and (arch, r.task) in properties
            and properties[(arch, r.task)].d_data]
    sizes = sorted({r.n_train for r in mine})
    columns = min(3, max(1, len(sizes)))
    panels = max(1, math.ceil(len(sizes) / columns))
    fig, axes = new_figure(f"{arch}: test loss vs intrinsic dimension at each N (log L = a + b d_data per domain, random effects)",
                           width=3.4 * columns + 1.6, height=3.0 * panels + 0.4, nrows=panels, ncols=columns, sharey=True)
    for ax, n in zip(axes.flat, sizes):
        at_n = [r for r in mine if r.n_train == n]
        for domain in sorted({r.domain for r in at_n}):
            group = [r for r in at_n if r.domain == domain]
            colour = DOMAIN_COLOURS.get(domain, "tab:gray")
            d = [properties[(arch, r.task)].d_data for r in group]
            ax.scatter(d, [r.test_loss for r in group], s=18, color=colour, label=domain if n == sizes[0] else None)
            fit = next((s.verdict.primary for s in slopes if s.arch == arch and s.domain == domain and s.n_train == n), None)
            if fit is not None:
                grid = np.linspace(min(d), max(d), 20)
                ax.plot(grid, np.exp(fit.intercept + fit.slope * grid), color=colour, linewidth=1)
                ax.text(0.02, 0.97 - 0.09 * sorted({r.domain for r in at_n}).index(domain), f"b = {fit.slope:.3f}/dim (RE)",
                        transform=ax.transAxes, fontsize=7, color=colour, va="top")
        ax.set(yscale="log", title=f"N = {n}", xlabel="d_data (reference N)")
    for ax in axes[:, 0]:
        ax.set_ylabel("test loss (nats)")
    for ax in list(axes.flat)[len(sizes):]:
        ax.set_visible(False)
    outside_legend(fig, axes[0, 0])
    return fig


def penalty_vs_sharpness(rows: Sequence[RunRow], properties: Mapping[tuple[str, str], TaskProperties], arch: str) -> Figure:
    """FGSM loss penalty against the task's K_F (left) and against the clean loss (right)."""
    mine = [r for r in rows if r.arch == arch and r.loss_penalty is not None and r.clean_loss
            and properties.get((arch, r.task)) and properties[(arch, r.task)].label_sharpness]
    fig, axes = new_figure(f"{arch}: FGSM loss penalty vs label sharpness (left) and vs clean loss (right)", width=9.5,
                           height=height_for(len(by_domain(mine))), ncols=2)
    styles = task_styles(mine)
    for task in by_domain(mine):
        runs = [r for r in mine if r.task == task]
        k_f = properties[(arch, task)].label_sharpness
        axes[0, 0].scatter([k_f] * len(runs), [r.loss_penalty for r in runs], s=20, label=task, **styles[task])
        axes[0, 1].scatter([r.clean_loss for r in runs], [r.loss_penalty for r in runs], s=20, **styles[task])
    eps = next((r.fgsm_eps for r in mine if r.fgsm_eps is not None), None)
    axes[0, 0].set(xscale="log", xlabel="task K_F (1/intensity, reference N)", ylabel=f"FGSM loss penalty (nats, eps {eps})")
    axes[0, 1].set(xscale="log", xlabel="clean test loss (nats)")
    for ax in axes.flat:
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels of a short log range collide
    outside_legend(fig, axes[0, 0])
    return fig


def repr_vs_data(rows: Sequence[RunRow], bounds: Sequence[ReprBound], arch: str) -> Figure:
    """d_repr of each recorded layer against the run's d_data, with the bound y = x.

    A point's colour is its task's (so a domain's exceptions show), its marker the layer's."""
    fig, axes = new_figure(f"{arch}: representation vs data dimension", width=6.5)
    ax = axes[0, 0]
    mine = [r for r in rows if r.arch == arch and r.d_data]
    styles = task_styles(mine)
    top = 0.0
    for i, bound in enumerate(b for b in bounds if b.arch == arch):
        marker = MARKERS[i % len(MARKERS)]
        runs = [r for r in mine if bound.layer in r.d_repr]
        if not runs:
            continue
        top = max([top] + [max(r.d_data, r.d_repr[bound.layer]) for r in runs])
        ax.scatter([r.d_data for r in runs], [r.d_repr[bound.layer] for r in runs], s=18, marker=marker,
                   c=[styles[r.task]["color"] for r in runs])
        ax.scatter([], [], s=18, marker=marker, color="grey", label=f"{bound.layer}: {bound.runs_below}/{bound.n_runs} runs below")
    for domain in sorted({r.domain for r in mine}):
        ax.scatter([], [], s=18, marker="s", color=DOMAIN_COLOURS.get(domain, "grey"), label=f"{domain} tasks")
    ax.plot([0, top * 1.05], [0, top * 1.05], color="black", linestyle="--", linewidth=1, label="d_repr = d_data")
    ax.set(xlabel="d_data (run's training set)", ylabel="d_repr")
    outside_legend(fig, ax)
    return fig
