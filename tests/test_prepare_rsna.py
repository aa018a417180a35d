"""RSNA-IH-CT from a Kaggle-layout fixture: labels from ID_<image>_any, stored values max-scaled, 224 -> --size."""

from __future__ import annotations

import numpy as np
import pytest
from official_layouts import (
    copy_file,
    measure_json,
    pydicom_test_file,
    read_manifest_rows,
    read_png,
    reasons,
    run_prepare,
    write_csv,
    write_dicom,
)

SUBTYPES = ("epidural", "intraparenchymal", "intraventricular", "subarachnoid", "subdural", "any")
SIZE = 16


def skimage_authors(pixels: np.ndarray, size: int, monochrome1: bool) -> np.ndarray:
    """The authors' notebook line by line, on skimage (the independent reference); negatives clipped before the cast."""
    from skimage.transform import resize

    image = pixels.astype(float) * 255.0 / pixels.max()
    image = np.clip(resize(image, (size, size)), 0, None).astype(np.uint8)
    return np.invert(image) if monochrome1 else image


def make_rsna(root, rng, n=24):
    """stage_2_train/ + stage_2_train.csv; returns {image id: (pixels, label, patient, monochrome1)} of the usable images."""
    images, rows = {}, []
    for index in range(n):
        image_id = f"ID_{index:09x}"
        pixels = rng.integers(0, 3000, (40, 40)).astype(np.uint16)
        label, patient, mono1 = index % 2, f"ID_patient{index // 3}", index == 0
        write_dicom(root / "stage_2_train" / f"{image_id}.dcm", pixels, patient=patient, photometric="MONOCHROME1" if mono1 else "MONOCHROME2")
        images[image_id] = (pixels, label, patient, mono1)
        rows += [[f"{image_id}_{subtype}", int(label and subtype in ("any", "subdural"))] for subtype in SUBTYPES]
    signed = np.full((40, 40), -2000, dtype=np.int16)
    signed[8:32, 8:32] = rng.integers(0, 1500, (24, 24))
    write_dicom(root / "stage_2_train" / "ID_signed.dcm", signed, patient="ID_patientS")
    images["ID_signed"] = (signed, 1, "ID_patientS", False)
    copy_file(pydicom_test_file("CT_small.dcm"), root / "stage_2_train" / "ID_ctsmall.dcm")
    write_dicom(root / "stage_2_train" / "ID_unequal.dcm", rng.integers(0, 100, (40, 40)).astype(np.uint16), spacing=(0.5, 0.7))
    copy_file(pydicom_test_file("MR_truncated.dcm"), root / "stage_2_train" / "ID_truncated.dcm")
    write_dicom(root / "stage_2_train" / "ID_nolabel.dcm", rng.integers(0, 100, (40, 40)).astype(np.uint16))
    (root / "stage_2_train" / "notes.txt").write_text("not an image\n")
    for image_id, label in (("ID_signed", 1), ("ID_ctsmall", 0), ("ID_unequal", 0), ("ID_truncated", 1), ("ID_ghost", 0)):
        rows += [[f"{image_id}_{subtype}", label if subtype == "any" else 0] for subtype in SUBTYPES]
    write_csv(root / "stage_2_train.csv", ["ID", "Label"], rows)
    return images


def test_rsna_labels_pixels_patients_and_reported_files(tmp_path, rng, capsys):
    images = make_rsna(tmp_path / "kaggle", rng)
    out = tmp_path / "data" / "rsna"
    code, stdout, stderr = run_prepare(capsys, "rsna", "--source", str(tmp_path / "kaggle"), "--out", str(out), "--size", str(SIZE), "--workers", "1")
    assert code == 0, stderr
    rows = {row["source"]: row for row in read_manifest_rows(out)}
    assert set(rows) == {f"stage_2_train/{image_id}.dcm" for image_id in images} | {"stage_2_train/ID_ctsmall.dcm"}
    for image_id, (pixels, label, patient, mono1) in images.items():
        row = rows[f"stage_2_train/{image_id}.dcm"]
        assert (int(row["label"]), row["patient_id"]) == (label, patient)
        written = read_png(out / row["path"])
        expected = skimage_authors(pixels, SIZE, mono1)
        assert written.shape == (SIZE, SIZE) and written.dtype == np.uint8
        assert np.array_equal(written, expected), image_id
    first = read_png(out / rows["stage_2_train/ID_000000000.dcm"]["path"])
    assert np.array_equal(first, 255 - skimage_authors(images["ID_000000000"][0], SIZE, False))  # MONOCHROME1 inverted
    assert rows["stage_2_train/ID_ctsmall.dcm"]["label"] == "0"
    assert reasons(out, "bad") == {"unequal pixel spacing": ["stage_2_train/ID_unequal.dcm"], "undecodable pixel data": ["stage_2_train/ID_truncated.dcm"]}
    assert reasons(out, "unexpected") == {
        "label row without image file": ["stage_2_train.csv:ID_ghost_any"],
        "no any row in the label table": ["stage_2_train/ID_nolabel.dcm"],
        "not a .dcm file": ["stage_2_train/notes.txt"],
    }
    assert reasons(out, "note") == {"negative stored values clipped to 0": ["stage_2_train/ID_signed.dcm"]}
    assert f"2 bad: 1 x undecodable pixel data; 1 x unequal pixel spacing (listed in {out / 'prepare_report.csv'})" in stderr
    assert "3 unexpected" in stderr and f"--data-root {out.parent}" in stdout
    record = measure_json(capsys, "rsna", tmp_path / "data", n=8, test=4)
    assert record["n"] == 8 and record["label_sharpness"] > 0 and record["domain"] == "medical"


def test_rsna_subtype_option_picks_another_label_row(tmp_path, rng, capsys):
    images = make_rsna(tmp_path / "kaggle", rng, n=6)
    out = tmp_path / "rsna"
    code, _, stderr = run_prepare(capsys, "rsna", "--source", str(tmp_path / "kaggle"), "--out", str(out), "--size", str(SIZE), "--subtype", "intraventricular")
    assert code == 0, stderr
    labels = {row["source"]: row["label"] for row in read_manifest_rows(out)}
    assert {labels[f"stage_2_train/{image_id}.dcm"] for image_id in images if image_id.startswith("ID_0")} == {"0"}


@pytest.mark.parametrize("bad", ["--subtype none", "--size -3"])
def test_rsna_bad_options_are_one_line_errors(tmp_path, capsys, bad):
    (tmp_path / "kaggle").mkdir()
    flag, value = bad.split()
    with pytest.raises(SystemExit) as exited:
        run_prepare(capsys, "rsna", "--source", str(tmp_path / "kaggle"), "--out", str(tmp_path / "out"), flag, value)
    assert exited.value.code == 2
    assert flag in capsys.readouterr().err
