"""RSNA-IH-CT from a Kaggle-layout fixture: labels from ID_<image>_any, stored values max-scaled, 224 -> --size."""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers.official_layouts import (
    make_rsna,
    measure_json,
    read_manifest_rows,
    read_png,
    reasons,
    run_prepare,
)

SIZE = 16


def skimage_authors(pixels: np.ndarray, size: int, monochrome1: bool) -> np.ndarray:
    """The authors' notebook line by line, on skimage (the independent reference); negatives clipped before the cast."""
    from skimage.transform import resize

    image = pixels.astype(float) * 255.0 / pixels.max()
    image = np.clip(resize(image, (size, size)), 0, None).astype(np.uint8)
    return np.invert(image) if monochrome1 else image


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
