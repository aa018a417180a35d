"""MURA from a Stanford-layout fixture: every listed training image, label from the study folder, copies."""

from __future__ import annotations

import numpy as np
from tests.helpers.official_layouts import measure_json, read_manifest_rows, reasons, run_prepare, write_gray


def make_mura(root, rng):
    """MURA-v1.1/{train,valid}_image_paths.csv and the PNGs; returns the listed training paths."""
    listed = []
    for part in ("XR_ELBOW", "XR_HAND"):
        for patient in range(1, 5):
            for study, outcome in ((1, "positive"), (2, "negative")):
                for image in (1, 2):
                    path = f"MURA-v1.1/train/{part}/patient{patient:05d}/study{study}_{outcome}/image{image}.png"
                    shape = (24, 24, 3) if image == 2 else (24, 24)  # MURA holds some RGB PNGs
                    write_gray(root / path, rng.integers(0, 256, shape, dtype=np.uint8))
                    listed.append(path)
    broken = "MURA-v1.1/train/XR_HAND/patient00009/study1_positive/image1.png"
    (root / broken).parent.mkdir(parents=True)
    (root / broken).write_bytes(b"\x89PNG truncated")
    odd = "MURA-v1.1/train/XR_HAND/patient00010/study1/image1.png"
    write_gray(root / odd, rng.integers(0, 256, (24, 24), dtype=np.uint8))
    (root / "MURA-v1.1" / "train_image_paths.csv").write_text("\n".join(listed + [broken, odd]) + "\n")
    (root / "MURA-v1.1" / "valid_image_paths.csv").write_text("\n".join(listed[:4]) + "\n")
    return listed


def test_mura_labels_patients_copies_and_reports(tmp_path, rng, capsys):
    listed = make_mura(tmp_path / "stanford", rng)
    out = tmp_path / "data" / "mura"
    code, _, stderr = run_prepare(capsys, "mura", "--source", str(tmp_path / "stanford"), "--out", str(out), "--workers", "2")
    assert code == 0, stderr
    rows = read_manifest_rows(out)
    assert [row["source"] for row in rows] == listed
    for row in rows:
        assert row["label"] == ("1" if "_positive" in row["source"] else "0")
        assert row["patient_id"] == row["source"].split("/")[3] and row["study"] == row["source"].split("/")[4]
        assert (out / row["path"]).read_bytes() == (tmp_path / "stanford" / row["source"]).read_bytes()
    assert list(reasons(out, "bad")) == ["unreadable (UnidentifiedImageError)"]
    assert reasons(out, "unexpected") == {"path names neither positive nor negative": ["MURA-v1.1/train_image_paths.csv:MURA-v1.1/train/XR_HAND/patient00010/study1/image1.png"]}
    record = measure_json(capsys, "mura", tmp_path / "data", n=8, test=4)
    assert record["n"] == 8


def test_mura_valid_split(tmp_path, rng, capsys):
    listed = make_mura(tmp_path / "stanford", rng)
    code, _, stderr = run_prepare(capsys, "mura", "--source", str(tmp_path / "stanford" / "MURA-v1.1"), "--out", str(tmp_path / "valid"), "--split", "valid")
    assert code == 0, stderr
    assert [row["source"] for row in read_manifest_rows(tmp_path / "valid")] == listed[:4]


CONFLICTING = {
    "MURA-v1.1/train/XR_ELBOW/patient_negative00011/study1_positive/image1.png": 1,
    "MURA-v1.1/train/XR_ELBOW/patient_positive00012/study1_negative/image1.png": 0,
    "MURA-v1.1/train/XR_HAND/patient00013/study2_negative/image1.png": 0,
    "MURA-v1.1/train/XR_HAND/patient00014/study1_positive/image1.png": 1,
}
"""Paths whose patient folder names the other outcome: the study folder decides. ("negative" first,
the authors' order, would call the first normal; "_positive" first, the manifest's old order, the second abnormal.)"""


def test_the_study_folder_decides_a_mura_label_in_prepare_and_in_the_manifest_rule(tmp_path, rng):
    from lightning_dims.data.manifest import mura_rule
    from lightning_dims.prepare.mura import plan

    for path in CONFLICTING:
        write_gray(tmp_path / path, rng.integers(0, 256, (8, 8), dtype=np.uint8))
    (tmp_path / "MURA-v1.1" / "train_image_paths.csv").write_text("\n".join(CONFLICTING) + "\n")
    planned = plan(tmp_path, {"split": "train", "paths": None, "per_class": 0, "seed": 0})
    assert {task.key: task.label for task in planned.tasks} == CONFLICTING and not planned.issues
    assert mura_rule(np.asarray(list(CONFLICTING))).tolist() == list(CONFLICTING.values())
    assert np.isnan(mura_rule(np.asarray(["MURA-v1.1/train/XR_HAND/patient00010/study1/image1.png"]))).all()
