"""``synthetic`` with ``margin``: one pool of images, labelled with a wider or narrower empty band
between the classes, so K_F moves while d_data stays (the demo's series, docs/demo.md)."""

import numpy as np
import pytest
import skdim
from scipy.spatial.distance import cdist

from lightning_dims.commands.demo import DEMO_SWEEPS
from lightning_dims.data import DatasetTask
from lightning_dims.data.synthetic import MARGIN_BANDS, label_bands, synthetic_images
from lightning_dims.sweep.grid import load_sweep


def test_every_margin_labels_the_same_images_with_the_band_between_the_classes():
    pools = {margin: synthetic_images(3000, 2, margin=margin) for margin in MARGIN_BANDS}
    images, _, theta = pools[MARGIN_BANDS[0]]
    for margin, (other, labels, other_theta) in pools.items():
        assert np.array_equal(other, images) and np.array_equal(other_theta, theta)  # only the labels move
        angle = np.degrees(theta[:, 0])
        j = MARGIN_BANDS.index(margin)
        centre = j * 180 / len(MARGIN_BANDS)  # band j: centred at j * 30 and j * 30 + 180 degrees
        assert np.array_equal(labels, (np.mod(angle - centre, 360) < 180).astype(int))
        assert 0.46 < labels.mean() < 0.54  # each half circle holds one band of every other pair
        assert np.min(np.abs(np.mod(angle - centre + 90, 180) - 90)) >= margin / 2  # nothing inside the band
    for j, width in enumerate(MARGIN_BANDS):  # every band pair is empty in the one pool
        offset = np.abs(np.mod(np.degrees(theta[:, 0]) - j * 30 + 90, 180) - 90)
        assert offset.min() >= width / 2 and offset.min() < width / 2 + 1  # and the pool comes up to its edges
    plain_images, plain_labels, plain_theta = synthetic_images(3000, 2)
    assert np.array_equal(plain_labels, (np.sin(plain_theta[:, 0]) >= 0).astype(int))  # margin 0: the plain torus


@pytest.mark.parametrize(
    "gaps, margin, message",
    [((36, 6), 7, "margin=7 is not one of the band widths"), ((100, 90), 90, "overlap"), ((), 6, "needs bands"),
     ((6, 6), 6, "distinct positive")],
)
def test_band_layouts_that_cannot_hold_a_margin_are_refused(gaps, margin, message):
    with pytest.raises(ValueError, match=message):
        label_bands(gaps, margin)


def test_the_demo_margin_series_moves_k_f_at_one_d_data():
    """The demo's series, its training sets at N = 120 for its two seeds, measured here by brute force:
    K_F spans 1.5x or more and falls with the margin, the mean over the two seeds is reliable (intraclass
    correlation of log K_F >= 0.9), and d_data (scikit-dimension's MLE) is the same within 0.2."""
    grid = load_sweep(DEMO_SWEEPS[0])["parameters"]  # the YAML itself (expanding the commands imports W&B)
    series = [data for data in grid["data"]["values"] if data.get("dataset_options", {}).get("margin", 0) > 0]
    margins, seeds = sorted(data["dataset_options"]["margin"] for data in series), grid["data.seed"]["values"]
    assert len(margins) >= 5 and seeds == [0, 1] and 120 in grid["data.train_size"]["values"]
    data = series[0]
    assert all(dict(d["dataset_options"], margin=0) == dict(data["dataset_options"], margin=0) for d in series)  # one pool
    k_f, d_data = np.zeros((len(margins), len(seeds))), np.zeros((len(margins), len(seeds)))
    for i, margin in enumerate(margins):
        for j, seed in enumerate(seeds):
            task = DatasetTask("synthetic", train_size=120, val_size=data["val_size"], test_size=data["test_size"],
                               size=data["size"], seed=seed, options={**data["dataset_options"], "margin": margin})
            x = task.images("train").flatten(1).double().numpy()
            y = task.labels("train").numpy()
            k_f[i, j] = 1 / cdist(x[y == 0], x[y == 1]).min()
            d_data[i, j] = skdim.id.MLE(unbiased=True).fit(x, n_neighbors=20, comb="mle").dimension_
            measured = task.properties(m=1000, k=20, estimator="mle", kf_mode="exhaustive")  # what the demo's runs record
            assert measured.label_sharpness == pytest.approx(k_f[i, j], rel=1e-5)
            assert measured.d_data == pytest.approx(d_data[i, j], rel=1e-6)
    mean_k_f = k_f.mean(axis=1)
    assert mean_k_f.max() / mean_k_f.min() >= 1.5
    assert np.all(np.diff(mean_k_f) < 0)  # a wider margin, a smoother label
    logs = np.log(k_f)
    between = len(seeds) * logs.mean(axis=1).var(ddof=1)  # one-way ANOVA mean squares, tasks x seeds
    within = logs.var(axis=1, ddof=1).mean()
    assert (between - within) / between >= 0.9  # ICC(1, k): reliability of the mean over the seeds
    assert np.ptp(d_data.mean(axis=1)) <= 0.2 and np.all(np.abs(d_data.mean(axis=1) - 2) <= 0.2)
