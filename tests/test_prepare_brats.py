"""BraTS 2018 from a CBICA-layout fixture: percentile scaling, tumour labels, the 10-slice ambiguity rule, the brain mask."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.helpers.official_layouts import measure_json, read_manifest_rows, read_png, reasons, run_prepare

from lightning_dims.prepare.brats import ambiguous_slices, brain_mask, disk, mask_is_brain

SLICES = 30
SIDE = 48


def ellipse(centre, radii):
    rows, cols = np.mgrid[0:SIDE, 0:SIDE]
    return ((rows - centre[0]) / radii[0]) ** 2 + ((cols - centre[1]) / radii[1]) ** 2 <= 1


def write_case(folder, rng, kinds=("flair", "t1", "t1ce", "t2", "seg")):
    """One case's volumes, built as (slice, row, col) and saved in NIfTI's (x, y, z) order; returns the (z, y, x) arrays."""
    import nibabel

    brain = np.stack([ellipse((24, 22), (16, 13))] * SLICES)
    brain[25:27] = False  # no brain at all
    brain[27] = ellipse((10, 10), (7, 7)) | ellipse((36, 36), (7, 7))  # two regions
    brain[28] = ellipse((24, 22), (6, 6))  # too small
    rows, cols = np.mgrid[0:SIDE, 0:SIDE]
    volumes = {
        "t2": np.where(brain, rng.integers(100, 1000, brain.shape), 0).astype(np.int16),
        "flair": np.where(brain, 200 + 3 * rows + 11 * cols + rng.integers(0, 50, brain.shape), 0).astype(np.int16),  # rows != cols: catches a transpose
        "t1": np.where(brain, 300, 0).astype(np.int16),
        "t1ce": np.where(brain, 400, 0).astype(np.int16),
        "seg": np.zeros(brain.shape, dtype=np.uint8),
    }
    volumes["seg"][8:22] = np.where(ellipse((24, 22), (4, 5)), 2, 0)
    volumes["seg"][15, 24, 22] = 4
    folder.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        image = nibabel.Nifti1Image(np.transpose(volumes[kind], (2, 1, 0)), np.eye(4))
        nibabel.save(image, folder / f"{folder.name}_{kind}.nii.gz")
    return volumes


def authors_label_slices(labels: list[int]) -> list[int]:
    """The authors' label_slices loop, typed out: -1 marks an ambiguous slice (modifies a copy in place)."""
    slice_label = list(labels)
    for index in range(len(slice_label) - 10):
        if sum(slice_label[index : index + 10]) > 0 and sum(slice_label[index : index + 10]) < 10:
            slice_label[index] = -1
    return slice_label


def test_ambiguity_rule_matches_the_authors_loop(rng):
    for _ in range(200):
        labels = (rng.random(rng.integers(5, 60)) < rng.random()).astype(int)
        expected = np.asarray(authors_label_slices(labels.tolist())) == -1
        assert np.array_equal(ambiguous_slices(labels, 10), expected)


def skimage_get_mask(image):
    """The authors' get_mask on skimage (the independent reference): (mask, number of regions)."""
    from scipy import ndimage
    from skimage.filters import roberts
    from skimage.measure import label, regionprops
    from skimage.morphology import binary_closing, binary_erosion
    from skimage.morphology import disk as skimage_disk

    binary = binary_erosion(image > 0, skimage_disk(2))
    binary = binary_closing(binary, skimage_disk(2))
    filled = ndimage.binary_fill_holes(roberts(binary))
    return filled, len(regionprops(label(filled)))


@pytest.mark.filterwarnings("ignore:`binary_:FutureWarning")  # skimage 0.26 deprecates the functions the authors called
def test_brain_mask_matches_skimage_reference(rng):
    from skimage.morphology import disk as skimage_disk

    assert np.array_equal(disk(2), skimage_disk(2).astype(bool)) and disk(2).sum() == 13
    for trial in range(40):
        image = np.zeros((64, 64))
        for _ in range(rng.integers(1, 4)):
            centre, radii = rng.integers(8, 56, 2), rng.integers(3, 14, 2)
            rows, cols = np.mgrid[0:64, 0:64]
            image[((rows - centre[0]) / radii[0]) ** 2 + ((cols - centre[1]) / radii[1]) ** 2 <= 1] = rng.random() + 0.1
        image[rng.random((64, 64)) < 0.05 * (trial % 3)] = 0  # pepper holes
        ours = brain_mask(image)
        reference, regions = skimage_get_mask(image)
        assert np.array_equal(ours, reference), trial
        assert mask_is_brain(ours, 200) == (regions <= 1 and reference.sum() >= 200)


@pytest.fixture
def brats_download(tmp_path, rng):
    training = tmp_path / "download" / "MICCAI_BraTS_2018_Data_Training"
    cases = {name: write_case(training / grade / name, rng) for grade, name in (("HGG", "Brats18_TCIA01_131_1"), ("LGG", "Brats18_2013_0_1"))}
    write_case(tmp_path / "download" / "MICCAI_BraTS_2018_Data_Validation" / "Brats18_CBICA_AAM_1", rng, kinds=("flair", "t1", "t1ce", "t2"))
    return tmp_path / "download", cases


def test_brats_labels_ambiguity_mask_and_scaling(brats_download, tmp_path, capsys):
    source, cases = brats_download
    out = tmp_path / "data" / "brats"
    code, _, stderr = run_prepare(capsys, "brats", "--source", str(source), "--out", str(out), "--min-area", "400", "--format", "png")
    assert code == 0, stderr
    rows = read_manifest_rows(out)
    kept = {case: {int(row["slice_index"]): int(row["label"]) for row in rows if row["patient_id"] == case} for case in cases}
    expected = {z: 1 for z in (8, 9, 10, 11, 12, 20, 21)} | {z: 0 for z in (22, 23, 24, 29)}
    assert kept == {case: expected for case in cases}
    for row in rows:
        flair = cases[row["patient_id"]]["flair"].astype(float)
        low, high = np.percentile(flair, [0.1, 99.9])
        scaled = np.rint(np.clip((flair[int(row["slice_index"])] - low) / (high - low), 0, 1) * 255)
        assert np.array_equal(read_png(out / row["path"]), scaled.astype(np.uint8)), row["path"]
    assert {row["grade"] for row in rows} == {"HGG", "LGG"}
    counts = json.loads((out / "prepare.json").read_text())["counts"]
    assert counts["slices without one brain region of min_area"] == 2 * 4 and counts["slices ambiguous"] == 2 * 15
    assert reasons(out, "unexpected") == {"no segmentation (not a training case)": ["MICCAI_BraTS_2018_Data_Validation/Brats18_CBICA_AAM_1"]}
    record = measure_json(capsys, "brats", tmp_path / "data", n=8, test=0)
    assert record["n"] == 8


def test_brats_default_writes_jpeg_quality_95(brats_download, tmp_path, capsys):
    source, cases = brats_download
    out = tmp_path / "brats"
    code, _, stderr = run_prepare(capsys, "brats", "--source", str(source), "--out", str(out), "--min-area", "400")
    assert code == 0, stderr
    row = read_manifest_rows(out)[0]
    assert row["path"].endswith(".jpg")
    flair = cases[row["patient_id"]]["flair"].astype(float)
    low, high = np.percentile(flair, [0.1, 99.9])
    scaled = np.rint(np.clip((flair[int(row["slice_index"])] - low) / (high - low), 0, 1) * 255)
    assert np.abs(read_png(out / row["path"]).astype(float) - scaled).mean() < 3  # lossy, but the same picture
