"""The offline datasets: digits (the contract others build on), brain-tissue, synthetic."""

import dataclasses
import hashlib

import numpy as np
import pytest
import torch

from lightning_dims.data import DatasetTask, DimsDataModule
from lightning_dims.data.brain_tissue import slab_partition
from lightning_dims.data.synthetic import synthetic_images
from lightning_dims.properties import intrinsic_dimension


def test_digits_datamodule_contract():
    dm = DimsDataModule(name="digits", classes=[3, 8], train_size=200, val_size=60, test_size=100, size=32, batch_size=32)
    assert (dm.in_chans, dm.num_classes, dm.domain) == (1, 2, "natural")
    assert dm.spec.size == 32 and dm.spec.intensity == "max255"
    dm.prepare_data()
    with pytest.warns(UserWarning, match="test set shrunk from 100 to 88 images: task class 1 \\('8'\\) has only 174"):
        dm.setup("fit")
    assert (len(dm.train_indices), len(dm.val_indices), len(dm.test_indices)) == (200, 60, 88)
    assert dm.class_names == ["3", "8"]
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 1, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.allclose(x.flatten(1).amax(1), torch.full((32,), 255.0))
    from sklearn.datasets import load_digits

    targets = load_digits().target
    assert set(targets[dm.train_indices]) == {3, 8}
    assert all(label == (targets[index] == 8) for label, index in zip(dm.task.labels("train").tolist(), dm.train_indices))
    properties = dm.dataset_properties()
    assert properties.cached is False and dm.dataset_properties().cached is True
    assert properties.preprocessing["size"] == 32 and properties.n == 200 and properties.estimator == "mle"


def test_digits_defaults_use_all_ten_classes():
    dm = DimsDataModule(name="digits", size=8)
    assert dm.num_classes == 10
    dm.setup()
    assert np.bincount(dm.task.labels("train").numpy()).tolist() == [50] * 10


def test_fingerprint_changes_with_indices_spec_and_estimator():
    base = dict(name="digits", classes=[3, 8], train_size=100, val_size=20, test_size=40, size=16)
    key = DatasetTask(**base).property_fingerprint(1000, 20, "mle", "exhaustive")
    assert key == DatasetTask(**base).property_fingerprint(1000, 20, "mle", "exhaustive")
    assert key != DatasetTask(**base | {"seed": 1}).property_fingerprint(1000, 20, "mle", "exhaustive")
    assert key != DatasetTask(**base | {"size": 32}).property_fingerprint(1000, 20, "mle", "exhaustive")
    assert key != DatasetTask(**base).property_fingerprint(1000, 10, "mle", "exhaustive")
    assert key != DatasetTask(**base).property_fingerprint(1000, 20, "twonn", "exhaustive")


def test_cache_is_written_atomically_under_the_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTNING_DIMS_CACHE", str(tmp_path))
    task = DatasetTask("digits", classes=[0, 1], train_size=100, val_size=0, test_size=0, size=8)
    record = task.properties(k=10)
    entries = list((tmp_path / "properties").iterdir())
    assert [entry.name for entry in entries] == [record.fingerprint + ".json"]
    assert task.properties(k=10) == dataclasses.replace(record, cached=True)


def test_brain_tissue_slabs_separate_the_splits():
    task = DatasetTask("brain-tissue", train_size=400, val_size=100, test_size=200, size=None)
    assert (task.in_chans, task.num_classes, task.domain) == (1, 2, "medical")
    task.pool()
    assert task.class_names == ["grey matter", "white matter"]
    from lightning_dims.data.brain_tissue import tissue_patches

    _, labels, partition, centres = tissue_patches()
    slices = {split: set(centres[task.indices(split), 2]) for split in ("train", "val", "test")}
    gaps = [min(abs(a - b) for a in slices[s] for b in slices[t]) for s, t in (("train", "test"), ("train", "val"), ("val", "test"))]
    assert min(gaps) > 4  # slabs are separated by the 4-slice gap
    for split, size in (("train", 400), ("val", 100), ("test", 200)):
        assert np.bincount(task.labels(split).numpy()).tolist() == [size // 2, size // 2]
    assert task.images("train").shape == (400, 1, 32, 32)


def mni152_patches_from_the_documentation(patch=32, stride=4, slice_step=2, confidence=0.9, slab=12, gap=4):
    """(label, split, patch digest) of every brain-tissue patch, built here from nilearn's volumes.

    As documented: axial ``patch`` x ``patch`` squares of the 1 mm MNI152 T1 template, centres on
    an in-plane grid of step ``stride`` starting half a patch from the volume's edge, on every
    ``slice_step``-th slice of the brain's axial extent (slices where grey + white probability
    exceeds 0.5 somewhere); label 0 where the centre's grey-matter probability is >= confidence,
    1 where the white-matter one is (neither or both: dropped); slices cut into slabs of ``slab``
    assigned train, val, train, test in turn, ``gap`` slices dropped between slabs.
    """
    from nilearn.datasets import load_mni152_gm_template, load_mni152_template, load_mni152_wm_template

    t1, grey, white = (np.asarray(load(resolution=1).get_fdata(), dtype=np.float32) for load in (
        load_mni152_template, load_mni152_gm_template, load_mni152_wm_template))  # fmt: skip
    brain = np.flatnonzero(((grey + white) > 0.5).any(axis=(0, 1)))
    half, rows = patch // 2, []
    for z in range(int(brain.min()), int(brain.max()) + 1, slice_step):
        position = z - int(brain.min())
        if position % (slab + gap) >= slab:
            continue
        split = ("train", "val", "train", "test")[(position // (slab + gap)) % 4]
        for x in range(half, t1.shape[0] - half + 1, stride):
            for y in range(half, t1.shape[1] - half + 1, stride):
                is_grey, is_white = grey[x, y, z] >= confidence, white[x, y, z] >= confidence
                if is_grey != is_white:
                    square = np.ascontiguousarray(t1[x - half : x + half, y - half : y + half, z])
                    rows.append((int(is_white), split, hashlib.sha1(square.tobytes()).hexdigest()))
    return rows


def test_brain_tissue_patches_and_labels_follow_nilearns_tissue_maps():
    pool = DatasetTask("brain-tissue").pool()
    images = np.asarray(pool.images, dtype=np.float32)
    loaded = [
        (int(label), str(split), hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest())
        for label, split, image in zip(pool.labels, pool.partition, images)
    ]
    expected = mni152_patches_from_the_documentation()
    assert len(loaded) == len(expected) > 5000
    assert sorted(loaded) == sorted(expected)  # same patches, each with the same label and split
    assert np.bincount(pool.labels).min() > 1000  # both tissues well represented


def test_slab_partition_cycle_and_gaps():
    names = slab_partition(np.arange(10, 40), first=10, slab=3, gap=2)
    assert names[:10].tolist() == ["train"] * 3 + [""] * 2 + ["val"] * 3 + [""] * 2


@pytest.mark.parametrize("d, documented", [(4, 4.06), (8, 9.39), (16, 15.99)])
def test_synthetic_mle_recovers_d(d, documented):
    # docs/datasets.md (Embedded): "MLE at N = 2000 (native 16 px): 4.06, 9.39, 15.99 for d = 4, 8, 16"
    task = DatasetTask("synthetic", train_size=2000, val_size=0, test_size=0, size=None, options={"d": d})
    estimate = task.properties().d_data
    assert estimate == pytest.approx(documented, abs=0.006)
    assert abs(estimate - d) <= 0.2 * d, estimate


def test_synthetic_images_are_framed_and_labelled_by_factor_zero():
    images, labels, theta = synthetic_images(500, 3, contrast=0.5)
    assert images.max() == 1.0 and images[:, 1:-1, 1:-1].max() < 1.0 and images.min() > 0
    assert np.array_equal(labels, (np.sin(theta[:, 0]) >= 0).astype(int))
    assert float(intrinsic_dimension(images)) == pytest.approx(3, rel=0.2)


def test_synthetic_fainter_label_factor_raises_label_sharpness():
    values = [
        DatasetTask("synthetic", train_size=1000, val_size=0, test_size=0, size=None, options={"d": 4, "contrast": contrast})
        .properties().label_sharpness
        for contrast in (1.0, 0.3, 0.05)
    ]
    assert values[0] < values[1] < values[2]
