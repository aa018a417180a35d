"""The report's figures (PNG, matplotlib's Agg backend): one function per figure, rows in, path out."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import numpy as np  # noqa: E402

from lightning_dims.analysis.fits import group_rows, usable  # noqa: E402

DOMAIN_COLOURS = {"medical": "tab:red", "natural": "tab:blue", "synthetic": "tab:green"}


def colour(domain: str) -> str:
    return DOMAIN_COLOURS.get(domain, "tab:gray")


def save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def loss_vs_dimension(rows: Sequence[Mapping], fits: Mapping[tuple, dict], path: Path) -> Path:
    """Test loss (log scale) against d_data per domain, with the fitted ``log L = a + b d`` lines."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for (domain,), group in group_rows(usable(rows, ("test_loss", "d_data")), ("domain",)).items():
        d = np.array([r["d_data"] for r in group])
        ax.scatter(d, [r["test_loss"] for r in group], s=18, alpha=0.7, color=colour(domain), label=domain)
        fit = fits.get((domain,), {}).get("log_loss_vs_d_data")
        if fit:
            grid = np.linspace(d.min(), d.max(), 50)
            ax.plot(grid, np.exp(fit["intercept"] + fit["slope"] * grid), color=colour(domain),
                    label=f"{domain}: slope {fit['slope']:.3f}/dim")
    ax.set(xlabel="intrinsic dimension d_data (MLE, k=20)", ylabel="test loss (CE, nats)", yscale="log",
           title="Generalization vs intrinsic dimension")
    ax.legend(fontsize=8)
    return save(fig, path)


def loss_vs_law(rows: Sequence[Mapping], fits: Mapping[tuple, dict], path: Path) -> Path:
    """log test loss against ``log N / d_data``: the law predicts parallel lines of slope about -1."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for (domain,), group in group_rows(usable(rows, ("test_loss", "d_data", "train_size")), ("domain",)).items():
        x = np.array([math.log(r["train_size"]) / r["d_data"] for r in group])
        ax.scatter(x, [math.log(r["test_loss"]) for r in group], s=18, alpha=0.7, color=colour(domain), label=domain)
        fit = fits.get((domain,), {}).get("log_loss_vs_log_n_over_d_data")
        if fit:
            grid = np.linspace(x.min(), x.max(), 50)
            ax.plot(grid, fit["intercept"] + fit["slope"] * grid, color=colour(domain),
                    label=f"{domain}: slope {fit['slope']:.2f}")
    ax.set(xlabel="log N / d_data", ylabel="log test loss", title="L ~ K_F N^(-1/d_data)")
    ax.legend(fontsize=8)
    return save(fig, path)


def penalty_vs_sharpness(rows: Sequence[Mapping], path: Path) -> Path:
    """FGSM loss penalty against K_F, coloured by domain."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    points = [r for r in usable(rows, ("label_sharpness",)) if r.get("loss_penalty") is not None]
    for (domain,), group in group_rows(points, ("domain",)).items():
        ax.scatter([r["label_sharpness"] for r in group], [r["loss_penalty"] for r in group], s=18, alpha=0.7,
                   color=colour(domain), label=domain)
    ax.set(xlabel="label sharpness K_F (1/intensity)", ylabel="FGSM loss penalty (nats)",
           title="Adversarial fragility vs label sharpness")
    ax.legend(fontsize=8)
    return save(fig, path)


def repr_vs_data(rows: Sequence[Mapping], path: Path) -> Path:
    """d_repr against d_data with the line y = x (the paper's bound d_repr <= d_data)."""
    fig, ax = plt.subplots(figsize=(4.5, 4))
    points = usable(rows, ("d_repr", "d_data"))
    for (domain,), group in group_rows(points, ("domain",)).items():
        ax.scatter([r["d_data"] for r in group], [r["d_repr"] for r in group], s=18, alpha=0.7,
                   color=colour(domain), label=domain)
    if points:
        top = max(max(r["d_data"], r["d_repr"]) for r in points) * 1.05
        ax.plot([0, top], [0, top], color="black", linewidth=1, linestyle="--", label="y = x")
    ax.set(xlabel="d_data", ylabel="d_repr (TwoNN)", title="Representation vs data dimension")
    ax.legend(fontsize=8)
    return save(fig, path)


def dataset_properties(rows: Sequence[Mapping], path: Path) -> Path:
    """K_F against d_data per dataset (mean over its runs), labelled."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for (dataset, domain), group in group_rows(usable(rows, ("label_sharpness", "d_data")), ("dataset", "domain")).items():
        d, k = np.mean([r["d_data"] for r in group]), np.mean([r["label_sharpness"] for r in group])
        ax.scatter([d], [k], color=colour(domain), s=30)
        ax.annotate(dataset, (d, k), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel="d_data", ylabel="K_F (1/intensity)", title="Dataset properties")
    return save(fig, path)
