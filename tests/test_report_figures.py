"""The report's figures hold plotted data, not just a file: readable PNGs with both domains' points.

Medical tasks are drawn in shades of matplotlib's ``Reds``, natural ones in shades of ``Blues``
(``lightning_dims.analysis.figures.DOMAIN_COLOURMAPS``); an empty or one-domain figure fails.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from lightning_dims.analysis.report import write_report
from lightning_dims.records import ResultsRecord

FIGURES = tuple(
    f"{name}_resnet18.png"
    for name in ("loss_vs_n", "alpha_vs_inverse_d", "loss_at_centre_vs_k_f", "loss_vs_d_data_each_n", "penalty_vs_k_f", "d_repr_vs_d_data")
)


def record(i: int, domain: str, d_data: float, k_f: float, n: int) -> ResultsRecord:
    """A finished run's record (validated, so the FGSM penalties are filled in as in a written record)."""
    loss = math.exp(math.log(k_f) - math.log(n) / d_data + 8)
    return ResultsRecord.model_validate({
        "run_id": f"run{i}", "status": "finished", "dataset": f"{domain}{int(d_data)}", "domain": domain,
        "arch": "resnet18", "n_train": n, "seed": 0, "preprocessing": {"key": "32px-1ch-max255"},
        "label_sharpness": k_f, "d_data": d_data, "test": {"loss": loss, "acc": 0.9},
        "fgsm": {"2.0": {"clean_loss": loss, "attacked_loss": loss + 1e3 * k_f, "clean_acc": 0.9, "attacked_acc": 0.5}},
        "d_repr": {"layer4": {"twonn": d_data * 0.6}},
    })  # fmt: skip


def domain_pixels(path) -> dict[str, int]:
    """Pixels of each domain's hue (any shade of red or blue, also semi-transparent on white), and the image size."""
    image = np.asarray(Image.open(path).convert("RGB")).astype(int)
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    return {
        "medical": int(((r - np.maximum(g, b)) > 60).sum()),  # Reds: red well above green and blue
        "natural": int(((b - r) > 60).sum()),  # Blues: blue well above red
        "ink": int((image.sum(axis=2) < 600).sum()),  # anything clearly not white
        "width": image.shape[1],
        "height": image.shape[0],
    }


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    rows, i = [], 0
    for domain, k_f, dims in (("medical", 3e-4, (6, 10, 16)), ("natural", 1e-4, (9, 12, 18))):
        for d in dims:
            for n in (100, 200, 400):
                rows.append(record(i, domain, d, k_f * (1 + 0.1 * d), n))
                i += 1
    out = tmp_path_factory.mktemp("report")
    write_report(rows, out)
    return out


@pytest.mark.parametrize("name", FIGURES)
def test_figure_shows_both_domains(report, name):
    pixels = domain_pixels(report / name)
    assert pixels["width"] >= 400 and pixels["height"] >= 300, pixels
    assert pixels["medical"] >= 30 and pixels["natural"] >= 30, pixels  # both domains' points are drawn
    assert pixels["ink"] > 0.01 * pixels["width"] * pixels["height"], pixels  # axes, labels and data, not a blank canvas


def test_a_blank_figure_would_fail(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.set(xlabel="d_data", ylabel="loss")
    fig.savefig(tmp_path / "empty.png", dpi=120)
    plt.close(fig)
    pixels = domain_pixels(tmp_path / "empty.png")
    assert pixels["medical"] == 0 and pixels["natural"] == 0  # the check above tells data from an empty frame
